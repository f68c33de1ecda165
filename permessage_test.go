package iosessions

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/sessions"
)

// pmSetup is a PerMessage Manager on a counting store over a MemoryStore,
// with one logged-in session.
type pmSetup struct {
	m    *Manager
	sink *errSink
	f    *notifyStore
	mem  *MemoryStore
	key  string
}

func newPM(t *testing.T, cfg Config, values map[any]any) *pmSetup {
	t.Helper()
	mem := newMem(t)
	f := &notifyStore{newFwd(mem)}
	cfg.Mode = PerMessage
	if cfg.CloseGrace == 0 {
		cfg.CloseGrace = 10 * time.Millisecond
	}
	m, sink := newManager(t, f, cfg)
	key, _ := login(t, mem, values)
	return &pmSetup{m: m, sink: sink, f: f, mem: mem, key: key}
}

func TestPerMessageReloadsEachEvent(t *testing.T) {
	t.Parallel()
	p := newPM(t, Config{}, map[any]any{"a": 1})
	s, _ := connect(t, p.m, handshake(p.key))
	seen := func() any {
		var v any
		mustDo(t, s, func(sess *Session) error { v = sess.Values["a"]; return nil })
		return v
	}
	if v := seen(); v != 1 {
		t.Fatalf("first event sees %v", v)
	}
	httpEdit(t, p.mem, p.key, func(v map[any]any) { v["a"] = 2 })
	if v := seen(); v != 2 {
		t.Fatalf("second event sees %v, want the HTTP change", v)
	}
	httpEdit(t, p.mem, p.key, func(v map[any]any) { delete(v, "a") })
	if v := seen(); v != nil {
		t.Fatalf("third event sees %v, want the HTTP delete", v)
	}
}

// At most one load and one update per event, none when unchanged.
func TestPerMessageStoreCalls(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		fn            func(*Session) error
		loads, writes int64
		want          map[any]any
	}{
		{"read only", func(s *Session) error { _ = s.Values["a"]; return nil }, 1, 0, map[any]any{"a": 1, "list": []string{"x"}}},
		{"same value", set("a", 1), 1, 0, map[any]any{"a": 1, "list": []string{"x"}}},
		{"set", set("b", 2), 1, 1, map[any]any{"a": 1, "b": 2, "list": []string{"x"}}},
		{"delete", func(s *Session) error { delete(s.Values, "a"); return nil }, 1, 1, map[any]any{"list": []string{"x"}}},
		{"in place", func(s *Session) error { s.Values["list"].([]string)[0] = "y"; return nil }, 1, 1, map[any]any{"a": 1, "list": []string{"y"}}},
		{"several keys", func(s *Session) error { s.Values["a"] = 5; s.Values["b"] = 6; return nil }, 1, 1, map[any]any{"a": 5, "b": 6, "list": []string{"x"}}},
		{"handler error still saves", func(s *Session) error { s.Values["b"] = 2; return errors.New("partial") }, 1, 1, map[any]any{"a": 1, "b": 2, "list": []string{"x"}}},
		{"panic saves nothing", func(s *Session) error { s.Values["b"] = 2; panic("bug") }, 1, 0, map[any]any{"a": 1, "list": []string{"x"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPM(t, Config{}, map[any]any{"a": 1, "list": []string{"x"}})
			s, _ := connect(t, p.m, handshake(p.key))
			p.f.n.reset()
			_ = do(s, tc.fn)
			if got := p.f.n.load.Load() + p.f.n.new.Load(); got != tc.loads {
				t.Errorf("loads = %d, want %d", got, tc.loads)
			}
			if got := p.f.n.writes(); got != tc.writes {
				t.Errorf("writes = %d, want %d", got, tc.writes)
			}
			if got := mustStored(t, p.mem, p.key); !equalValues(got, tc.want) {
				t.Errorf("stored %v, want %v", got, tc.want)
			}
		})
	}
}

