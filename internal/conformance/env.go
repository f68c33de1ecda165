package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	"github.com/iosessions/iosessions"
)

// Fixed store keys, so cases can forge cookies of sessions that do not
// exist.
var (
	hashKey  = []byte("0123456789abcdef0123456789abcdef")
	blockKey = []byte("fedcba9876543210fedcba9876543210")
)

var modes = []iosessions.Mode{iosessions.PerConnection, iosessions.PerMessage}

// env is one server under test: the binding's server behind the Manager's
// Middleware, on a MemoryStore (behind a switch that can make it fail),
// with login, rename and logout handlers.
type env struct {
	b     Binding
	URL   string
	m     *iosessions.Manager
	srv   Server
	mem   *iosessions.MemoryStore
	store *switchStore
	// backend is the Manager's store: store, or envOptions.Store.
	backend sessions.Store
	http    *http.Client

	connects atomic.Int32 // sconnection calls
	incrs    atomic.Int32 // incr handler calls
	users    chan string  // the user each sconnection call saw

	mu       sync.Mutex
	invalids []error // what the sinvalid handler got
	errs     []error // what Config.ErrorHandler got
	closes   int     // disconnect handler calls
}

type envOptions struct {
	Mode iosessions.Mode
	// Store replaces the switchable MemoryStore (it must be a Loader).
	Store  sessions.Store
	Config func(*iosessions.Config)
	// Setup registers handlers before the server serves; it runs after
	// the defaults, so it may replace them.
	Setup func(e *env)
}

// newEnv starts a server. Its handlers: sconnection records the user and
// emits "welcome" with it; sinvalid records the error; smessage "incr"
// adds one to "count" and acks it, "whoami" acks the user and count,
// "set" sets a key, "fail" returns an error; events "echo" (acks its argument) and "shout".
// Everything stops at the end of the test.
func newEnv(t *testing.T, b Binding, o envOptions) *env {
	t.Helper()
	mem := iosessions.NewMemoryStore(hashKey, blockKey)
	e := &env{b: b, mem: mem, store: &switchStore{MemoryStore: mem}, users: make(chan string, 64)}
	e.backend = e.store
	if o.Store != nil {
		e.backend = o.Store
	}
	cfg := iosessions.Config{Mode: o.Mode, ErrorHandler: func(err error) {
		e.mu.Lock()
		e.errs = append(e.errs, err)
		e.mu.Unlock()
	}, User: userOf}
	if o.Config != nil {
		o.Config(&cfg)
	}
	m, err := iosessions.New(e.backend, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := b.NewServer(m)
	if err != nil {
		t.Fatal(err)
	}
	e.m, e.srv = m, srv
	m.OnConnection(func(s *iosessions.Socket, sess *iosessions.Session) {
		e.connects.Add(1)
		u, _ := sess.Values["user"].(string)
		select {
		case e.users <- u:
		default: // a case that does not read them
		}
		_ = s.Emit("welcome", u)
	})
	m.OnInvalid(func(s *iosessions.Socket, err error) {
		e.mu.Lock()
		e.invalids = append(e.invalids, err)
		e.mu.Unlock()
	})
	m.OnDisconnect(func(*iosessions.Socket, string) {
		e.mu.Lock()
		e.closes++
		e.mu.Unlock()
	})
	srv.Message("incr", func(_ *iosessions.Socket, sess *iosessions.Session, _ json.RawMessage) (any, error) {
		e.incrs.Add(1)
		n, _ := sess.Values["count"].(int)
		sess.Values["count"] = n + 1
		return n + 1, nil
	})
	srv.Message("whoami", func(_ *iosessions.Socket, sess *iosessions.Session, _ json.RawMessage) (any, error) {
		u, _ := sess.Values["user"].(string)
		n, _ := sess.Values["count"].(int)
		return profile{User: u, Count: n}, nil
	})
	srv.Message("fail", func(_ *iosessions.Socket, sess *iosessions.Session, _ json.RawMessage) (any, error) {
		sess.Values["failed"] = true
		return nil, errors.New("nope")
	})
	srv.Event("echo", func(_ *iosessions.Socket, in json.RawMessage) (any, error) {
		if in == nil {
			return json.RawMessage("null"), nil
		}
		return in, nil
	})
	srv.Typed(TypedHandlers{
		Set: func(_ *iosessions.Socket, sess *iosessions.Session, in SetArg) (SetArg, error) {
			if in.Key == "" {
				return SetArg{}, errors.New("key required")
			}
			sess.Values[in.Key] = in.Value
			return in, nil
		},
		Shout: func(_ *iosessions.Socket, in string) (string, error) {
			return string(bytes.ToUpper([]byte(in))), nil
		},
	})
	if o.Setup != nil {
		o.Setup(e)
	}
	srv.Start()

	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	mux.HandleFunc("POST /login", e.login)
	mux.HandleFunc("POST /rename", e.rename)
	mux.HandleFunc("POST /logout", e.logout)
	mux.HandleFunc("POST /rotate", e.rotate)
	ts := httptest.NewServer(m.Middleware(mux))
	e.URL, e.http = ts.URL, ts.Client()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil && !errors.Is(err, iosessions.ErrStoreUnavailable) {
			t.Errorf("Shutdown: %v", err)
		}
		_ = srv.Close()
		ts.CloseClientConnections()
		ts.Close()
		mem.Close()
	})
	return e
}

