package googollee_test

// Security: handshakes without a usable session, the shim token, and the
// holes of the engine the binding closes (guessable ids, cross-origin
// requests, JSONP, panics, oversized messages).

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/websocket"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/googollee"
	"github.com/iosessions/iosessions/internal/sio2"
)

// TestInvalidSession: a handshake without a usable session gets the
// sinvalid event with the reason, the sinvalid handler gets the matching
// error, and the socket stays connected without a session: events that
// need none work, smessage events are acked "no session" and write
// nothing.
func TestInvalidSession(t *testing.T) {
	cases := []struct {
		name   string
		cookie func(t *testing.T, e *env) *http.Cookie // nil: no cookie
		want   error
		reason string
	}{
		{"no cookie", nil, iosessions.ErrNoSession, "no session"},
		{"tampered cookie", func(t *testing.T, e *env) *http.Cookie {
			c := e.loginAs(t, "alice")
			c.Value = tamper(c.Value)
			return c
		}, iosessions.ErrBadKey, "invalid session key"},
		{"unknown session", func(t *testing.T, e *env) *http.Cookie {
			v, err := securecookie.EncodeMulti("session", "NOSUCHSESSION", securecookie.CodecsFromPairs(hashKey, blockKey)...)
			if err != nil {
				t.Fatal(err)
			}
			return &http.Cookie{Name: "session", Value: v}
		}, iosessions.ErrNotFound, "session not found"},
	}
	for _, tc := range cases {
		for _, mode := range modes {
			for _, tr := range transports {
				t.Run(tc.name+"/"+mode.String()+"/"+string(tr), func(t *testing.T) {
					e := newEnv(t, envOptions{Mode: mode})
					var h http.Header
					if tc.cookie != nil {
						h = withCookie(tc.cookie(t, e))
					}
					stored := e.store.Len()
					c := e.dial(t, tr, h, nil)

					want, _ := json.Marshal(map[string]string{"reason": tc.reason})
					if got := expectEvent(t, c, "sinvalid"); got != string(want) {
						t.Errorf("sinvalid %s, want %s", got, want)
					}
					waitFor(t, "the sinvalid handler", func() bool { return len(e.invalidErrs()) == 1 })
					if err := e.invalidErrs()[0]; !errors.Is(err, tc.want) {
						t.Errorf("sinvalid handler got %v, want %v", err, tc.want)
					}
					if got := call(t, c, "echo", "still here"); got != `"still here"` {
						t.Errorf("echo = %s", got)
					}
					if got := call(t, c, "incr", nil); got != `{"error":"no session"}` {
						t.Errorf("incr = %s, want the no-session ack", got)
					}
					if n := e.incrs.Load(); n != 0 {
						t.Errorf("the incr handler ran %d times", n)
					}
					if n := e.connects.Load(); n != 0 {
						t.Errorf("the sconnection handler ran %d times", n)
					}
					if c.Err() != nil {
						t.Errorf("socket closed: %v", c.Err())
					}
					c.Close()
					waitFor(t, "the disconnect handler", func() bool { return e.disconnects() == 1 })
					if n := e.store.Len(); n != stored {
						t.Errorf("the store holds %d sessions, had %d", n, stored)
					}
				})
			}
		}
	}
}

