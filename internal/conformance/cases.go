package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/websocket"

	"github.com/iosessions/iosessions"
)

// Run runs every case of the suite against b, each in its own subtest
// with its own server.
func Run(t *testing.T, b Binding) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, b Binding)
	}{
		{"SessionLoaded", sessionLoaded},
		{"SessionReloaded", sessionReloaded},
		{"Serialized", serialized},
		{"OrderAndIsolation", orderAndIsolation},
		{"TypedArguments", typedArguments},
		{"InvalidSession", invalidSession},
		{"ShimToken", shimToken},
		{"OriginRefused", originRefused},
		{"AllowedOrigin", allowedOrigin},
		{"Logout", logout},
		{"Relogin", relogin},
		{"PanicContained", panicContained},
		{"Routers", routers},
		{"Registry", registry},
		{"Push", push},
		{"Presence", presence},
		{"Inspect", inspect},
		{"Rotate", rotate},
		{"EndedBeforeClose", endedBeforeClose},
		{"CloseAfterEmit", closeAfterEmit},
		{"TwoTabs", twoTabs},
		{"Writeback", writeback},
		{"IdleExpiry", idleExpiry},
		{"Nodes", nodes},
		{"Shutdown", shutdown},
		{"NoSecretsLogged", noSecretsLogged},
		{"RequestCatalogue", requestCatalogue},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, b) })
	}
}

// eachModeTransport runs fn in a subtest per mode and transport.
func eachModeTransport(t *testing.T, b Binding, fn func(t *testing.T, mode iosessions.Mode, tr string)) {
	for _, mode := range modes {
		for _, tr := range b.Transports {
			t.Run(mode.String()+"/"+tr, func(t *testing.T) { fn(t, mode, tr) })
		}
	}
}

// sessionLoaded logs in over HTTP and connects with the cookie: the
// sconnection handler sees the user; 50 incr fired without waiting are
// acked 1..50 in order; PerMessage has saved each value before its ack,
// PerConnection saves at disconnect, and not before.
func sessionLoaded(t *testing.T, b Binding) {
	eachModeTransport(t, b, func(t *testing.T, mode iosessions.Mode, tr string) {
		e := newEnv(t, b, envOptions{Mode: mode})
		cookie := e.loginAs(t, "alice")
		c := e.dial(t, tr, withCookie(cookie), "")
		ctx := ctxT(t)

		if u := e.nextUser(t); u != "alice" {
			t.Fatalf("sconnection saw user %q, want alice", u)
		}
		wantJSON(t, "welcome", c.expect(t, "welcome"), `"alice"`)
		wantJSON(t, "echo", c.call(t, "echo", map[string]any{"n": 1, "s": "x"}), `{"n":1,"s":"x"}`)

		const n = 50
		acks := make([]<-chan Ack, n)
		for i := range acks {
			ch, err := c.Send(ctx, "incr")
			if err != nil {
				t.Fatal(err)
			}
			acks[i] = ch
		}
		var last uint64
		for i, ch := range acks {
			var a Ack
			select {
			case a = <-ch:
			case <-ctx.Done():
				t.Fatalf("no ack %d", i+1)
			}
			if len(a.Args) != 1 || string(a.Args[0]) != fmt.Sprint(i+1) || a.Seq <= last {
				t.Fatalf("ack %d = %s (seq %d after %d)", i+1, a.Args, a.Seq, last)
			}
			last = a.Seq
			if mode == iosessions.PerMessage {
				if got, _ := e.stored(t, cookie)["count"].(int); got < i+1 {
					t.Fatalf("after ack %d the store has count %d", i+1, got)
				}
			}
		}
		wantJSON(t, "whoami", c.call(t, "whoami"), `{"user":"alice","count":50}`)
		if mode == iosessions.PerConnection {
			if got := e.stored(t, cookie)["count"]; got != 0 {
				t.Fatalf("PerConnection saved count %v before disconnect", got)
			}
		}
		_ = c.Close()
		waitFor(t, "count 50 in the store", func() bool { return e.stored(t, cookie)["count"] == n })
		waitFor(t, "the disconnect handler", func() bool { return e.disconnects() == 1 })
		if errs := e.reported(); len(errs) != 0 {
			t.Errorf("ErrorHandler got %v", errs)
		}
	})
}

