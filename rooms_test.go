package iosessions

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
)

// roomHub is an engine's room broadcast over testConns: it emits to the
// conns that joined the room, and records each broadcast.
type roomHub struct {
	mu    sync.Mutex
	conns []*testConn
	sent  []string // rooms broadcast to
}

func (h *roomHub) add(c *testConn) {
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
}

func (h *roomHub) Broadcast(room, event string, args ...any) error {
	h.mu.Lock()
	h.sent = append(h.sent, room)
	conns := append([]*testConn(nil), h.conns...)
	h.mu.Unlock()
	for _, c := range conns {
		for _, r := range c.Rooms() {
			if r == room {
				_ = c.Emit(event, args...)
			}
		}
	}
	return nil
}

func (h *roomHub) broadcasts() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.sent...)
}

// TestSessionRooms: the sockets of one session share one room, named
// without the session id; Destroy reaches them through one broadcast to
// that room (each gets sinvalid once and is closed), and not the socket
// of another session.
func TestSessionRooms(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		fx := newFixture(t, Config{Mode: mode}, map[any]any{"user": "a"})
		hub := &roomHub{}
		fx.m.SetBroadcaster(hub)
		otherKey, _ := login(t, fx.mem, map[any]any{"user": "b"})

		s1, c1 := connect(t, fx.m, handshake(fx.key))
		s2, c2 := connect(t, fx.m, handshake(fx.key))
		s3, c3 := connect(t, fx.m, handshake(otherKey))
		for _, c := range []*testConn{c1, c2, c3} {
			hub.add(c)
		}
		room := s1.Room()
		if room == "" || room != s2.Room() || room == s3.Room() {
			t.Fatalf("rooms %q %q %q: want one room for the session, another for the other", room, s2.Room(), s3.Room())
		}
		if strings.Contains(room, fx.id) || strings.Contains(room, fx.key) {
			t.Fatalf("room %q contains the session id or key", room)
		}
		if got := c1.Rooms(); len(got) != 1 || got[0] != room {
			t.Fatalf("conn joined %v, want [%s]", got, room)
		}

		destroy(t, fx.m, fx.key)
		c1.waitClosed(t)
		c2.waitClosed(t)
		if b := hub.broadcasts(); len(b) != 1 || b[0] != room {
			t.Fatalf("broadcasts %v, want one to %s", b, room)
		}
		for i, c := range []*testConn{c1, c2} {
			if n := len(c.Named("sinvalid")); n != 1 {
				t.Fatalf("socket %d got %d sinvalid, want 1", i+1, n)
			}
			if r := sinvalidReason(t, c.Named("sinvalid")[0]); r != Reason(ErrEnded) {
				t.Fatalf("reason %q", r)
			}
		}
		if len(c3.Named("sinvalid")) != 0 || c3.IsClosed() {
			t.Fatal("the other session's socket was told or closed")
		}
		s3.Closed("bye")
		eventually(t, "left the room at disconnect", func() bool { return len(c3.Rooms()) == 0 })
	})
}

// memRelay is a Relay between Managers of one test: every message goes to
// every subscriber, the sender's included, as Redis pub/sub does.
type memRelay struct {
	*MemoryStore
	mu   sync.Mutex
	subs []func([]byte)
	fail bool
}

func (r *memRelay) Relay(_ context.Context, msg []byte) error {
	r.mu.Lock()
	subs, fail := make([]func([]byte), len(r.subs)), r.fail
	copy(subs, r.subs)
	r.mu.Unlock()
	if fail {
		return errors.New("relay down")
	}
	for _, f := range subs {
		f(msg)
	}
	return nil
}

func (r *memRelay) OnRelay(f func([]byte)) {
	r.mu.Lock()
	r.subs = append(r.subs, f)
	r.mu.Unlock()
}

// recorder is a Broadcaster that records what it is asked to send.
type recorder struct {
	mu  sync.Mutex
	got []string
}

func (b *recorder) Broadcast(room, event string, args ...any) error {
	js, _ := json.Marshal(args)
	b.mu.Lock()
	b.got = append(b.got, room+" "+event+" "+string(js))
	b.mu.Unlock()
	return nil
}

// TestBroadcastRelay: Manager.Broadcast reaches this node's broadcaster
// once and every other node's once, through the store's relay, with the
// arguments as JSON; without a broadcaster it is an error; a relay that
// fails is reported as a store failure, the local sockets told anyway.
func TestBroadcastRelay(t *testing.T) {
	t.Parallel()
	relay := &memRelay{MemoryStore: newMem(t)}
	var bs [2]*recorder
	var ms [2]*Manager
	for i := range ms {
		m, err := New(relay, Config{})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Broadcast("r", "e"); err == nil {
			t.Error("Broadcast without a Broadcaster: no error")
		}
		bs[i] = &recorder{}
		m.SetBroadcaster(bs[i])
		ms[i] = m
	}
	if err := ms[0].Broadcast("room", "news", map[string]int{"n": 1}, "x"); err != nil {
		t.Fatal(err)
	}
	for i, b := range bs {
		if len(b.got) != 1 || b.got[0] != `room news [{"n":1},"x"]` {
			t.Errorf("node %d broadcast %q, want the news once", i, b.got)
		}
	}
	relay.fail = true
	if err := ms[1].Broadcast("room", "more"); !errors.Is(err, ErrStoreUnavailable) {
		t.Errorf("relay down: %v, want ErrStoreUnavailable", err)
	}
	if n := len(bs[1].got); n != 2 {
		t.Errorf("node 1 told its own sockets %d times, want 2", n)
	}
}