// tamper changes one character in the middle of a cookie value.
func tamper(v string) string {
	b := []byte(v)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// TestShimToken: the shim's token carries the session to a socket that
// has no cookie (a cross-site client), through the handshake query.
func TestShimToken(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			e := newEnv(t, envOptions{})
			cookie := e.loginAs(t, "alice")

			js, h := e.shim(t, cookie, "")
			if h.Get("Cache-Control") != "no-store" || !strings.HasPrefix(h.Get("Content-Type"), "text/javascript") {
				t.Errorf("shim headers %v", h)
			}
			if strings.Contains(js, cookie.Value) {
				t.Error("the shim contains the cookie")
			}
			body, h := e.shim(t, cookie, "application/json")
			var st struct {
				Token   string `json:"token"`
				Expires int64  `json:"expires"`
			}
			if err := json.Unmarshal([]byte(body), &st); err != nil || st.Token == "" || st.Expires == 0 {
				t.Fatalf("shim JSON %q: %v", body, err)
			}
			if h.Get("Cache-Control") != "no-store" || strings.Contains(body, cookie.Value) {
				t.Errorf("shim JSON headers %v or cookie in body", h)
			}
			if !regexp.MustCompile(`"token":"[^"]+"`).MatchString(js) {
				t.Error("the shim script has no token") // each fetch mints a new one
			}
			if anon, _ := e.shim(t, nil, "application/json"); !strings.Contains(anon, `"token":""`) {
				t.Errorf("shim without a session: %s", anon)
			}

			c := e.dial(t, tr, nil, url.Values{iosessions.TokenParam: {st.Token}})
			if u := e.nextUser(t); u != "alice" {
				t.Fatalf("sconnection saw %q, want alice", u)
			}
			if got := call(t, c, "incr", nil); got != "1" {
				t.Errorf("incr = %s", got)
			}

			bad := e.dial(t, tr, nil, url.Values{iosessions.TokenParam: {tamper(st.Token)}})
			if got := expectEvent(t, bad, "sinvalid"); got != `{"reason":"invalid token"}` {
				t.Errorf("sinvalid %s", got)
			}
			waitFor(t, "the sinvalid handler", func() bool { return len(e.invalidErrs()) == 1 })
			if err := e.invalidErrs()[0]; !errors.Is(err, iosessions.ErrBadToken) {
				t.Errorf("sinvalid handler got %v, want ErrBadToken", err)
			}
		})
	}
}

// shim fetches e's client shim with cookie and accept, and returns its
// body and header.
func (e *env) shim(t *testing.T, cookie *http.Cookie, accept string) (string, http.Header) {
	t.Helper()
	return getShim(t, e.http, e.URL, cookie, accept)
}

// TestEngineSessionIDsRandom: the engine's own ids are 1, 2, 3…; the
// binding's are long and random.
func TestEngineSessionIDsRandom(t *testing.T) {
	e := newEnv(t, envOptions{})
	seen := map[string]bool{}
	for i := range 20 {
		c := e.dial(t, transports[i%2], nil, nil)
		if len(c.SID) < 20 {
			t.Errorf("sid %q is shorter than 20 characters", c.SID)
		}
		if regexp.MustCompile(`^[0-9a-z]{1,3}$`).MatchString(c.SID) {
			t.Errorf("sid %q looks like a counter", c.SID)
		}
		if seen[c.SID] {
			t.Errorf("sid %q handed out twice", c.SID)
		}
		seen[c.SID] = true
		// Read what the server sends first: a poll being answered when the
		// session closes hangs in the engine until PingTimeout.
		expectEvent(t, c, "sinvalid")
		c.Close()
	}
}

const evil = "http://evil.example"

