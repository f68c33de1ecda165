package googollee_test

// The binding's tests drive a real server (httptest, the Manager's
// Middleware, a MemoryStore, login and logout handlers) with a real
// socket.io v2 client (internal/sio2) over websocket and long-polling.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/googollee/go-socket.io/engineio"
	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/googollee"
	"github.com/iosessions/iosessions/internal/conformance"
	"github.com/iosessions/iosessions/internal/sio2"
)

// TestMain fails the run when goroutines leak. One engine goroutine is
// exempt: go-socket.io's websocket transport starts a 30-second "did you
// forget to Close() the ReadCloser" nag timer for every frame it reads,
// and its socket.io parser never closes a frame whose header does not
// parse (TestMalformedPackets), so that timer outlives the connection by
// up to 30 s. Nothing of ours can stop it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/googollee/go-socket.io/engineio/transport/websocket.newRcWrapper.func1"))
}

// Fixed store keys, so tests can forge cookies of sessions that do not exist.
var (
	hashKey  = []byte("0123456789abcdef0123456789abcdef")
	blockKey = []byte("fedcba9876543210fedcba9876543210")
)

var modes = []iosessions.Mode{iosessions.PerConnection, iosessions.PerMessage}

var transports = []sio2.Transport{sio2.WebSocket, sio2.Polling}

// env is one server under test.
type env struct {
	URL   string
	m     *iosessions.Manager
	srv   *googollee.Server
	store *iosessions.MemoryStore
	http  *http.Client

	mu     sync.Mutex
	errs   []error // what Config.ErrorHandler got
	closes int     // disconnect handler calls
}

type envOptions struct {
	Mode    iosessions.Mode
	Config  func(*iosessions.Config)
	Options *googollee.Options
	// Setup registers handlers before the server serves; it runs after the
	// defaults, so it may replace them.
	Setup func(e *env)
}

// newEnv starts a server for the engine-specific tests (the behaviour
// cases are in internal/conformance). Its default handlers: sconnection
// emits "welcome" with the user; smessage
// "incr" adds one to "count" and acks it, "whoami" acks the user and
// count; event "echo" acks its argument. Everything stops at the end of
// the test.
func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{store: iosessions.NewMemoryStore(hashKey, blockKey)}
	cfg := iosessions.Config{Mode: o.Mode, ErrorHandler: func(err error) {
		e.mu.Lock()
		e.errs = append(e.errs, err)
		e.mu.Unlock()
	}}
	if o.Config != nil {
		o.Config(&cfg)
	}
	m, err := iosessions.New(e.store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := googollee.NewServer(m, o.Options)
	if err != nil {
		t.Fatal(err)
	}
	e.m, e.srv = m, srv
	m.OnConnection(func(s *iosessions.Socket, sess *iosessions.Session) {
		u, _ := sess.Values["user"].(string)
		_ = s.Emit("welcome", u)
	})
	m.OnDisconnect(func(*iosessions.Socket, string) {
		e.mu.Lock()
		e.closes++
		e.mu.Unlock()
	})
	googollee.OnMessage(srv, "incr", func(_ *iosessions.Socket, sess *iosessions.Session, _ json.RawMessage) (int, error) {
		n, _ := sess.Values["count"].(int)
		sess.Values["count"] = n + 1
		return n + 1, nil
	})
	googollee.OnMessage(srv, "whoami", func(_ *iosessions.Socket, sess *iosessions.Session, _ json.RawMessage) (profile, error) {
		u, _ := sess.Values["user"].(string)
		n, _ := sess.Values["count"].(int)
		return profile{User: u, Count: n}, nil
	})
	googollee.OnEvent(srv, "echo", func(_ *iosessions.Socket, in json.RawMessage) (json.RawMessage, error) {
		if in == nil {
			return json.RawMessage("null"), nil
		}
		return in, nil
	})
	if o.Setup != nil {
		o.Setup(e)
	}

	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve() }()
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", m.Middleware(srv))
	mux.HandleFunc("POST /login", e.login)
	mux.HandleFunc("POST /logout", e.logout)
	ts := httptest.NewServer(mux)
	e.URL, e.http = ts.URL, ts.Client()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		_ = srv.Close()
		<-served
		ts.Close()
		e.store.Close()
	})
	return e
}

type profile struct {
	User  string `json:"user"`
	Count int    `json:"count"`
}

func (e *env) login(w http.ResponseWriter, r *http.Request) {
	sess, err := e.m.Renew(r.Context(), w, r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	sess.Values["user"] = r.PostFormValue("user")
	sess.Values["count"] = 0
	if err := sess.Save(r, w); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	}
}

