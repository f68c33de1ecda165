package iosessions

import (
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