// TestForeignOriginRefused: a request from a foreign origin gets 403 on
// every engine request (handshake, POST and GET of a live session,
// websocket handshake and upgrade) before the engine sees it.
func TestForeignOriginRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	cookie := e.loginAs(t, "alice")
	victim := e.dial(t, sio2.Polling, withCookie(cookie), nil)
	expectEvent(t, victim, "welcome")
	opened := func() int { return int(e.connects.Load()) + len(e.invalidErrs()) }

	for _, origin := range []string{evil, "null", "http://127.0.0.1.evil.example"} {
		foreign := http.Header{"Origin": {origin}, "Cookie": {"session=" + cookie.Value}}
		for _, tr := range transports {
			t.Run("handshake/"+string(tr)+"/"+origin, func(t *testing.T) {
				_, err := sio2.Dial(ctxT(t), e.URL, sio2.Options{Transport: tr, Header: foreign})
				var se *sio2.StatusError
				if !errors.As(err, &se) || se.Code != http.StatusForbidden {
					t.Fatalf("dial: %v, want 403", err)
				}
			})
		}
		t.Run("polling POST to a live sid/"+origin, func(t *testing.T) {
			body := sio2.EncodeText(`42["incr"]`)
			resp := e.raw(t, http.MethodPost, victim.URL(sio2.Polling), foreign, bytes.NewReader(body))
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Fatalf("POST: %d %v, want 403 without CORS", resp.StatusCode, resp.Header)
			}
		})
		t.Run("polling GET of a live sid/"+origin, func(t *testing.T) {
			resp := e.raw(t, http.MethodGet, victim.URL(sio2.Polling), foreign, nil)
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("GET: %d, want 403", resp.StatusCode)
			}
		})
		t.Run("websocket upgrade of a live sid/"+origin, func(t *testing.T) {
			ws, resp, err := websocket.DefaultDialer.Dial(victim.URL(sio2.WebSocket), foreign)
			if err == nil {
				ws.Close()
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("upgrade: %v, want 403", err)
			}
		})
	}
	if n := opened(); n != 1 {
		t.Errorf("%d sockets opened, want 1 (the victim's)", n)
	}
	if n := e.srv.Engine().Count(); n != 1 {
		t.Errorf("the engine holds %d sessions, want 1", n)
	}
	// The victim's session was not touched, and its socket still works.
	if got := call(t, victim, "whoami", nil); got != `{"user":"alice","count":0}` {
		t.Errorf("whoami = %s", got)
	}
	// The server's own origin is not foreign.
	own := e.dial(t, sio2.WebSocket, http.Header{"Origin": {e.URL}}, nil)
	expectEvent(t, own, "sinvalid")
}

// raw sends one HTTP request with header h and returns the response, its
// body read.
func (e *env) raw(t *testing.T, method, u string, h http.Header, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp
}

// TestAllowedOrigin: an origin of Config.AllowedOrigins connects, with
// CORS headers on polling; the server's own origin needs none.
func TestAllowedOrigin(t *testing.T) {
	const app = "http://app.example"
	e := newEnv(t, envOptions{Config: func(c *iosessions.Config) { c.AllowedOrigins = []string{app} }})
	cookie := e.loginAs(t, "alice")
	h := withCookie(cookie)
	h.Set("Origin", app)
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			c := e.dial(t, tr, h, nil)
			if got := expectEvent(t, c, "welcome"); got != `"alice"` {
				t.Errorf("welcome %s", got)
			}
			if tr == sio2.Polling {
				if got := c.Header().Get("Access-Control-Allow-Origin"); got != app {
					t.Errorf("Access-Control-Allow-Origin %q, want %q", got, app)
				}
				if got := c.Header().Get("Access-Control-Allow-Credentials"); got != "true" {
					t.Errorf("Access-Control-Allow-Credentials %q", got)
				}
				resp := e.raw(t, http.MethodPost, c.URL(sio2.Polling), h, bytes.NewReader(sio2.EncodeText("2")))
				if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != app {
					t.Errorf("POST: %d, CORS %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
				}
			}
		})
	}
	t.Run("own origin, no CORS", func(t *testing.T) {
		c := e.dial(t, sio2.Polling, http.Header{"Origin": {e.URL}}, nil)
		if got := c.Header().Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("Access-Control-Allow-Origin %q for a same-origin request", got)
		}
	})
}

// TestJSONPRefused: JSONP polling (the j parameter) is refused with 400
// and no script, on the handshake and on a live session.
func TestJSONPRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.dial(t, sio2.Polling, nil, nil)
	expectEvent(t, c, "sinvalid")
	live := c.URL(sio2.Polling) + "&j=0"
	for name, u := range map[string]string{
		"handshake": e.URL + "/socket.io/?EIO=3&transport=polling&j=0",
		"callback":  e.URL + "/socket.io/?EIO=3&transport=polling&j=alert(1)",
		"live sid":  live,
	} {
		t.Run(name, func(t *testing.T) {
			resp := e.raw(t, http.MethodGet, u, nil, nil)
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "javascript") || bytes.Contains(b, []byte("___eio")) {
				t.Errorf("a script came back: %s %q", ct, b)
			}
		})
	}
	if n := e.srv.Engine().Count(); n != 1 {
		t.Errorf("the engine holds %d sessions, want 1", n)
	}
	if got := call(t, c, "echo", 1); got != "1" {
		t.Errorf("echo = %s", got)
	}
}

