package iosessions

import (
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	flag.Parse()
	if *writeFuzzCorpusFlag { // go generate: not a test run
		if err := writeFuzzCorpus(fuzzCorpusDir); err != nil {
			fmt.Fprintln(os.Stderr, "write fuzz corpus:", err)
			os.Exit(1)
		}
		return
	}
	goleak.VerifyTestMain(m)
}

func init() {
	gob.Register(time.Time{})
}

// ---- test double of Conn --------------------------------------------------

// closeEvent is how testConn records Close in its event log, so that tests
// can check what was emitted before the connection was closed.
const closeEvent = "<close>"

type event struct {
	Name string
	Args []any
}

// testConn is an in-memory Conn: it records emitted events (and Close) in
// order, and pokes a channel on every change so that waiters wake up.
type testConn struct {
	id  string
	req *http.Request

	mu     sync.Mutex
	events []event
	closed bool
	rooms  map[string]bool
	acks   []func([]json.RawMessage)
	notify chan struct{}
}

var _ Conn = (*testConn)(nil)

var connSeq atomic.Int64

func newTestConn(r *http.Request) *testConn {
	return &testConn{
		id:     fmt.Sprintf("conn-%d", connSeq.Add(1)),
		req:    r,
		notify: make(chan struct{}, 1),
	}
}

func (c *testConn) ID() string             { return c.id }
func (c *testConn) Request() *http.Request { return c.req }

func (c *testConn) Emit(ev string, args ...any) error {
	c.mu.Lock()
	c.events = append(c.events, event{Name: ev, Args: append([]any(nil), args...)})
	c.mu.Unlock()
	c.poke()
	return nil
}

// EmitAck records the event; the ack is kept in acks for the test to call.
func (c *testConn) EmitAck(ev string, args []any, _ time.Duration, ack func([]json.RawMessage)) error {
	c.mu.Lock()
	c.acks = append(c.acks, ack)
	c.mu.Unlock()
	return c.Emit(ev, args...)
}

func (c *testConn) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		c.events = append(c.events, event{Name: closeEvent})
	}
	c.mu.Unlock()
	c.poke()
	return nil
}

func (c *testConn) Join(room string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rooms == nil {
		c.rooms = make(map[string]bool)
	}
	c.rooms[room] = true
	return nil
}

func (c *testConn) Leave(room string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.rooms, room)
	return nil
}

// Rooms returns the rooms c is in.
func (c *testConn) Rooms() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for r := range c.rooms {
		out = append(out, r)
	}
	return out
}

func (c *testConn) poke() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// Events returns a copy of the event log.
func (c *testConn) Events() []event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]event(nil), c.events...)
}

// Named returns the events called name.
func (c *testConn) Named(name string) []event {
	var out []event
	for _, e := range c.Events() {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

func (c *testConn) IsClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// waitEvent waits (generously) for the first event called name.
func (c *testConn) waitEvent(t testing.TB, name string) event {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		if evs := c.Named(name); len(evs) > 0 {
			return evs[0]
		}
		select {
		case <-c.notify:
		case <-time.After(5 * time.Millisecond):
		case <-deadline.C:
			t.Fatalf("conn %s: no %q event within %v; events: %v", c.id, name, waitLimit, c.Events())
		}
	}
}

func (c *testConn) waitClosed(t testing.TB) {
	t.Helper()
	c.waitEvent(t, closeEvent)
}

// waitLimit bounds every wait of these tests. It is generous on purpose:
// the tests assert behaviour, not speed.
const waitLimit = 10 * time.Second

// eventually polls cond until it holds or waitLimit passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// recv receives from ch within waitLimit.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
		panic("unreachable")
	}
}

// ---- stores ----------------------------------------------------------------

var (
	testHashKey  = []byte("0123456789abcdef0123456789abcdef")
	testBlockKey = []byte("fedcba9876543210fedcba9876543210")
)

// newMem returns a MemoryStore with fixed keys, closed at cleanup.
func newMem(t testing.TB, keyPairs ...[]byte) *MemoryStore {
	t.Helper()
	if len(keyPairs) == 0 {
		keyPairs = [][]byte{testHashKey, testBlockKey}
	}
	s := NewMemoryStore(keyPairs...)
	t.Cleanup(func() { s.Close() })
	return s
}

// counts are the calls a wrapper store saw.
type counts struct {
	get, new, save, load, update atomic.Int64
}

func (c *counts) writes() int64 { return c.save.Load() + c.update.Load() }

func (c *counts) reset() {
	c.get.Store(0)
	c.new.Store(0)
	c.save.Store(0)
	c.load.Store(0)
	c.update.Store(0)
}

// plainStore is a sessions.Store over a MemoryStore with none of the
// optional interfaces, counting calls.
type plainStore struct {
	mem *MemoryStore
	n   *counts
}

func newPlain(mem *MemoryStore) *plainStore { return &plainStore{mem: mem, n: &counts{}} }

func (p *plainStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	p.n.get.Add(1)
	return sessions.GetRegistry(r).Get(p, name)
}

func (p *plainStore) New(r *http.Request, name string) (*sessions.Session, error) {
	p.n.new.Add(1)
	return p.mem.New(r, name)
}

func (p *plainStore) Save(r *http.Request, w http.ResponseWriter, s *sessions.Session) error {
	p.n.save.Add(1)
	return p.mem.Save(r, w, s)
}

// fwdStore adds Loader and Updater (not Notifier) to plainStore.
type fwdStore struct{ *plainStore }

func newFwd(mem *MemoryStore) *fwdStore { return &fwdStore{newPlain(mem)} }

func (f *fwdStore) Load(ctx context.Context, name, key string) (*sessions.Session, error) {
	f.n.load.Add(1)
	return f.mem.Load(ctx, name, key)
}

func (f *fwdStore) Update(ctx context.Context, name, id string, fn func(map[any]any)) error {
	f.n.update.Add(1)
	return f.mem.Update(ctx, name, id, fn)
}

// notifyStore adds Notifier to fwdStore.
type notifyStore struct{ *fwdStore }

func (n *notifyStore) NotifyEnd(f func(string)) { n.mem.NotifyEnd(f) }

var (
	_ sessions.Store = (*plainStore)(nil)
	_ Loader         = (*fwdStore)(nil)
	_ Updater        = (*fwdStore)(nil)
	_ Notifier       = (*notifyStore)(nil)
)

var errBoom = errors.New("boom: store down")

// failStore fails every read; with loader set it is also a Loader.
type failStore struct {
	n counts
}

func (f *failStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(f, name)
}
func (f *failStore) New(r *http.Request, name string) (*sessions.Session, error) {
	f.n.new.Add(1)
	return nil, errBoom
}
func (f *failStore) Save(*http.Request, http.ResponseWriter, *sessions.Session) error {
	f.n.save.Add(1)
	return errBoom
}

type failLoader struct{ failStore }

func (f *failLoader) Load(context.Context, string, string) (*sessions.Session, error) {
	f.n.load.Add(1)
	return nil, errBoom
}

func (f *failLoader) Update(context.Context, string, string, func(map[any]any)) error {
	f.n.update.Add(1)
	return errBoom
}

// blockStore blocks every read until the request's context is done.
type blockStore struct{ failStore }

