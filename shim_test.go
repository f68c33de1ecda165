package iosessions

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/iosessions/iosessions/client"
)

// inlinedState returns the state the shim body carries.
func inlinedState(t testing.TB, body string) shimState {
	t.Helper()
	i := strings.Index(client.Shim, client.Placeholder)
	if i < 0 {
		t.Fatal("placeholder missing from the shim")
	}
	prefix, suffix := client.Shim[:i], client.Shim[i+len(client.Placeholder):]
	if !strings.HasPrefix(body, prefix) || !strings.HasSuffix(body, suffix) {
		t.Fatalf("body is not the shim with the state inlined")
	}
	var st shimState
	if err := json.Unmarshal([]byte(body[len(prefix):len(body)-len(suffix)]), &st); err != nil {
		t.Fatalf("inlined state: %v", err)
	}
	return st
}

func TestShimHandler(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, Config{}, map[any]any{"user": "ann"})
	m, key, id := fx.m, fx.key, fx.id
	gone, _ := login(t, fx.mem, nil)
	httpDelete(t, fx.mem, gone)
	path := m.Config().ShimPath

	type want struct {
		code  int
		ctype string
		token bool
		json  bool
	}
	cases := []struct {
		name   string
		method string
		cookie string
		hdr    map[string]string
		want   want
	}{
		{"GET with session", http.MethodGet, key, nil, want{200, "text/javascript; charset=utf-8", true, false}},
		{"HEAD with session", http.MethodHead, key, nil, want{200, "text/javascript; charset=utf-8", true, false}},
		{"GET without cookie", http.MethodGet, "", nil, want{200, "text/javascript; charset=utf-8", false, false}},
		{"GET tampered cookie", http.MethodGet, tamper(key, 7), nil, want{200, "text/javascript; charset=utf-8", false, false}},
		{"GET ended session", http.MethodGet, gone, nil, want{200, "text/javascript; charset=utf-8", false, false}},
		{"JSON with session", http.MethodGet, key, map[string]string{"Accept": "application/json"}, want{200, "application/json", true, true}},
		{"JSON among types", http.MethodGet, key, map[string]string{"Accept": "text/html, application/json;q=0.9"}, want{200, "application/json", true, true}},
		{"JSON without session", http.MethodGet, "", map[string]string{"Accept": "application/json"}, want{200, "application/json", false, true}},
		{"cross-site", http.MethodGet, key, map[string]string{"Sec-Fetch-Site": "cross-site"}, want{200, "text/javascript; charset=utf-8", false, false}},
		{"cross-site JSON", http.MethodGet, key, map[string]string{"Sec-Fetch-Site": "cross-site", "Accept": "application/json"}, want{200, "application/json", false, true}},
		{"same-site", http.MethodGet, key, map[string]string{"Sec-Fetch-Site": "same-site"}, want{200, "text/javascript; charset=utf-8", true, false}},
		{"same-origin", http.MethodGet, key, map[string]string{"Sec-Fetch-Site": "same-origin"}, want{200, "text/javascript; charset=utf-8", true, false}},
		{"POST", http.MethodPost, key, nil, want{405, "", false, false}},
		{"PUT", http.MethodPut, key, nil, want{405, "", false, false}},
		{"DELETE", http.MethodDelete, key, nil, want{405, "", false, false}},
		{"OPTIONS", http.MethodOptions, key, nil, want{405, "", false, false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := withCookie(tc.method, path, tc.cookie)
			for k, v := range tc.hdr {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			before := time.Now()
			m.Middleware(http.NotFoundHandler()).ServeHTTP(w, r)
			res := w.Result()
			body := w.Body.String()
			if res.StatusCode != tc.want.code {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.want.code)
			}
			if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q", cc)
			}
			if res.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no nosniff")
			}
			if len(res.Cookies()) != 0 {
				t.Error("the shim sets cookies")
			}
			if tc.cookie != "" && strings.Contains(body, tc.cookie) {
				t.Error("body carries the cookie value")
			}
			if strings.Contains(body, id) {
				t.Error("body carries the session id")
			}
			if tc.want.code == 405 {
				if a := res.Header.Get("Allow"); a != "GET, HEAD" {
					t.Errorf("Allow %q", a)
				}
				return
			}
			if ct := res.Header.Get("Content-Type"); ct != tc.want.ctype {
				t.Errorf("Content-Type %q, want %q", ct, tc.want.ctype)
			}
			var st shimState
			if tc.want.json {
				if err := json.Unmarshal([]byte(body), &st); err != nil {
					t.Fatalf("JSON body %q: %v", body, err)
				}
				var raw map[string]any
				_ = json.Unmarshal([]byte(body), &raw)
				if len(raw) != 2 {
					t.Errorf("JSON fields %v, want token and expires", raw)
				}
			} else {
				st = inlinedState(t, body)
				if st.Param != TokenParam || st.URL != path {
					t.Errorf("state %+v", st)
				}
			}
			if !tc.want.token {
				if st.Token != "" || st.Expires != 0 {
					t.Fatalf("token %q expires %d, want none", st.Token, st.Expires)
				}
				return
			}
			if st.Token == "" {
				t.Fatal("no token")
			}
			exp := time.UnixMilli(st.Expires)
			if exp.Before(before) || exp.After(before.Add(m.Config().TokenTTL+time.Second)) {
				t.Errorf("expires %v, TTL %v from %v", exp, m.Config().TokenTTL, before)
			}
			// The token maps to the session.
			got, err := m.TokenCutter()(WithAuth(handshake(""), map[string]any{TokenParam: st.Token}))
			if err != nil || got != key {
				t.Fatalf("TokenCutter = %v (key match %v)", err, got == key)
			}
		})
	}
}

