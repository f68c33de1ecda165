package zishang520_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/zishang520"
)

// wireClient is a raw socket.io 4 client over websocket (EIO 4): it
// answers pings and keeps every frame it reads, in order.
type wireClient struct {
	t  *testing.T
	ws *websocket.Conn

	mu     sync.Mutex
	frames []string
	more   chan struct{} // signalled at each frame
	closed chan struct{}
}

func dialWire(t *testing.T, url string, h http.Header) *wireClient {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, h)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c := &wireClient{t: t, ws: ws, more: make(chan struct{}, 1), closed: make(chan struct{})}
	go c.read()
	t.Cleanup(func() { _ = ws.Close(); <-c.closed })
	c.wait(func(f string) bool { return strings.HasPrefix(f, "0{") })
	return c
}

func (c *wireClient) read() {
	defer close(c.closed)
	for {
		_, p, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		if string(p) == "2" {
			_ = c.ws.WriteMessage(websocket.TextMessage, []byte("3"))
			continue
		}
		c.mu.Lock()
		c.frames = append(c.frames, string(p))
		c.mu.Unlock()
		select {
		case c.more <- struct{}{}:
		default:
		}
	}
}

func (c *wireClient) send(frame string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatalf("send %s: %v", frame, err)
	}
}

// all returns every frame read so far.
func (c *wireClient) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.frames...)
}

// wait returns the first frame that ok accepts, waiting up to 10 s.
func (c *wireClient) wait(ok func(string) bool) string {
	c.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		for _, f := range c.all() {
			if ok(f) {
				return f
			}
		}
		select {
		case <-c.more:
		case <-c.closed:
			for _, f := range c.all() {
				if ok(f) {
					return f
				}
			}
			c.t.Fatalf("connection closed; frames: %q", c.all())
		case <-deadline:
			c.t.Fatalf("timed out; frames: %q", c.all())
		}
	}
}

// adminEvent decodes a frame "42/admin,[name, args...]" of event name.
func adminEvent(f, name string) ([]json.RawMessage, bool) {
	rest, ok := strings.CutPrefix(f, "42/admin,")
	if !ok {
		return nil, false
	}
	var args []json.RawMessage
	if json.Unmarshal([]byte(rest), &args) != nil || len(args) == 0 {
		return nil, false
	}
	var n string
	if json.Unmarshal(args[0], &n) != nil || n != name {
		return nil, false
	}
	return args[1:], true
}

type wireSocket struct {
	ID        string            `json:"id"`
	ClientID  string            `json:"clientId"`
	Transport string            `json:"transport"`
	Nsp       string            `json:"nsp"`
	Data      map[string]string `json:"data"`
	Handshake struct {
		Headers map[string]string `json:"headers"`
		Query   map[string]string `json:"query"`
		Issued  int64             `json:"issued"`
		URL     string            `json:"url"`
	} `json:"handshake"`
	Rooms []string `json:"rooms"`
}