func (b *blockStore) New(r *http.Request, name string) (*sessions.Session, error) {
	b.n.new.Add(1)
	<-r.Context().Done()
	return nil, r.Context().Err()
}

type blockLoader struct{ failLoader }

func (b *blockLoader) Load(ctx context.Context, _, _ string) (*sessions.Session, error) {
	b.n.load.Add(1)
	<-ctx.Done()
	return nil, errors.New("redis: i/o timeout") // not the context's own error
}

// ---- managers and sessions -------------------------------------------------

// errSink collects what reaches Config.ErrorHandler.
type errSink struct {
	mu   sync.Mutex
	errs []error
}

func (e *errSink) add(err error) {
	e.mu.Lock()
	e.errs = append(e.errs, err)
	e.mu.Unlock()
}

func (e *errSink) all() []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]error(nil), e.errs...)
}

func (e *errSink) panics() []*PanicError {
	var out []*PanicError
	for _, err := range e.all() {
		var pe *PanicError
		if errors.As(err, &pe) {
			out = append(out, pe)
		}
	}
	return out
}

func (e *errSink) waitPanic(t testing.TB, where string) *PanicError {
	t.Helper()
	var got *PanicError
	eventually(t, "a *PanicError in "+where, func() bool {
		for _, pe := range e.panics() {
			if pe.Where == where {
				got = pe
				return true
			}
		}
		return false
	})
	return got
}

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// newManager returns a Manager on store, shut down at cleanup, whose
// reported errors land in the returned sink.
func newManager(t testing.TB, store sessions.Store, cfg Config) (*Manager, *errSink) {
	t.Helper()
	sink := &errSink{}
	if cfg.ErrorHandler == nil {
		cfg.ErrorHandler = sink.add
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger
	}
	m, err := New(store, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown at cleanup: %v", err)
		}
	})
	return m, sink
}

// login creates a session in store with values, as an HTTP handler would,
// and returns its cookie value (the session key) and id.
func login(t testing.TB, store sessions.Store, values map[any]any) (key, id string) {
	t.Helper()
	key, id, err := saveSession(store, values)
	if err != nil {
		t.Fatal(err)
	}
	return key, id
}

// saveSession is login for callers without a testing.TB.
func saveSession(store sessions.Store, values map[any]any) (key, id string, err error) {
	r := httptest.NewRequest(http.MethodGet, "/login", nil)
	w := httptest.NewRecorder()
	sess, err := store.Get(r, "session")
	if err != nil {
		return "", "", fmt.Errorf("store.Get: %w", err)
	}
	for k, v := range values {
		sess.Values[k] = v
	}
	if err := sess.Save(r, w); err != nil {
		return "", "", fmt.Errorf("session Save: %w", err)
	}
	if c := cookieNamed(w.Result().Cookies(), "session"); c != nil {
		return c.Value, sess.ID, nil
	}
	return "", "", fmt.Errorf("no session cookie set: %v", w.Header())
}

// cookieNamed returns the last cookie called name, or nil.
func cookieNamed(cookies []*http.Cookie, name string) *http.Cookie {
	var found *http.Cookie
	for _, c := range cookies {
		if c.Name == name {
			found = c
		}
	}
	return found
}

// withCookie returns a request to target carrying the session cookie key.
func withCookie(method, target, key string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if key != "" {
		r.AddCookie(&http.Cookie{Name: "session", Value: key})
	}
	return r
}

// handshake returns a socket.io handshake request carrying key as its
// session cookie (none when empty).
func handshake(key string) *http.Request {
	return withCookie(http.MethodGet, "/socket.io/?EIO=3&transport=websocket", key)
}

// httpEdit changes the session of key over "HTTP", as a handler would.
func httpEdit(t testing.TB, store sessions.Store, key string, fn func(values map[any]any)) {
	t.Helper()
	r := withCookie(http.MethodPost, "/edit", key)
	w := httptest.NewRecorder()
	sess, err := store.Get(r, "session")
	if err != nil {
		t.Fatalf("store.Get: %v", err)
	}
	if sess.IsNew {
		t.Fatalf("httpEdit: no session for the key")
	}
	fn(sess.Values)
	if err := sess.Save(r, w); err != nil {
		t.Fatalf("Save: %v", err)
	}
}

// httpDelete deletes the session of key through a plain store Save with
// MaxAge -1, as logout handlers written for gorilla/sessions do.
func httpDelete(t testing.TB, store sessions.Store, key string) {
	t.Helper()
	r := withCookie(http.MethodPost, "/logout", key)
	w := httptest.NewRecorder()
	sess, err := store.Get(r, "session")
	if err != nil {
		t.Fatalf("store.Get: %v", err)
	}
	sess.Options.MaxAge = -1
	if err := sess.Save(r, w); err != nil {
		t.Fatalf("Save: %v", err)
	}
}

// destroy runs m.Destroy as an HTTP logout handler would.
func destroy(t testing.TB, m *Manager, key string) *http.Response {
	t.Helper()
	w := httptest.NewRecorder()
	if err := m.Destroy(context.Background(), w, withCookie(http.MethodPost, "/logout", key)); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	return w.Result()
}

// stored returns the values the store holds for key, or nil and the error.
func stored(t testing.TB, mem *MemoryStore, key string) (map[any]any, error) {
	t.Helper()
	sess, err := mem.Load(context.Background(), "session", key)
	if err != nil {
		return nil, err
	}
	return sess.Values, nil
}

func mustStored(t testing.TB, mem *MemoryStore, key string) map[any]any {
	t.Helper()
	v, err := stored(t, mem, key)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return v
}

// connect accepts and opens a socket on m for r, as a binding does, and
// closes it at cleanup.
func connect(t testing.TB, m *Manager, r *http.Request) (*Socket, *testConn) {
	t.Helper()
	c := newTestConn(r)
	s := m.Accept(c)
	s.Open()
	t.Cleanup(func() { s.Closed("test cleanup") })
	return s, c
}

// do runs fn through s.Do with a generous deadline.
func do(s *Socket, fn func(*Session) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	return s.Do(ctx, fn)
}

func set(k, v any) func(*Session) error {
	return func(sess *Session) error { sess.Values[k] = v; return nil }
}

// incrN is a Do function that adds one to the int at "n".
func incrN(sess *Session) error {
	sess.Values["n"] = sess.Values["n"].(int) + 1
	return nil
}

// wantValue is a Do function that fails unless the session holds v at k.
func wantValue(k, v any) func(*Session) error {
	return func(sess *Session) error {
		if sess.Values[k] != v {
			return fmt.Errorf("values %v, want %v at %v", sess.Values, v, k)
		}
		return nil
	}
}

var modes = []Mode{PerConnection, PerMessage}

// forEachMode runs fn in a parallel subtest, named after the mode, for
// each Mode.
func forEachMode(t *testing.T, fn func(t *testing.T, mode Mode)) {
	t.Helper()
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			fn(t, mode)
		})
	}
}

// fixture is a Manager on a MemoryStore that holds one logged-in session.
type fixture struct {
	mem     *MemoryStore
	m       *Manager
	sink    *errSink // what reached the Manager's ErrorHandler
	key, id string   // the session's cookie value and id
}

