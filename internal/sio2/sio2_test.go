package sio2

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	socketio "github.com/googollee/go-socket.io"
	"github.com/googollee/go-socket.io/engineio"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEncodeText(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"2"}, "1:2"},
		{[]string{"42[\"a\"]", "2"}, "7:42[\"a\"]1:2"},
		{[]string{"4é"}, "2:4é"}, // one UTF-16 unit, two bytes
		{[]string{"4😀"}, "3:4😀"}, // two UTF-16 units, four bytes
		{[]string{""}, "0:"},
	} {
		if got := string(EncodeText(tc.in...)); got != tc.want {
			t.Errorf("EncodeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDecodePayload(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   string
		binary bool
		want   []string
		bad    bool
	}{
		{"text one", "1:6", false, []string{"6"}, false},
		{"text two", "2:402:4é", false, []string{"40", "4é"}, false},
		{"text surrogate pair", "3:4😀1:3", false, []string{"4😀", "3"}, false},
		{"text base64 binary skipped", "6:b4AQID1:3", false, []string{"3"}, false},
		{"text no colon", "12", false, nil, true},
		{"text short", "5:42", false, nil, true},
		{"text bad length", "x:1", false, nil, true},
		{"binary one", "\x00\x01\xff6", true, []string{"6"}, false},
		{"binary two", "\x00\x02\xff40\x00\x01\x00\xff" + strings.Repeat("x", 10), true, []string{"40", strings.Repeat("x", 10)}, false},
		{"binary frame skipped", "\x01\x02\xff\x04\x01\x00\x01\xff3", true, []string{"3"}, false},
		{"binary bad type", "\x02\x01\xff6", true, nil, true},
		{"binary bad digit", "\x00\x0a\xff6", true, nil, true},
		{"binary short", "\x00\x05\xff6", true, nil, true},
		{"binary no end", "\x00\x01", true, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodePayload([]byte(tc.body), tc.binary)
			if tc.bad {
				if err == nil {
					t.Fatalf("DecodePayload = %q, want an error", got)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("DecodePayload = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestParsePacket(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want packet
	}{
		{"0", packet{typ: '0', id: -1}},
		{"2[\"e\",1]", packet{typ: '2', id: -1, data: "[\"e\",1]"}},
		{"312[1]\n", packet{typ: '3', id: 12, data: "[1]"}},
		{"30[]", packet{typ: '3', id: 0, data: "[]"}},
		{"2/chat,7[\"e\"]", packet{typ: '2', nsp: "/chat", id: 7, data: "[\"e\"]"}},
		{"51-[\"e\",{\"_placeholder\":true,\"num\":0}]", packet{typ: '5', id: -1, data: "[\"e\",{\"_placeholder\":true,\"num\":0}]"}},
		{"1/chat", packet{typ: '1', nsp: "/chat", id: -1}},
		{"4\"bad\"", packet{typ: '4', id: -1, data: "\"bad\""}},
	} {
		got, err := parsePacket(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parsePacket(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "7", "x"} {
		if _, err := parsePacket(bad); err == nil {
			t.Errorf("parsePacket(%q): want an error", bad)
		}
	}
}

// server is a bare go-socket.io server: echo acks its arguments, hello
// makes the server emit "hi", bye makes it close the connection.
type server struct {
	URL         string
	connects    atomic.Int32
	disconnects atomic.Int32
	query       atomic.Value // the handshake's query of the last connection
}

func newServer(t *testing.T, opts *engineio.Options) *server {
	t.Helper()
	s := &server{}
	io := socketio.NewServer(opts)
	io.OnConnect("/", func(c socketio.Conn) error {
		u := c.URL()
		s.query.Store(u.Query().Get("token") + "|" + c.RemoteHeader().Get("X-Test"))
		s.connects.Add(1)
		return nil
	})
	io.OnDisconnect("/", func(socketio.Conn, string) { s.disconnects.Add(1) })
	io.OnError("/", func(socketio.Conn, error) {})
	io.OnEvent("/", "echo", func(_ socketio.Conn, v any) any { return v })
	io.OnEvent("/", "hello", func(c socketio.Conn, name string) { c.Emit("hi", "hello "+name, 2) })
	io.OnEvent("/", "bye", func(c socketio.Conn) { c.Close() })
	served := make(chan struct{})
	go func() { defer close(served); _ = io.Serve() }()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Refuse") != "" {
			http.Error(w, "refused", http.StatusForbidden)
			return
		}
		io.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		ts.Close()
		_ = io.Close()
		<-served
	})
	s.URL = ts.URL
	return s
}

var dials = []struct {
	name string
	opts Options
}{
	{"websocket", Options{Transport: WebSocket}},
	{"polling", Options{Transport: Polling}},
	{"polling-b64", Options{Transport: Polling, Base64: true}},
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dial connects to url, failing the test if it cannot; the client is
// closed at the end of the test (Close is idempotent).
func dial(t *testing.T, url string, opts Options) *Client {
	t.Helper()
	c, err := Dial(ctxT(t), url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", opts.Transport, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestClient(t *testing.T) {
	for _, d := range dials {
		t.Run(d.name, func(t *testing.T) {
			s := newServer(t, nil)
			ctx := ctxT(t)
			opts := d.opts
			opts.Header = http.Header{"X-Test": {"header"}}
			opts.Query = map[string][]string{"token": {"tok"}}
			c := dial(t, s.URL, opts)
			if c.SID == "" || c.PingInterval <= 0 || c.PingTimeout <= c.PingInterval {
				t.Errorf("open packet: sid %q, interval %v, timeout %v", c.SID, c.PingInterval, c.PingTimeout)
			}
			waitFor(t, "the server's OnConnect", func() bool { return s.query.Load() != nil })
			if got := s.query.Load(); got != "tok|header" {
				t.Errorf("server saw query|header %q, want tok|header", got)
			}

			args, err := c.Call(ctx, "echo", map[string]any{"a": "b"})
			if err != nil || len(args) != 1 || string(args[0]) != `{"a":"b"}` {
				t.Fatalf("Call(echo) = %s, %v", args, err)
			}
			// Acks come back with their own ids, in order.
			var chans []<-chan Ack
			for i := range 5 {
				ch, err := c.EmitAck(ctx, "echo", i)
				if err != nil {
					t.Fatal(err)
				}
				chans = append(chans, ch)
			}
			var last uint64
			for i, ch := range chans {
				a := <-ch
				if len(a.Args) != 1 || string(a.Args[0]) != string(rune('0'+i)) || a.Seq <= last {
					t.Fatalf("ack %d = %s (seq %d after %d)", i, a.Args, a.Seq, last)
				}
				last = a.Seq
			}

			if err := c.Emit(ctx, "hello", "bob"); err != nil {
				t.Fatal(err)
			}
			e, err := c.Expect(ctx, "hi")
			if err != nil || len(e.Args) != 2 || string(e.Args[0]) != `"hello bob"` || string(e.Args[1]) != "2" {
				t.Fatalf("event = %+v, %v", e, err)
			}

			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if !errors.Is(c.Err(), ErrClosed) {
				t.Errorf("Err after Close = %v, want ErrClosed", c.Err())
			}
			if _, ok := <-c.Events(); ok {
				t.Error("Events not closed after Close")
			}
			waitFor(t, "server disconnect", func() bool { return s.disconnects.Load() == 1 })
		})
	}
}

func TestServerCloses(t *testing.T) {
	for _, d := range dials {
		t.Run(d.name, func(t *testing.T) {
			s := newServer(t, nil)
			ctx := ctxT(t)
			c := dial(t, s.URL, d.opts)
			if err := c.Emit(ctx, "bye"); err != nil {
				t.Fatal(err)
			}
			select {
			case <-c.Done():
			case <-ctx.Done():
				t.Fatal("client did not see the server close")
			}
			if c.Err() == nil || errors.Is(c.Err(), ErrClosed) {
				t.Errorf("Err = %v, want the transport's error", c.Err())
			}
			if _, err := c.Next(ctx); err == nil {
				t.Error("Next after close: want an error")
			}
		})
	}
}

// TestPings keeps a connection past several ping timeouts: the client's
// pings are what keep it open.
func TestPings(t *testing.T) {
	for _, d := range dials {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, &engineio.Options{PingInterval: 50 * time.Millisecond, PingTimeout: 500 * time.Millisecond})
			ctx := ctxT(t)
			c := dial(t, s.URL, d.opts)
			waitFor(t, "pongs", func() bool { return c.Pongs() >= 30 }) // ≥ 1.5 s: three timeouts
			if _, err := c.Call(ctx, "echo", 1); err != nil {
				t.Fatalf("echo after pings: %v", err)
			}

			quiet := dial(t, s.URL, Options{Transport: d.opts.Transport, NoPing: true})
			select {
			case <-quiet.Done(): // the server timed out a client that never pings
			case <-ctx.Done():
				t.Fatal("a client that never pings was not timed out")
			}
		})
	}
}

func TestDialRefused(t *testing.T) {
	s := newServer(t, nil)
	for _, d := range dials {
		t.Run(d.name, func(t *testing.T) {
			opts := d.opts
			opts.Header = http.Header{"X-Refuse": {"1"}}
			_, err := Dial(ctxT(t), s.URL, opts)
			var se *StatusError
			if !errors.As(err, &se) || se.Code != http.StatusForbidden || !strings.Contains(se.Body, "refused") {
				t.Fatalf("Dial = %v, want a 403 StatusError", err)
			}
		})
	}
	if n := s.connects.Load(); n != 0 {
		t.Errorf("%d connections, want 0", n)
	}
}

func TestRawAndPost(t *testing.T) {
	s := newServer(t, nil)
	ctx := ctxT(t)
	c := dial(t, s.URL, Options{Transport: Polling})
	// Two packets in one POST, then one in a raw POST: the server sees all.
	if err := c.SendRaw(ctx, `42["hello","a"]`, `42["hello","b"]`); err != nil {
		t.Fatal(err)
	}
	r, err := c.Post(ctx, "text/plain;charset=UTF-8", bytes.NewReader(EncodeText(`42["hello","c"]`)))
	if err != nil || r.Status != http.StatusOK || r.Body != "ok" {
		t.Fatalf("Post = %+v, %v", r, err)
	}
	for _, want := range []string{`"hello a"`, `"hello b"`, `"hello c"`} {
		e, err := c.Expect(ctx, "hi")
		if err != nil || string(e.Args[0]) != want {
			t.Fatalf("event = %+v, %v; want %s", e, err, want)
		}
	}
	r, err = c.Post(ctx, "application/json", strings.NewReader("{}"))
	if err != nil || r.Status != http.StatusBadRequest {
		t.Fatalf("Post with a bad content type = %+v, %v; want 400", r, err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