// A socket that connects with the shim's token gets the session.
func TestShimTokenConnects(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode Mode) {
		fx := newFixture(t, Config{Mode: mode}, map[any]any{"user": "ann"})
		m := fx.m
		tok := shimJSONToken(t, m, withCookie(http.MethodGet, m.Config().ShimPath, fx.key))
		got := make(chan string, 2)
		m.OnConnection(func(_ *Socket, sess *Session) { got <- sess.ID })
		// 3.x/4.x clients: auth payload.
		connect(t, m, WithAuth(handshake(""), map[string]any{TokenParam: tok}))
		if g := recv(t, got, "sconnection (auth)"); g != fx.id {
			t.Fatal("wrong session")
		}
		// 1.x/2.x clients: query, with a token of its own (single-use).
		tok = shimJSONToken(t, m, withCookie(http.MethodGet, m.Config().ShimPath, fx.key))
		connect(t, m, httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=3&transport=polling&"+TokenParam+"="+url.QueryEscape(tok), nil))
		if g := recv(t, got, "sconnection (query)"); g != fx.id {
			t.Fatal("wrong session")
		}
	})
}

// shimJSONToken asks m's shim handler for the JSON state with r and
// returns its token, which must be there.
func shimJSONToken(t testing.TB, m *Manager, r *http.Request) string {
	t.Helper()
	r.Header.Set("Accept", "application/json")
	w := httptest.NewRecorder()
	m.ShimHandler().ServeHTTP(w, r)
	var st shimState
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil || st.Token == "" {
		t.Fatalf("no token from the shim: %v %q", err, w.Body)
	}
	return st.Token
}

func TestShimStoreFailureGivesNoToken(t *testing.T) {
	t.Parallel()
	m, _ := newManager(t, &failLoader{}, Config{})
	w := httptest.NewRecorder()
	m.ShimHandler().ServeHTTP(w, withCookie(http.MethodGet, "/x", "some-key"))
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	if st := inlinedState(t, w.Body.String()); st.Token != "" {
		t.Fatal("token without a loadable session")
	}
	if strings.Contains(w.Body.String(), errBoom.Error()) {
		t.Fatal("store error in the body")
	}
}

// The inlined state is safe inside a <script>: a custom ShimPath with
// markup cannot break out.
func TestShimEscapesState(t *testing.T) {
	t.Parallel()
	m, _ := newManager(t, newMem(t), Config{ShimPath: "/</script><script>alert(1)</script>&.js"})
	w := httptest.NewRecorder()
	m.ShimHandler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/x", nil))
	st := inlinedState(t, w.Body.String())
	if st.URL != m.Config().ShimPath {
		t.Fatalf("url %q", st.URL)
	}
	if strings.Contains(w.Body.String(), "</script>") {
		t.Fatal("markup not escaped")
	}
}

