package iosessions

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// disconnected returns a channel that receives each socket whose
// disconnect handler ran (after its save).
func disconnected(m *Manager) <-chan *Socket {
	ch := make(chan *Socket, 16)
	m.OnDisconnect(func(s *Socket, _ string) { ch <- s })
	return ch
}

// closeAndWait closes s as its binding would, for reason, and waits for
// its disconnect handler, which runs after its save.
func closeAndWait(t testing.TB, m *Manager, s *Socket, reason string) {
	t.Helper()
	gone := disconnected(m)
	s.Closed(reason)
	if got := recv(t, gone, "disconnect handler"); got != s {
		t.Fatal("another socket disconnected")
	}
}

// The ways a PerConnection socket's changes reach the store.
func TestPerConnSaves(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  Config
		// change makes the socket set "k" to "v"; save makes it reach the
		// store and waits for that.
		change func(t *testing.T, s *Socket)
		save   func(t *testing.T, m *Manager, s *Socket, mem *MemoryStore, key string)
	}{
		{
			name:   "at Closed",
			change: func(t *testing.T, s *Socket) { mustDo(t, s, set("k", "v")) },
			save: func(t *testing.T, m *Manager, s *Socket, _ *MemoryStore, _ string) {
				closeAndWait(t, m, s, "transport close")
			},
		},
		{
			name:   "at Shutdown",
			change: func(t *testing.T, s *Socket) { mustDo(t, s, set("k", "v")) },
			save: func(t *testing.T, m *Manager, _ *Socket, _ *MemoryStore, _ string) {
				if err := m.Shutdown(context.Background()); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "by Session.Save in the handler",
			change: func(t *testing.T, s *Socket) {
				mustDo(t, s, func(sess *Session) error {
					sess.Values["k"] = "v"
					return sess.Save(context.Background())
				})
			},
			save: func(*testing.T, *Manager, *Socket, *MemoryStore, string) {},
		},
		{
			name:   "every FlushInterval",
			cfg:    Config{FlushInterval: 5 * time.Millisecond},
			change: func(t *testing.T, s *Socket) { mustDo(t, s, set("k", "v")) },
			save: func(t *testing.T, _ *Manager, _ *Socket, mem *MemoryStore, key string) {
				eventually(t, "the periodic flush", func() bool {
					v, err := stored(t, mem, key)
					return err == nil && v["k"] == "v"
				})
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mem := newMem(t)
			f := newFwd(mem)
			m, sink := newManager(t, f, tc.cfg)
			key, _ := login(t, mem, map[any]any{"user": "ann"})
			s, _ := connect(t, m, handshake(key))
			tc.change(t, s)
			tc.save(t, m, s, mem, key)
			v := mustStored(t, mem, key)
			if v["k"] != "v" || v["user"] != "ann" {
				t.Fatalf("stored %v", v)
			}
			if f.n.save.Load() != 0 {
				t.Errorf("%d plain Saves: a socket must save through Update", f.n.save.Load())
			}
			if errs := sink.all(); len(errs) != 0 {
				t.Errorf("reported: %v", errs)
			}
		})
	}
}

func mustDo(t testing.TB, s *Socket, fn func(*Session) error) {
	t.Helper()
	if err := do(s, fn); err != nil {
		t.Fatalf("Do: %v", err)
	}
}

// The sconnection handler's changes are the socket's.
func TestPerConnConnectChangesSaved(t *testing.T) {
	t.Parallel()
	for _, explicit := range []bool{false, true} {
		name := "at Closed"
		if explicit {
			name = "Session.Save"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, Config{}, nil)
			m := fx.m
			saved := make(chan error, 1)
			m.OnConnection(func(_ *Socket, sess *Session) {
				sess.Values["visits"] = 1
				if explicit {
					saved <- sess.Save(context.Background())
				}
			})
			s, _ := connect(t, m, handshake(fx.key))
			if explicit {
				if err := recv(t, saved, "save"); err != nil {
					t.Fatal(err)
				}
			} else {
				closeAndWait(t, m, s, "bye")
			}
			if v := mustStored(t, fx.mem, fx.key); v["visits"] != 1 {
				t.Fatalf("stored %v", v)
			}
		})
	}
}

