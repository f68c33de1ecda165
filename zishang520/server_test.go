package zishang520_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/iosessions/iosessions/zishang520"
)

// TestConnectTimeout: an engine connection that never sends a namespace
// connect (as when the engine loses one) is closed after
// DefaultConnectTimeout, so a socket.io client reconnects instead of
// waiting for the engine's 45 s.
func TestConnectTimeout(t *testing.T) {
	_, url := echoServer(t, nil)
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	start := time.Now()
	_ = ws.SetReadDeadline(start.Add(zishang520.DefaultConnectTimeout + 5*time.Second))
	if _, open, err := ws.ReadMessage(); err != nil || !strings.HasPrefix(string(open), "0{") {
		t.Fatalf("open packet %q, %v", open, err)
	}
	for { // until the server closes (pings may come first)
		if _, _, err := ws.ReadMessage(); err != nil {
			if websocket.IsCloseError(err) || time.Since(start) < zishang520.DefaultConnectTimeout+4*time.Second {
				break
			}
			t.Fatalf("still open after %v: %v", time.Since(start), err)
		}
	}
	if d := time.Since(start); d < zishang520.DefaultConnectTimeout-500*time.Millisecond {
		t.Fatalf("closed after %v, before the connect timeout", d)
	}
}
