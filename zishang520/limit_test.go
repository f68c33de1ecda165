package zishang520_test

// Hostile input: the fuzz catalogue's socket.io packets and 10 MB messages
// reach a live server over both transports, and end at most the
// connection that sent them.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/internal/conformance"
	"github.com/iosessions/iosessions/internal/sio2"
	"github.com/iosessions/iosessions/zishang520"
)

var sio2Transports = []sio2.Transport{sio2.WebSocket, sio2.Polling}

// limitEnv is a server with an "echo" event, served by httptest.
type limitEnv struct {
	URL  string
	http *http.Client
}

func newLimitEnv(t *testing.T) *limitEnv {
	t.Helper()
	m, err := iosessions.New(nil, iosessions.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := zishang520.NewServer(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	zishang520.OnEvent(srv, "echo", func(_ *iosessions.Socket, in json.RawMessage) (json.RawMessage, error) {
		if in == nil {
			return json.RawMessage("null"), nil
		}
		return in, nil
	})
	ts := httptest.NewServer(m.Middleware(srv))
	t.Cleanup(func() {
		_ = m.Shutdown(context.Background())
		_ = srv.Close()
		ts.CloseClientConnections()
		ts.Close()
	})
	return &limitEnv{URL: ts.URL, http: ts.Client()}
}

// dial connects an EIO=4 client.
func (e *limitEnv) dial(t *testing.T, tr sio2.Transport) *sio2.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	c, err := sio2.Dial(ctx, e.URL, sio2.Options{Transport: tr, EIO: 4})
	cancel()
	if err != nil {
		t.Fatalf("dial %s: %v", tr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func echo(c *sio2.Client, v any) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	args, err := c.Call(ctx, "echo", v)
	if err != nil {
		return "", err
	}
	if len(args) != 1 {
		return "", fmt.Errorf("ack %s", args)
	}
	return string(args[0]), nil
}

// TestPacketCatalogue sends every socket.io packet of the catalogue (the
// seeds of FuzzDecoder, as socket.io protocol 5 spells them) to a live
// server, over websocket and polling, each from a new connection, while
// two other clients keep echoing, and checks that they are still
// answered after each. zishang520/socket.io v3.0.2 refuses all of them
// without a panic (its parser caps attachments at 10 and checks
// placeholders); the test keeps it so.
func TestPacketCatalogue(t *testing.T) {
	conformance.InChild(t, func(t *testing.T) {
		e := newLimitEnv(t)
		var bystanders []*sio2.Client
		var failed atomic.Int32
		stop := make(chan struct{})
		var echoing sync.WaitGroup
		for _, tr := range sio2Transports {
			c := e.dial(t, tr)
			bystanders = append(bystanders, c)
			echoing.Add(1)
			go func() {
				defer echoing.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
					if got, err := echo(c, i); err != nil || got != strconv.Itoa(i) {
						failed.Add(1)
					}
				}
			}()
		}
		defer func() { close(stop); echoing.Wait() }()
		check := func(t *testing.T, after string) {
			t.Helper()
			for _, c := range bystanders {
				if got, err := echo(c, "still here"); err != nil || got != `"still here"` {
					t.Fatalf("after %s, another client's echo = %s, %v", after, got, err)
				}
			}
			if n := failed.Load(); n > 0 {
				t.Fatalf("after %s, %d echoes of other clients failed", after, n)
			}
		}
		var sends sync.WaitGroup
		for _, tr := range sio2Transports {
			for _, s := range packetSeeds() {
				t.Run(string(tr)+"/"+s.name, func(t *testing.T) {
					c := e.dial(t, tr)
					sends.Add(1)
					go func() { // the engine may never answer a POST it closes the session on
						defer sends.Done()
						ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
						defer cancel()
						_ = c.SendRaw(ctx, "4"+s.data)
					}()
					check(t, s.name)
				})
			}
		}
		sends.Wait()
		check(t, "the catalogue")
	})
}

// TestSizeCapHeap: a 10 MB message to a server with the default cap
// (1 MB) ends its connection, and the server allocates less than twice
// the cap on it. (TotalAlloc counts every allocation, freed or not, of
// the whole process.) Except for a websocket message in many frames: the
// engine reads up to the cap into a buffer that doubles as it grows (4 MB
// for 1 MB, 8 MB under the race detector), as it does for a message
// within the cap; gorilla's read limit ends the message at the first
// frame header past the cap, so the bound there is the message itself.
func TestSizeCapHeap(t *testing.T) {
	const size = 10 << 20
	const limit = 2 * zishang520.DefaultMaxMessageBytes
	for _, tc := range []struct {
		name string
		send func(t *testing.T, e *limitEnv)
	}{
		{"websocket", func(t *testing.T, e *limitEnv) { wsHuge(t, e, size, size+1024, limit) }},
		// gorilla's default 4 KB write buffer: 2,560 frames of one message.
		{"websocket/fragmented", func(t *testing.T, e *limitEnv) { wsHuge(t, e, size, 0, size) }},
		{"polling", func(t *testing.T, e *limitEnv) { postHuge(t, e, size, true, limit) }},
		{"polling/chunked", func(t *testing.T, e *limitEnv) { postHuge(t, e, size, false, limit) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.send(t, newLimitEnv(t))
		})
	}
}

// The huge message is an event whose argument is a string of x.
const hugePrefix, hugeSuffix = `42["echo","`, `"]`

// wsHuge sends a size-byte message over a websocket whose write buffer
// is writeBuf bytes (0: gorilla's default), and wants the connection
// closed, having allocated under limit bytes.
func wsHuge(t *testing.T, e *limitEnv, size, writeBuf int, limit uint64) {
	d := websocket.Dialer{WriteBufferSize: writeBuf}
	ws, _, err := d.Dial("ws"+strings.TrimPrefix(e.URL, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	msg := []byte(hugePrefix + strings.Repeat("x", size) + hugeSuffix)
	if _, _, err := ws.ReadMessage(); err != nil { // the open packet
		t.Fatal(err)
	}
	conformance.MeasureAlloc(t, limit, func() {
		_ = ws.WriteMessage(websocket.TextMessage, msg) // the server may hang up first
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
					t.Error("the connection is still open")
				}
				return
			}
		}
	})
}

// postHuge POSTs an EIO=4 payload of one size-byte event to a polling
// session, from a reader that allocates nothing, with its Content-Length
// or chunked, and wants 413 and the session closed, having allocated
// under limit bytes.
func postHuge(t *testing.T, e *limitEnv, size int, sized bool, limit uint64) {
	c := e.dial(t, sio2.Polling)
	body := io.MultiReader(strings.NewReader(hugePrefix), conformance.RepeatReader('x', size), strings.NewReader(hugeSuffix))
	req, err := http.NewRequest(http.MethodPost, c.URL(sio2.Polling), body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	req.ContentLength = -1
	if sized {
		req.ContentLength = int64(len(hugePrefix) + size + len(hugeSuffix))
	}
	conformance.MeasureAlloc(t, limit, func() {
		resp, err := e.http.Do(req)
		if err != nil {
			t.Logf("POST: %v (the server may hang up first)", err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d, want 413", resp.StatusCode)
		}
	})
	// The engine never answers the pending GET of a session it closes:
	// ask it about the session instead.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := e.http.Post(c.URL(sio2.Polling), "text/plain;charset=UTF-8", strings.NewReader("6"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusBadRequest {
			return // "Session ID unknown"
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session that sent too much is still open: a noop POST got %d", resp.StatusCode)
		}
	}
}