// A socket's save writes only what it changed, onto the stored session;
// an HTTP save reaches the live session at once, keeping what the socket
// changed and has not saved.
func TestPerConnMergesWithHTTP(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		before map[any]any
		first  func(v map[any]any) // the socket, before the HTTP save
		http   func(v map[any]any)
		socket func(v map[any]any)
		want   map[any]any
	}{
		{
			name:   "socket b unsaved, then HTTP a",
			before: map[any]any{"a": 1, "b": 1},
			first:  func(v map[any]any) { v["b"] = 2 },
			http:   func(v map[any]any) { v["a"] = 10 },
			socket: func(v map[any]any) { v["seen"] = v["a"].(int) + v["b"].(int) },
			want:   map[any]any{"a": 10, "b": 2, "seen": 12},
		},
		{
			name:   "socket b unsaved, then HTTP b: the later write wins",
			before: map[any]any{"a": 1, "b": 1},
			first:  func(v map[any]any) { v["b"] = 2; delete(v, "a") },
			http:   func(v map[any]any) { v["b"] = 10; v["a"] = 5 },
			socket: func(v map[any]any) { v["seen"] = v["a"].(int) + v["b"].(int) },
			want:   map[any]any{"a": 5, "b": 10, "seen": 15},
		},
		{
			name:   "socket deletes b unsaved, HTTP changes a",
			before: map[any]any{"a": 1, "b": 1},
			first:  func(v map[any]any) { delete(v, "b") },
			http:   func(v map[any]any) { v["a"] = 2 },
			socket: func(v map[any]any) { _, ok := v["b"]; v["b gone"] = !ok },
			want:   map[any]any{"a": 2, "b gone": true},
		},
		{
			name:   "HTTP a, socket b",
			before: map[any]any{},
			http:   func(v map[any]any) { v["a"] = 1 },
			socket: func(v map[any]any) { v["b"] = 2 },
			want:   map[any]any{"a": 1, "b": 2},
		},
		{
			name:   "HTTP changes a key the socket only read",
			before: map[any]any{"a": 1, "b": 1},
			http:   func(v map[any]any) { v["a"] = 10 },
			socket: func(v map[any]any) { v["b"] = v["a"].(int) + 1 },
			want:   map[any]any{"a": 10, "b": 11},
		},
		{
			name:   "socket deletes a key",
			before: map[any]any{"a": 1, "gone": true},
			http:   func(v map[any]any) { v["h"] = 1 },
			socket: func(v map[any]any) { delete(v, "gone") },
			want:   map[any]any{"a": 1, "h": 1},
		},
		{
			name:   "HTTP deletes a key the socket did not touch",
			before: map[any]any{"a": 1, "b": 1},
			http:   func(v map[any]any) { delete(v, "a") },
			socket: func(v map[any]any) { v["b"] = 2 },
			want:   map[any]any{"b": 2},
		},
		{
			name:   "same key: last save wins",
			before: map[any]any{"a": 1},
			http:   func(v map[any]any) { v["a"] = "http" },
			socket: func(v map[any]any) { v["a"] = "socket" },
			want:   map[any]any{"a": "socket"},
		},
		{
			name:   "socket changes a nested value in place",
			before: map[any]any{"list": []string{"x"}},
			http:   func(v map[any]any) { v["h"] = 1 },
			socket: func(v map[any]any) { v["list"].([]string)[0] = "y" },
			want:   map[any]any{"list": []string{"y"}, "h": 1},
		},
		{
			name:   "socket sets a key back to its loaded value",
			before: map[any]any{"a": 1},
			http:   func(v map[any]any) { v["a"] = 5 },
			socket: func(v map[any]any) { v["a"] = 2; v["a"] = 5 },
			want:   map[any]any{"a": 5},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, Config{}, tc.before)
			changed := make(chan struct{}, 1)
			fx.m.OnChange(func(*Socket) { changed <- struct{}{} })
			s, _ := connect(t, fx.m, handshake(fx.key))
			if tc.first != nil {
				mustDo(t, s, func(sess *Session) error { tc.first(sess.Values); return nil })
			}
			httpEdit(t, fx.mem, fx.key, tc.http)
			recv(t, changed, "OnChange")
			mustDo(t, s, func(sess *Session) error { tc.socket(sess.Values); return nil })
			closeAndWait(t, fx.m, s, "bye")
			if got := mustStored(t, fx.mem, fx.key); !equalValues(got, tc.want) {
				t.Fatalf("stored %v, want %v", got, tc.want)
			}
		})
	}
}

func equalValues(a, b map[any]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok {
			return false
		}
		if !reflect.DeepEqual(v, w) {
			return false
		}
	}
	return true
}

// A value the socket did not change must not be written back, even when
// it does not survive a gob round trip bit for bit (time.Time keeps a
// monotonic clock reading in memory only).
func TestPerConnNoRollbackOfUnchangedTime(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, Config{}, nil)
	fx.m.OnConnection(func(_ *Socket, sess *Session) {
		sess.Values["seen"] = time.Now()
		if err := sess.Save(context.Background()); err != nil {
			t.Error(err)
		}
	})
	s, _ := connect(t, fx.m, handshake(fx.key))
	later := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	httpEdit(t, fx.mem, fx.key, func(v map[any]any) { v["seen"] = later })
	mustDo(t, s, set("other", 1))
	closeAndWait(t, fx.m, s, "bye")
	v := mustStored(t, fx.mem, fx.key)
	if got, _ := v["seen"].(time.Time); !got.Equal(later) {
		t.Fatalf("the socket rolled back %q, which it did not change since its save: got %v, want %v", "seen", got, later)
	}
	if v["other"] != 1 {
		t.Fatalf("stored %v", v)
	}
}

