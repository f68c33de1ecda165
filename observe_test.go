package iosessions

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/sessions"
)

// obsRecorder is an Observer that keeps what it is given.
type obsRecorder struct {
	mu  sync.Mutex
	obs []Observation
}

func (r *obsRecorder) Observe(o Observation) {
	r.mu.Lock()
	r.obs = append(r.obs, o)
	r.mu.Unlock()
}

// of returns the observations of kind k, in order.
func (r *obsRecorder) of(k ObservationKind) []Observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Observation
	for _, o := range r.obs {
		if o.Kind == k {
			out = append(out, o)
		}
	}
	return out
}

// outcomes returns the Outcome of each observation of kind k.
func (r *obsRecorder) outcomes(k ObservationKind) []string {
	var out []string
	for _, o := range r.of(k) {
		out = append(out, o.Outcome)
	}
	return out
}

// storeCalls returns "op:outcome" for each store call observed.
func (r *obsRecorder) storeCalls() []string {
	var out []string
	for _, o := range r.of(KindStoreCall) {
		out = append(out, o.Op+":"+o.Outcome)
	}
	return out
}

// boundConn is a testConn that names its binding.
type boundConn struct{ *testConn }

func (boundConn) Binding() string { return "test" }

// open accepts and opens a socket for r on m.
func openSocket(m *Manager, c Conn) *Socket {
	s := m.Accept(c)
	s.Open()
	return s
}

func TestObserveHandshakes(t *testing.T) {
	mem := newMem(t)
	key, _ := login(t, mem, map[any]any{"user": "ann"})
	gone, _ := login(t, mem, nil)
	httpDelete(t, mem, gone)

	foreign := handshake(key)
	foreign.Host = "app.example"
	foreign.Header.Set("Origin", "https://evil.example")

	cases := []struct {
		name  string
		store func() sessions.Store
		req   *http.Request
		cfg   Config
		want  string
	}{
		{"ok", nil, handshake(key), Config{}, "ok"},
		{"ok per message", nil, handshake(key), Config{Mode: PerMessage}, "ok"},
		{"no key", nil, handshake(""), Config{}, "no_session"},
		{"bad key", nil, handshake("garbage"), Config{}, "bad_key"},
		{"not found", nil, handshake(gone), Config{}, "not_found"},
		{"origin", nil, foreign, Config{}, "origin"},
		{"store down", func() sessions.Store { return &failLoader{} }, handshake(key), Config{}, "store_unavailable"},
		{"store slow", func() sessions.Store { return &blockLoader{} }, handshake(key), Config{StoreTimeout: 20 * time.Millisecond}, "store_timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var store sessions.Store = mem
			if tc.store != nil {
				store = tc.store()
			}
			m, _ := newManager(t, store, tc.cfg)
			rec := &obsRecorder{}
			m.Observe(rec)
			openSocket(m, boundConn{newTestConn(tc.req)})
			got := rec.of(KindHandshake)
			if len(got) != 1 || got[0].Outcome != tc.want || got[0].Binding != "test" {
				t.Fatalf("handshake observations %+v, want one with outcome %q, binding test", got, tc.want)
			}
		})
	}

	t.Run("shutdown", func(t *testing.T) {
		m, _ := newManager(t, mem, Config{})
		rec := &obsRecorder{}
		m.Observe(rec)
		if err := m.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		openSocket(m, newTestConn(handshake(key)))
		if got := rec.of(KindHandshake); len(got) != 1 || got[0].Outcome != "shutdown" || got[0].Binding != "" {
			t.Fatalf("handshake observations %+v, want one shutdown without binding", got)
		}
	})
}

// brokenUpdates loads sessions but fails every write.
type brokenUpdates struct{ *fwdStore }

func (brokenUpdates) Update(context.Context, string, string, func(map[any]any)) error {
	return errBoom
}

func TestObserveEvents(t *testing.T) {
	errMine := errors.New("mine")
	for _, mode := range []Mode{PerConnection, PerMessage} {
		t.Run(mode.String(), func(t *testing.T) {
			mem := newMem(t)
			key, _ := login(t, mem, map[any]any{"n": 0})
			m, _ := newManager(t, newFwd(mem), Config{Mode: mode})
			rec := &obsRecorder{}
			m.Observe(rec)
			s := openSocket(m, boundConn{newTestConn(handshake(key))})
			anon := openSocket(m, newTestConn(handshake("")))
			ctx := context.Background()
			incr := func(sess *Session) error {
				n, _ := sess.Values["n"].(int)
				sess.Values["n"] = n + 1
				return nil
			}
			_ = s.Do(ctx, incr)
			_ = s.Do(ctx, func(*Session) error { return errMine })
			_ = s.Do(ctx, func(*Session) error { panic("handler") })
			_ = anon.Do(ctx, incr)
			want := []string{"ok", "error", "panic", "no_session"}
			if got := rec.outcomes(KindEvent); !slices.Equal(got, want) {
				t.Errorf("event outcomes %q, want %q", got, want)
			}
			for _, o := range rec.of(KindEvent) {
				if o.Mode != mode || o.Duration <= 0 {
					t.Errorf("event observation %+v: want mode %v and a duration", o, mode)
				}
			}
			if got := rec.of(KindPanic); len(got) != 1 || got[0].Where != "smessage" {
				t.Errorf("panic observations %+v, want one in smessage", got)
			}
			// The handshake's load, then per message a load per event
			// with a session, and the one update of incr.
			want = []string{"load:ok"}
			if mode == PerMessage {
				want = append(want, "load:ok", "update:ok", "load:ok", "load:ok")
			}
			if got := rec.storeCalls(); !slices.Equal(got, want) {
				t.Errorf("store calls %q, want %q", got, want)
			}
			for _, o := range rec.of(KindStoreCall) {
				if o.Duration <= 0 {
					t.Errorf("store call %+v without a duration", o)
				}
			}

			// The session ends: its events are "ended".
			httpDelete(t, mem, key)
			_ = s.Do(ctx, incr)
			if mode == PerConnection { // the end is found by the save at disconnect
				s.Closed("test")
				s.conn.(boundConn).waitEvent(t, "sinvalid")
				_ = s.Do(ctx, incr)
			}
			if got := rec.outcomes(KindEvent); got[len(got)-1] != "ended" {
				t.Errorf("event outcomes %q, want the last ended", got)
			}
		})
	}
}