// The save is done when Do returns, so the ack sent after it follows the
// save.
func TestPerMessageSavesBeforeDoReturns(t *testing.T) {
	t.Parallel()
	p := newPM(t, Config{}, nil)
	s, _ := connect(t, p.m, handshake(p.key))
	for i := 0; i < 20; i++ {
		mustDo(t, s, set("i", i))
		if v := mustStored(t, p.mem, p.key); v["i"] != i {
			t.Fatalf("after Do #%d the store has %v", i, v)
		}
	}
}

// Two sockets of one session increment concurrently: no write is lost.
func TestPerMessageConcurrentIncrements(t *testing.T) {
	t.Parallel()
	p := newPM(t, Config{}, map[any]any{"n": 0})
	a, _ := connect(t, p.m, handshake(p.key))
	b, _ := connect(t, p.m, handshake(p.key))
	const each = 200
	var wg sync.WaitGroup
	for _, s := range []*Socket{a, b} {
		for i := 0; i < each; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := do(s, incrN); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	if v := mustStored(t, p.mem, p.key); v["n"] != 2*each {
		t.Fatalf("n = %v, want %d", v["n"], 2*each)
	}
	if n := p.m.locks.len(); n != 0 {
		t.Fatalf("%d session locks left", n)
	}
}

// A session destroyed over HTTP while an event runs is not brought back by
// its save; the socket is told.
func TestPerMessageNoResurrection(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		delete func(t *testing.T, p *pmSetup)
	}{
		{"Destroy", func(t *testing.T, p *pmSetup) { destroy(t, p.m, p.key) }},
		{"store delete", func(t *testing.T, p *pmSetup) { httpDelete(t, p.mem, p.key) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPM(t, Config{}, map[any]any{"n": 1})
			invalid := make(chan error, 4)
			p.m.OnInvalid(func(_ *Socket, err error) { invalid <- err })
			s, c := connect(t, p.m, handshake(p.key))
			err := do(s, func(sess *Session) error {
				tc.delete(t, p) // logout in another tab, mid-event
				sess.Values["n"] = 2
				return nil
			})
			if !errors.Is(err, ErrEnded) {
				t.Fatalf("Do = %v, want ErrEnded", err)
			}
			if _, err := stored(t, p.mem, p.key); !errors.Is(err, ErrNotFound) {
				t.Fatalf("session back: %v", err)
			}
			if err := recv(t, invalid, "sinvalid"); !errors.Is(err, ErrEnded) {
				t.Fatalf("sinvalid %v", err)
			}
			if r := sinvalidReason(t, c.waitEvent(t, "sinvalid")); r != "session ended" {
				t.Fatalf("reason %q", r)
			}
			c.waitClosed(t)
			if n := len(c.Named("sinvalid")); n != 1 {
				t.Errorf("%d sinvalid events", n)
			}
			if err := do(s, set("n", 3)); !errors.Is(err, ErrNoSession) || !errors.Is(err, ErrEnded) {
				t.Fatalf("next Do = %v", err)
			}
			if p.mem.Len() != 0 {
				t.Fatalf("Len %d", p.mem.Len())
			}
		})
	}
}

// Deleted between events, without a Notifier: the next event finds out.
func TestPerMessageEndedBetweenEvents(t *testing.T) {
	t.Parallel()
	mem := newMem(t)
	f := newFwd(mem) // no Notifier
	m, _ := newManager(t, f, Config{Mode: PerMessage, CloseGrace: 10 * time.Millisecond})
	invalid := make(chan error, 1)
	m.OnInvalid(func(_ *Socket, err error) { invalid <- err })
	key, _ := login(t, mem, nil)
	s, c := connect(t, m, handshake(key))
	httpDelete(t, mem, key)
	called := false
	err := do(s, func(*Session) error { called = true; return nil })
	if called || !errors.Is(err, ErrEnded) || !errors.Is(err, ErrNoSession) {
		t.Fatalf("Do = %v (fn called %v)", err, called)
	}
	if err := recv(t, invalid, "sinvalid"); !errors.Is(err, ErrEnded) {
		t.Fatalf("sinvalid %v", err)
	}
	c.waitClosed(t)
	if f.n.writes() != 0 {
		t.Fatal("wrote to the store")
	}
}

