package conformance

import (
	"net/http"
	"testing"
	"time"

	"github.com/iosessions/iosessions"
)

// rotate: Manager.Rotate moves the session's sockets to the new id with
// no sinvalid and no reconnect; they keep its values and save under the
// new id; the old id is gone. Renew (login) never moves sockets: the old
// session's sockets end.
func rotate(t *testing.T, b Binding) {
	eachModeTransport(t, b, func(t *testing.T, mode iosessions.Mode, tr string) {
		e := newEnv(t, b, envOptions{Mode: mode})
		old := e.loginAs(t, "alice")
		c1 := e.dial(t, tr, withCookie(old), "")
		c2 := e.dial(t, tr, withCookie(old), "")
		c1.expect(t, "welcome")
		c2.expect(t, "welcome")
		wantJSON(t, "incr", c1.call(t, "incr"), `1`)

		nc := e.rotateAs(t, old)
		wantJSON(t, "incr after rotate", c2.call(t, "incr"), `2`)
		wantJSON(t, "whoami after rotate", c1.call(t, "whoami"), `{"user":"alice","count":2}`)
		if e.stored(t, old) != nil {
			t.Error("the old id is still in the store")
		}
		if mode == iosessions.PerMessage {
			if got := e.stored(t, nc)["count"]; got != 2 {
				t.Errorf("the new id holds count %v, want 2", got)
			}
		}
		again := e.dial(t, tr, withCookie(old), "")
		wantJSON(t, "old cookie", again.expect(t, "sinvalid"), `{"reason":"session not found"}`)
		fresh := e.dial(t, tr, withCookie(nc), "")
		fresh.expect(t, "welcome")
		for _, c := range []*conn{c1, c2} {
			if n := c.count("sinvalid"); n != 0 || !c.open() {
				t.Errorf("a rotated socket got %d sinvalid, open %v", n, c.open())
			}
		}
		_ = c1.Close()
		_ = c2.Close()
		_ = fresh.Close()
		waitFor(t, "the saves at disconnect", func() bool { return e.stored(t, nc)["count"] == 2 })

		// Renew at login: the sockets of the old session end, none moves.
		s := e.dial(t, tr, withCookie(nc), "")
		s.expect(t, "welcome")
		req, _ := http.NewRequest(http.MethodPost, e.URL+"/login?user=bob", nil)
		req.AddCookie(nc)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := e.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		wantJSON(t, "sinvalid after Renew", s.expect(t, "sinvalid"), `{"reason":"session ended"}`)
		s.waitClosed(t, time.Now().Add(5*time.Second))
	})
}

// rotateAcrossNodes: a rotation on A moves the session's sockets on B too:
// no sinvalid, and what B's sockets save lands under the new id.
func rotateAcrossNodes(t *testing.T, b Binding) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			cl := newCluster(t, b, clusterOptions{Mode: mode})
			old := cl.a.loginAs(t, "alice")
			onA := cl.a.dial(t, "websocket", withCookie(old), "")
			onB := cl.b.dial(t, "websocket", withCookie(old), "")
			onA.expect(t, "welcome")
			onB.expect(t, "welcome")
			wantJSON(t, "incr on B", onB.call(t, "incr"), `1`)
			nc := cl.a.rotateAs(t, old)
			wantJSON(t, "incr on B after rotate", onB.call(t, "incr"), `2`)
			wantJSON(t, "whoami on A after rotate", onA.call(t, "whoami"), map[iosessions.Mode]string{
				// PerConnection: each node's live copy saves at its last disconnect.
				iosessions.PerConnection: `{"user":"alice","count":0}`,
				iosessions.PerMessage:    `{"user":"alice","count":2}`,
			}[mode])
			_ = onB.Close()
			waitFor(t, "B's save under the new id", func() bool { return cl.a.stored(t, nc)["count"] == 2 })
			if cl.a.stored(t, old) != nil {
				t.Error("the old id is still in the store")
			}
			time.Sleep(100 * time.Millisecond) // an end of the old id would arrive by now
			if n := onA.count("sinvalid"); n != 0 || !onA.open() {
				t.Errorf("A's socket got %d sinvalid, open %v", n, onA.open())
			}
		})
	}
}
