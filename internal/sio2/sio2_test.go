package sio2

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	socketio "github.com/googollee/go-socket.io"
	"github.com/googollee/go-socket.io/engineio"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"go.uber.org/goleak"
)

// TestMain fails the run when goroutines leak. Two leaks of zishang520
// v3.0.2, the server's, not the client's, are ignored: its timers leave a
// goroutine behind when stopped before it starts waiting (utils.Timer),
// and a session the client closes keeps its transport's write queue
// (transport.OnClose marks the transport closed before the socket's
// clearTransport calls Close, which then skips DoClose).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/zishang520/socket.io/v3/pkg/utils.SetTimeout.func1"),
		goleak.IgnoreAnyFunction("github.com/zishang520/socket.io/v3/pkg/queue.(*Queue).loop"))
}

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

func TestPayload4(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"2"}, "2"},
		{[]string{"42[\"a\"]", "3"}, "42[\"a\"]\x1e3"},
		{[]string{"4é", "4😀"}, "4é\x1e4😀"},
	} {
		if got := string(EncodeText4(tc.in...)); got != tc.want {
			t.Errorf("EncodeText4(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := DecodePayload4([]byte(tc.want)); !reflect.DeepEqual(got, tc.in) {
			t.Errorf("DecodePayload4(%q) = %q, want %q", tc.want, got, tc.in)
		}
	}
	// Binary packets ("b" and base64) and empty ones are skipped.
	if got := DecodePayload4([]byte("bAQID\x1e\x1e40{}\x1e")); !reflect.DeepEqual(got, []string{"40{}"}) {
		t.Errorf("DecodePayload4 = %q, want [40{}]", got)
	}
}