// TestPanicsRecovered: a panic in the sconnection, smessage, event or
// sinvalid handler is reported as a *PanicError and acked "internal
// error"; the server keeps serving that client and the others.
func TestPanicsRecovered(t *testing.T) {
	for _, mode := range modes {
		for _, tr := range transports {
			t.Run(mode.String()+"/"+string(tr), func(t *testing.T) {
				e := newEnv(t, envOptions{Mode: mode, Setup: func(e *env) {
					e.m.OnConnection(func(s *iosessions.Socket, sess *iosessions.Session) {
						if sess.Values["user"] == "boom" {
							panic("boom in sconnection")
						}
						_ = s.Emit("welcome", sess.Values["user"])
					})
					e.m.OnInvalid(func(*iosessions.Socket, error) { panic("boom in sinvalid") })
					googollee.OnMessage(e.srv, "explode", func(_ *iosessions.Socket, sess *iosessions.Session, _ json.RawMessage) (int, error) {
						sess.Values["count"] = 999
						panic("boom in smessage")
					})
					googollee.OnEvent(e.srv, "explode-event", func(*iosessions.Socket, json.RawMessage) (int, error) {
						panic("boom in event")
					})
				}})
				bystander := e.dial(t, tr, withCookie(e.loginAs(t, "bob")), nil)
				expectEvent(t, bystander, "welcome")
				alice := e.loginAs(t, "alice")
				c := e.dial(t, tr, withCookie(alice), nil)
				expectEvent(t, c, "welcome")

				boom := e.dial(t, tr, withCookie(e.loginAs(t, "boom")), nil)
				waitPanic(t, e, "sconnection", "boom in sconnection")
				if got := call(t, boom, "incr", nil); got != "1" {
					t.Errorf("incr after a panic in sconnection = %s", got)
				}

				if got := call(t, c, "explode", nil); got != `{"error":"internal error"}` {
					t.Errorf("explode = %s", got)
				}
				waitPanic(t, e, "smessage", "boom in smessage")
				if mode == iosessions.PerMessage && e.stored(t, alice)["count"] != 0 {
					t.Errorf("PerMessage saved a change of a handler that panicked: %v", e.stored(t, alice))
				}
				if got := call(t, c, "explode-event", nil); got != `{"error":"internal error"}` {
					t.Errorf("explode-event = %s", got)
				}
				waitPanic(t, e, "explode-event", "boom in event")
				if got := call(t, c, "echo", "after"); got != `"after"` {
					t.Errorf("echo after panics = %s", got)
				}

				anon := e.dial(t, tr, nil, nil)
				if got := expectEvent(t, anon, "sinvalid"); got != `{"reason":"no session"}` {
					t.Errorf("sinvalid %s", got)
				}
				waitPanic(t, e, "sinvalid", "boom in sinvalid")
				if got := call(t, anon, "echo", 2); got != "2" {
					t.Errorf("echo after a panic in sinvalid = %s", got)
				}

				if got := call(t, bystander, "whoami", nil); got != `{"user":"bob","count":0}` {
					t.Errorf("bystander whoami = %s", got)
				}
				for _, cl := range []*sio2.Client{bystander, c, boom, anon} {
					if cl.Err() != nil {
						t.Errorf("a socket closed: %v", cl.Err())
					}
				}
				if n := len(e.reported()); n != 4 {
					t.Errorf("ErrorHandler got %d errors, want 4: %v", n, e.reported())
				}
				e.loginAs(t, "carol") // HTTP still answers
			})
		}
	}
}