// userOf is the suite's Config.User: the "user" value that login sets.
func userOf(values map[any]any) string {
	u, _ := values["user"].(string)
	return u
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
	if n, _ := strconv.Atoi(r.PostFormValue("maxage")); n > 0 {
		sess.Options.MaxAge = n
	}
	if err := sess.Save(r, w); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	}
}

// rename changes the session's user over HTTP, as an app's handler would.
func (e *env) rename(w http.ResponseWriter, r *http.Request) {
	sess, err := e.backend.Get(r, "session")
	if err != nil || sess.IsNew {
		http.Error(w, "no session", http.StatusUnauthorized)
		return
	}
	sess.Values["user"] = r.PostFormValue("user")
	if err := sess.Save(r, w); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	}
}

// rotate gives the session a new id (Manager.Rotate).
func (e *env) rotate(w http.ResponseWriter, r *http.Request) {
	if _, err := e.m.Rotate(r.Context(), w, r); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// rotateAs rotates cookie's session and returns the new cookie.
func (e *env) rotateAs(t *testing.T, cookie *http.Cookie) *http.Cookie {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/rotate", nil)
	req.AddCookie(cookie)
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c := sessionCookie(resp)
	if resp.StatusCode != http.StatusNoContent || c == nil || c.Value == cookie.Value {
		t.Fatalf("rotate: %s, new cookie %v", resp.Status, c != nil)
	}
	return c
}

func (e *env) logout(w http.ResponseWriter, r *http.Request) {
	if err := e.m.Destroy(r.Context(), w, r); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// loginAs logs user in over HTTP and returns the session cookie.
func (e *env) loginAs(t *testing.T, user string, extra ...string) *http.Cookie {
	t.Helper()
	form := url.Values{"user": {user}}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	resp, err := e.http.PostForm(e.URL+"/login", form)
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

// post sends a form POST to path with cookie and returns the status.
func (e *env) post(t *testing.T, path string, cookie *http.Cookie, form url.Values) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.URL+path, bytes.NewBufferString(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
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

// raw sends one HTTP request with header h and returns the response with
// its body read.
func (e *env) raw(t *testing.T, method, u string, h http.Header, body io.Reader) (*http.Response, []byte) {
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
	return resp, b
}

// stored returns the values the store holds for the session cookie, or
// nil when it holds none.
func (e *env) stored(t *testing.T, cookie *http.Cookie) map[any]any {
	t.Helper()
	sess, err := e.backend.(iosessions.Loader).Load(context.Background(), "session", cookie.Value)
	if errors.Is(err, iosessions.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return sess.Values
}

func (e *env) invalidErrs() []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]error(nil), e.invalids...)
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

// nextUser returns the user of the next sconnection call.
func (e *env) nextUser(t *testing.T) string {
	t.Helper()
	select {
	case u := <-e.users:
		return u
	case <-time.After(10 * time.Second):
		t.Fatal("no sconnection call")
		return ""
	}
}

// dial connects a client that is closed at the end of the test.
func (e *env) dial(t *testing.T, tr string, h http.Header, token string) *conn {
	t.Helper()
	c, err := e.tryDial(t, tr, h, token)
	if err != nil {
		t.Fatalf("dial %s %s: %v", e.b.Name, tr, err)
	}
	return c
}

func (e *env) tryDial(t *testing.T, tr string, h http.Header, token string) (*conn, error) {
	t.Helper()
	return e.dialWith(t, DialOptions{Transport: tr, Header: h, Token: token})
}

// dialWith dials with o, recording the events in the conn it returns.
func (e *env) dialWith(t *testing.T, o DialOptions) (*conn, error) {
	t.Helper()
	c := &conn{notify: make(chan struct{}, 1)}
	o.OnEvent = c.record
	cl, err := e.b.Dial(ctxT(t), e.URL, o)
	if err != nil {
		return nil, err
	}
	c.Client = cl
	t.Cleanup(func() { _ = cl.Close() })
	return c, nil
}

// conn is a client with a record of the events it received.
type conn struct {
	Client
	mu     sync.Mutex
	events []event
	taken  int // events before this were consumed by Expect
	notify chan struct{}
}

type event struct {
	name string
	args []json.RawMessage
}

func (c *conn) record(name string, args []json.RawMessage) {
	c.mu.Lock()
	c.events = append(c.events, event{name, args})
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// count returns how many events called name the client received.
func (c *conn) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, ev := range c.events {
		if ev.name == name {
			n++
		}
	}
	return n
}

// expect waits for the next event called name and returns its first
// argument as JSON ("" when it has none).
func (c *conn) expect(t *testing.T, name string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		for c.taken < len(c.events) {
			ev := c.events[c.taken]
			c.taken++
			if ev.name == name {
				c.mu.Unlock()
				if len(ev.args) == 0 {
					return ""
				}
				return string(ev.args[0])
			}
		}
		c.mu.Unlock()
		select {
		case <-c.notify:
		case <-deadline:
			t.Fatalf("no %q event within 10 s; %s", name, c.seen())
		}
	}
}

// seen says what c received and whether its connection ended, for a
// failure: a missing event then tells an sinvalid, a closed connection
// and a silent one apart.
func (c *conn) seen() string {
	c.mu.Lock()
	got := make([]string, len(c.events))
	for i, ev := range c.events {
		got[i] = ev.name
		if len(ev.args) > 0 {
			a := string(ev.args[0])
			if len(a) > 80 {
				a = a[:80] + "…"
			}
			got[i] += " " + a
		}
	}
	c.mu.Unlock()
	state := "still open"
	select {
	case <-c.Done():
		state = "ended"
	default:
	}
	return fmt.Sprintf("received %q; the connection is %s", got, state)
}

// call sends event with args and returns the ack's only argument as JSON.
func (c *conn) call(t *testing.T, event string, args ...any) string {
	t.Helper()
	ctx := ctxT(t)
	ch, err := c.Send(ctx, event, args...)
	if err != nil {
		t.Fatalf("%s: %v", event, err)
	}
	select {
	case a := <-ch:
		if len(a.Args) != 1 {
			t.Fatalf("%s: ack %s, want one argument", event, a.Args)
		}
		return string(a.Args[0])
	case <-ctx.Done():
		t.Fatalf("%s: no ack", event)
	case <-c.Done():
		t.Fatalf("%s: connection closed before the ack", event)
	}
	return ""
}

// open reports whether the connection is still open.
func (c *conn) open() bool {
	select {
	case <-c.Done():
		return false
	default:
		return true
	}
}

// waitClosed fails unless c's connection ends before deadline.
func (c *conn) waitClosed(t *testing.T, deadline time.Time) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(time.Until(deadline)):
		t.Fatalf("connection still open %v after the deadline", time.Since(deadline))
	}
}