func TestMiddlewarePassesThrough(t *testing.T) {
	t.Parallel()
	m, _ := newManager(t, newMem(t), Config{ShimPath: "/custom/shim.js"})
	var seen *http.Request
	var seenW http.ResponseWriter
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, seenW = r, w
		w.Header().Set("X-Next", "1")
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "next")
	})
	h := m.Middleware(next)
	cases := []struct {
		path string
		shim bool
	}{
		{"/custom/shim.js", true},
		{"/socket.io/socket.io-sessions.js", false}, // the default path is not served when changed
		{"/custom/shim.js/", false},
		{"/custom/shim.jsx", false},
		{"/socket.io/", false},
		{"/", false},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			seen, seenW = nil, nil
			r := httptest.NewRequest(http.MethodGet, tc.path+"?EIO=3", nil)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if tc.shim {
				if seen != nil || w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/javascript") {
					t.Fatalf("shim not served: %d %v", w.Code, w.Header())
				}
				return
			}
			if seen != r {
				t.Fatal("next got another request")
			}
			if seenW != http.ResponseWriter(w) {
				t.Fatal("the ResponseWriter was wrapped")
			}
			if w.Code != http.StatusTeapot || w.Body.String() != "next" || w.Header().Get("X-Next") != "1" || w.Header().Get("Cache-Control") != "" {
				t.Fatalf("response changed: %d %q %v", w.Code, w.Body, w.Header())
			}
		})
	}
}

// A real WebSocket upgrade through Middleware works: the ResponseWriter
// keeps http.Hijacker.
func TestMiddlewareWebSocketUpgrade(t *testing.T) {
	t.Parallel()
	m, _ := newManager(t, newMem(t), Config{})
	handlerDone := make(chan struct{})
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade through Middleware: %v", err)
			return
		}
		defer close(handlerDone)
		defer c.Close()
		for {
			typ, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(typ, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	})
	srv := httptest.NewServer(m.Middleware(inner))
	t.Cleanup(srv.Close)
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket.io/?EIO=3&transport=websocket"
	c, res, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", res.StatusCode)
	}
	for _, msg := range []string{"hello", "again"} {
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(waitLimit))
		_, got, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "echo: "+msg {
			t.Fatalf("got %q", got)
		}
	}
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	c.Close()
	recv(t, handlerDone, "the server side to end")
}

// The shim answers the right thing when the cookie is not the default
// name.
func TestShimCustomName(t *testing.T) {
	t.Parallel()
	mem := newMem(t)
	m, _ := newManager(t, mem, Config{Name: "sid"})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	sess, _ := mem.Get(r, "sid")
	if err := sess.Save(r, w); err != nil {
		t.Fatal(err)
	}
	key := w.Result().Cookies()[0].Value
	req := httptest.NewRequest(http.MethodGet, m.Config().ShimPath, nil)
	req.AddCookie(&http.Cookie{Name: "sid", Value: key})
	tok := shimJSONToken(t, m, req)
	got, err := m.TokenCutter()(WithAuth(handshake(""), map[string]any{TokenParam: tok}))
	if err != nil || got != key {
		t.Fatalf("TokenCutter: %v", err)
	}
	if _, err := m.TokenCutter()(WithAuth(handshake(""), map[string]any{TokenParam: tamper(tok, 3)})); !errors.Is(err, ErrBadToken) {
		t.Fatalf("tampered: %v", err)
	}
}

var tokenShape = regexp.MustCompile(`^[A-Za-z0-9_=-]+$`)

func TestShimTokenShape(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, Config{}, nil)
	tok, _, ok := fx.m.shimToken(withCookie(http.MethodGet, "/", fx.key))
	if !ok || !tokenShape.MatchString(tok) || len(tok) > MaxTokenLen {
		t.Fatalf("token %q (ok %v): want URL-safe and at most MaxTokenLen", tok, ok)
	}
}
