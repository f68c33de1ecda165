package googollee_test

// Events: what OnMessage and OnEvent decode, ack and run in order, and
// what malformed packets do.

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/googollee/go-socket.io/engineio"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/googollee"
	"github.com/iosessions/iosessions/internal/sio2"
)

type setIn struct {
	Key   string `json:"key"`
	Value int    `json:"value"`
}

// eventsEnv adds to the defaults: smessage "set" (typed argument, error
// for an empty key), "fail" (returns an error), "slow" (waits for
// release), and event "shout" (typed string argument).
func eventsEnv(t *testing.T, mode iosessions.Mode, release <-chan struct{}) *env {
	return newEnv(t, envOptions{Mode: mode, Setup: func(e *env) {
		googollee.OnMessage(e.srv, "set", func(_ *iosessions.Socket, sess *iosessions.Session, in setIn) (setIn, error) {
			if in.Key == "" {
				return setIn{}, errors.New("key required")
			}
			sess.Values[in.Key] = in.Value
			return in, nil
		})
		googollee.OnMessage(e.srv, "fail", func(_ *iosessions.Socket, sess *iosessions.Session, _ json.RawMessage) (int, error) {
			sess.Values["count"] = 42
			return 0, errors.New("nope")
		})
		googollee.OnMessage(e.srv, "slow", func(*iosessions.Socket, *iosessions.Session, json.RawMessage) (string, error) {
			<-release
			return "slow done", nil
		})
		googollee.OnEvent(e.srv, "shout", func(_ *iosessions.Socket, in string) (string, error) {
			return strings.ToUpper(in), nil
		})
	}})
}

// TestEventArguments: arguments decode into the handler's type and the
// ack carries what it returns, or {"error": text}.
func TestEventArguments(t *testing.T) {
	for _, mode := range modes {
		for _, tr := range transports {
			t.Run(mode.String()+"/"+string(tr), func(t *testing.T) {
				e := eventsEnv(t, mode, nil)
				cookie := e.loginAs(t, "alice")
				c := e.dial(t, tr, withCookie(cookie), nil)
				expectEvent(t, c, "welcome")

				for _, tc := range []struct {
					event string
					arg   any
					want  string
				}{
					{"echo", "text", `"text"`},
					{"echo", 12.5, `12.5`},
					{"echo", []any{1, "two", nil}, `[1,"two",null]`},
					{"echo", map[string]any{"a": map[string]any{"b": true}}, `{"a":{"b":true}}`},
					{"echo", nil, `null`},
					{"shout", "hey", `"HEY"`},
					{"set", setIn{Key: "color", Value: 7}, `{"key":"color","value":7}`},
					{"set", map[string]any{"value": 1}, `{"error":"key required"}`},
					{"fail", nil, `{"error":"nope"}`},
				} {
					if got := call(t, c, tc.event, tc.arg); got != tc.want {
						t.Errorf("%s(%v) = %s, want %s", tc.event, tc.arg, got, tc.want)
					}
				}
				// An event sent without arguments gets the zero value.
				args, err := c.Call(ctxT(t), "echo")
				if err != nil || len(args) != 1 || string(args[0]) != "null" {
					t.Errorf("echo without arguments = %s, %v", args, err)
				}

				if got := e.stored(t, cookie); mode == iosessions.PerMessage && got["color"] != 7 {
					t.Errorf("PerMessage: the store has %v after the ack", got)
				}
				c.Close()
				waitFor(t, "color in the store", func() bool { return e.stored(t, cookie)["color"] == 7 })
			})
		}
	}
}

// TestEventsOrderAndIsolation: the events of one socket run one at a time
// and in order; a slow handler delays only its own socket.
func TestEventsOrderAndIsolation(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			release := make(chan struct{})
			var once sync.Once
			free := func() { once.Do(func() { close(release) }) }
			t.Cleanup(free) // runs before the server's cleanup
			e := eventsEnv(t, iosessions.PerConnection, release)
			alice := e.dial(t, tr, withCookie(e.loginAs(t, "alice")), nil)
			bob := e.dial(t, tr, withCookie(e.loginAs(t, "bob")), nil)
			expectEvent(t, alice, "welcome")
			expectEvent(t, bob, "welcome")
			ctx := ctxT(t)

			slow, err := alice.EmitAck(ctx, "slow")
			if err != nil {
				t.Fatal(err)
			}
			// Over polling the engine holds this POST until the slow
			// handler returns: send it on the side.
			sent := make(chan (<-chan sio2.Ack), 1)
			go func() {
				after, err := alice.EmitAck(ctx, "echo", "after slow")
				if err != nil {
					t.Error(err)
				}
				sent <- after
			}()
			// Bob is not held up by Alice's slow handler.
			if got := call(t, bob, "incr", nil); got != "1" {
				t.Errorf("bob's incr = %s", got)
			}
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

// TestUnknownEvent: an event nobody registered gets no ack and does not
// disturb the socket.
func TestUnknownEvent(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			e := newEnv(t, envOptions{})
			c := e.dial(t, tr, nil, nil)
			expectEvent(t, c, "sinvalid")
			unknown, err := c.EmitAck(ctxT(t), "no-such-event", 1)
			if err != nil {
				t.Fatal(err)
			}
			if got := call(t, c, "echo", "ok"); got != `"ok"` {
				t.Errorf("echo = %s", got)
			}
			select {
			case a := <-unknown:
				t.Errorf("an unknown event was acked: %s", a.Args)
			default:
			}
		})
	}
}

