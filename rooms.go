package iosessions

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// Session rooms: every socket with a session joins the engine room of its
// session (Socket.Room), named by a keyed hash of the session id, never
// the id itself. When a session ends (Manager.Destroy, Manager.Renew, a
// store that reports expiry), its "sinvalid" goes out as one broadcast to
// that room through the binding's Broadcaster, so it reaches every socket
// of the session the engine knows, then the sockets of this process are
// closed.

// Broadcaster is the engine's room broadcast. A binding gives it to the
// Manager with SetBroadcaster when it is made. It reaches the sockets of
// this process only: on many nodes, each node hears of an ended session
// from the store (Notifier, Checker) and tells its own sockets.
type Broadcaster interface {
	// Broadcast emits event with args to every socket of this process in
	// room, even when the engine has a cluster adapter. It must not block
	// for long.
	Broadcast(room, event string, args ...any) error
}

// SetBroadcaster makes the Manager reach the sockets of an ended session
// through b. Bindings call it once, before serving; without it, each
// socket is told on its own.
func (m *Manager) SetBroadcaster(b Broadcaster) { m.rooms = b }

func (m *Manager) roomOf(ref string) string {
	h := hmac.New(sha256.New, m.tokens.roomKey)
	h.Write([]byte(ref))
	return "iosessions:" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18])
}

// deriveKey derives a key for purpose from secret.
func deriveKey(secret []byte, purpose string) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(purpose))
	return h.Sum(nil)
}

// sessionEnded ends every socket of the session ref: they stop saving at
// once; after the handlers running now, "sinvalid" reaches them through
// the session's room (or one by one without a Broadcaster); then the
// sinvalid handler runs and they are closed.
func (m *Manager) sessionEnded(ref string) {
	var ending []*Socket
	for _, s := range m.reg.session(ref) {
		if s.ended.CompareAndSwap(false, true) {
			ending = append(ending, s)
		}
	}
	if len(ending) == 0 {
		return
	}
	b := m.rooms
	m.goTracked(func() {
		// Handlers of one socket never overlap: wait for the ones running.
		var unlocks []func()
		if m.cfg.Mode == PerMessage {
			unlocks = append(unlocks, m.locks.lock(ref))
		} else {
			for _, s := range ending {
				s.mu.Lock()
				unlocks = append(unlocks, s.mu.Unlock)
			}
		}
		payload := map[string]string{"reason": Reason(ErrEnded)}
		sent := false
		if b != nil {
			if err := b.Broadcast(m.roomOf(ref), "sinvalid", payload); err != nil {
				m.ReportError(fmt.Errorf("iosessions: broadcast to session room: %w", err))
			} else {
				sent = true
			}
		}
		for _, s := range ending {
			if !sent {
				_ = s.conn.Emit("sinvalid", payload)
			}
		}
		for _, u := range unlocks {
			u()
		}
		for _, s := range ending {
			if h := m.onInvalid; h != nil {
				m.safely("sinvalid", func() { h(s, ErrEnded) })
			}
			s.closeLater()
		}
	})
}
