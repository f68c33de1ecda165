package zishang520

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/internal/sio2"
)

// TestGoneBeforeConnect: a connection that ends after the engine answered
// its namespace connect but before the binding's connection handler
// listens for its disconnect (the engine answers first, then emits
// "connection") still leaves the Manager's registry, and the disconnect
// handler runs once. Before the fix such a socket stayed registered for
// good (TestLeak found 2 in 10,000 cycles).
func TestGoneBeforeConnect(t *testing.T) {
	for _, tr := range []sio2.Transport{sio2.WebSocket, sio2.Polling} {
		t.Run(string(tr), func(t *testing.T) {
			m, err := iosessions.New(nil, iosessions.Config{})
			if err != nil {
				t.Fatal(err)
			}
			var closed atomic.Int32
			m.OnDisconnect(func(*iosessions.Socket, string) { closed.Add(1) })
			_, ts := serve(t, m, nil, nil)
			// The client goes in the window: the engine closes the
			// connection, and emits the socket's "disconnect", there.
			testHookConnection = func(sock *socket.Socket) {
				sock.Conn().Close(true)
				for deadline := time.Now().Add(5 * time.Second); sock.Connected() && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
				if sock.Connected() {
					t.Error("the engine did not disconnect the socket within 5 s")
				}
			}
			t.Cleanup(func() { testHookConnection = nil })

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if c, err := sio2.Dial(ctx, ts.URL, sio2.Options{EIO: 4, Transport: tr}); err == nil {
				_ = c.Close() // connected before the close reached it: fine
			}
			// A last resort only: Closed runs at once, its goroutine soon.
			for deadline := time.Now().Add(5 * time.Second); m.Stats().Sockets != 0 || closed.Load() == 0; {
				if time.Now().After(deadline) {
					t.Fatalf("5 s after the connection ended: %+v, %d disconnect handler calls", m.Stats(), closed.Load())
				}
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond) // a second call would show by now
			if n := closed.Load(); n != 1 {
				t.Errorf("the disconnect handler ran %d times, want 1", n)
			}
		})
	}
}
