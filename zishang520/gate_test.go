package zishang520

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/internal/sio2"
)

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
	srv, err := NewServer(m, &Options{Server: opts})
	if err != nil {
		t.Fatal(err)
	}
	OnEvent(srv, "echo", func(_ *iosessions.Socket, in json.RawMessage) (json.RawMessage, error) { return in, nil })
	ts := httptest.NewServer(m.Middleware(srv))
	t.Cleanup(func() {
		_ = m.Shutdown(context.Background())
		_ = srv.Close()
		ts.CloseClientConnections()
		ts.Close()
	})
	gates := func() int {
		n := 0
		srv.gates.Range(func(any, any) bool { n++; return true })
		return n
	}
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
		if n := gates(); n != 0 {
			t.Errorf("EIO=%d: a websocket that sent its root connect again leaves %d gates, want 0", eio, n)
		}
		_ = ws.Close()
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
	for gates() != 0 { // the engine closes the connection after the client's close packet
		select {
		case <-ctx.Done():
			t.Fatalf("a closed polling connection keeps its gate")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