// newFixture returns a Manager made with cfg (see newManager) on a new
// MemoryStore, and a session of values logged in to that store.
func newFixture(t testing.TB, cfg Config, values map[any]any) fixture {
	t.Helper()
	mem := newMem(t)
	m, sink := newManager(t, mem, cfg)
	key, id := login(t, mem, values)
	return fixture{mem: mem, m: m, sink: sink, key: key, id: id}
}

func sinvalidReason(t testing.TB, e event) string {
	t.Helper()
	if len(e.Args) != 1 {
		t.Fatalf("sinvalid args = %v, want one", e.Args)
	}
	p, ok := e.Args[0].(map[string]string)
	if !ok {
		t.Fatalf("sinvalid payload is %T, want map[string]string", e.Args[0])
	}
	if len(p) != 1 {
		t.Fatalf("sinvalid payload %v has extra fields", p)
	}
	return p["reason"]
}

// ---- New and Config --------------------------------------------------------

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	short := []byte("too short")
	cases := []struct {
		name string
		cfg  Config
	}{
		{"mode 2", Config{Mode: 2}},
		{"mode -1", Config{Mode: -1}},
		{"negative StoreTimeout", Config{StoreTimeout: -time.Second}},
		{"negative FlushInterval", Config{FlushInterval: -1}},
		{"negative TokenTTL", Config{TokenTTL: -time.Minute}},
		{"negative CloseGrace", Config{CloseGrace: -time.Millisecond}},
		{"origin wildcard", Config{AllowedOrigins: []string{"*"}}},
		{"origin without scheme", Config{AllowedOrigins: []string{"app.example.com"}}},
		{"origin with path", Config{AllowedOrigins: []string{"https://app.example.com/app"}}},
		{"origin empty", Config{AllowedOrigins: []string{""}}},
		{"origin unparsable", Config{AllowedOrigins: []string{"https://[::1"}}},
		{"origin scheme only", Config{AllowedOrigins: []string{"https://"}}},
		{"token keys odd", Config{TokenKeys: [][]byte{testHashKey}}},
		{"token keys three", Config{TokenKeys: [][]byte{testHashKey, testBlockKey, testHashKey}}},
		{"token hash key short", Config{TokenKeys: [][]byte{short, testBlockKey}}},
		{"token block key 15", Config{TokenKeys: [][]byte{testHashKey, testBlockKey[:15]}}},
		{"token block key nil", Config{TokenKeys: [][]byte{testHashKey, nil}}},
		{"token second pair bad", Config{TokenKeys: [][]byte{testHashKey, testBlockKey, testHashKey, short}}},
	}
	for _, tc := range cases {
		for _, own := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/nilstore=%v", tc.name, own), func(t *testing.T) {
				var store sessions.Store
				if !own {
					store = newMem(t)
				}
				m, err := func() (m *Manager, err error) {
					defer func() {
						if v := recover(); v != nil {
							t.Fatalf("New panicked: %v", v)
						}
					}()
					return New(store, tc.cfg)
				}()
				if m != nil {
					t.Errorf("New returned a Manager with error %v", err)
					_ = m.Shutdown(context.Background())
				}
				if !errors.Is(err, ErrConfig) {
					t.Fatalf("New error = %v, want ErrConfig", err)
				}
				if !strings.HasPrefix(err.Error(), "iosessions: ") {
					t.Errorf("error %q lacks the package prefix", err)
				}
			})
		}
	}
}

// A New that fails must not leave the MemoryStore it made for a nil store
// running: its janitor goroutine would leak.
func TestNewBadConfigNilStoreDoesNotLeak(t *testing.T) {
	// Not parallel: it checks the goroutines of the whole process.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, cfg := range []Config{{Mode: 9}, {TokenKeys: [][]byte{testHashKey}}, {StoreTimeout: -1}} {
		if _, err := New(nil, cfg); !errors.Is(err, ErrConfig) {
			t.Fatalf("New(%+v) error = %v, want ErrConfig", cfg, err)
		}
	}
}

func TestNewDefaults(t *testing.T) {
	t.Parallel()
	// Not newManager: it sets a Logger, whose default is checked here.
	m, err := New(newMem(t), Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	c := m.Config()
	checks := []struct {
		name      string
		got, want any
	}{
		{"Name", c.Name, "session"},
		{"Mode", c.Mode, PerConnection},
		{"StoreTimeout", c.StoreTimeout, 5 * time.Second},
		{"FlushInterval", c.FlushInterval, time.Duration(0)},
		{"CloseGrace", c.CloseGrace, 200 * time.Millisecond},
		{"TokenTTL", c.TokenTTL, 2 * time.Minute},
		{"ShimPath", c.ShimPath, "/socket.io/socket.io-sessions.js"},
		{"CloseInvalid", c.CloseInvalid, false},
		{"UnsafeAllowAnyOrigin", c.UnsafeAllowAnyOrigin, false},
		{"Logger", c.Logger, slog.Default()},
	}
	for _, ck := range checks {
		t.Run(ck.name, func(t *testing.T) {
			if ck.got != ck.want {
				t.Errorf("Config().%s = %v, want %v", ck.name, ck.got, ck.want)
			}
		})
	}
}

func TestNewNilStoreOwnsMemoryStore(t *testing.T) {
	t.Parallel()
	m, err := New(nil, Config{Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	mem, ok := m.Store().(*MemoryStore)
	if !ok {
		t.Fatalf("Store() is %T, want *MemoryStore", m.Store())
	}
	key, _ := login(t, mem, map[any]any{"u": "ann"})
	if _, c := connect(t, m, handshake(key)); len(c.Named("sinvalid")) != 0 {
		t.Fatalf("valid session refused: %v", c.Events())
	}
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-mem.done:
	case <-time.After(waitLimit):
		t.Fatal("Shutdown did not close the Manager's own MemoryStore")
	}
}

func TestModeString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		m    Mode
		want string
	}{{PerConnection, "perconn"}, {PerMessage, "permessage"}, {Mode(7), "Mode(7)"}} {
		if got := tc.m.String(); got != tc.want {
			t.Errorf("%d.String() = %q, want %q", int(tc.m), got, tc.want)
		}
	}
}

// ---- errors, Reason, ErrorAck, Call ------------------------------------------

func TestReason(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err  error
		want string
	}{
		{ErrNoSession, "no session"},
		{ErrBadKey, "invalid session key"},
		{ErrBadToken, "invalid token"},
		{ErrNotFound, "session not found"},
		{ErrEnded, "session ended"},
		{ErrStoreUnavailable, "session store unavailable"},
		{ErrStoreTimeout, "session store unavailable: timeout"},
		{ErrOrigin, "origin not allowed"},
		{ErrShutdown, "shutting down"},
		{fmt.Errorf("%w: %w", ErrStoreUnavailable, errors.New("dial 10.0.0.3:6379: secret")), "session store unavailable"},
		{fmt.Errorf("x: %w", ErrBadKey), "invalid session key"},
		{errors.New("anything else"), "session error"},
	}
	for _, tc := range cases {
		t.Run(tc.err.Error(), func(t *testing.T) {
			got := Reason(tc.err)
			if got != tc.want {
				t.Errorf("Reason = %q, want %q", got, tc.want)
			}
			if strings.Contains(got, "secret") || strings.Contains(got, "iosessions") {
				t.Errorf("Reason %q leaks details", got)
			}
		})
	}
	if !errors.Is(ErrStoreTimeout, ErrStoreUnavailable) {
		t.Error("ErrStoreTimeout does not match ErrStoreUnavailable")
	}
}