// TestAdminUI speaks the Admin UI's protocol, as its page does, to the
// binding: logins refused and accepted, the socket list with users,
// transports and redacted handshakes, live updates and events, and a
// disconnect.
func TestAdminUI(t *testing.T) {
	m, err := iosessions.New(nil, iosessions.Config{User: func(v map[any]any) string { u, _ := v["user"].(string); return u }})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := zishang520.NewServer(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []zishang520.AdminUIOptions{{Username: "admin"}, {Password: "x"}, {}} {
		if err := srv.AdminUI(o); !errors.Is(err, iosessions.ErrConfig) {
			t.Fatalf("AdminUI(%+v) = %v, want ErrConfig", o, err)
		}
	}
	// Longer than bcrypt's 72 bytes: the tail must count.
	password := strings.Repeat("p", 80) + "-tail"
	if err := srv.AdminUI(zishang520.AdminUIOptions{Username: "admin", Password: password, Events: true}); err != nil {
		t.Fatal(err)
	}
	if err := srv.AdminUI(zishang520.AdminUIOptions{Username: "admin", Password: password}); !errors.Is(err, zishang520.ErrAdminUIEnabled) {
		t.Fatalf("second AdminUI = %v", err)
	}
	m.OnConnection(func(s *iosessions.Socket, sess *iosessions.Session) {
		_ = s.Emit("welcome", sess.Values["user"])
	})
	var secretMu sync.Mutex
	var secrets []string // session ids, cookie values, tokens
	secret := func(s string) {
		secretMu.Lock()
		secrets = append(secrets, s)
		secretMu.Unlock()
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		sess, err := m.Renew(r.Context(), w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		sess.Values["user"] = r.URL.Query().Get("user")
		_ = sess.Save(r, w)
		secret(sess.ID)
	})
	ts := httptest.NewServer(m.Middleware(mux))
	t.Cleanup(func() {
		_ = srv.Shutdown(context.Background())
		ts.CloseClientConnections()
		ts.Close()
	})
	login := func(user string) *http.Cookie {
		res, err := http.Post(ts.URL+"/login?user="+user, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		c := res.Cookies()[0]
		secret(c.Value)
		return c
	}
	token := func(c *http.Cookie) string {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/socket.io/socket.io-sessions.js", nil)
		req.Header.Set("Accept", "application/json")
		req.AddCookie(c)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var st struct{ Token string }
		if err := json.NewDecoder(res.Body).Decode(&st); err != nil || st.Token == "" {
			t.Fatalf("no token: %v", err)
		}
		secret(st.Token)
		return st.Token
	}
	wsURL := "ws" + strings.TrimPrefix(ts.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	isConnect := func(f string) bool { return strings.HasPrefix(f, "40{") }

	// alice, by cookie (and a token in the auth payload, to be hidden).
	aliceCookie := login("alice")
	alice := dialWire(t, wsURL, http.Header{"Cookie": {aliceCookie.String()}})
	alice.send(`40{"iosessions_token":"` + token(aliceCookie) + `"}`)
	var aliceID struct{ Sid string }
	_ = json.Unmarshal([]byte(strings.TrimPrefix(alice.wait(isConnect), "40")), &aliceID)
	alice.wait(func(f string) bool { return f == `42["welcome","alice"]` })

	admin := func(auth string) *wireClient {
		c := dialWire(t, wsURL, nil)
		c.send("40/admin," + auth)
		return c
	}
	refused := func(f string) bool { return strings.HasPrefix(f, "44/admin,") }
	for name, auth := range map[string]string{
		"no auth":        `{}`,
		"wrong user":     `{"username":"root","password":"` + password + `"}`,
		"wrong tail":     `{"username":"admin","password":"` + password[:79] + `x-tail"}`,
		"prefix only":    `{"username":"admin","password":"` + password[:72] + `"}`,
		"bad session id": `{"sessionId":"0123456789abcdef0123456789abcdef"}`,
	} {
		f := admin(auth).wait(func(f string) bool { return refused(f) || strings.HasPrefix(f, "40/admin,") })
		if !strings.Contains(f, "invalid credentials") {
			t.Errorf("%s: got %s, want refusal", name, f)
		}
	}

	ui := admin(`{"username":"admin","password":"` + password + `"}`)
	ui.wait(func(f string) bool { return strings.HasPrefix(f, "40/admin,{") })
	cfg, _ := adminEvent(ui.wait(func(f string) bool { _, ok := adminEvent(f, "config"); return ok }), "config")
	if !strings.Contains(string(cfg[0]), `"DISCONNECT"`) || !strings.Contains(string(cfg[0]), `"ALL_EVENTS"`) {
		t.Errorf("config %s", cfg[0])
	}
	stats, _ := adminEvent(ui.wait(func(f string) bool { _, ok := adminEvent(f, "server_stats"); return ok }), "server_stats")
	var st struct {
		ServerID string `json:"serverId"`
	}
	if json.Unmarshal(stats[0], &st); st.ServerID != m.Node() {
		t.Errorf("server_stats %s: serverId is not the node %s", stats[0], m.Node())
	}
	args, _ := adminEvent(ui.wait(func(f string) bool { _, ok := adminEvent(f, "all_sockets"); return ok }), "all_sockets")
	var list []wireSocket
	if err := json.Unmarshal(args[0], &list); err != nil || len(list) != 1 {
		t.Fatalf("all_sockets %s: %v", args[0], err)
	}
	got := list[0]
	if got.ID != aliceID.Sid || got.Data["user"] != "alice" || got.Transport != "websocket" || got.Nsp != "/" || got.ClientID == "" || got.Handshake.Issued == 0 {
		t.Errorf("alice's socket: %+v", got)
	}
	if !contains(got.Rooms, aliceID.Sid) || len(got.Rooms) < 3 { // own, session's, user's
		t.Errorf("alice's rooms: %q", got.Rooms)
	}
	if _, ok := got.Handshake.Headers["cookie"]; ok || got.Handshake.Headers["host"] == "" {
		t.Errorf("alice's headers: %v", got.Handshake.Headers)
	}

	// A session id from the login lets the UI reconnect.
	sargs, _ := adminEvent(ui.wait(func(f string) bool { _, ok := adminEvent(f, "session"); return ok }), "session")
	again := admin(`{"sessionId":` + string(sargs[0]) + `}`)
	again.wait(func(f string) bool { return strings.HasPrefix(f, "40/admin,{") })

	// bob comes later, by a token in the query and the auth payload: the
	// UI hears of him, of his user once loaded, and of his events.
	bobTok := token(login("bob"))
	bob := dialWire(t, wsURL+"&iosessions_token="+bobTok, nil)
	bob.send(`40{"iosessions_token":"` + bobTok + `"}`)
	var bobID struct{ Sid string }
	_ = json.Unmarshal([]byte(strings.TrimPrefix(bob.wait(isConnect), "40")), &bobID)
	bob.wait(func(f string) bool { return f == `42["welcome","bob"]` })
	bob.send(`42["hello",{"n":1}]`)
	ui.wait(func(f string) bool {
		a, ok := adminEvent(f, "socket_connected")
		return ok && strings.Contains(string(a[0]), bobID.Sid)
	})
	ui.wait(func(f string) bool {
		a, ok := adminEvent(f, "socket_updated")
		return ok && strings.Contains(string(a[0]), bobID.Sid) && strings.Contains(string(a[0]), `"user":"bob"`)
	})
	ui.wait(func(f string) bool {
		a, ok := adminEvent(f, "event_sent")
		return ok && len(a) == 4 && string(a[2]) == `["welcome","bob"]`
	})
	ui.wait(func(f string) bool {
		a, ok := adminEvent(f, "event_received")
		return ok && len(a) == 4 && string(a[1]) == `"`+bobID.Sid+`"` && string(a[2]) == `["hello",{"n":1}]`
	})
	for _, f := range ui.all() {
		if a, ok := adminEvent(f, "socket_connected"); ok && strings.Contains(string(a[0]), bobID.Sid) {
			var s wireSocket
			_ = json.Unmarshal(a[0], &s)
			if len(s.Handshake.Query) != 2 || s.Handshake.Query["EIO"] != "4" || strings.Contains(s.Handshake.URL, "token") {
				t.Errorf("bob's handshake: %+v", s.Handshake)
			}
		}
	}

	// A disconnect from the UI ends alice's socket, and the UI hears it.
	ui.send(`42/admin,["_disconnect","/",false,"` + aliceID.Sid + `"]`)
	alice.wait(func(f string) bool { return f == "41" })
	ui.wait(func(f string) bool {
		a, ok := adminEvent(f, "socket_disconnected")
		return ok && string(a[1]) == `"`+aliceID.Sid+`"`
	})

	// Nothing the admin namespace sent holds a secret.
	secretMu.Lock()
	defer secretMu.Unlock()
	if len(secrets) != 6 { // 2 ids, 2 cookies, 2 tokens
		t.Fatalf("%d secrets", len(secrets))
	}
	for _, c := range []*wireClient{ui, again} {
		for _, f := range c.all() {
			for _, s := range secrets {
				if strings.Contains(f, s) {
					t.Errorf("admin frame %.80s… holds a secret", f)
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
