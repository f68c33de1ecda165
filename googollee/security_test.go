package googollee_test

// Security: handshakes without a usable session, the shim token, and the
// holes of the engine the binding closes (guessable ids, cross-origin
// requests, JSONP, panics, oversized messages).

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/googollee/go-socket.io/engineio"
	"github.com/googollee/go-socket.io/parser"
	"github.com/gorilla/websocket"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/googollee"
	"github.com/iosessions/iosessions/internal/conformance"
	"github.com/iosessions/iosessions/internal/sio2"
)

// TestEngineSessionIDsRandom: the engine's own ids are 1, 2, 3…; the
// binding's are long and random.
func TestEngineSessionIDsRandom(t *testing.T) {
	e := newEnv(t, envOptions{})
	seen := map[string]bool{}
	for i := range 20 {
		c := e.dial(t, transports[i%2], nil, nil)
		if len(c.SID) < 20 {
			t.Errorf("sid %q is shorter than 20 characters", c.SID)
		}
		if regexp.MustCompile(`^[0-9a-z]{1,3}$`).MatchString(c.SID) {
			t.Errorf("sid %q looks like a counter", c.SID)
		}
		if seen[c.SID] {
			t.Errorf("sid %q handed out twice", c.SID)
		}
		seen[c.SID] = true
		// Read what the server sends first: a poll being answered when the
		// session closes hangs in the engine until PingTimeout.
		expectEvent(t, c, "sinvalid")
		c.Close()
	}
}

const evil = "http://evil.example"

// raw sends one HTTP request with header h and returns the response, its
// body read.
func (e *env) raw(t *testing.T, method, u string, h http.Header, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp
}

// TestJSONPRefused: JSONP polling (the j parameter) is refused with 400
// and no script, on the handshake and on a live session.
func TestJSONPRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.dial(t, sio2.Polling, nil, nil)
	expectEvent(t, c, "sinvalid")
	live := c.URL(sio2.Polling) + "&j=0"
	for name, u := range map[string]string{
		"handshake": e.URL + "/socket.io/?EIO=3&transport=polling&j=0",
		"callback":  e.URL + "/socket.io/?EIO=3&transport=polling&j=alert(1)",
		"live sid":  live,
	} {
		t.Run(name, func(t *testing.T) {
			resp := e.raw(t, http.MethodGet, u, nil, nil)
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "javascript") || bytes.Contains(b, []byte("___eio")) {
				t.Errorf("a script came back: %s %q", ct, b)
			}
		})
	}
	if n := e.srv.Engine().Count(); n != 1 {
		t.Errorf("the engine holds %d sessions, want 1", n)
	}
	if got := call(t, c, "echo", 1); got != "1" {
		t.Errorf("echo = %s", got)
	}
}

// TestSizeCap: a message over Options.MaxMessageBytes ends that
// connection only: a websocket message is cut off, a polling POST gets
// 413. Other clients and HTTP keep working.
func TestSizeCap(t *testing.T) {
	const max = 64 << 10
	big := strings.Repeat("x", 200<<10)
	for _, tr := range transports {
		for _, chunked := range []bool{false, true} {
			name := string(tr)
			if chunked {
				if tr == sio2.WebSocket {
					continue
				}
				name += "/chunked"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, envOptions{Options: &googollee.Options{MaxMessageBytes: max}})
				other := e.dial(t, sio2.WebSocket, nil, nil)
				otherPoll := e.dial(t, sio2.Polling, nil, nil)
				c := e.dial(t, tr, nil, nil)
				ctx := ctxT(t)
				// Just under the cap goes through.
				under := strings.Repeat("y", max-100)
				if got := call(t, c, "echo", under); got != `"`+under+`"` {
					t.Fatalf("echo of %d bytes failed", len(under))
				}

				if tr == sio2.WebSocket {
					// The server may hang up before the whole message is
					// written: a write error is what the client sees then.
					_ = c.Emit(ctx, "echo", big)
				} else {
					var body io.Reader = bytes.NewReader(sio2.EncodeText(`42["echo","` + big + `"]`))
					if chunked {
						body = io.MultiReader(body) // hides the length: chunked encoding
					}
					resp, err := c.Post(ctx, "text/plain;charset=UTF-8", body)
					if err != nil || resp.Status != http.StatusRequestEntityTooLarge {
						t.Errorf("oversized POST: %+v, %v; want 413", resp, err)
					}
				}
				select {
				case <-c.Done():
				case <-ctx.Done():
					t.Fatal("the connection that sent too much is still open")
				}
				waitFor(t, "the disconnect handler", func() bool { return e.disconnects() == 1 })

				for _, o := range []*sio2.Client{other, otherPoll} {
					if got := call(t, o, "echo", "ok"); got != `"ok"` {
						t.Errorf("another client's echo = %s", got)
					}
				}
				if e.post(t, "/logout", nil) != http.StatusNoContent {
					t.Error("HTTP stopped answering")
				}
			})
		}
	}
}