func TestConnectError(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ConnectError
	}{
		{`{"message":"nope"}`, ConnectError{Message: "nope"}},
		{`{"message":"nope","data":{"code":7}}`, ConnectError{Message: "nope", Data: json.RawMessage(`{"code":7}`)}},
		{`"old"`, ConnectError{Message: "old"}},
		{`garbage`, ConnectError{Message: "garbage"}},
	} {
		got := connectError(tc.in)
		if got.Message != tc.want.Message || string(got.Data) != string(tc.want.Data) {
			t.Errorf("connectError(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
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
	c, err := dialRetry(t, url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", opts.Transport, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// dialRetry is Dial, but an EIO=4 namespace connect left unanswered for
// 2 s (a race of zishang520, see ErrConnectUnanswered) is logged and
// retried, twice.
func dialRetry(t *testing.T, url string, opts Options) (*Client, error) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ctx := ctxT(t)
		if opts.EIO == 4 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
		}
		c, err := Dial(ctx, url, opts)
		// The bare v4 engine leaves a namespace connect unanswered now and
		// then, more often on a loaded machine (three in a row once in a
		// clean-clone CI run, TestDialRefused4): up to six tries.
		if !errors.Is(err, ErrConnectUnanswered) || attempt == 6 {
			return c, err
		}
		t.Logf("dial %s, attempt %d: %v", opts.Transport, attempt, err)
	}
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

// server4 is a bare zishang520/socket.io v3 server, the socket.io v4
// server that EIO=4 clients reach: echo acks its arguments, hello makes
// the server emit "hi", bye makes it close the connection, kick makes it
// disconnect the socket.
type server4 struct {
	URL         string
	connects    atomic.Int32
	disconnects atomic.Int32
	seen        atomic.Value // query token|X-Test header|auth JSON|socket id of the last connection
	ready       sync.Map     // socket id → struct{}: its handlers are registered
}

// server4Options configure newServer4.
type server4Options struct {
	pingInterval, pingTimeout time.Duration // default the engine's (25 s, 20 s)
	middleware                func(*socket.Socket, func(*socket.ExtendedError))
}

func newServer4(t *testing.T, o server4Options) *server4 {
	t.Helper()
	s := &server4{}
	so := socket.DefaultServerOptions()
	so.SetServeClient(false)
	if o.pingInterval > 0 {
		so.SetPingInterval(o.pingInterval)
		so.SetPingTimeout(o.pingTimeout)
	}
	io := socket.NewServer(nil, so)
	h := io.ServeHandler(so)
	if o.middleware != nil {
		io.Use(o.middleware)
	}
	_ = io.On("connection", func(args ...any) {
		sk := args[0].(*socket.Socket)
		r := sk.Request().Request()
		auth, _ := json.Marshal(sk.Handshake().Auth)
		s.seen.Store(r.URL.Query().Get("token") + "|" + r.Header.Get("X-Test") + "|" + string(auth) + "|" + string(sk.Id()))
		defer s.ready.Store(string(sk.Id()), struct{}{})
		defer s.connects.Add(1)
		_ = sk.On("disconnect", func(...any) { s.disconnects.Add(1) })
		_ = sk.On("echo", func(args ...any) {
			if ack, ok := args[len(args)-1].(socket.Ack); ok {
				ack(args[:len(args)-1], nil)
			}
		})
		_ = sk.On("hello", func(args ...any) {
			name, _ := args[0].(string)
			_ = sk.Emit("hi", "hello "+name, 2)
		})
		_ = sk.On("bye", func(...any) { sk.Disconnect(true) })
		_ = sk.On("kick", func(...any) { sk.Disconnect(false) })
	})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Refuse") != "" {
			http.Error(w, "refused", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		done := make(chan struct{})
		io.Close(func(error) { close(done) })
		<-done
		ts.Close()
	})
	s.URL = ts.URL
	return s
}

// dial connects to the server and waits until the server's connection
// handler has run. zishang520 v3.0.2 writes the connect answer before it
// registers the socket with its client and runs the connection handlers:
// a packet the client sends at once may be dropped, or close the
// connection ("invalid state"). Real clients that emit on "connect" race
// the same way; the tests wait.
func (s *server4) dial(t *testing.T, opts Options) *Client {
	t.Helper()
	c := dial(t, s.URL, opts)
	waitFor(t, "the server's connection handler", func() bool {
		_, ok := s.ready.Load(c.SocketID)
		return ok
	})
	return c
}

var dials4 = []struct {
	name string
	opts Options
}{
	{"websocket", Options{EIO: 4, Transport: WebSocket}},
	{"polling", Options{EIO: 4, Transport: Polling}},
}

func TestClient4(t *testing.T) {
	for _, d := range dials4 {
		t.Run(d.name, func(t *testing.T) {
			s := newServer4(t, server4Options{})
			ctx := ctxT(t)
			opts := d.opts
			opts.Header = http.Header{"X-Test": {"header"}}
			opts.Query = map[string][]string{"token": {"tok"}}
			opts.Auth = map[string]any{"iosessions_token": "secret"}
			c := s.dial(t, opts)
			if c.SID == "" || c.PingInterval <= 0 || c.PingTimeout <= 0 || c.MaxPayload <= 0 {
				t.Errorf("open packet: sid %q, interval %v, timeout %v, maxPayload %d", c.SID, c.PingInterval, c.PingTimeout, c.MaxPayload)
			}
			if !strings.Contains(c.URL(Polling), "EIO=4") {
				t.Errorf("URL = %s, want EIO=4", c.URL(Polling))
			}
			want := `tok|header|{"iosessions_token":"secret"}|` + c.SocketID
			if got := s.seen.Load(); c.SocketID == "" || c.SocketID == c.SID || got != want {
				t.Errorf("server saw %q, want %q (engine sid %q)", got, want, c.SID)
			}

			args, err := c.Call(ctx, "echo", map[string]any{"a": "b"}, 3)
			if err != nil || len(args) != 2 || string(args[0]) != `{"a":"b"}` || string(args[1]) != "3" {
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

func TestServerCloses4(t *testing.T) {
	for _, d := range dials4 {
		for _, ev := range []string{"bye", "kick"} {
			t.Run(d.name+"/"+ev, func(t *testing.T) {
				s := newServer4(t, server4Options{})
				ctx := ctxT(t)
				c := s.dial(t, d.opts)
				// Over polling the POST of bye may end 429: the engine
				// closes the session while the POST that asked for it is
				// in flight, and aborts that POST (as the Node engine).
				var se *StatusError
				if err := c.Emit(ctx, ev); err != nil && !(errors.As(err, &se) && se.Code == http.StatusTooManyRequests) {
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
				if ev == "kick" && !strings.Contains(c.Err().Error(), "server disconnected the socket") {
					t.Errorf("Err = %v, want a socket.io disconnect", c.Err())
				}
				if _, err := c.Next(ctx); err == nil {
					t.Error("Next after close: want an error")
				}
			})
		}
	}
}

// TestPings4 keeps a connection past several ping intervals and timeouts:
// the client's pongs are what keep it open. A client that does not answer
// is dropped by the server; over websocket it sees the close, over polling
// (whose pending GET zishang520 never answers) its own ping timeout.
func TestPings4(t *testing.T) {
	for _, d := range dials4 {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			s := newServer4(t, server4Options{pingInterval: 200 * time.Millisecond, pingTimeout: 300 * time.Millisecond})
			ctx := ctxT(t)
			c := s.dial(t, d.opts)
			waitFor(t, "pings", func() bool { return c.Pings() >= 6 }) // ≥ 1.2 s: four timeouts
			if _, err := c.Call(ctx, "echo", 1); err != nil {
				t.Fatalf("echo after pings: %v", err)
			}
			if c.Pongs() != 0 {
				t.Errorf("%d pongs from an EIO=4 server", c.Pongs())
			}

			if d.opts.Transport == Polling && raceEnabled {
				// zishang520 never answers the pending GET of a session
				// it times out, and ending that GET, by the client or by
				// the server's Close, trips a data race inside it
				// (HttpContext.Cleanup).
				t.Log("the quiet polling client is not tested under the race detector")
				return
			}
			quiet := dial(t, s.URL, Options{EIO: 4, Transport: d.opts.Transport, NoPing: true})
			select {
			case <-quiet.Done():
			case <-ctx.Done():
				t.Fatal("a client that never pongs did not end")
			}
			if quiet.Pings() == 0 {
				t.Error("the quiet client saw no ping")
			}
			t.Logf("the quiet client ended: %v", quiet.Err())
			waitFor(t, "the server to drop the quiet client", func() bool { return s.disconnects.Load() == 1 })
			select {
			case <-c.Done():
				t.Fatalf("the answering client ended: %v", c.Err())
			default:
			}
		})
	}
}

func TestDialRefused4(t *testing.T) {
	s := newServer4(t, server4Options{})
	nope := newServer4(t, server4Options{middleware: func(_ *socket.Socket, next func(*socket.ExtendedError)) {
		next(socket.NewExtendedError("nope", map[string]any{"code": 7}))
	}})
	for _, d := range dials4 {
		t.Run(d.name+"/http", func(t *testing.T) {
			opts := d.opts
			opts.Header = http.Header{"X-Refuse": {"1"}}
			_, err := Dial(ctxT(t), s.URL, opts)
			var se *StatusError
			if !errors.As(err, &se) || se.Code != http.StatusForbidden || !strings.Contains(se.Body, "refused") {
				t.Fatalf("Dial = %v, want a 403 StatusError", err)
			}
		})
		t.Run(d.name+"/namespace", func(t *testing.T) {
			_, err := dialRetry(t, nope.URL, d.opts)
			var ce *ConnectError
			if !errors.As(err, &ce) || ce.Message != "nope" || string(ce.Data) != `{"code":7}` || !strings.Contains(err.Error(), "refused the namespace connect") {
				t.Fatalf("Dial = %v, want a ConnectError nope", err)
			}
		})
	}
	if n := s.connects.Load() + nope.connects.Load(); n != 0 {
		t.Errorf("%d connections, want 0", n)
	}
}

// TestDialUnanswered dials a server that never answers the namespace
// connect (its middleware never calls next): Dial fails at the end of its
// context, saying so.
func TestDialUnanswered(t *testing.T) {
	s := newServer4(t, server4Options{middleware: func(*socket.Socket, func(*socket.ExtendedError)) {}})
	for _, d := range dials4 {
		t.Run(d.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err := Dial(ctx, s.URL, d.opts)
			if !errors.Is(err, ErrConnectUnanswered) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not answer the namespace connect") {
				t.Fatalf("Dial = %v, want a deadline on the namespace connect", err)
			}
		})
	}
}

// TestPingTimeout4 dials a server whose pings stop (its engine speaks
// only the open packet and the connect answer): the client ends with
// ErrPingTimeout after PingInterval+PingTimeout.
func TestPingTimeout4(t *testing.T) {
	var polls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Query().Get("sid") == "":
			fmt.Fprint(w, `0{"sid":"s","upgrades":[],"pingInterval":100,"pingTimeout":100,"maxPayload":1000}`)
		case r.Method == http.MethodPost:
			fmt.Fprint(w, "ok")
		case polls.Add(1) == 1:
			fmt.Fprint(w, `40{"sid":"x"}`)
		default:
			<-r.Context().Done()
		}
	}))
	defer ts.Close()
	c, err := Dial(ctxT(t), ts.URL, Options{EIO: 4, Transport: Polling})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.SocketID != "x" {
		t.Errorf("SocketID = %q, want x", c.SocketID)
	}
	start := time.Now()
	<-c.Done()
	if !errors.Is(c.Err(), ErrPingTimeout) || time.Since(start) > 2*time.Second {
		t.Fatalf("Err = %v after %v, want ErrPingTimeout", c.Err(), time.Since(start))
	}
}

