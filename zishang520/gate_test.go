package zishang520

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/internal/sio2"
)

// serve serves m with a new Server (opts as NewServer's; setup registers
// events before it serves) on a test server, both closed with the test.
func serve(t *testing.T, m *iosessions.Manager, opts *Options, setup func(*Server)) (*Server, *httptest.Server) {
	t.Helper()
	srv, err := NewServer(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(srv)
	}
	ts := httptest.NewServer(m.Middleware(srv))
	t.Cleanup(func() {
		_ = m.Shutdown(context.Background())
		_ = srv.Close()
		ts.CloseClientConnections()
		ts.Close()
	})
	return srv, ts
}

// gateCount returns how many connection gates s keeps.
func (s *Server) gateCount() int {
	n := 0
	s.gates.Range(func(any, any) bool { n++; return true })
	return n
}

// TestGateRetired: a websocket connection's gate is gone once its root
// namespace connect is through, and the connection still works; a polling
// connection keeps its gate (its GETs wait on it) until it closes.
func TestGateRetired(t *testing.T) {
	m, err := iosessions.New(nil, iosessions.Config{})
	if err != nil {
		t.Fatal(err)
	}
	opts := socket.DefaultServerOptions()
	opts.SetAllowEIO3(true) // socket.io 2.x clients too: their root connect is the server's own
	srv, ts := serve(t, m, &Options{Server: opts}, func(srv *Server) {
		OnEvent(srv, "echo", func(_ *iosessions.Socket, in json.RawMessage) (json.RawMessage, error) { return in, nil })
	})
	gates := srv.gateCount
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	echo := func(c *sio2.Client) {
		t.Helper()
		got, err := c.Call(ctx, "echo", "hi")
		if err != nil || len(got) != 1 || string(got[0]) != `"hi"` {
			t.Fatalf("echo = %s, %v", got, err)
		}
	}

	for _, eio := range []int{4, 3} {
		ws, err := sio2.Dial(ctx, ts.URL, sio2.Options{EIO: eio})
		if err != nil {
			t.Fatalf("EIO=%d websocket: %v", eio, err)
		}
		echo(ws)
		if n := gates(); n != 0 {
			t.Errorf("EIO=%d: a connected websocket leaves %d gates, want 0", eio, n)
		}
		_ = ws.Close()
	}

	// A root connect sent again (the v4 Go client's race does it) finds
	// the gate retired: it leaves none behind.
	for _, eio := range []int{4, 3} {
		ws, err := sio2.Dial(ctx, ts.URL, sio2.Options{EIO: eio})
		if err != nil {
			t.Fatal(err)
		}
		if err := ws.SendRaw(ctx, "40"); err != nil {
			t.Fatal(err)
		}
		got, err := ws.Call(ctx, "echo", "again")
		t.Logf("EIO=%d: after a second root connect: echo %s, %v; gates %d", eio, got, err, gates())
		// The engine refuses it by closing the connection, and the gate
		// goes with the engine's "close" event: the client may see the
		// close first.
		_ = ws.Close()
		waitGates(ctx, t, gates, 0, fmt.Sprintf("EIO=%d: a websocket that sent its root connect again", eio))
	}

	poll, err := sio2.Dial(ctx, ts.URL, sio2.Options{EIO: 4, Transport: sio2.Polling})
	if err != nil {
		t.Fatal(err)
	}
	echo(poll)
	if n := gates(); n != 1 {
		t.Errorf("a connected polling client has %d gates, want 1", n)
	}
	_ = poll.Close()
	// The engine closes the connection after the client's close packet.
	waitGates(ctx, t, gates, 0, "a closed polling connection")
}

// waitGates waits until gates() is want, failing the test with what
// leaves them if ctx ends first.
func waitGates(ctx context.Context, t *testing.T, gates func() int, want int, what string) {
	t.Helper()
	for gates() != want {
		select {
		case <-ctx.Done():
			t.Fatalf("%s leaves %d gates, want %d", what, gates(), want)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestRootConnectTwice: a root connect sent again at once, while the first
// is in flight (the v4 engine's Go client can do it), does not connect a
// second root socket: the gate holds it until the first socket is stored,
// and the engine then refuses it and closes the connection, as it does a
// late one. Let through, it found no root socket yet and made a second,
// whose gate entry nothing removed.
func TestRootConnectTwice(t *testing.T) {
	m, err := iosessions.New(nil, iosessions.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	m.OnInvalid(func(*iosessions.Socket, error) { accepted.Add(1) })
	srv, ts := serve(t, m, nil, nil)
	gates := srv.gateCount
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	for i := range 20 {
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, p, err := ws.ReadMessage(); err != nil || !strings.HasPrefix(string(p), "0{") {
			t.Fatalf("open packet %q: %v", p, err)
		}
		for range 2 {
			if err := ws.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
				t.Fatal(err)
			}
		}
		answers := 0
		for {
			_, p, err := ws.ReadMessage()
			if err != nil {
				break // the engine closed the connection
			}
			if strings.HasPrefix(string(p), "40{") {
				answers++
			}
		}
		_ = ws.Close()
		// The engine closes the connection under its write of the first
		// answer at times (it does not wait for a websocket's write in
		// flight): 0 is its answer too.
		if answers > 1 {
			t.Fatalf("try %d: %d connect answers, want 1 (the second connect refused)", i, answers)
		}
	}
	deadline := time.Now().Add(10 * time.Second) // a last resort: the closes are under way
	for m.Stats().Sockets != 0 || gates() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after the connections closed: %+v, %d gates", m.Stats(), gates())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := accepted.Load(); n != 20 {
		t.Errorf("%d root sockets (each told sinvalid), want 20: one per connection", n)
	}
}
