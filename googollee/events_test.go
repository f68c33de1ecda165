package googollee_test

// Events: what OnMessage and OnEvent decode, ack and run in order, and
// what malformed packets do.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/googollee/go-socket.io/engineio"
	"github.com/googollee/go-socket.io/parser"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/googollee"
	"github.com/iosessions/iosessions/internal/sio2"
)

type setIn struct {
	Key   string `json:"key"`
	Value int    `json:"value"`
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

// Registering a handler whose argument holds a struct named Buffer other
// than the engine's panics at once, naming it, rather than panicking the
// engine on every event; parser.Buffer and other types are fine.
func TestArgTypeRefused(t *testing.T) {
	m, err := iosessions.New(nil, iosessions.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	srv, err := googollee.NewServer(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	e := struct{ srv *googollee.Server }{srv}
	type wrapped struct {
		Items map[string][]*bytes.Buffer
	}
	for name, register := range map[string]func(){
		"bytes.Buffer": func() {
			googollee.OnEvent(e.srv, "a", func(*iosessions.Socket, bytes.Buffer) (int, error) { return 0, nil })
		},
		"nested": func() {
			googollee.OnMessage(e.srv, "b", func(*iosessions.Socket, *iosessions.Session, wrapped) (int, error) { return 0, nil })
		},
	} {
		func() {
			defer func() {
				if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), "bytes.Buffer") {
					t.Errorf("%s: recovered %v, want a panic naming bytes.Buffer", name, v)
				}
			}()
			register()
		}()
	}
	type ok struct {
		B    parser.Buffer
		Self *ok
		M    map[string]any
	}
	googollee.OnEvent(e.srv, "c", func(*iosessions.Socket, ok) (int, error) { return 0, nil })
}