func TestDialBadEIO(t *testing.T) {
	if _, err := Dial(ctxT(t), "http://127.0.0.1:1", Options{EIO: 5}); err == nil || !strings.Contains(err.Error(), "unsupported") {
		t.Fatalf("Dial with EIO 5 = %v", err)
	}
}

func TestRawAndPost4(t *testing.T) {
	s := newServer4(t, server4Options{})
	ctx := ctxT(t)
	c := s.dial(t, Options{EIO: 4, Transport: Polling})
	// Two packets in one POST, then one in a raw POST: the server sees all.
	if err := c.SendRaw(ctx, `42["hello","a"]`, `42["hello","b"]`); err != nil {
		t.Fatal(err)
	}
	r, err := c.Post(ctx, "text/plain;charset=UTF-8", bytes.NewReader(c.Payload(`42["hello","c"]`)))
	if err != nil || r.Status != http.StatusOK || r.Body != "ok" {
		t.Fatalf("Post = %+v, %v", r, err)
	}
	for _, want := range []string{`"hello a"`, `"hello b"`, `"hello c"`} {
		e, err := c.Expect(ctx, "hi")
		if err != nil || string(e.Args[0]) != want {
			t.Fatalf("event = %+v, %v; want %s", e, err, want)
		}
	}
	// A body over maxPayload is refused (413); the session goes on.
	big := c.Payload(`42["hello","` + strings.Repeat("x", c.MaxPayload) + `"]`)
	r, err = c.Post(ctx, "text/plain;charset=UTF-8", bytes.NewReader(big))
	if err != nil || r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("Post over maxPayload = %+v, %v; want 413", r, err)
	}
	if _, err := c.Call(ctx, "echo", 1); err != nil {
		t.Fatalf("echo after a refused POST: %v", err)
	}
}