func TestObserveSaveLostAndClose(t *testing.T) {
	mem := newMem(t)
	key, _ := login(t, mem, nil)
	m, sink := newManager(t, brokenUpdates{newFwd(mem)}, Config{SaveRetry: time.Millisecond})
	rec := &obsRecorder{}
	m.Observe(rec)
	closed := make(chan struct{})
	m.OnDisconnect(func(*Socket, string) { close(closed) })
	s := openSocket(m, boundConn{newTestConn(handshake(key))})
	if err := s.Do(context.Background(), func(sess *Session) error {
		sess.Values["x"] = 1
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s.Closed("bye")
	recv(t, closed, "the disconnect handler")
	if got := rec.of(KindClose); len(got) != 1 || got[0].Binding != "test" {
		t.Errorf("close observations %+v, want one of binding test", got)
	}
	if got := rec.of(KindSaveLost); len(got) != 1 || got[0].Binding != "test" {
		t.Errorf("save-lost observations %+v, want one of binding test", got)
	}
	if !slices.ContainsFunc(sink.all(), func(err error) bool { return errors.Is(err, ErrUnsaved) }) {
		t.Errorf("ErrorHandler got %v, want an ErrUnsaved", sink.all())
	}
	want := []string{"load:ok", "update:error"}
	if got := rec.storeCalls(); !slices.Equal(got, want) {
		t.Errorf("store calls %q, want %q", got, want)
	}
}

func TestObservePush(t *testing.T) {
	mem := newMem(t)
	key, _ := login(t, mem, map[any]any{"user": "ann"})
	m, _ := newManager(t, mem, Config{User: func(v map[any]any) string { u, _ := v["user"].(string); return u }})
	rec := &obsRecorder{}
	m.Observe(rec)
	c1, c2 := newTestConn(handshake(key)), newTestConn(handshake(key))
	openSocket(m, c1)
	openSocket(m, c2)
	c1.ackAllAsync(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	res, err := m.Push(ctx, m.ToUser("ann"), "note", "hi")
	if err != nil || res.Sockets != 2 || res.Acked != 1 {
		t.Fatalf("Push = %+v, %v; want 2 sockets, 1 acked", res, err)
	}
	if got := rec.of(KindPush); len(got) != 1 || got[0].Sockets != 2 || got[0].Acked != 1 {
		t.Errorf("push observations %+v, want one of 2 sockets, 1 acked", got)
	}
}

// ackAllAsync acks c's ack requests as they come, until the test ends.
func (c *testConn) ackAllAsync(t *testing.T) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	t.Cleanup(func() { close(done); <-stopped })
	go func() {
		defer close(stopped)
		for {
			c.mu.Lock()
			acks := c.acks
			c.acks = nil
			c.mu.Unlock()
			for _, a := range acks {
				a(nil)
			}
			select {
			case <-c.notify:
			case <-done:
				return
			}
		}
	}()
}

func TestObserverPanics(t *testing.T) {
	mem := newMem(t)
	key, _ := login(t, mem, nil)
	m, sink := newManager(t, mem, Config{})
	m.Observe(ObserverFunc(func(Observation) { panic("observer") }))
	c := newTestConn(handshake(key))
	connected := make(chan struct{})
	m.OnConnection(func(*Socket, *Session) { close(connected) })
	s := openSocket(m, c)
	recv(t, connected, "sconnection after a panicking observation")
	if err := s.Do(context.Background(), func(*Session) error { return nil }); err != nil {
		t.Fatalf("Do with a panicking observer: %v", err)
	}
	pe := sink.waitPanic(t, "observer")
	if pe.Value != "observer" {
		t.Errorf("PanicError %v", pe)
	}
	m.Observe(nil)
	n := len(sink.all())
	_ = s.Do(context.Background(), func(*Session) error { return nil })
	if got := len(sink.all()); got != n {
		t.Errorf("after Observe(nil), %d more errors", got-n)
	}
}
