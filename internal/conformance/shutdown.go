package conformance

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// shutdown: 500 clients, one session each, connect and send incr while
// the server shuts down (Server.Shutdown). The process stays up (a panic
// would end the test binary); handshakes that come during the shutdown
// get 503 or fail; every incr acked with a count is in the store
// afterwards; events after the start of the shutdown are refused, not
// lost.
func shutdown(t *testing.T, b Binding) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e := newEnv(t, b, envOptions{Mode: mode})
			const clients = 500
			cookies := make([]*http.Cookie, clients)
			for i := range cookies {
				cookies[i] = e.loginAs(t, "user")
			}
			acked := make([]int, clients) // the highest count acked per session
			var (
				wg        sync.WaitGroup
				connected atomic.Int32
				refused   atomic.Int32
				acks      atomic.Int32
			)
			start := make(chan struct{})
			for i := range clients {
				wg.Go(func() {
					<-start
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					cl, err := e.b.Dial(ctx, e.URL, DialOptions{Transport: "websocket", Header: withCookie(cookies[i])})
					if err != nil {
						refused.Add(1)
						return
					}
					defer cl.Close()
					connected.Add(1)
					for {
						ch, err := cl.Send(ctx, "incr")
						if err != nil {
							return
						}
						select {
						case a := <-ch:
							var n int
							if len(a.Args) != 1 || json.Unmarshal(a.Args[0], &n) != nil {
								return // {"error": "shutting down"} or "no session"
							}
							acked[i] = n
							acks.Add(1)
						case <-cl.Done():
							return
						case <-ctx.Done():
							return
						}
					}
				})
			}
			close(start)
			deadline := time.Now().Add(10 * time.Second)
			for (connected.Load() < clients/5 || acks.Load() < clients/5) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := e.srv.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			resp, _ := e.raw(t, http.MethodGet, e.engineURL("polling", ""), nil, nil)
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("a handshake after Shutdown: %d, want 503", resp.StatusCode)
			}
			wg.Wait()
			t.Logf("%d clients connected, %d refused", connected.Load(), refused.Load())
			writes := 0
			for i, c := range cookies {
				got, _ := e.stored(t, c)["count"].(int)
				if got < acked[i] {
					t.Errorf("session %d: %d incr acked, the store has %d", i, acked[i], got)
				}
				writes += acked[i]
			}
			if writes == 0 {
				t.Error("no incr was acked before the shutdown: the case tested nothing")
			}
			waitFor(t, "no socket left after Shutdown", func() bool { return len(e.m.Sockets()) == 0 })
		})
	}
}