func (e *env) logout(w http.ResponseWriter, r *http.Request) {
	if err := e.m.Destroy(r.Context(), w, r); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// loginAs logs user in over HTTP and returns the session cookie.
func (e *env) loginAs(t *testing.T, user string) *http.Cookie {
	t.Helper()
	resp, err := e.http.PostForm(e.URL+"/login", url.Values{"user": {user}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c := sessionCookie(resp)
	if c == nil {
		t.Fatalf("login: %s, no session cookie", resp.Status)
	}
	return c
}

// sessionCookie returns the non-empty "session" cookie resp sets, or nil.
func sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "session" && c.Value != "" {
			return c
		}
	}
	return nil
}

// post sends an empty POST to path with cookie and returns the status.
func (e *env) post(t *testing.T, path string, cookie *http.Cookie) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.URL+path, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// dial connects a client that is closed at the end of the test.
func (e *env) dial(t *testing.T, tr sio2.Transport, h http.Header, q url.Values) *sio2.Client {
	t.Helper()
	c, err := sio2.Dial(ctxT(t), e.URL, sio2.Options{Transport: tr, Header: h, Query: q})
	if err != nil {
		t.Fatalf("dial %s: %v", tr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (e *env) reported() []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]error(nil), e.errs...)
}

func (e *env) disconnects() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closes
}

func withCookie(c *http.Cookie) http.Header {
	return http.Header{"Cookie": {c.Name + "=" + c.Value}}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// call sends event with arg and returns the ack's first argument as JSON.
func call(t *testing.T, c *sio2.Client, event string, arg any) string {
	t.Helper()
	args, err := c.Call(ctxT(t), event, arg)
	if err != nil {
		t.Fatalf("%s: %v", event, err)
	}
	if len(args) != 1 {
		t.Fatalf("%s: ack %s, want one argument", event, args)
	}
	return string(args[0])
}

// expectEvent waits for the event name and returns its first argument.
func expectEvent(t *testing.T, c *sio2.Client, name string) string {
	t.Helper()
	ev, err := c.Expect(ctxT(t), name)
	if err != nil {
		t.Fatalf("waiting for %q: %v", name, err)
	}
	if len(ev.Args) == 0 {
		return ""
	}
	return string(ev.Args[0])
}

// waitClosed fails unless c's connection ends before deadline.
func waitClosed(t *testing.T, c *sio2.Client, deadline time.Time) {
	t.Helper()
	select {
	case <-c.Done():
		return
	case <-time.After(time.Until(deadline)):
	}
	select {
	case <-c.Done():
	default:
		t.Fatalf("connection still open %v after the deadline", time.Since(deadline))
	}
}

// TestNewServerOptions: bad options are errors, never panics.
func TestNewServerOptions(t *testing.T) {
	m, err := iosessions.New(nil, iosessions.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	eo := func(interval, timeout time.Duration) *googollee.Options {
		return &googollee.Options{Engine: &engineio.Options{PingInterval: interval, PingTimeout: timeout}}
	}
	for _, tc := range []struct {
		name   string
		m      *iosessions.Manager
		opts   *googollee.Options
		errHas string // "" means no error
	}{
		{"nil options", m, nil, ""},
		{"zero options", m, &googollee.Options{}, ""},
		{"valid pings", m, eo(time.Second, 2*time.Second), ""},
		{"nil Manager", nil, nil, "nil Manager"},
		{"timeout equals interval", m, eo(time.Second, time.Second), "PingTimeout"},
		{"timeout below interval", m, eo(2*time.Second, time.Second), "PingTimeout"},
		{"interval above default timeout", m, eo(90*time.Second, 0), "PingTimeout"},
		{"timeout below default interval", m, eo(0, 10*time.Second), "PingTimeout"},
		{"negative interval", m, eo(-time.Second, 0), "negative"},
		{"negative timeout", m, eo(0, -time.Second), "negative"},
		{"negative max message", m, &googollee.Options{MaxMessageBytes: -1}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var srv *googollee.Server
			var err error
			func() {
				defer func() {
					if v := recover(); v != nil {
						t.Fatalf("NewServer panicked: %v", v)
					}
				}()
				srv, err = googollee.NewServer(tc.m, tc.opts)
			}()
			if tc.errHas == "" {
				if err != nil || srv == nil {
					t.Fatalf("NewServer = %v, %v; want a server", srv, err)
				}
				_ = srv.Close()
				return
			}
			if err == nil || srv != nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("NewServer = %v, %v; want an error about %s", srv, err, tc.errHas)
			}
		})
	}
}