// Session.Save says ErrNotFound, writing nothing, when the session ended
// meanwhile.
func TestPerMessageSessionSaveAfterEnd(t *testing.T) {
	t.Parallel()
	p := newPM(t, Config{}, nil)
	s, _ := connect(t, p.m, handshake(p.key))
	var saveErr error
	_ = do(s, func(sess *Session) error {
		httpDelete(t, p.mem, p.key)
		sess.Values["n"] = 1
		saveErr = sess.Save(context.Background())
		return nil
	})
	if !errors.Is(saveErr, ErrNotFound) {
		t.Fatalf("Session.Save = %v, want ErrNotFound as documented", saveErr)
	}
	if p.mem.Len() != 0 {
		t.Fatal("brought back")
	}
}

// Session.Save inside an event writes at once; the end-of-event save
// writes only what changed after it.
func TestPerMessageSessionSave(t *testing.T) {
	t.Parallel()
	p := newPM(t, Config{}, nil)
	s, _ := connect(t, p.m, handshake(p.key))
	p.f.n.reset()
	mustDo(t, s, func(sess *Session) error {
		sess.Values["a"] = 1
		if err := sess.Save(context.Background()); err != nil {
			return err
		}
		if v := mustStored(t, p.mem, p.key); v["a"] != 1 {
			return fmt.Errorf("not saved at once: %v", v)
		}
		httpEdit(t, p.mem, p.key, func(v map[any]any) { v["h"] = 1 })
		return nil
	})
	if n := p.f.n.update.Load(); n != 1 {
		t.Fatalf("%d updates, want 1 (nothing changed after Save)", n)
	}
	if v := mustStored(t, p.mem, p.key); !equalValues(v, map[any]any{"a": 1, "h": 1}) {
		t.Fatalf("stored %v", v)
	}
}

// The sconnection handler's changes are saved when it returns; Session.Save
// works there too.
func TestPerMessageConnectionHandler(t *testing.T) {
	t.Parallel()
	for _, explicit := range []bool{false, true} {
		t.Run(fmt.Sprintf("Session.Save=%v", explicit), func(t *testing.T) {
			t.Parallel()
			p := newPM(t, Config{}, map[any]any{"visits": 1})
			saveErr := make(chan error, 1)
			p.m.OnConnection(func(_ *Socket, sess *Session) {
				sess.Values["visits"] = sess.Values["visits"].(int) + 1
				if explicit {
					saveErr <- sess.Save(context.Background())
					if v := mustStored(t, p.mem, p.key); v["visits"] != 2 {
						t.Errorf("Session.Save did not save at once: %v", v)
					}
				}
			})
			p.f.n.reset()
			connect(t, p.m, handshake(p.key))
			if explicit {
				if err := recv(t, saveErr, "save"); err != nil {
					t.Fatal(err)
				}
			}
			if v := mustStored(t, p.mem, p.key); v["visits"] != 2 {
				t.Fatalf("stored %v", v)
			}
			if n := p.f.n.update.Load(); n != 1 {
				t.Fatalf("%d updates, want 1", n)
			}
			if p.m.locks.len() != 0 {
				t.Fatal("session lock held after Open")
			}
		})
	}
}

// A panicking sconnection handler saves nothing, like a panicking event.
func TestPerMessageConnectionPanicSavesNothing(t *testing.T) {
	t.Parallel()
	p := newPM(t, Config{}, map[any]any{"n": 1})
	p.m.OnConnection(func(_ *Socket, sess *Session) {
		sess.Values["n"] = 2
		panic("half done")
	})
	connect(t, p.m, handshake(p.key))
	p.sink.waitPanic(t, "sconnection")
	if v := mustStored(t, p.mem, p.key); v["n"] != 1 {
		t.Fatalf("a panicking sconnection handler's changes were saved: %v", v)
	}
}

