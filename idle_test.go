package iosessions

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/sessions"
)

// TestMemoryIdle: with an idle timeout, a MemoryStore session ends 6/5
// of it after its last HTTP save, HTTP load or Touch, never after its
// lifetime; a Touch writes only when it moves the deadline by a tenth of
// the timeout or more, or up to the end of the lifetime; Expiry says when and why each session ends, and a
// gone one is reclaimed and reported.
func TestMemoryIdle(t *testing.T) {
	s := NewMemoryStore()
	defer s.Close()
	clock := withClock(s)
	s.SetIdleTimeout(10 * time.Second)
	var ended []string
	s.NotifyEnd(func(id string) { ended = append(ended, id) })
	ctx := context.Background()

	save := func(maxAge int) (*http.Cookie, string) {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		sess, _ := s.New(r, "session")
		sess.Options.MaxAge = maxAge
		w := httptest.NewRecorder()
		if err := sess.Save(r, w); err != nil {
			t.Fatal(err)
		}
		return w.Result().Cookies()[0], sess.ID
	}
	cookie, id := save(60)
	start := clock.Now()
	if e, _ := s.Expiry(ctx, "session", []string{id}); !e[0].Idle || !e[0].At.Equal(start.Add(12*time.Second)) {
		t.Fatalf("after the save: %+v, want idle at +12s", e[0])
	}

	// A Touch within a tenth of the timeout writes nothing.
	clock.Add(500 * time.Millisecond)
	before := s.entry(id)
	if e, err := s.Touch(ctx, "session", id); err != nil || !e.At.Equal(start.Add(12*time.Second)) {
		t.Fatalf("early Touch: %+v, %v; want the deadline unmoved", e, err)
	}
	if s.entry(id) != before {
		t.Fatal("an early Touch replaced the entry")
	}
	// One a tenth later moves it.
	clock.Add(600 * time.Millisecond)
	if e, err := s.Touch(ctx, "session", id); err != nil || !e.At.Equal(start.Add(13100*time.Millisecond)) || !e.Idle {
		t.Fatalf("Touch: %+v, %v; want idle at +13.1s", e, err)
	}

	// An HTTP load extends it.
	clock.Add(11 * time.Second)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(cookie)
	if sess, _ := s.New(r, "session"); sess.IsNew {
		t.Fatal("the session expired before its idle deadline")
	}
	if e, _ := s.Expiry(ctx, "session", []string{id}); !e[0].At.Equal(clock.Now().Add(12 * time.Second)) {
		t.Fatalf("after an HTTP load: %+v, want idle at now+12s", e[0])
	}

	// Idle for 6/5 of the timeout: gone, reclaimed and reported.
	clock.Add(12 * time.Second)
	if e, _ := s.Expiry(ctx, "session", []string{id}); !e[0].At.IsZero() {
		t.Fatalf("idle for the timeout: %+v, want gone", e[0])
	}
	if len(ended) != 1 || ended[0] != id {
		t.Fatalf("ended %d sessions, want the idle one", len(ended))
	}
	if _, err := s.Touch(ctx, "session", id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Touch of a gone session: %v, want ErrNotFound", err)
	}

	// The lifetime bounds it: touched all along, it ends at MaxAge. A
	// Touch that reaches the end of the lifetime writes, by however
	// little it moves the deadline.
	_, id = save(15)
	start = clock.Now()
	clock.Add(2950 * time.Millisecond)
	if e, err := s.Touch(ctx, "session", id); err != nil || !e.At.Equal(start.Add(14950*time.Millisecond)) || !e.Idle {
		t.Fatalf("Touch: %+v, %v; want idle at +14.95s", e, err)
	}
	clock.Add(100 * time.Millisecond)
	if e, err := s.Touch(ctx, "session", id); err != nil || !e.At.Equal(start.Add(15*time.Second)) || e.Idle {
		t.Fatalf("Touch near the end of the lifetime: %+v, %v; want the lifetime's end, not idle", e, err)
	}
	clock.Add(11950 * time.Millisecond)
	if e, _ := s.Expiry(ctx, "session", []string{id}); !e[0].At.IsZero() {
		t.Fatalf("at the end of its lifetime: %+v, want gone", e[0])
	}
}

// entry returns the stored entry of id, for tests.
func (s *MemoryStore) entry(id string) *memEntry {
	sh := s.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.m[id]
}

// TestIdleConfig: IdleTimeout under 1 s, negative, or with a store that
// cannot expire idle sessions is ErrConfig; with a MemoryStore (the
// default one included) the Manager starts, sets the store's timeout and
// stops its watch at Shutdown (TestMain checks for leaks).
func TestIdleConfig(t *testing.T) {
	for _, c := range []struct {
		name  string
		store func() *MemoryStore
		idle  time.Duration
		ok    bool
	}{
		{"negative", nil, -time.Second, false},
		{"too short", nil, 500 * time.Millisecond, false},
		{"default store", nil, time.Second, true},
		{"memory store", func() *MemoryStore { return NewMemoryStore() }, 2 * time.Second, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var m *Manager
			var err error
			var mem *MemoryStore
			if c.store != nil {
				mem = c.store()
				defer mem.Close()
				m, err = New(mem, Config{IdleTimeout: c.idle})
			} else {
				m, err = New(nil, Config{IdleTimeout: c.idle})
			}
			if !c.ok {
				if !errors.Is(err, ErrConfig) {
					t.Fatalf("New: %v, want ErrConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if mem != nil && time.Duration(mem.idle.Load()) != c.idle {
				t.Errorf("the store's idle timeout is %v, want %v", time.Duration(mem.idle.Load()), c.idle)
			}
			if err := m.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := New(sessions.NewCookieStore([]byte("0123456789abcdef0123456789abcdef")), Config{IdleTimeout: time.Second}); !errors.Is(err, ErrConfig) {
		t.Fatalf("New with a CookieStore: %v, want ErrConfig", err)
	}
}
