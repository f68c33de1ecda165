package conformance

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/iosessions/iosessions"
)

// endedBeforeClose: a socket whose session ends (logout) gets its
// "sinvalid" before the server closes it, however short
// Config.CloseGrace: closing waits for what the engine is still sending.
// The v4 engine queues a websocket's sends on a goroutine of its own and
// closed the websocket under them, so a close right after the "sinvalid"
// dropped it (3 of 20 runs of Rotate with a grace of a microsecond).
func endedBeforeClose(t *testing.T, b Binding) {
	if !b.SendsBeforeClose {
		t.Skipf("%s: Conn.Close does not wait for the sends in flight", b.Name)
	}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e := newEnv(t, b, envOptions{Mode: mode, Config: func(c *iosessions.Config) {
				c.CloseGrace = time.Microsecond
			}})
			for i := range 20 {
				cookie := e.loginAs(t, fmt.Sprint("user", i))
				c := e.dial(t, "websocket", withCookie(cookie), "")
				c.expect(t, "welcome")
				e.post(t, "/logout", cookie, nil)
				wantJSON(t, "sinvalid after logout", c.expect(t, "sinvalid"), `{"reason":"session ended"}`)
				c.waitClosed(t, time.Now().Add(5*time.Second))
			}
		})
	}
}

// closeAfterEmit: a handler that emits and then closes its socket (a
// kick: "bye", then Close) gets the event out before the close, on every
// transport. The v4 binding queued its emits on the socket's task queue,
// where the handler itself runs, and closed at once: the "bye" of every
// such handler was dropped.
func closeAfterEmit(t *testing.T, b Binding) {
	if !b.SendsBeforeClose {
		t.Skipf("%s: Conn.Close does not wait for the sends in flight", b.Name)
	}
	e := newEnv(t, b, envOptions{Setup: func(e *env) {
		e.srv.Event("kick", func(s *iosessions.Socket, _ json.RawMessage) (any, error) {
			if err := s.Emit("bye", "kicked"); err != nil {
				return nil, err
			}
			return "ok", s.Close()
		})
	}})
	for _, tr := range b.Transports {
		t.Run(tr, func(t *testing.T) {
			for i := range 5 {
				cookie := e.loginAs(t, fmt.Sprint("kicked", i))
				c := e.dial(t, tr, withCookie(cookie), "")
				c.expect(t, "welcome")
				if _, err := c.Send(ctxT(t), "kick"); err != nil {
					t.Fatal(err)
				}
				wantJSON(t, "bye before the close", c.expect(t, "bye"), `"kicked"`)
				c.waitClosed(t, time.Now().Add(5*time.Second))
			}
		})
	}
}