// A store failure during an event reaches Do; the socket stays.
func TestPerMessageStoreFailure(t *testing.T) {
	t.Parallel()
	for _, timeout := range []bool{false, true} {
		t.Run(fmt.Sprintf("timeout=%v", timeout), func(t *testing.T) {
			t.Parallel()
			mem := newMem(t)
			fs := &flakyStore{fwdStore: newFwd(mem), block: timeout}
			m, _ := newManager(t, fs, Config{Mode: PerMessage, StoreTimeout: 50 * time.Millisecond})
			key, _ := login(t, mem, nil)
			s, c := connect(t, m, handshake(key))
			for _, phase := range []string{"load", "update"} {
				fs.set(phase)
				called := false
				err := do(s, func(sess *Session) error { called = true; sess.Values["x"] = 1; return nil })
				if !errors.Is(err, ErrStoreUnavailable) || errors.Is(err, ErrNoSession) {
					t.Fatalf("%s: Do = %v, want ErrStoreUnavailable", phase, err)
				}
				if timeout && !errors.Is(err, ErrStoreTimeout) {
					t.Fatalf("%s: Do = %v, want ErrStoreTimeout", phase, err)
				}
				if phase == "load" && called {
					t.Fatal("fn ran without a session")
				}
				if ack := ErrorAck(err); ack["error"] != Reason(err) || ack["error"] == "" {
					t.Fatalf("ErrorAck %v", ack)
				}
			}
			fs.set("")
			mustDo(t, s, set("y", 1))
			if len(c.Named("sinvalid")) != 0 {
				t.Fatal("a store failure ended the socket")
			}
		})
	}
}

// flakyStore fails (or blocks until its deadline) in one phase.
type flakyStore struct {
	*fwdStore
	block bool
	mu    sync.Mutex
	phase string
}

func (f *flakyStore) set(p string) { f.mu.Lock(); f.phase = p; f.mu.Unlock() }
func (f *flakyStore) is(p string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.phase == p
}

func (f *flakyStore) fail(ctx context.Context) error {
	if f.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return errBoom
}

func (f *flakyStore) Load(ctx context.Context, name, key string) (*sessions.Session, error) {
	if f.is("load") {
		return nil, f.fail(ctx)
	}
	return f.fwdStore.Load(ctx, name, key)
}

func (f *flakyStore) Update(ctx context.Context, name, id string, fn func(map[any]any)) error {
	if f.is("update") {
		return f.fail(ctx)
	}
	return f.fwdStore.Update(ctx, name, id, fn)
}

// Events of different sessions do not wait for each other.
func TestPerMessageSessionsIndependent(t *testing.T) {
	t.Parallel()
	mem := newMem(t)
	m, _ := newManager(t, mem, Config{Mode: PerMessage})
	k1, _ := login(t, mem, nil)
	k2, _ := login(t, mem, nil)
	s1, _ := connect(t, m, handshake(k1))
	s2, _ := connect(t, m, handshake(k2))
	entered := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- do(s1, func(*Session) error { close(entered); <-release; return nil })
	}()
	recv(t, entered, "event of session 1")
	if err := do(s2, set("x", 1)); err != nil { // would hang if serialized with s1
		t.Fatal(err)
	}
	close(release)
	if err := recv(t, done, "event of session 1"); err != nil {
		t.Fatal(err)
	}
}

// gateRelay is a MemoryStore and Relay shared by two Managers of a test
// that holds back, while hold is set, what would reach the second Manager:
// relayed messages and ends, in the order they were sent, as one Redis
// pub/sub connection keeps them. loads reports each Load that found no
// session.
type gateRelay struct {
	*MemoryStore
	missed chan struct{}

	mu    sync.Mutex
	subs  []func([]byte)
	ends  []func(string)
	hold  bool
	queue []func()
}

func (r *gateRelay) Load(ctx context.Context, name, key string) (*sessions.Session, error) {
	sess, err := r.MemoryStore.Load(ctx, name, key)
	if errors.Is(err, ErrNotFound) {
		select {
		case r.missed <- struct{}{}:
		default:
		}
	}
	return sess, err
}