func TestErrorAck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"no session", ErrNoSession, "no session"},
		{"bad key as no session", noSession(ErrBadKey), "no session"},
		{"ended", noSession(ErrEnded), "no session"},
		{"store", fmt.Errorf("%w: %w", ErrStoreUnavailable, errBoom), "session store unavailable"},
		{"timeout", fmt.Errorf("%w: %w", ErrStoreTimeout, context.DeadlineExceeded), "session store unavailable: timeout"},
		{"panic", &PanicError{Where: "smessage", Value: "secret"}, "internal error"},
		{"wrapped panic", fmt.Errorf("x: %w", &PanicError{Where: "smessage", Value: 1}), "internal error"},
		{"handler", errors.New("not enough credits"), "not enough credits"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ErrorAck(tc.err)
			if want := map[string]string{"error": tc.want}; !reflect.DeepEqual(got, want) {
				t.Errorf("ErrorAck = %v, want %v", got, want)
			}
		})
	}
}

func TestCall(t *testing.T) {
	t.Parallel()
	m, sink := newManager(t, newMem(t), Config{})
	v, err := Call(m, "ping", func() (int, error) { return 7, nil })
	if v != 7 || err != nil {
		t.Fatalf("Call = %v, %v", v, err)
	}
	_, err = Call(m, "ping", func() (int, error) { panic("kaboom") })
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Where != "ping" || pe.Value != "kaboom" || len(pe.Stack) == 0 {
		t.Fatalf("Call after panic = %v, want *PanicError in ping", err)
	}
	if got := sink.panics(); len(got) != 1 || got[0] != pe {
		t.Fatalf("reported %v, want the PanicError", sink.all())
	}
	if !strings.Contains(pe.Error(), "ping") || !strings.Contains(pe.Error(), "kaboom") {
		t.Errorf("PanicError.Error() = %q", pe.Error())
	}
}