// TestSizeCapSkippedMessages: the cap holds for websocket messages the
// engine skips instead of parsing (an unknown engine packet type, a
// namespace nobody registered, a repeated connect packet): the engine
// drains them whole, so an uncapped drain would let a client stream
// without limit.
func TestSizeCapSkippedMessages(t *testing.T) {
	const max = 64 << 10
	big := strings.Repeat("x", 200<<10)
	for _, tc := range []struct{ name, raw string }{
		{"unknown engine packet type", "9" + big},
		{"unknown namespace", `42/nowhere,["echo","` + big + `"]`},
		{"repeated connect packet", "40" + big},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{Options: &googollee.Options{MaxMessageBytes: max}})
			other := e.dial(t, sio2.WebSocket, nil, nil)
			c := e.dial(t, sio2.WebSocket, nil, nil)
			expectEvent(t, c, "sinvalid")
			_ = c.SendRaw(ctxT(t), tc.raw) // the server may hang up mid-message
			select {
			case <-c.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("the connection that sent too much is still open")
			}
			if got := call(t, other, "echo", "ok"); got != `"ok"` {
				t.Errorf("another client's echo = %s", got)
			}
		})
	}
}

// echoer keeps a client echoing until the end of the test, and counts the
// echoes that failed.
type echoer struct {
	c        *sio2.Client
	ok, fail atomic.Int32
	stop     chan struct{}
	done     chan struct{}
}

func keepEchoing(t *testing.T, c *sio2.Client) *echoer {
	t.Helper()
	ec := &echoer{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(ec.done)
		for i := 0; ; i++ {
			select {
			case <-ec.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			args, err := c.Call(ctx, "echo", i)
			cancel()
			if err == nil && len(args) == 1 && string(args[0]) == strconv.Itoa(i) {
				ec.ok.Add(1)
			} else {
				ec.fail.Add(1)
			}
		}
	}()
	t.Cleanup(ec.end)
	return ec
}

func (ec *echoer) end() {
	select {
	case <-ec.stop:
	default:
		close(ec.stop)
	}
	<-ec.done
}

// check fails t unless every echo so far came back, and one more does.
func (ec *echoer) check(t *testing.T, after string) {
	t.Helper()
	if got := call(t, ec.c, "echo", "still here"); got != `"still here"` {
		t.Fatalf("after %s, another client's echo = %s", after, got)
	}
	if n := ec.fail.Load(); n > 0 {
		t.Fatalf("after %s, %d echoes of another client failed", after, n)
	}
}

// fastPings: a connection the engine closes while it reads a POST holds
// that POST until the read deadline (PingTimeout after the last ping; see
// TestMalformedPackets), so attackers never ping and the timeout is short.
var fastPings = &googollee.Options{Engine: &engineio.Options{PingInterval: 500 * time.Millisecond, PingTimeout: 2 * time.Second}}

// binHandler registers "bin", whose argument holds a parser.Buffer: a
// placeholder past the attachments panicked the engine on it.
func binHandler(e *env) {
	googollee.OnEvent(e.srv, "bin", func(_ *iosessions.Socket, b parser.Buffer) (int, error) {
		return len(b.Data), nil
	})
}

// TestNoPacketCrashes: the socket.io packets that go-socket.io v1.7.0
// panics on, unrecovered (a huge attachment count: makeslice; a
// placeholder past the attachments: index out of range), end only the
// connection that sent them, over both transports, while other clients
// keep echoing.
func TestNoPacketCrashes(t *testing.T) {
	conformance.InChild(t, func(t *testing.T) {
		e := newEnv(t, envOptions{Options: fastPings, Setup: binHandler})
		var echoers []*echoer
		for _, tr := range transports {
			echoers = append(echoers, keepEchoing(t, e.dial(t, tr, nil, nil)))
		}
		for _, tr := range transports {
			for _, p := range []string{
				`451999999999999999-["msg","x"]`,
				`451-["bin",{"_placeholder":true,"num":7}]`,
			} {
				t.Run(string(tr)+"/"+p, func(t *testing.T) {
					c, err := sio2.Dial(ctxT(t), e.URL, sio2.Options{Transport: tr, NoPing: true})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = c.Close() })
					expectEvent(t, c, "sinvalid")
					_ = c.SendRaw(ctxT(t), p) // a polling POST gets 400
					waitClosed(t, c, time.Now().Add(5*time.Second))
					for _, ec := range echoers {
						ec.check(t, p)
					}
				})
			}
		}
		for _, ec := range echoers {
			ec.end()
			if ec.ok.Load() == 0 {
				t.Error("no echo came back")
			}
		}
	})
}