// deliver runs f now, or after release while hold is set, for the second
// Manager; the first Manager gets everything at once.
func (r *gateRelay) deliver(i int, f func()) {
	r.mu.Lock()
	if i == 1 && r.hold {
		r.queue = append(r.queue, f)
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	f()
}

func (r *gateRelay) release() {
	r.mu.Lock()
	q := r.queue
	r.queue, r.hold = nil, false
	r.mu.Unlock()
	for _, f := range q {
		f()
	}
}

func (r *gateRelay) Relay(_ context.Context, msg []byte) error {
	r.mu.Lock()
	subs := slices.Clone(r.subs)
	r.mu.Unlock()
	for i, f := range subs {
		r.deliver(i, func() { f(msg) })
	}
	return nil
}

func (r *gateRelay) OnRelay(f func([]byte)) {
	r.mu.Lock()
	r.subs = append(r.subs, f)
	r.mu.Unlock()
}

func (r *gateRelay) NotifyEnd(f func(string)) {
	r.mu.Lock()
	i := len(r.ends)
	r.ends = append(r.ends, f)
	r.mu.Unlock()
	r.MemoryStore.NotifyEnd(func(id string) { r.deliver(i, func() { f(id) }) })
}

// TestPerMessageAwaitsMove: a session rotated on node A, whose move has
// not reached node B yet when a socket of B loads the old id (gone from
// the store), is not ended on B: the event waits for the move, then runs
// on the new id.
func TestPerMessageAwaitsMove(t *testing.T) {
	t.Parallel()
	relay := &gateRelay{MemoryStore: newMem(t), missed: make(chan struct{}, 1)}
	var ms [2]*Manager
	for i := range ms {
		m, err := New(relay, Config{Mode: PerMessage})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
		ms[i] = m
	}
	key, oldID := login(t, relay, map[any]any{"n": 1})
	c := newTestConn(handshake(key))
	s := openSocket(ms[1], c)
	if s.Err() != nil {
		t.Fatal(s.Err())
	}

	relay.mu.Lock()
	relay.hold = true
	relay.mu.Unlock()
	w := httptest.NewRecorder()
	ns, err := ms[0].Rotate(context.Background(), w, withCookie(http.MethodPost, "/rotate", key))
	if err != nil {
		t.Fatal(err)
	}
	if ns.ID == oldID {
		t.Fatal("Rotate kept the id")
	}
	done := make(chan error, 1)
	go func() {
		done <- s.Do(context.Background(), func(sess *Session) error {
			sess.Values["n"] = sess.Values["n"].(int) + 1
			return nil
		})
	}()
	select {
	case <-relay.missed: // B loaded the old id, which is gone
	case err := <-done:
		t.Fatalf("the event ran before the move reached B: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("B never loaded the session")
	}
	relay.release() // the move, then the old id's end
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("event on B: %v, want it run on the new id", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event on B never returned")
	}
	if s.sid().ref != ns.ID {
		t.Error("B's socket is not on the new id")
	}
	if got := c.Named("sinvalid"); len(got) != 0 || c.IsClosed() {
		t.Errorf("B's socket got %v, closed %v", got, c.IsClosed())
	}
	nc := cookieNamed(w.Result().Cookies(), "session")
	if v := mustStored(t, relay.MemoryStore, nc.Value); v["n"] != 2 {
		t.Errorf("stored %v, want n=2", v)
	}
}

// A session lock released twice panics, recoverably, instead of a fatal
// unlock of an unlocked mutex or a release of the next holder's lock.
func TestLockReleasedTwice(t *testing.T) {
	var lt lockTable
	lt.init()
	unlock := lt.lock("s")
	unlock()
	defer func() {
		if r := recover(); r != "iosessions: a session lock released twice" {
			t.Fatalf("second unlock: recovered %v", r)
		}
		if n := lt.len(); n != 0 {
			t.Fatalf("%d sessions still locked", n)
		}
		again := lt.lock("s") // the table still works
		again()
	}()
	unlock()
}