// sessionReloaded: a change made over HTTP while the socket is connected
// is seen by the next event in PerMessage mode, and within 1 s in
// PerConnection mode (the store tells the live copy); the socket's save at
// disconnect writes only what it changed, so the HTTP change survives.
func sessionReloaded(t *testing.T, b Binding) {
	eachModeTransport(t, b, func(t *testing.T, mode iosessions.Mode, tr string) {
		e := newEnv(t, b, envOptions{Mode: mode})
		cookie := e.loginAs(t, "alice")
		c := e.dial(t, tr, withCookie(cookie), "")
		c.expect(t, "welcome")
		wantJSON(t, "incr", c.call(t, "incr"), `1`)

		if code := e.post(t, "/rename", cookie, url.Values{"user": {"alicia"}}); code != http.StatusOK {
			t.Fatalf("rename: %d", code)
		}
		want := `{"user":"alicia","count":1}`
		if mode == iosessions.PerMessage {
			wantJSON(t, "whoami after rename", c.call(t, "whoami"), want)
		} else {
			deadline := time.Now().Add(time.Second)
			for got := c.call(t, "whoami"); !jsonEq(got, want); got = c.call(t, "whoami") {
				if time.Now().After(deadline) {
					t.Fatalf("whoami 1 s after rename = %s, want %s", got, want)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		wantJSON(t, "incr", c.call(t, "incr"), `2`)
		_ = c.Close()
		waitFor(t, "the disconnect save", func() bool { return e.disconnects() == 1 })
		waitFor(t, "count 2", func() bool { return e.stored(t, cookie)["count"] == 2 })
		if got := e.stored(t, cookie)["user"]; got != "alicia" {
			t.Errorf("the store has user %v after the socket's save, want the HTTP change kept", got)
		}
	})
}

// serialized: in PerMessage mode, two sockets of one session that each
// fire 100 incr at once lose no update: the acks are 1..200, each once,
// and the store ends at 200.
func serialized(t *testing.T, b Binding) {
	for _, tr := range b.Transports {
		t.Run(tr, func(t *testing.T) {
			e := newEnv(t, b, envOptions{Mode: iosessions.PerMessage})
			cookie := e.loginAs(t, "alice")
			c1 := e.dial(t, tr, withCookie(cookie), "")
			c2 := e.dial(t, tr, withCookie(cookie), "")
			c1.expect(t, "welcome")
			c2.expect(t, "welcome")
			const n = 100
			ctx := ctxT(t)
			var (
				mu   sync.Mutex
				seen = map[string]int{}
				wg   sync.WaitGroup
			)
			for _, c := range []*conn{c1, c2} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					chans := make([]<-chan Ack, 0, n)
					for range n {
						ch, err := c.Send(ctx, "incr")
						if err != nil {
							t.Error(err)
							return
						}
						chans = append(chans, ch)
					}
					for _, ch := range chans {
						select {
						case a := <-ch:
							mu.Lock()
							seen[string(a.Args[0])]++
							mu.Unlock()
						case <-ctx.Done():
							t.Error("an incr was not acked")
							return
						}
					}
				}()
			}
			wg.Wait()
			for i := 1; i <= 2*n; i++ {
				if seen[fmt.Sprint(i)] != 1 {
					t.Fatalf("ack %d seen %d times; acks %v", i, seen[fmt.Sprint(i)], seen)
				}
			}
			if got := e.stored(t, cookie)["count"]; got != 2*n {
				t.Fatalf("the store has count %v, want %d", got, 2*n)
			}
		})
	}
}

// orderAndIsolation: the events of one socket run one at a time and in
// order; a slow handler delays only its own socket.
func orderAndIsolation(t *testing.T, b Binding) {
	for _, tr := range b.Transports {
		t.Run(tr, func(t *testing.T) {
			release := make(chan struct{})
			var once sync.Once
			free := func() { once.Do(func() { close(release) }) }
			t.Cleanup(free) // runs before the server's cleanup
			e := newEnv(t, b, envOptions{Setup: func(e *env) {
				e.srv.Message("slow", func(*iosessions.Socket, *iosessions.Session, json.RawMessage) (any, error) {
					<-release
					return "slow done", nil
				})
			}})
			alice := e.dial(t, tr, withCookie(e.loginAs(t, "alice")), "")
			bob := e.dial(t, tr, withCookie(e.loginAs(t, "bob")), "")
			alice.expect(t, "welcome")
			bob.expect(t, "welcome")
			ctx := ctxT(t)

			slow, err := alice.Send(ctx, "slow")
			if err != nil {
				t.Fatal(err)
			}
			// Over polling an engine may hold this POST until the slow
			// handler returns: send it on the side.
			sent := make(chan (<-chan Ack), 1)
			go func() {
				after, err := alice.Send(ctx, "echo", "after slow")
				if err != nil {
					t.Error(err)
				}
				sent <- after
			}()
			wantJSON(t, "bob's incr", bob.call(t, "incr"), `1`)
			select {
			case s := <-slow:
				t.Fatalf("the slow event was answered early: %s", s.Args)
			default:
			}
			free()
			s, after := <-slow, <-sent
			if after == nil {
				t.FailNow()
			}
			a := <-after
			if string(s.Args[0]) != `"slow done"` || string(a.Args[0]) != `"after slow"` || a.Seq <= s.Seq {
				t.Errorf("acks %s (seq %d), %s (seq %d); want slow first", s.Args, s.Seq, a.Args, a.Seq)
			}
		})
	}
}

// typedArguments: handlers registered with Go types get their argument
// decoded and their ack encoded; an error return is acked {"error": text};
// an event sent without arguments gets the zero value.
func typedArguments(t *testing.T, b Binding) {
	eachModeTransport(t, b, func(t *testing.T, mode iosessions.Mode, tr string) {
		e := newEnv(t, b, envOptions{Mode: mode})
		cookie := e.loginAs(t, "alice")
		c := e.dial(t, tr, withCookie(cookie), "")
		c.expect(t, "welcome")
		for _, tc := range []struct {
			event string
			arg   any
			want  string
		}{
			{"echo", "text", `"text"`},
			{"echo", 12.5, `12.5`},
			{"echo", []any{1, "two", nil}, `[1,"two",null]`},
			{"echo", map[string]any{"a": map[string]any{"b": true}}, `{"a":{"b":true}}`},
			{"echo", "ünïcødé ✓ 😀", `"ünïcødé ✓ 😀"`},
			{"shout", "hey", `"HEY"`},
			{"set", SetArg{Key: "color", Value: 7}, `{"key":"color","value":7}`},
			{"set", map[string]any{"value": 1}, `{"error":"key required"}`},
			{"fail", nil, `{"error":"nope"}`},
		} {
			wantJSON(t, fmt.Sprintf("%s(%v)", tc.event, tc.arg), c.call(t, tc.event, tc.arg), tc.want)
		}
		wantJSON(t, "echo without arguments", c.call(t, "echo"), `null`)
		if got := e.stored(t, cookie); mode == iosessions.PerMessage && got["color"] != 7 {
			t.Errorf("PerMessage: the store has %v after the ack", got)
		}
		_ = c.Close()
		waitFor(t, "color in the store", func() bool { return e.stored(t, cookie)["color"] == 7 })
	})
}

// invalidSession: a handshake without a usable session gets sinvalid with
// the reason, the sinvalid handler the matching error, and the socket
// stays connected without a session: events that need none work, smessage
// events are acked "no session" and write nothing.
func invalidSession(t *testing.T, b Binding) {
	cases := []struct {
		name   string
		setup  func(t *testing.T, e *env) http.Header // the handshake's header
		cfg    func(*iosessions.Config)
		want   error
		reason string
	}{
		{"no cookie", func(*testing.T, *env) http.Header { return nil }, nil, iosessions.ErrNoSession, "no session"},
		{"tampered cookie", func(t *testing.T, e *env) http.Header {
			c := e.loginAs(t, "alice")
			c.Value = tamper(c.Value)
			return withCookie(c)
		}, nil, iosessions.ErrBadKey, "invalid session key"},
		{"unknown session", func(t *testing.T, e *env) http.Header {
			// A MemoryStore cookie, well signed, of an id that it does not hold.
			sc := securecookie.New(hashKey, blockKey)
			sc.SetSerializer(securecookie.NopEncoder{})
			v, err := sc.Encode("session", []byte(strings.Repeat("NOSUCHSESSION", 2)+"AAAAAA"))
			if err != nil {
				t.Fatal(err)
			}
			return http.Header{"Cookie": {"session=" + v}}
		}, nil, iosessions.ErrNotFound, "session not found"},
		{"expired session", func(t *testing.T, e *env) http.Header {
			c := e.loginAs(t, "alice", "maxage", "1")
			time.Sleep(1100 * time.Millisecond)
			return withCookie(c)
		}, nil, iosessions.ErrNotFound, "session not found"},
		{"store down", func(t *testing.T, e *env) http.Header {
			c := e.loginAs(t, "alice")
			e.store.down.Store(true)
			return withCookie(c)
		}, nil, iosessions.ErrStoreUnavailable, "session store unavailable"},
		{"store timeout", func(t *testing.T, e *env) http.Header {
			c := e.loginAs(t, "alice")
			e.store.slow.Store(true)
			return withCookie(c)
		}, func(c *iosessions.Config) { c.StoreTimeout = 100 * time.Millisecond }, iosessions.ErrStoreTimeout, "session store unavailable: timeout"},
		{"shutting down", func(t *testing.T, e *env) http.Header {
			c := e.loginAs(t, "alice")
			if err := e.m.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			return withCookie(c)
		}, nil, iosessions.ErrShutdown, "shutting down"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eachModeTransport(t, b, func(t *testing.T, mode iosessions.Mode, tr string) {
				e := newEnv(t, b, envOptions{Mode: mode, Config: tc.cfg})
				h := tc.setup(t, e)
				stored := e.mem.Len()
				c := e.dial(t, tr, h, "")

				want, _ := json.Marshal(map[string]string{"reason": tc.reason})
				wantJSON(t, "sinvalid", c.expect(t, "sinvalid"), string(want))
				waitFor(t, "the sinvalid handler", func() bool { return len(e.invalidErrs()) == 1 })
				if err := e.invalidErrs()[0]; !errors.Is(err, tc.want) {
					t.Errorf("sinvalid handler got %v, want %v", err, tc.want)
				}
				wantJSON(t, "echo", c.call(t, "echo", "still here"), `"still here"`)
				wantJSON(t, "incr", c.call(t, "incr"), `{"error":"no session"}`)
				if n := e.incrs.Load(); n != 0 {
					t.Errorf("the incr handler ran %d times", n)
				}
				if n := e.connects.Load(); n != 0 {
					t.Errorf("the sconnection handler ran %d times", n)
				}
				if !c.open() {
					t.Error("the socket was closed")
				}
				e.store.down.Store(false)
				e.store.slow.Store(false)
				_ = c.Close()
				waitFor(t, "the disconnect handler", func() bool { return e.disconnects() == 1 })
				if n := e.mem.Len(); n > stored { // an expired one may be reclaimed
					t.Errorf("the store holds %d sessions, had %d: the socket wrote one", n, stored)
				}
			})
		})
	}
}