// A save never brings back a session that ended meanwhile.
func TestPerConnNoResurrection(t *testing.T) {
	t.Parallel()
	t.Run("Destroy", func(t *testing.T) {
		t.Parallel()
		fx := newFixture(t, Config{CloseGrace: 10 * time.Millisecond}, map[any]any{"n": 1})
		s, c := connect(t, fx.m, handshake(fx.key))
		mustDo(t, s, set("before", true)) // unsaved change
		destroy(t, fx.m, fx.key)
		if err := do(s, set("after", true)); !errors.Is(err, ErrEnded) {
			t.Fatalf("Do after Destroy = %v, want ErrEnded", err)
		}
		c.waitClosed(t)
		closeAndWait(t, fx.m, s, "server namespace disconnect")
		if _, err := stored(t, fx.mem, fx.key); !errors.Is(err, ErrNotFound) {
			t.Fatalf("session back after Destroy: %v", err)
		}
		if fx.mem.Len() != 0 {
			t.Fatalf("Len %d", fx.mem.Len())
		}
	})
	// Without Notifier the socket does not know; its save finds the session
	// gone, writes nothing and ends the socket.
	for _, how := range []string{"Closed", "Session.Save", "flush", "Shutdown"} {
		t.Run("store without Notifier/"+how, func(t *testing.T) {
			t.Parallel()
			mem := newMem(t)
			f := newFwd(mem)
			cfg := Config{CloseGrace: 10 * time.Millisecond}
			if how == "flush" {
				cfg.FlushInterval = 5 * time.Millisecond
			}
			m, sink := newManager(t, f, cfg)
			invalid := make(chan error, 1)
			m.OnInvalid(func(_ *Socket, err error) { invalid <- err })
			key, _ := login(t, mem, map[any]any{"n": 1})
			s, c := connect(t, m, handshake(key))
			httpDelete(t, mem, key)
			switch how {
			case "Session.Save":
				err := do(s, func(sess *Session) error {
					sess.Values["n"] = 2
					return sess.Save(context.Background())
				})
				if !errors.Is(err, ErrNotFound) {
					t.Errorf("Session.Save = %v, want ErrNotFound", err)
				}
			case "Closed":
				mustDo(t, s, set("n", 2))
				closeAndWait(t, m, s, "bye")
			case "flush":
				mustDo(t, s, set("n", 2))
			case "Shutdown":
				mustDo(t, s, set("n", 2))
				if err := m.Shutdown(context.Background()); err != nil {
					t.Errorf("Shutdown = %v", err)
				}
			}
			if err := recv(t, invalid, "sinvalid"); !errors.Is(err, ErrEnded) {
				t.Fatalf("sinvalid %v", err)
			}
			if how != "Closed" {
				c.waitClosed(t)
			}
			if _, err := stored(t, mem, key); !errors.Is(err, ErrNotFound) {
				t.Fatalf("session back: %v", err)
			}
			if f.n.save.Load() != 0 || mem.Len() != 0 {
				t.Fatalf("saves %d, Len %d", f.n.save.Load(), mem.Len())
			}
			for _, err := range sink.all() {
				if errors.Is(err, ErrNotFound) {
					t.Errorf("an ended session was reported as an error: %v", err)
				}
			}
		})
	}
}

// Stores without Updater are saved by reload, apply and save; the rules
// hold there too.
func TestPerConnPlainStore(t *testing.T) {
	t.Parallel()
	mem := newMem(t)
	p := newPlain(mem)
	m, _ := newManager(t, p, Config{CloseGrace: 10 * time.Millisecond})
	key, _ := login(t, mem, map[any]any{"a": 0})
	s, _ := connect(t, m, handshake(key))
	httpEdit(t, mem, key, func(v map[any]any) { v["a"] = 1 })
	mustDo(t, s, set("b", 2))
	mustDo(t, s, func(sess *Session) error { return sess.Save(context.Background()) })
	if v := mustStored(t, mem, key); !equalValues(v, map[any]any{"a": 1, "b": 2}) {
		t.Fatalf("stored %v", v)
	}
	// Deleted meanwhile: not brought back.
	httpDelete(t, mem, key)
	err := do(s, func(sess *Session) error {
		sess.Values["c"] = 3
		return sess.Save(context.Background())
	})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Save after delete = %v", err)
	}
	if mem.Len() != 0 {
		t.Fatalf("brought back: Len %d", mem.Len())
	}
}