func TestReportErrorWithoutHandlerLogs(t *testing.T) {
	t.Parallel()
	var buf safeBuffer
	m, err := New(newMem(t), Config{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	m.ReportError(errors.New("disk on fire"))
	if !strings.Contains(buf.String(), "disk on fire") || !strings.Contains(buf.String(), "level=ERROR") {
		t.Fatalf("log = %q", buf.String())
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ---- origins -----------------------------------------------------------------

func TestCheckOrigin(t *testing.T) {
	t.Parallel()
	strict, _ := newManager(t, newMem(t), Config{AllowedOrigins: []string{"https://App.Example.org", "http://localhost:3000/"}})
	open, _ := newManager(t, newMem(t), Config{UnsafeAllowAnyOrigin: true})
	cases := []struct {
		name    string
		host    string
		origin  string
		strict  error
		anyOrig error
	}{
		{"no origin", "example.com", "", nil, nil},
		{"own host", "example.com", "https://example.com", nil, nil},
		{"own host other case", "Example.COM", "https://example.com", nil, nil},
		{"own host with port", "example.com:8080", "http://example.com:8080", nil, nil},
		{"foreign", "example.com", "https://evil.example", ErrOrigin, nil},
		{"own name other port", "example.com:8080", "http://example.com:9090", ErrOrigin, nil},
		{"allowed", "example.com", "https://app.example.org", nil, nil},
		{"allowed other case", "example.com", "HTTPS://APP.EXAMPLE.ORG", nil, nil},
		{"allowed host wrong scheme", "example.com", "http://app.example.org", ErrOrigin, nil},
		{"allowed with port", "example.com", "http://localhost:3000", nil, nil},
		{"allowed name wrong port", "example.com", "http://localhost:3001", ErrOrigin, nil},
		{"null", "example.com", "null", ErrOrigin, nil},
		{"garbage", "example.com", "::::", ErrOrigin, nil},
		{"suffix trick", "example.com", "https://example.com.evil.example", ErrOrigin, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/socket.io/", nil)
			r.Host = tc.host
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if err := strict.CheckOrigin(r); !errors.Is(err, tc.strict) || (tc.strict == nil && err != nil) {
				t.Errorf("CheckOrigin = %v, want %v", err, tc.strict)
			}
			if err := open.CheckOrigin(r); err != nil {
				t.Errorf("UnsafeAllowAnyOrigin: CheckOrigin = %v", err)
			}
		})
	}
	if !strict.AllowedOrigin("https://app.example.org") || strict.AllowedOrigin("https://evil.example") {
		t.Error("AllowedOrigin answers wrongly")
	}
	if !open.AllowedOrigin("https://evil.example") {
		t.Error("AllowedOrigin with UnsafeAllowAnyOrigin = false")
	}
}

// ---- sockets: connect, sinvalid -------------------------------------------------

func TestSocketValidSession(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode Mode) {
		fx := newFixture(t, Config{Mode: mode}, map[any]any{"user": "ann"})
		got := make(chan map[any]any, 1)
		fx.m.OnConnection(func(s *Socket, sess *Session) {
			if sess.ID != fx.id {
				t.Errorf("session id %q, want %q", sess.ID, fx.id)
			}
			got <- maps(sess.Values)
		})
		fx.m.OnInvalid(func(s *Socket, err error) { t.Errorf("sinvalid: %v", err) })
		s, c := connect(t, fx.m, handshake(fx.key))
		if v := recv(t, got, "sconnection"); v["user"] != "ann" {
			t.Fatalf("sconnection values = %v", v)
		}
		if err := s.Err(); err != nil {
			t.Fatalf("Err() = %v", err)
		}
		if fx.m.Socket(s.ID()) != s {
			t.Fatal("Manager.Socket does not find the socket")
		}
		if s.Conn() != Conn(c) {
			t.Fatal("Conn() is not the binding's Conn")
		}
		mustDo(t, s, wantValue("user", "ann"))
		if err := s.Emit("hello", 1); err != nil || len(c.Named("hello")) != 1 {
			t.Fatalf("Emit: %v %v", err, c.Events())
		}
		if len(c.Named("sinvalid")) != 0 || len(fx.sink.all()) != 0 {
			t.Fatalf("unexpected events %v, errors %v", c.Events(), fx.sink.all())
		}
		if s.Context().Err() != nil {
			t.Fatal("socket context done while connected")
		}
		s.Closed("client namespace disconnect")
		eventually(t, "the socket context to end", func() bool { return s.Context().Err() != nil })
		eventually(t, "the socket to leave the registry", func() bool { return fx.m.Socket(s.ID()) == nil })
	})
}

func maps(v map[any]any) map[any]any {
	out := make(map[any]any, len(v))
	for k, x := range v {
		out[k] = x
	}
	return out
}

// invalidCase sets up a store and a handshake that cannot give a session.
type invalidCase struct {
	name string
	want error
	// setup returns the store, the config changes and the handshake.
	setup func(t *testing.T, cfg *Config) (sessions.Store, *counts, *http.Request)
}

func invalidCases() []invalidCase {
	memWith := func(t *testing.T) (*fwdStore, string) {
		f := newFwd(newMem(t))
		key, _ := login(t, f.mem, map[any]any{"user": "ann"})
		f.n.reset()
		return f, key
	}
	return []invalidCase{
		{"no cookie", ErrNoSession, func(t *testing.T, cfg *Config) (sessions.Store, *counts, *http.Request) {
			f, _ := memWith(t)
			return f, f.n, handshake("")
		}},
		{"empty cookie", ErrNoSession, func(t *testing.T, cfg *Config) (sessions.Store, *counts, *http.Request) {
			f, _ := memWith(t)
			r := handshake("")
			r.Header.Set("Cookie", "session=")
			return f, f.n, r
		}},
		{"tampered cookie", ErrBadKey, func(t *testing.T, cfg *Config) (sessions.Store, *counts, *http.Request) {
			f, key := memWith(t)
			return f, f.n, handshake(tamper(key, len(key)/2))
		}},
		{"cookie of other keys", ErrBadKey, func(t *testing.T, cfg *Config) (sessions.Store, *counts, *http.Request) {
			f, _ := memWith(t)
			other, _ := login(t, newMem(t, []byte("another hash key, 32 bytes long!")), nil)
			return f, f.n, handshake(other)
		}},
		{"oversized cookie", ErrBadKey, func(t *testing.T, cfg *Config) (sessions.Store, *counts, *http.Request) {
			f, _ := memWith(t)
			return f, f.n, handshake(strings.Repeat("A", MaxKeyLen+1))
		}},
		{"destroyed session", ErrNotFound, func(t *testing.T, cfg *Config) (sessions.Store, *counts, *http.Request) {
			f, key := memWith(t)
			httpDelete(t, f.mem, key)
			f.n.reset()
			return f, f.n, handshake(key)
		}},
		{"expired session", ErrNotFound, func(t *testing.T, cfg *Config) (sessions.Store, *counts, *http.Request) {
			f, key := memWith(t)
			later := time.Now().Add(31 * 24 * time.Hour)
			f.mem.now = func() time.Time { return later }
			return f, f.n, handshake(key)
		}},
		{"destroyed session, plain store", ErrNotFound, func(t *testing.T, cfg *Config) (sessions.Store, *counts, *http.Request) {
			f, key := memWith(t)
			httpDelete(t, f.mem, key)
			p := f.plainStore
			p.n.reset()
			return p, p.n, handshake(key)
		}},
		{"store error", ErrStoreUnavailable, func(t *testing.T, cfg *Config) (sessions.Store, *counts, *http.Request) {
			f := &failStore{}
			return f, &f.n, handshake("anything")
		}},
		{"store error, loader", ErrStoreUnavailable, func(t *testing.T, cfg *Config) (sessions.Store, *counts, *http.Request) {
			f := &failLoader{}
			return f, &f.n, handshake("anything")
		}},
		{"store timeout", ErrStoreTimeout, func(t *testing.T, cfg *Config) (sessions.Store, *counts, *http.Request) {
			cfg.StoreTimeout = 50 * time.Millisecond
			b := &blockStore{}
			return b, &b.n, handshake("anything")
		}},
		{"store timeout, loader", ErrStoreTimeout, func(t *testing.T, cfg *Config) (sessions.Store, *counts, *http.Request) {
			cfg.StoreTimeout = 50 * time.Millisecond
			b := &blockLoader{}
			return b, &b.n, handshake("anything")
		}},
		{"foreign origin", ErrOrigin, func(t *testing.T, cfg *Config) (sessions.Store, *counts, *http.Request) {
			f, key := memWith(t)
			r := handshake(key)
			r.Host = "app.example.com"
			r.Header.Set("Origin", "https://evil.example")
			return f, f.n, r
		}},
		{"origin not in allowed list", ErrOrigin, func(t *testing.T, cfg *Config) (sessions.Store, *counts, *http.Request) {
			cfg.AllowedOrigins = []string{"https://good.example"}
			f, key := memWith(t)
			r := handshake(key)
			r.Header.Set("Origin", "https://evil.example")
			return f, f.n, r
		}},
	}
}

// tamper changes the character at i of s to another base64 letter.
func tamper(s string, i int) string {
	b := []byte(s)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestSocketInvalidSession(t *testing.T) {
	t.Parallel()
	for _, tc := range invalidCases() {
		for _, mode := range modes {
			t.Run(tc.name+"/"+mode.String(), func(t *testing.T) {
				t.Parallel()
				cfg := Config{Mode: mode}
				store, n, r := tc.setup(t, &cfg)
				m, sink := newManager(t, store, cfg)
				invalid := make(chan error, 1)
				m.OnInvalid(func(s *Socket, err error) { invalid <- err })
				m.OnConnection(func(s *Socket, sess *Session) {
					t.Errorf("sconnection called for an invalid socket")
					sess.Values["written"] = true
				})
				s, c := connect(t, m, r)
				err := recv(t, invalid, "sinvalid handler")
				if !errors.Is(err, tc.want) {
					t.Fatalf("sinvalid error = %v, want %v", err, tc.want)
				}
				if tc.want == ErrStoreTimeout && !errors.Is(err, ErrStoreUnavailable) {
					t.Errorf("timeout %v does not match ErrStoreUnavailable", err)
				}
				if strings.HasPrefix(tc.name, "store error") && !errors.Is(err, errBoom) {
					t.Errorf("store error %v does not wrap the store's error", err)
				}
				if got := sinvalidReason(t, c.waitEvent(t, "sinvalid")); got != Reason(tc.want) {
					t.Errorf("client reason = %q, want %q", got, Reason(tc.want))
				}
				if !errors.Is(s.Err(), tc.want) {
					t.Errorf("Err() = %v, want %v", s.Err(), tc.want)
				}
				called := false
				derr := do(s, func(*Session) error { called = true; return nil })
				if called {
					t.Error("Do ran fn for an invalid socket")
				}
				if !errors.Is(derr, ErrNoSession) {
					t.Errorf("Do = %v, want ErrNoSession", derr)
				}
				if ack := ErrorAck(derr); !reflect.DeepEqual(ack, map[string]string{"error": "no session"}) {
					t.Errorf("ErrorAck = %v", ack)
				}
				s.Closed("bye")
				ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
				defer cancel()
				if err := m.Shutdown(ctx); err != nil {
					t.Fatal(err)
				}
				if w := n.writes(); w != 0 {
					t.Errorf("%d store writes for an invalid socket", w)
				}
				if c.IsClosed() {
					t.Error("an invalid socket was closed without CloseInvalid")
				}
				if errs := sink.all(); len(errs) != 0 {
					t.Errorf("reported errors: %v", errs)
				}
			})
		}
	}
}

func TestSocketOriginPasses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		cfg    Config
		host   string
		origin string
	}{
		{"no origin", Config{}, "example.com", ""},
		{"same host", Config{}, "example.com", "https://example.com"},
		{"allowed origin", Config{AllowedOrigins: []string{"https://app.example.org"}}, "api.example.com", "https://app.example.org"},
		{"unsafe any origin", Config{UnsafeAllowAnyOrigin: true}, "example.com", "https://evil.example"},
		{"no host: binding checked", Config{}, "", "https://evil.example"},
	}
	for _, tc := range cases {
		for _, mode := range modes {
			t.Run(tc.name+"/"+mode.String(), func(t *testing.T) {
				t.Parallel()
				cfg := tc.cfg
				cfg.Mode = mode
				fx := newFixture(t, cfg, nil)
				connected := make(chan struct{}, 1)
				fx.m.OnConnection(func(*Socket, *Session) { connected <- struct{}{} })
				r := handshake(fx.key)
				r.Host = tc.host
				if tc.origin != "" {
					r.Header.Set("Origin", tc.origin)
				}
				s, c := connect(t, fx.m, r)
				recv(t, connected, "sconnection")
				if s.Err() != nil || len(c.Named("sinvalid")) != 0 {
					t.Fatalf("refused: %v %v", s.Err(), c.Events())
				}
			})
		}
	}
}