// shimToken: the shim's token carries the session to a socket that sends
// no cookie, the way the binding's clients send it; a tampered token, or
// one minted by a server with other keys, is refused as "invalid token".
func shimToken(t *testing.T, b Binding) {
	eachModeTransport(t, b, func(t *testing.T, mode iosessions.Mode, tr string) {
		e := newEnv(t, b, envOptions{Mode: mode})
		other := newEnv(t, b, envOptions{Mode: mode})
		cookie := e.loginAs(t, "alice")

		js, h := e.shim(t, cookie, "")
		if h.Get("Cache-Control") != "no-store" || !strings.HasPrefix(h.Get("Content-Type"), "text/javascript") {
			t.Errorf("shim headers %v", h)
		}
		if strings.Contains(js, cookie.Value) {
			t.Error("the shim contains the cookie")
		}
		if !regexp.MustCompile(`"token":"[^"]+"`).MatchString(js) {
			t.Error("the shim script has no token")
		}
		tok := e.token(t, cookie)
		foreign := other.token(t, other.loginAs(t, "mallory"))

		c := e.dial(t, tr, nil, tok)
		if u := e.nextUser(t); u != "alice" {
			t.Fatalf("sconnection saw %q, want alice", u)
		}
		wantJSON(t, "incr", c.call(t, "incr"), `1`)

		for i, bad := range []string{tamper(tok), foreign, tok + "x"} {
			c := e.dial(t, tr, nil, bad)
			wantJSON(t, fmt.Sprintf("sinvalid for bad token %d", i), c.expect(t, "sinvalid"), `{"reason":"invalid token"}`)
			wantJSON(t, "incr without a session", c.call(t, "incr"), `{"error":"no session"}`)
		}
		waitFor(t, "three sinvalid handler calls", func() bool { return len(e.invalidErrs()) == 3 })
		for _, err := range e.invalidErrs() {
			if !errors.Is(err, iosessions.ErrBadToken) {
				t.Errorf("sinvalid handler got %v, want ErrBadToken", err)
			}
		}
		if got := e.stored(t, cookie)["count"]; mode == iosessions.PerMessage && got != 1 {
			t.Errorf("count %v after one incr", got)
		}
	})
}