// TestPacketCatalogue sends every socket.io packet of the fuzz catalogue
// (googollee.PacketCatalogue, the seeds of FuzzInspect) to a live server,
// over websocket and polling, each from a new connection, and checks that
// the server still answers other clients after each.
func TestPacketCatalogue(t *testing.T) {
	conformance.InChild(t, func(t *testing.T) {
		e := newEnv(t, envOptions{Options: fastPings, Setup: binHandler})
		var echoers []*echoer
		for _, tr := range transports {
			echoers = append(echoers, keepEchoing(t, e.dial(t, tr, nil, nil)))
		}
		var sends sync.WaitGroup
		for _, tr := range transports {
			for _, s := range googollee.PacketCatalogue() {
				t.Run(string(tr)+"/"+s.Name, func(t *testing.T) {
					c, err := sio2.Dial(ctxT(t), e.URL, sio2.Options{Transport: tr, NoPing: true})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = c.Close() })
					expectEvent(t, c, "sinvalid")
					// A POST whose packet the engine closes the connection on
					// is answered at the read deadline: do not wait for it.
					sends.Add(1)
					go func() {
						defer sends.Done()
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						defer cancel()
						_ = c.SendRaw(ctx, "4"+s.Packet)
					}()
					for _, ec := range echoers {
						ec.check(t, s.Name)
					}
				})
			}
		}
		sends.Wait()
		for _, ec := range echoers {
			ec.check(t, "the catalogue")
		}
	})
}

// TestSizeCapHeap: a 10 MB message to a server with the default cap
// (1 MB) ends its connection, and the server allocates less than twice
// the cap on it: it reads no more than the cap, in chunks, and a polling
// POST whose Content-Length is over the cap not at all. (TotalAlloc
// counts every allocation, freed or not, of the whole process.)
func TestSizeCapHeap(t *testing.T) {
	const size = 10 << 20
	const limit = 2 * googollee.DefaultMaxMessageBytes
	for _, tc := range []struct {
		name string
		send func(t *testing.T, e *env) // sends the 10 MB message
	}{
		{"websocket", func(t *testing.T, e *env) {
			// A write buffer that holds the message: one frame, allocated
			// before the measure.
			d := websocket.Dialer{WriteBufferSize: size + 1024}
			ws, _, err := d.Dial("ws"+strings.TrimPrefix(e.URL, "http")+"/socket.io/?EIO=3&transport=websocket", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			msg := []byte(hugePrefix + strings.Repeat("x", size) + hugeSuffix)
			for range 2 { // the open and connect packets
				if _, _, err := ws.ReadMessage(); err != nil {
					t.Fatal(err)
				}
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
		}},
		{"polling", func(t *testing.T, e *env) { postHuge(t, e, size, true) }},
		{"polling/chunked", func(t *testing.T, e *env) { postHuge(t, e, size, false) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			tc.send(t, e)
		})
	}
}

// The huge message is an event whose argument is a string of x.
const hugePrefix, hugeSuffix = `42["echo","`, `"]`

// postHuge POSTs a text payload of one size-byte event to a polling
// session, from a reader that allocates nothing, with its Content-Length
// or chunked, and wants 413.
func postHuge(t *testing.T, e *env, size int, sized bool) {
	c := e.dial(t, sio2.Polling, nil, nil)
	head := fmt.Sprintf("%d:", len(hugePrefix)+size+len(hugeSuffix)) + hugePrefix
	body := io.MultiReader(strings.NewReader(head), conformance.RepeatReader('x', size), strings.NewReader(hugeSuffix))
	req, err := http.NewRequest(http.MethodPost, c.URL(sio2.Polling), body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	if sized {
		req.ContentLength = int64(len(head) + size + len(hugeSuffix))
	} else {
		req.ContentLength = -1
	}
	conformance.MeasureAlloc(t, 2*googollee.DefaultMaxMessageBytes, func() {
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
	waitClosed(t, c, time.Now().Add(10*time.Second))
}