func TestCloseInvalid(t *testing.T) {
	t.Parallel()
	for _, closeInvalid := range []bool{true, false} {
		for _, mode := range modes {
			t.Run(fmt.Sprintf("CloseInvalid=%v/%s", closeInvalid, mode), func(t *testing.T) {
				t.Parallel()
				grace := 20 * time.Millisecond
				m, _ := newManager(t, newMem(t), Config{Mode: mode, CloseInvalid: closeInvalid, CloseGrace: grace})
				_, c := connect(t, m, handshake(""))
				c.waitEvent(t, "sinvalid")
				if closeInvalid {
					c.waitClosed(t)
					ev := c.Events()
					if len(ev) != 2 || ev[0].Name != "sinvalid" || ev[1].Name != closeEvent {
						t.Fatalf("events = %v, want sinvalid then close", ev)
					}
					return
				}
				time.Sleep(10 * grace)
				if c.IsClosed() {
					t.Fatal("closed without CloseInvalid")
				}
			})
		}
	}
}

func TestShutdownRefusesNewSockets(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, Config{}, nil)
	if err := fx.m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, c := connect(t, fx.m, handshake(fx.key))
	if !errors.Is(s.Err(), ErrShutdown) {
		t.Fatalf("Err() = %v, want ErrShutdown", s.Err())
	}
	if r := sinvalidReason(t, c.waitEvent(t, "sinvalid")); r != "shutting down" {
		t.Fatalf("reason %q", r)
	}
}

// Calling Err from the sconnection handler must not hang: the session is
// loaded by then.
func TestSocketErrInConnectionHandler(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode Mode) {
		fx := newFixture(t, Config{Mode: mode}, nil)
		res := make(chan error, 1)
		fx.m.OnConnection(func(s *Socket, _ *Session) {
			errc := make(chan error, 1)
			go func() { errc <- s.Err() }()
			select {
			case err := <-errc:
				res <- err
			case <-time.After(2 * time.Second):
				res <- errors.New("Err() blocked in the sconnection handler")
			}
		})
		connect(t, fx.m, handshake(fx.key))
		if err := recv(t, res, "sconnection"); err != nil {
			t.Fatal(err)
		}
	})
}

// ---- logout, renew, store deletion -------------------------------------------

func TestDestroyEndsSocketsOfThatSession(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode Mode) {
		grace := 30 * time.Millisecond
		fx := newFixture(t, Config{Mode: mode, CloseGrace: grace}, map[any]any{"u": "ann"})
		var mu sync.Mutex
		ended := map[*Socket]error{}
		fx.m.OnInvalid(func(s *Socket, err error) { mu.Lock(); ended[s] = err; mu.Unlock() })
		keyA := fx.key
		keyB, _ := login(t, fx.mem, map[any]any{"u": "bob"})
		a1, c1 := connect(t, fx.m, handshake(keyA))
		a2, c2 := connect(t, fx.m, handshake(keyA))
		b, cb := connect(t, fx.m, handshake(keyB))

		res := destroy(t, fx.m, keyA)
		checkExpired(t, res)
		if _, err := stored(t, fx.mem, keyA); !errors.Is(err, ErrNotFound) {
			t.Errorf("destroyed session still loads: %v", err)
		}
		for _, sc := range []struct {
			s *Socket
			c *testConn
		}{{a1, c1}, {a2, c2}} {
			if r := sinvalidReason(t, sc.c.waitEvent(t, "sinvalid")); r != "session ended" {
				t.Errorf("reason %q", r)
			}
			sc.c.waitClosed(t)
			ev := sc.c.Events()
			if ev[len(ev)-1].Name != closeEvent || ev[len(ev)-2].Name != "sinvalid" {
				t.Errorf("events %v: want sinvalid then close", ev)
			}
			if !errors.Is(sc.s.Err(), ErrEnded) {
				t.Errorf("Err() = %v, want ErrEnded", sc.s.Err())
			}
			if err := do(sc.s, set("x", 1)); !errors.Is(err, ErrNoSession) || !errors.Is(err, ErrEnded) {
				t.Errorf("Do after end = %v", err)
			}
		}
		eventually(t, "sinvalid handlers", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return errors.Is(ended[a1], ErrEnded) && errors.Is(ended[a2], ErrEnded)
		})
		time.Sleep(5 * grace)
		if len(cb.Events()) != 0 {
			t.Errorf("other session's socket got %v", cb.Events())
		}
		if err := do(b, set("still", "here")); err != nil {
			t.Errorf("other session's socket: Do = %v", err)
		}
		if errs := fx.sink.all(); len(errs) != 0 {
			t.Errorf("reported: %v", errs)
		}
	})
}

// checkExpired fails t unless res expires the session cookie.
func checkExpired(t testing.TB, res *http.Response) {
	t.Helper()
	if c := cookieNamed(res.Cookies(), "session"); c == nil || c.MaxAge >= 0 || c.Value != "" {
		t.Errorf("the session cookie is not expired: %v", res.Header["Set-Cookie"])
	}
}

// Destroying no session is not an error, and still expires the cookie.
func TestDestroyWithoutSession(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, Config{}, nil)
	other, _ := login(t, fx.mem, map[any]any{"n": 1})
	cases := []struct{ name, key string }{
		{"no cookie", ""},
		{"tampered", tamper(fx.key, 10)},
		{"oversized", strings.Repeat("x", MaxKeyLen+1)},
		{"already gone", fx.key},
	}
	httpDelete(t, fx.mem, fx.key)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkExpired(t, destroy(t, fx.m, tc.key))
			if v, err := stored(t, fx.mem, other); err != nil || v["n"] != 1 {
				t.Fatalf("another session changed: %v %v", v, err)
			}
		})
	}
}

func TestDestroyStoreError(t *testing.T) {
	t.Parallel()
	m, _ := newManager(t, &failLoader{}, Config{})
	err := m.Destroy(context.Background(), httptest.NewRecorder(), withCookie(http.MethodPost, "/logout", "k"))
	if !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("Destroy = %v, want ErrStoreUnavailable", err)
	}
}