// shim fetches the client shim with cookie and accept (both optional).
func (e *env) shim(t *testing.T, cookie *http.Cookie, accept string) (string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.URL+"/socket.io/socket.io-sessions.js", nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, body := e.do(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("shim: %s %.80q", resp.Status, body)
	}
	return string(body), resp.Header
}

func (e *env) do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp, buf.Bytes()
}

// token fetches a shim token for cookie's session, as the shim refreshes.
func (e *env) token(t *testing.T, cookie *http.Cookie) string {
	t.Helper()
	body, h := e.shim(t, cookie, "application/json")
	var st struct {
		Token   string `json:"token"`
		Expires int64  `json:"expires"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.Token == "" || st.Expires == 0 {
		t.Fatalf("shim JSON %q: %v", body, err)
	}
	if h.Get("Cache-Control") != "no-store" || strings.Contains(body, cookie.Value) {
		t.Errorf("shim JSON headers %v, or the cookie in its body", h)
	}
	return st.Token
}

const evil = "http://evil.example"

// originRefused: a request from a foreign origin gets 403 on every engine
// request (handshake over polling and websocket, POST and GET of a live
// engine session, websocket upgrade of it) before the engine sees it, and
// a client from there cannot connect.
func originRefused(t *testing.T, b Binding) {
	e := newEnv(t, b, envOptions{})
	cookie := e.loginAs(t, "alice")
	victim := e.dial(t, b.Transports[0], withCookie(cookie), "")
	victim.expect(t, "welcome")
	sid := e.openPacket(t, withCookie(cookie)) // a live engine session
	opened := func() int { return int(e.connects.Load()) + len(e.invalidErrs()) }

	for _, origin := range []string{evil, "null", "http://127.0.0.1.evil.example"} {
		foreign := http.Header{"Origin": {origin}, "Cookie": {"session=" + cookie.Value}}
		for _, tr := range b.Transports {
			t.Run("client/"+tr+"/"+origin, func(t *testing.T) {
				if c, err := e.tryDial(t, tr, foreign, ""); err == nil {
					_ = c.Close()
					t.Fatal("a client from a foreign origin connected")
				}
			})
		}
		t.Run("polling handshake/"+origin, func(t *testing.T) {
			resp, _ := e.raw(t, http.MethodGet, e.engineURL("polling", ""), foreign, nil)
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Fatalf("handshake: %d %v, want 403 without CORS", resp.StatusCode, resp.Header)
			}
		})
		t.Run("polling POST to a live sid/"+origin, func(t *testing.T) {
			resp, _ := e.raw(t, http.MethodPost, e.engineURL("polling", sid), foreign, strings.NewReader("1:6"))
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Fatalf("POST: %d %v, want 403 without CORS", resp.StatusCode, resp.Header)
			}
		})
		t.Run("polling GET of a live sid/"+origin, func(t *testing.T) {
			resp, _ := e.raw(t, http.MethodGet, e.engineURL("polling", sid), foreign, nil)
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("GET: %d, want 403", resp.StatusCode)
			}
		})
		for name, u := range map[string]string{"websocket handshake": e.engineURL("websocket", ""), "websocket upgrade of a live sid": e.engineURL("websocket", sid)} {
			t.Run(name+"/"+origin, func(t *testing.T) {
				ws, resp, err := websocket.DefaultDialer.Dial(u, foreign)
				if err == nil {
					ws.Close()
				}
				if resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Fatalf("upgrade: %v, want 403", err)
				}
			})
		}
	}
	if n := opened(); n != 1 {
		t.Errorf("%d sockets opened, want 1 (the victim's)", n)
	}
	wantJSON(t, "the victim's whoami", victim.call(t, "whoami"), `{"user":"alice","count":0}`)
	// The server's own origin is not foreign.
	own := e.dial(t, b.Transports[0], http.Header{"Origin": {e.URL}}, "")
	own.expect(t, "sinvalid")
}

// allowedOrigin: an origin of Config.AllowedOrigins connects, and gets
// CORS headers with credentials on polling; the server's own origin needs
// none.
func allowedOrigin(t *testing.T, b Binding) {
	const app = "http://app.example"
	e := newEnv(t, b, envOptions{Config: func(c *iosessions.Config) { c.AllowedOrigins = []string{app} }})
	cookie := e.loginAs(t, "alice")
	h := withCookie(cookie)
	h.Set("Origin", app)
	for _, tr := range b.Transports {
		t.Run(tr, func(t *testing.T) {
			c := e.dial(t, tr, h, "")
			wantJSON(t, "welcome", c.expect(t, "welcome"), `"alice"`)
		})
	}
	resp, _ := e.raw(t, http.MethodGet, e.engineURL("polling", ""), h, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != app ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("polling handshake from an allowed origin: %d, CORS %q %q", resp.StatusCode,
			resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Get("Access-Control-Allow-Credentials"))
	}
	resp, _ = e.raw(t, http.MethodGet, e.engineURL("polling", ""), http.Header{"Origin": {e.URL}}, nil)
	if got := resp.Header.Get("Access-Control-Allow-Origin"); resp.StatusCode != http.StatusOK || got != "" {
		t.Errorf("same-origin handshake: %d, Access-Control-Allow-Origin %q", resp.StatusCode, got)
	}
}

// logout: logging out reaches every socket of the session, over every
// transport, through the session's room: each gets sinvalid once and is
// closed within a second; the sockets of another session are untouched.
func logout(t *testing.T, b Binding) {
	eachModeTransport(t, b, func(t *testing.T, mode iosessions.Mode, tr string) {
		e := newEnv(t, b, envOptions{Mode: mode})
		alice, bob := e.loginAs(t, "alice"), e.loginAs(t, "bob")
		var as []*conn
		for _, tr2 := range append([]string{tr}, b.Transports...) {
			as = append(as, e.dial(t, tr2, withCookie(alice), ""))
		}
		bc := e.dial(t, tr, withCookie(bob), "")
		for _, c := range append(as, bc) {
			c.expect(t, "welcome")
		}
		wantJSON(t, "incr", as[0].call(t, "incr"), `1`)

		if code := e.post(t, "/logout", alice, nil); code != http.StatusNoContent {
			t.Fatalf("logout: %d", code)
		}
		loggedOut := time.Now()
		for _, c := range as {
			wantJSON(t, "sinvalid", c.expect(t, "sinvalid"), `{"reason":"session ended"}`)
			c.waitClosed(t, loggedOut.Add(time.Second))
			if n := c.count("sinvalid"); n != 1 {
				t.Errorf("a socket got sinvalid %d times", n)
			}
		}
		if e.stored(t, alice) != nil {
			t.Error("alice's session is still stored")
		}
		waitFor(t, "the sinvalid handler calls", func() bool { return len(e.invalidErrs()) == len(as) })
		for _, err := range e.invalidErrs() {
			if !errors.Is(err, iosessions.ErrEnded) {
				t.Errorf("sinvalid handler got %v, want ErrEnded", err)
			}
		}
		wantJSON(t, "bob's whoami", bc.call(t, "whoami"), `{"user":"bob","count":0}`)
		if bc.count("sinvalid") != 0 || !bc.open() {
			t.Error("bob's socket was told or closed")
		}
	})
}

// relogin: logging in again from the same browser replaces the session
// (Manager.Renew); the old session's sockets get sinvalid and never act
// as the old user again, and a new socket carries the new session.
func relogin(t *testing.T, b Binding) {
	eachModeTransport(t, b, func(t *testing.T, mode iosessions.Mode, tr string) {
		e := newEnv(t, b, envOptions{Mode: mode})
		old := e.loginAs(t, "alice")
		c := e.dial(t, tr, withCookie(old), "")
		c.expect(t, "welcome")
		wantJSON(t, "incr", c.call(t, "incr"), `1`)

		req, _ := http.NewRequest(http.MethodPost, e.URL+"/login", strings.NewReader("user=carol"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(old)
		resp, _ := e.do(t, req)
		fresh := sessionCookie(resp)
		if fresh == nil || fresh.Value == old.Value {
			t.Fatalf("re-login: %s, cookie %v: want a new session", resp.Status, fresh)
		}
		wantJSON(t, "sinvalid", c.expect(t, "sinvalid"), `{"reason":"session ended"}`)
		c.waitClosed(t, time.Now().Add(time.Second))
		if e.stored(t, old) != nil {
			t.Error("the old session is still stored")
		}
		n := e.dial(t, tr, withCookie(fresh), "")
		wantJSON(t, "welcome", n.expect(t, "welcome"), `"carol"`)
		wantJSON(t, "whoami", n.call(t, "whoami"), `{"user":"carol","count":0}`)
	})
}

// panicContained: a panic in the sconnection, smessage, event or sinvalid
// handler is reported as a *PanicError and acked "internal error"; the
// server keeps serving that client and the others, and a handler that
// panicked has nothing saved.
func panicContained(t *testing.T, b Binding) {
	eachModeTransport(t, b, func(t *testing.T, mode iosessions.Mode, tr string) {
		e := newEnv(t, b, envOptions{Mode: mode, Setup: func(e *env) {
			e.m.OnConnection(func(s *iosessions.Socket, sess *iosessions.Session) {
				if sess.Values["user"] == "boom" {
					panic("boom in sconnection")
				}
				_ = s.Emit("welcome", sess.Values["user"])
			})
			e.m.OnInvalid(func(*iosessions.Socket, error) { panic("boom in sinvalid") })
			e.srv.Message("explode", func(_ *iosessions.Socket, sess *iosessions.Session, _ json.RawMessage) (any, error) {
				sess.Values["count"] = 999
				panic("boom in smessage")
			})
			e.srv.Event("explode-event", func(*iosessions.Socket, json.RawMessage) (any, error) {
				panic("boom in event")
			})
		}})
		bystander := e.dial(t, tr, withCookie(e.loginAs(t, "bob")), "")
		bystander.expect(t, "welcome")
		alice := e.loginAs(t, "alice")
		c := e.dial(t, tr, withCookie(alice), "")
		c.expect(t, "welcome")

		boom := e.dial(t, tr, withCookie(e.loginAs(t, "boom")), "")
		waitPanic(t, e, "sconnection", "boom in sconnection")
		wantJSON(t, "incr after a panic in sconnection", boom.call(t, "incr"), `1`)

		wantJSON(t, "explode", c.call(t, "explode"), `{"error":"internal error"}`)
		waitPanic(t, e, "smessage", "boom in smessage")
		if mode == iosessions.PerMessage && e.stored(t, alice)["count"] != 0 {
			t.Errorf("PerMessage saved a change of a handler that panicked: %v", e.stored(t, alice))
		}
		wantJSON(t, "explode-event", c.call(t, "explode-event"), `{"error":"internal error"}`)
		waitPanic(t, e, "explode-event", "boom in event")
		wantJSON(t, "echo after panics", c.call(t, "echo", "after"), `"after"`)

		anon := e.dial(t, tr, nil, "")
		wantJSON(t, "sinvalid", anon.expect(t, "sinvalid"), `{"reason":"no session"}`)
		waitPanic(t, e, "sinvalid", "boom in sinvalid")
		wantJSON(t, "echo after a panic in sinvalid", anon.call(t, "echo", 2), `2`)

		wantJSON(t, "bystander whoami", bystander.call(t, "whoami"), `{"user":"bob","count":0}`)
		for _, cl := range []*conn{bystander, c, boom, anon} {
			if !cl.open() {
				t.Error("a socket was closed")
			}
		}
		if n := len(e.reported()); n != 4 {
			t.Errorf("ErrorHandler got %d errors, want 4: %v", n, e.reported())
		}
		e.loginAs(t, "carol") // HTTP still answers
	})
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