// TestConnectBurst4 dials many EIO=4 clients at once. zishang520 v3.0.2
// leaves a namespace connect unanswered now and then under such bursts;
// Dial then fails with ErrConnectUnanswered, which this test counts and
// logs. Any other failure fails the test.
func TestConnectBurst4(t *testing.T) {
	if testing.Short() {
		t.Skip("burst")
	}
	for _, d := range dials4 {
		t.Run(d.name, func(t *testing.T) {
			if d.opts.Transport == Polling && raceEnabled {
				// 50 polling clients closing at once abandon pending polls,
				// which trips the engine's own data race (HttpContext
				// against polling.onPollRequest); it failed a CI run.
				t.Skip("the v4 engine's polling data race")
			}
			s := newServer4(t, server4Options{})
			const n = 50
			var unanswered atomic.Int32
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for range n {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
					defer cancel()
					c, err := Dial(ctx, s.URL, d.opts)
					switch {
					case errors.Is(err, ErrConnectUnanswered):
						unanswered.Add(1)
					case err != nil:
						errs <- err
					default:
						if _, err := c.Call(ctx, "echo", 1); err != nil {
							errs <- fmt.Errorf("echo: %w", err)
						}
						_ = c.Close()
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			t.Logf("%d of %d namespace connects unanswered", unanswered.Load(), n)
		})
	}
}