func TestRenew(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode Mode) {
		fx := newFixture(t, Config{Mode: mode, CloseGrace: 10 * time.Millisecond}, map[any]any{"cart": 3})
		oldKey, oldID := fx.key, fx.id
		_, c := connect(t, fx.m, handshake(oldKey))

		// The login handler.
		var newID string
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sess, err := fx.m.Renew(r.Context(), w, r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if !sess.IsNew || len(sess.Values) != 0 {
				t.Errorf("Renew gave IsNew=%v values=%v", sess.IsNew, sess.Values)
			}
			sess.Values["user"] = "ann"
			if err := sess.Save(r, w); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			newID = sess.ID
		})
		// logIn runs h with the session cookie key (none when empty) and
		// returns the new session's key.
		logIn := func(key string) string {
			t.Helper()
			newID = ""
			w := httptest.NewRecorder()
			h.ServeHTTP(w, withCookie(http.MethodPost, "/login", key))
			if w.Code != http.StatusOK {
				t.Fatalf("login: %d %s", w.Code, w.Body)
			}
			ck := cookieNamed(w.Result().Cookies(), "session")
			if ck == nil {
				t.Fatalf("login set no session cookie: %v", w.Header())
			}
			if v := mustStored(t, fx.mem, ck.Value); v["user"] != "ann" || v["cart"] != nil {
				t.Errorf("new session values %v", v)
			}
			return ck.Value
		}
		newKey := logIn(oldKey)
		if newID == "" || newID == oldID {
			t.Fatalf("new id %q, old %q", newID, oldID)
		}
		if _, err := stored(t, fx.mem, oldKey); !errors.Is(err, ErrNotFound) {
			t.Errorf("old session: %v, want ErrNotFound", err)
		}
		if r := sinvalidReason(t, c.waitEvent(t, "sinvalid")); r != "session ended" {
			t.Errorf("reason %q", r)
		}
		c.waitClosed(t)

		// Renew without a session: a fresh one, which leaves the others be.
		prevID := newID
		freshKey := logIn("")
		if newID == "" || newID == prevID || newID == oldID || freshKey == newKey {
			t.Fatalf("login without session: id %q, earlier ids %q %q", newID, prevID, oldID)
		}
		if v := mustStored(t, fx.mem, newKey); v["user"] != "ann" {
			t.Errorf("Renew without a session changed another: %v", v)
		}
	})
}

// A session deleted by a plain store.Save with MaxAge -1 (not Destroy)
// still ends its sockets, through the store's Notifier.
func TestStoreDeletionEndsSockets(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode Mode) {
		fx := newFixture(t, Config{Mode: mode, CloseGrace: 10 * time.Millisecond}, nil)
		invalid := make(chan error, 1)
		fx.m.OnInvalid(func(_ *Socket, err error) { invalid <- err })
		other, _ := login(t, fx.mem, nil)
		_, c := connect(t, fx.m, handshake(fx.key))
		_, co := connect(t, fx.m, handshake(other))
		httpDelete(t, fx.mem, fx.key)
		if err := recv(t, invalid, "sinvalid"); !errors.Is(err, ErrEnded) {
			t.Fatalf("sinvalid %v", err)
		}
		waitEnded(t, c)
		if len(co.Events()) != 0 {
			t.Fatalf("other socket got %v", co.Events())
		}
	})
}

// waitEnded waits for c to be told "session ended", then closed.
func waitEnded(t testing.TB, c *testConn) {
	t.Helper()
	if r := sinvalidReason(t, c.waitEvent(t, "sinvalid")); r != "session ended" {
		t.Fatalf("reason %q", r)
	}
	c.waitClosed(t)
}

// Expiry found by the janitor ends sockets too.
func TestStoreExpiryEndsSockets(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, Config{CloseGrace: 10 * time.Millisecond}, nil)
	_, c := connect(t, fx.m, handshake(fx.key))
	later := time.Now().Add(31 * 24 * time.Hour)
	fx.mem.now = func() time.Time { return later }
	fx.mem.reclaim()
	waitEnded(t, c)
}

// ---- panics ------------------------------------------------------------------------

func TestPanicsAreReported(t *testing.T) {
	t.Parallel()
	type hooks struct {
		cutter, connect, invalid, disconnect bool
	}
	cases := []struct {
		name  string
		h     hooks
		valid bool
		where string
	}{
		{"cutter", hooks{cutter: true}, true, "cutter"},
		{"sconnection", hooks{connect: true}, true, "sconnection"},
		{"sinvalid", hooks{invalid: true}, false, "sinvalid"},
		{"disconnect", hooks{disconnect: true}, true, "disconnect"},
	}
	for _, tc := range cases {
		for _, mode := range modes {
			t.Run(tc.name+"/"+mode.String(), func(t *testing.T) {
				t.Parallel()
				mem := newMem(t)
				cfg := Config{Mode: mode}
				if tc.h.cutter {
					cfg.Cutter = func(*http.Request) (string, error) { panic("cutter bug") }
				}
				m, sink := newManager(t, mem, cfg)
				if tc.h.connect {
					m.OnConnection(func(*Socket, *Session) { panic("sconnection bug") })
				}
				if tc.h.invalid {
					m.OnInvalid(func(*Socket, error) { panic("sinvalid bug") })
				}
				closed := make(chan struct{})
				if tc.h.disconnect {
					m.OnDisconnect(func(*Socket, string) { defer close(closed); panic("disconnect bug") })
				}
				key := ""
				if tc.valid {
					key, _ = login(t, mem, map[any]any{"n": 1})
				}
				s, c := connect(t, m, handshake(key))
				if tc.h.disconnect {
					s.Closed("bye")
					recv(t, closed, "the disconnect handler")
				}
				pe := sink.waitPanic(t, tc.where)
				if pe.Value == nil || len(pe.Stack) == 0 {
					t.Errorf("PanicError %+v lacks value or stack", pe)
				}
				if tc.h.cutter {
					if !errors.Is(s.Err(), ErrBadKey) {
						t.Errorf("Err() after cutter panic = %v", s.Err())
					}
					c.waitEvent(t, "sinvalid")
				}
				if tc.h.connect {
					// The socket keeps its session.
					if err := do(s, wantValue("n", 1)); err != nil {
						t.Errorf("Do after sconnection panic: %v", err)
					}
				}
			})
		}
	}
}

func TestDoPanic(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode Mode) {
		fx := newFixture(t, Config{Mode: mode}, map[any]any{"n": 1})
		s, _ := connect(t, fx.m, handshake(fx.key))
		err := do(s, func(sess *Session) error {
			sess.Values["n"] = 2
			panic("handler bug")
		})
		var pe *PanicError
		if !errors.As(err, &pe) || pe.Value != "handler bug" {
			t.Fatalf("Do = %v, want *PanicError", err)
		}
		if got := fx.sink.panics(); len(got) != 1 || got[0] != pe {
			t.Fatalf("reported %v", fx.sink.all())
		}
		if ack := ErrorAck(err); ack["error"] != "internal error" {
			t.Errorf("ErrorAck = %v", ack)
		}
		// The socket goes on.
		if err := do(s, func(*Session) error { return nil }); err != nil {
			t.Fatalf("Do after panic: %v", err)
		}
		if mode == PerMessage {
			if v := mustStored(t, fx.mem, fx.key); v["n"] != 1 {
				t.Fatalf("a panicking event was saved: %v", v)
			}
			if fx.m.locks.len() != 0 {
				t.Fatal("the session lock outlived the panic")
			}
		}
	})
}

// ---- Shutdown ----------------------------------------------------------------------

