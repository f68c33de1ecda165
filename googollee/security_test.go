package googollee_test

// Security: handshakes without a usable session, the shim token, and the
// holes of the engine the binding closes (guessable ids, cross-origin
// requests, JSONP, panics, oversized messages).

import (
	"bytes"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/iosessions/iosessions/googollee"
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