// waitPanic waits for the ErrorHandler to get a *PanicError from where
// with value.
func waitPanic(t *testing.T, e *env, where string, value any) {
	t.Helper()
	waitFor(t, "a PanicError in "+where, func() bool {
		for _, err := range e.reported() {
			var pe *iosessions.PanicError
			if errors.As(err, &pe) && pe.Where == where && pe.Value == value && len(pe.Stack) > 0 {
				return true
			}
		}
		return false
	})
}

// TestSizeCap: a message over Options.MaxMessageBytes ends that
// connection only: a websocket message is cut off, a polling POST gets
// 413. Other clients and HTTP keep working.
func TestSizeCap(t *testing.T) {
	const max = 64 << 10
	big := strings.Repeat("x", 200<<10)
	for _, tr := range transports {
		for _, chunked := range []bool{false, true} {
			name := string(tr)
			if chunked {
				if tr == sio2.WebSocket {
					continue
				}
				name += "/chunked"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, envOptions{Options: &googollee.Options{MaxMessageBytes: max}})
				other := e.dial(t, sio2.WebSocket, nil, nil)
				otherPoll := e.dial(t, sio2.Polling, nil, nil)
				c := e.dial(t, tr, nil, nil)
				ctx := ctxT(t)
				// Just under the cap goes through.
				under := strings.Repeat("y", max-100)
				if got := call(t, c, "echo", under); got != `"`+under+`"` {
					t.Fatalf("echo of %d bytes failed", len(under))
				}

				if tr == sio2.WebSocket {
					// The server may hang up before the whole message is
					// written: a write error is what the client sees then.
					_ = c.Emit(ctx, "echo", big)
				} else {
					var body io.Reader = bytes.NewReader(sio2.EncodeText(`42["echo","` + big + `"]`))
					if chunked {
						body = io.MultiReader(body) // hides the length: chunked encoding
					}
					resp, err := c.Post(ctx, "text/plain;charset=UTF-8", body)
					if err != nil || resp.Status != http.StatusRequestEntityTooLarge {
						t.Errorf("oversized POST: %+v, %v; want 413", resp, err)
					}
				}
				select {
				case <-c.Done():
				case <-ctx.Done():
					t.Fatal("the connection that sent too much is still open")
				}
				waitFor(t, "the disconnect handler", func() bool { return e.disconnects() == 1 })

				for _, o := range []*sio2.Client{other, otherPoll} {
					if got := call(t, o, "echo", "ok"); got != `"ok"` {
						t.Errorf("another client's echo = %s", got)
					}
				}
				if e.post(t, "/logout", nil) != http.StatusNoContent {
					t.Error("HTTP stopped answering")
				}
			})
		}
	}
}

// TestSizeCapSkippedMessages: the cap holds for websocket messages the
// engine skips instead of parsing (an unknown engine packet type, a
// namespace nobody registered, a repeated connect packet): the engine
// drains them whole, so an uncapped drain would let a client stream
// without limit.
func TestSizeCapSkippedMessages(t *testing.T) {
	const max = 64 << 10
	big := strings.Repeat("x", 200<<10)
	for _, tc := range []struct{ name, raw string }{
		{"unknown engine packet type", "9" + big},
		{"unknown namespace", `42/nowhere,["echo","` + big + `"]`},
		{"repeated connect packet", "40" + big},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{Options: &googollee.Options{MaxMessageBytes: max}})
			other := e.dial(t, sio2.WebSocket, nil, nil)
			c := e.dial(t, sio2.WebSocket, nil, nil)
			expectEvent(t, c, "sinvalid")
			_ = c.SendRaw(ctxT(t), tc.raw) // the server may hang up mid-message
			select {
			case <-c.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("the connection that sent too much is still open")
			}
			if got := call(t, other, "echo", "ok"); got != `"ok"` {
				t.Errorf("another client's echo = %s", got)
			}
		})
	}
}