func TestShutdownIdempotent(t *testing.T) {
	t.Parallel()
	for _, own := range []bool{false, true} {
		t.Run(fmt.Sprintf("nilstore=%v", own), func(t *testing.T) {
			t.Parallel()
			var store sessions.Store
			if !own {
				store = newMem(t)
			}
			m, err := New(store, Config{Logger: quietLogger, FlushInterval: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ {
				if err := m.Shutdown(context.Background()); err != nil {
					t.Fatalf("Shutdown #%d: %v", i+1, err)
				}
			}
		})
	}
}

func TestShutdownSavesLiveSockets(t *testing.T) {
	t.Parallel()
	mem := newMem(t)
	m, _ := newManager(t, mem, Config{})
	var keys []string
	for i := 0; i < 5; i++ {
		key, _ := login(t, mem, nil)
		s, _ := connect(t, m, handshake(key))
		if err := do(s, set("i", i)); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, key := range keys {
		if v := mustStored(t, mem, key); v["i"] != i {
			t.Errorf("socket %d: stored %v", i, v)
		}
	}
}

// holdStore is a MemoryStore whose Update waits for release (or its
// context), and says when one has started.
type holdStore struct {
	*fwdStore
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newHold(t testing.TB) *holdStore {
	h := &holdStore{fwdStore: newFwd(newMem(t)), entered: make(chan struct{}, 16), release: make(chan struct{})}
	t.Cleanup(h.free)
	return h
}

func (h *holdStore) free() { h.once.Do(func() { close(h.release) }) }

func (h *holdStore) Update(ctx context.Context, name, id string, fn func(map[any]any)) error {
	h.entered <- struct{}{}
	select {
	case <-h.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return h.fwdStore.Update(ctx, name, id, fn)
}

func TestShutdownReturnsContextError(t *testing.T) {
	t.Parallel()
	h := newHold(t)
	m, _ := newManager(t, h, Config{StoreTimeout: time.Minute})
	key, _ := login(t, h.mem, nil)
	s, _ := connect(t, m, handshake(key))
	if err := do(s, set("k", "v")); err != nil {
		t.Fatal(err)
	}
	s.Closed("bye") // its save blocks in the store
	recv(t, h.entered, "the save at disconnect")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := m.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the context's error", err)
	}
	h.free()
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if v := mustStored(t, h.mem, key); v["k"] != "v" {
		t.Fatalf("stored %v", v)
	}
}

// Shutdown's own saves of live sockets must also give up when ctx ends,
// not after StoreTimeout per socket.
func TestShutdownHonoursContextWhileSaving(t *testing.T) {
	t.Parallel()
	h := newHold(t)
	m, _ := newManager(t, h, Config{StoreTimeout: time.Hour})
	key, _ := login(t, h.mem, nil)
	s, _ := connect(t, m, handshake(key))
	if err := do(s, set("k", "v")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Shutdown(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v, want the context's error", err)
		}
		h.free() // the cleanup's Shutdown saves again, unhindered
	case <-time.After(waitLimit):
		h.free() // let Shutdown finish so the test ends
		<-done
		t.Fatalf("Shutdown ignored its context for %v while a store save hung", waitLimit)
	}
}

// ---- other stores -------------------------------------------------------------------

// sessions.CookieStore keeps the session in the browser: sockets read it,
// a save says ErrClientSideStore, a tampered cookie is ErrBadKey.
func TestCookieStore(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode Mode) {
		cs := sessions.NewCookieStore(testHashKey, testBlockKey)
		m, _ := newManager(t, cs, Config{Mode: mode, CloseGrace: 10 * time.Millisecond})
		key, _ := login(t, cs, map[any]any{"user": "ann"})
		s, c := connect(t, m, handshake(key))
		if err := s.Err(); err != nil {
			t.Fatalf("Err() = %v", err)
		}
		mustDo(t, s, wantValue("user", "ann"))
		err := do(s, func(sess *Session) error {
			sess.Values["n"] = 1
			return sess.Save(context.Background())
		})
		if !errors.Is(err, ErrClientSideStore) {
			t.Fatalf("save = %v, want ErrClientSideStore", err)
		}
		if len(c.Named("sinvalid")) != 0 {
			t.Fatal("a failed save ended the socket")
		}

		invalid := make(chan error, 1)
		m.OnInvalid(func(_ *Socket, err error) { invalid <- err })
		connect(t, m, handshake(tamper(key, len(key)/2)))
		if err := recv(t, invalid, "sinvalid"); !errors.Is(err, ErrBadKey) {
			t.Fatalf("tampered CookieStore cookie: %v, want ErrBadKey", err)
		}

		// Destroy ends the sockets of that cookie.
		destroy(t, m, key)
		if err := recv(t, invalid, "sinvalid"); !errors.Is(err, ErrEnded) {
			t.Fatalf("after Destroy: %v", err)
		}
		c.waitClosed(t)
	})
}

// Destroy must expire the cookie the store set: same Path and Domain, or
// the browser keeps it.
func TestDestroyExpiresCookieWithStoreOptions(t *testing.T) {
	t.Parallel()
	mem := newMem(t)
	mem.Options.Path = "/app"
	mem.Options.Domain = "example.com"
	m, _ := newManager(t, mem, Config{})
	key, _ := login(t, mem, nil)
	res := destroy(t, m, key)
	checkExpired(t, res)
	if c := cookieNamed(res.Cookies(), "session"); c == nil || c.Path != "/app" || c.Domain != "example.com" {
		t.Fatalf("expiring cookie %+v; the session cookie has Path /app Domain example.com", c)
	}
}

func TestManagerSockets(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, Config{}, nil)
	m := fx.m
	a, _ := connect(t, m, handshake(fx.key))
	b, _ := connect(t, m, handshake(""))
	got := m.Sockets()
	if len(got) != 2 || !((got[0] == a && got[1] == b) || (got[0] == b && got[1] == a)) {
		t.Fatalf("Sockets() = %v", got)
	}
	got[0] = nil // a copy
	if m.Sockets()[0] == nil {
		t.Fatal("Sockets returned the registry's own slice")
	}
	closeAndWait(t, m, a, "bye")
	if got := m.Sockets(); len(got) != 1 || got[0] != b {
		t.Fatalf("after Closed: %v", got)
	}
	if m.Socket("nope") != nil {
		t.Fatal("Socket of an unknown id")
	}
}

// The sinvalid handler of an ended session must not run while another
// handler of the socket runs ("handlers of one socket never overlap").
func TestEndDoesNotOverlapHandlers(t *testing.T) {
	t.Parallel()
	for _, handler := range []string{"sconnection", "smessage"} {
		for _, mode := range modes {
			t.Run(handler+"/"+mode.String(), func(t *testing.T) {
				t.Parallel()
				fx := newFixture(t, Config{Mode: mode, CloseGrace: 10 * time.Millisecond}, nil)
				m := fx.m
				invalid := make(chan struct{}, 1)
				m.OnInvalid(func(*Socket, error) { invalid <- struct{}{} })
				// body logs out in another tab, then goes on working a while.
				body := func() bool {
					httpDelete(t, fx.mem, fx.key)
					select {
					case <-invalid:
						return true
					case <-time.After(300 * time.Millisecond):
						return false
					}
				}
				overlap := make(chan bool, 1)
				if handler == "sconnection" {
					m.OnConnection(func(*Socket, *Session) { overlap <- body() })
				}
				s, _ := connect(t, m, handshake(fx.key))
				if handler == "smessage" {
					_ = do(s, func(*Session) error { overlap <- body(); return nil })
				}
				if recv(t, overlap, handler) {
					t.Fatalf("the sinvalid handler ran while the %s handler was running", handler)
				}
			})
		}
	}
}