// Handlers of one socket and its saves never overlap.
func TestPerConnSerializes(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, Config{FlushInterval: time.Millisecond}, map[any]any{"n": 0})
	s, _ := connect(t, fx.m, handshake(fx.key))
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = do(s, incrN)
		}()
	}
	wg.Wait()
	closeAndWait(t, fx.m, s, "bye")
	if v := mustStored(t, fx.mem, fx.key); v["n"] != 50 {
		t.Fatalf("n = %v, want 50", v["n"])
	}
}

// Do waits for Open, or for its context.
func TestDoWaitsForOpen(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, Config{}, map[any]any{"n": 1})
	s := fx.m.Accept(newTestConn(handshake(fx.key)))
	t.Cleanup(func() { s.Closed("cleanup") })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.Do(ctx, set("x", 1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do before Open = %v", err)
	}
	res := make(chan error, 1)
	go func() { res <- do(s, set("x", 1)) }()
	s.Open()
	if err := recv(t, res, "Do"); err != nil {
		t.Fatal(err)
	}
}

// The sockets of one session on one node share one live copy: each sees
// the other's changes at once, concurrent events lose nothing, and the
// session is saved when its last socket here disconnects.
func TestPerConnOneLivePerNode(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, Config{}, map[any]any{"n": 0})
	a, _ := connect(t, fx.m, handshake(fx.key))
	b, _ := connect(t, fx.m, handshake(fx.key))
	otherKey, _ := login(t, fx.mem, map[any]any{"n": 0})
	other, _ := connect(t, fx.m, handshake(otherKey))
	if st := fx.m.Stats(); st.Lives != 2 || st.Sockets != 3 {
		t.Fatalf("Stats %+v, want 2 lives for 3 sockets", st)
	}

	mustDo(t, a, set("tab", "a"))
	mustDo(t, b, func(sess *Session) error {
		if sess.Values["tab"] != "a" {
			return fmt.Errorf("b sees tab=%v, want a's change", sess.Values["tab"])
		}
		return nil
	})
	mustDo(t, other, func(sess *Session) error {
		if _, ok := sess.Values["tab"]; ok {
			return errors.New("another session sees the change")
		}
		return nil
	})

	var wg sync.WaitGroup
	for _, s := range []*Socket{a, b} {
		for i := 0; i < 200; i++ {
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

	closeAndWait(t, fx.m, a, "bye")
	if v := mustStored(t, fx.mem, fx.key); v["n"] != 0 || v["tab"] != nil {
		t.Fatalf("stored %v after the first socket left, want nothing saved yet", v)
	}
	// A socket that connects now joins the live copy, changes included.
	c, _ := connect(t, fx.m, handshake(fx.key))
	mustDo(t, c, func(sess *Session) error {
		if sess.Values["n"] != 400 {
			return fmt.Errorf("a new socket sees n=%v, want 400", sess.Values["n"])
		}
		return nil
	})
	closeAndWait(t, fx.m, b, "bye")
	closeAndWait(t, fx.m, c, "bye")
	if v := mustStored(t, fx.mem, fx.key); v["n"] != 400 || v["tab"] != "a" {
		t.Fatalf("stored %v, want n=400 tab=a", v)
	}
	closeAndWait(t, fx.m, other, "bye")
	if st := fx.m.Stats(); st != (Stats{}) {
		t.Fatalf("Stats %+v after every socket left", st)
	}
}

// Sockets of one session that open at once share its live copy, and each
// counts. Config.User reads the values before the copy is shared: CI's
// race detector once caught the first socket reading them after a second
// one had refreshed the copy (example, two nodes); this test opens them at
// once under -race but did not catch that interleaving before the fix.
func TestPerConnConcurrentOpens(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	user := func(v map[any]any) string {
		if calls.Add(1) == 1 {
			time.Sleep(50 * time.Millisecond) // the others open meanwhile
		}
		u, _ := v["user"].(string)
		return u
	}
	fx := newFixture(t, Config{User: user}, map[any]any{"user": "ann", "n": 0})
	var wg sync.WaitGroup
	socks := make([]*Socket, 16)
	for i := range socks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := fx.m.Accept(newTestConn(handshake(fx.key)))
			s.Open()
			socks[i] = s
		}()
	}
	wg.Wait()
	for _, s := range socks {
		if s.User() != "ann" {
			t.Fatalf("user %q", s.User())
		}
		mustDo(t, s, incrN)
	}
	for _, s := range socks {
		closeAndWait(t, fx.m, s, "bye")
	}
	if v := mustStored(t, fx.mem, fx.key); v["n"] != len(socks) {
		t.Fatalf("n = %v, want %d", v["n"], len(socks))
	}
}