// TestClosedServerRefuses: after Close, engine requests get 503 and the
// rest of the site keeps answering.
func TestClosedServerRefuses(t *testing.T) {
	e := newEnv(t, envOptions{})
	_ = e.srv.Close()
	for _, tr := range transports {
		_, err := sio2.Dial(ctxT(t), e.URL, sio2.Options{Transport: tr})
		var se *sio2.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable {
			t.Errorf("%s after Close: %v, want 503", tr, err)
		}
	}
	e.loginAs(t, "alice")
}

// Polling clients are not offered the upgrade to websocket, which the
// engine loses events across, unless Options.AllowUpgrade says so.
func TestUpgradeOffered(t *testing.T) {
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprint("AllowUpgrade=", allow), func(t *testing.T) {
			// A short ping timeout: the engine keeps the session this
			// test leaves open until then, and the cleanup waits for it.
			e := newEnv(t, envOptions{Options: &googollee.Options{
				AllowUpgrade: allow,
				Engine:       &engineio.Options{PingInterval: 200 * time.Millisecond, PingTimeout: 500 * time.Millisecond},
			}})
			res, err := e.http.Get(e.URL + "/socket.io/?EIO=3&transport=polling&b64=1")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if !strings.Contains(string(body), `"sid":`) {
				t.Fatalf("handshake answered %d %q", res.StatusCode, body)
			}
			offered := strings.Contains(string(body), `"upgrades":["websocket"]`)
			if offered != allow {
				t.Errorf("handshake %q: websocket upgrade offered = %v, want %v", body, offered, allow)
			}
		})
	}
}

// With Options.AllowUpgrade, a socket that began polling reports its
// transport as "websocket" once it upgraded: Conn.Transport reads the
// engine's connection of the moment.
func TestTransportAfterUpgrade(t *testing.T) {
	// A short ping timeout: once upgraded, the engine drops this test's
	// websocket, which does not ping, soon (the cleanup waits for it);
	// long enough for the polling client's pings on a loaded machine.
	e := newEnv(t, envOptions{Options: &googollee.Options{
		AllowUpgrade: true,
		Engine:       &engineio.Options{PingInterval: 200 * time.Millisecond, PingTimeout: 2 * time.Second},
	}})
	cookie := e.loginAs(t, "ann")
	c := e.dial(t, sio2.Polling, withCookie(cookie), nil)
	if _, err := c.Expect(ctxT(t), "welcome"); err != nil {
		t.Fatal(err)
	}
	socks := e.m.Sockets()
	if len(socks) != 1 {
		t.Fatalf("%d sockets, want 1", len(socks))
	}
	if tr := socks[0].Info().Transport; tr != "polling" {
		t.Fatalf("before the upgrade: transport %q, want polling", tr)
	}

	// The engine.io 3 upgrade: a websocket with the session's sid, the
	// probe, then the upgrade packet.
	u := "ws" + strings.TrimPrefix(e.URL, "http") + "/socket.io/?EIO=3&transport=websocket&sid=" + url.QueryEscape(c.SID)
	ws, _, err := websocket.DefaultDialer.DialContext(ctxT(t), u, withCookie(cookie))
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte("2probe")); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != "3probe" {
		t.Fatalf("probe answered %q, %v", msg, err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte("5")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		tr := socks[0].Info().Transport
		if tr == "websocket" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the upgrade: transport %q, want websocket", tr)
		}
	}
}

// TestCloseDuringHandshake: Server.Close while a handshake is in flight
// must not bring the process down. go-socket.io's handshake hands the new
// session to Serve on a channel from a goroutine of its own; engine Close
// closes that channel, so a handshake that finishes after Close panics
// with "send on closed channel", on a goroutine nobody can recover. The
// child process holds a polling handshake in the middle (test hook),
// closes the server and lets the handshake finish a moment later: Close
// must wait for it.
func TestCloseDuringHandshake(t *testing.T) { conformance.InChild(t, closeDuringHandshake) }

func closeDuringHandshake(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	googollee.SetTestHookOpen(func() {
		once.Do(func() { close(entered); <-release })
	})
	t.Cleanup(func() { googollee.SetTestHookOpen(nil) })
	e := newEnv(t, envOptions{})
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		resp, err := e.http.Get(e.URL + "/socket.io/?EIO=3&transport=polling")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	<-entered
	time.AfterFunc(100*time.Millisecond, func() { close(release) })
	if err := e.srv.Close(); err != nil {
		t.Error(err)
	}
	<-answered
	time.Sleep(200 * time.Millisecond) // a late hand-over would panic now
}