// jsonEq reports whether two JSON texts hold the same value, whatever the
// order of object keys (clients re-encode what they decoded).
func jsonEq(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func wantJSON(t *testing.T, what, got, want string) {
	t.Helper()
	if !jsonEq(got, want) {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
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

// tamper changes one character in the middle of a cookie or token.
func tamper(v string) string {
	b := []byte(v)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// switchStore is the env's MemoryStore behind a switch: down, every call
// fails as a store that cannot be reached; slow, every call waits for its
// context to end, as a store that does not answer.
type switchStore struct {
	*iosessions.MemoryStore
	down, slow atomic.Bool
	touches    atomic.Int32 // Touch calls (Config.IdleTimeout)
}

var errDown = errors.New("conformance: store is down")

func (s *switchStore) fail(ctx context.Context) error {
	if s.slow.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	if s.down.Load() {
		return errDown
	}
	return nil
}

func (s *switchStore) Load(ctx context.Context, name, key string) (*sessions.Session, error) {
	if err := s.fail(ctx); err != nil {
		return nil, err
	}
	return s.MemoryStore.Load(ctx, name, key)
}

func (s *switchStore) Update(ctx context.Context, name, id string, fn func(map[any]any)) error {
	if err := s.fail(ctx); err != nil {
		return err
	}
	return s.MemoryStore.Update(ctx, name, id, fn)
}

func (s *switchStore) Touch(ctx context.Context, name, id string) (iosessions.Expiry, error) {
	s.touches.Add(1)
	if err := s.fail(ctx); err != nil {
		return iosessions.Expiry{}, err
	}
	return s.MemoryStore.Touch(ctx, name, id)
}

// openPacket does a raw engine.io handshake over polling with header h and
// returns the engine session id.
func (e *env) openPacket(t *testing.T, h http.Header) string {
	t.Helper()
	resp, body := e.raw(t, http.MethodGet, e.engineURL("polling", ""), h, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("handshake: %d %s", resp.StatusCode, body)
	}
	i, j := bytes.IndexByte(body, '{'), bytes.LastIndexByte(body, '}')
	var open struct {
		SID string `json:"sid"`
	}
	if i < 0 || j < i || json.Unmarshal(body[i:j+1], &open) != nil || open.SID == "" {
		t.Fatalf("handshake: no open packet in %q", body)
	}
	return open.SID
}

// engineURL is the engine's URL for transport and sid ("" for a
// handshake); websocket URLs have the ws scheme.
func (e *env) engineURL(transport, sid string) string {
	u := fmt.Sprintf("%s/socket.io/?EIO=%d&transport=%s", e.URL, e.b.EIO, transport)
	if e.b.EIO == 3 && transport == "polling" {
		u += "&b64=1"
	}
	if sid != "" {
		u += "&sid=" + url.QueryEscape(sid)
	}
	if transport == "websocket" {
		u = "ws" + u[len("http"):]
	}
	return u
}