// TestMalformedPackets: garbage from one client never reaches a handler
// as a panic, never disturbs other clients, and at worst ends the
// sender's own connection.
//
// The engine answers a polling POST only once it has read its packets; a
// POST whose packet makes the engine close the connection is answered only
// at the session's read deadline (PingTimeout after the last ping), and
// so is anything the engine was writing to a pending GET at that moment.
// So the server here has a short PingTimeout, and the sender never pings:
// its deadline is fixed, and no pong is in flight when it is cut off.
func TestMalformedPackets(t *testing.T) {
	packets := []struct {
		name   string
		raw    []string
		closes bool // the engine ends the connection
	}{
		{"bad engine type", []string{"9hello"}, false},
		{"bad socket.io type", []string{"49"}, true},
		{"truncated event", []string{`42["echo"`}, true},
		{"event without name", []string{"42[]"}, true},
		{"event name not a string", []string{"42[1,2]"}, true},
		{"argument of the wrong type", []string{`42["set","not an object"]`}, true},
		{"unknown namespace", []string{`42/nowhere,["echo",1]`}, false},
		{"text instead of an attachment", []string{`451-["echo",{"_placeholder":true,"num":0}]`, `42["echo",1]`}, true},
	}
	fast := &googollee.Options{Engine: &engineio.Options{PingInterval: 500 * time.Millisecond, PingTimeout: 2 * time.Second}}
	for _, tr := range transports {
		for _, p := range packets {
			t.Run(string(tr)+"/"+p.name, func(t *testing.T) {
				e := newEnv(t, envOptions{Options: fast, Setup: func(e *env) {
					googollee.OnMessage(e.srv, "set", func(_ *iosessions.Socket, sess *iosessions.Session, in setIn) (setIn, error) {
						return in, nil
					})
				}})
				cookie := e.loginAs(t, "alice")
				bystander := e.dial(t, tr, withCookie(cookie), nil)
				c, err := sio2.Dial(ctxT(t), e.URL, sio2.Options{Transport: tr, Header: withCookie(cookie), NoPing: true})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = c.Close() })
				expectEvent(t, bystander, "welcome")
				expectEvent(t, c, "welcome")
				if err := c.SendRaw(ctxT(t), p.raw...); err != nil && !p.closes {
					t.Fatalf("send: %v", err)
				}
				if p.closes {
					waitClosed(t, c, time.Now().Add(10*time.Second))
				} else if got := call(t, c, "echo", "still here"); got != `"still here"` {
					t.Errorf("echo after %q = %s", p.raw, got)
				}
				if got := call(t, bystander, "whoami", nil); got != `{"user":"alice","count":0}` {
					t.Errorf("bystander whoami = %s", got)
				}
				for _, err := range e.reported() {
					var pe *iosessions.PanicError
					if errors.As(err, &pe) {
						t.Errorf("a handler panicked: %v", pe)
					}
				}
				e.loginAs(t, "carol") // HTTP still answers
			})
		}
	}
}

// TestNonASCII: text outside ASCII survives every transport and framing.
// socket.io clients frame polling payloads in UTF-16 code units, the
// engine in bytes; the binding translates both ways.
func TestNonASCII(t *testing.T) {
	const text = "héllo ✓ 😀"
	e := newEnv(t, envOptions{})
	for _, o := range []sio2.Options{
		{Transport: sio2.WebSocket},
		{Transport: sio2.Polling},
		{Transport: sio2.Polling, Base64: true},
	} {
		name := string(o.Transport)
		if o.Base64 {
			name += "-b64"
		}
		t.Run(name, func(t *testing.T) {
			o.Header = withCookie(e.loginAs(t, "alice"))
			c, err := sio2.Dial(ctxT(t), e.URL, o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			expectEvent(t, c, "welcome")
			want, _ := json.Marshal(text)
			if got := call(t, c, "echo", text); got != string(want) {
				t.Errorf("echo = %s, want %s", got, want)
			}
			// Two packets in one POST, the first one not ASCII.
			if err := c.SendRaw(ctxT(t), `42["echo","`+text+`"]`, `42["incr"]`); err != nil {
				t.Fatal(err)
			}
			if got := call(t, c, "whoami", nil); got != `{"user":"alice","count":1}` {
				t.Errorf("whoami = %s", got)
			}
		})
	}
}
