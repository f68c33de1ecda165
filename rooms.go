package iosessions

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
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
func (m *Manager) SetBroadcaster(b Broadcaster) { m.rooms.Store(&b) }

// broadcaster returns the binding's Broadcaster, or nil. A relayed message
// may arrive before the binding set it.
func (m *Manager) broadcaster() Broadcaster {
	if p := m.rooms.Load(); p != nil {
		return *p
	}
	return nil
}

// A Relay carries the Manager's broadcasts to the other nodes that share
// the store: Relay sends msg to all of them, and each calls the function
// given to OnRelay (the sender's own included). The iosredis store is one
// (Redis pub/sub). A Manager uses its store as its relay when the store
// implements Relay.
type Relay interface {
	Relay(ctx context.Context, msg []byte) error
	OnRelay(f func(msg []byte))
}

// relayed is a broadcast on its way between nodes.
type relayed struct {
	Node  string            `json:"n"`           // the sender, which skips its own
	Kind  string            `json:"k,omitempty"` // "" broadcast, kindPush, kindReport
	Room  string            `json:"r,omitempty"`
	Event string            `json:"e,omitempty"`
	Args  []json.RawMessage `json:"a,omitempty"`

	// Pushes and their reports (push.go).
	ID      string `json:"i,omitempty"` // the push
	To      string `json:"t,omitempty"` // push: the node of Socket; report: the pusher
	Socket  string `json:"s,omitempty"` // push: the one socket it targets
	Wait    int64  `json:"w,omitempty"` // push: how long the pusher waits, in ms
	Sockets int    `json:"c,omitempty"` // report: sockets reached
	Acked   int    `json:"x,omitempty"` // report: sockets that acked so far

	// Rotations (rotate.go).
	Key string `json:"y,omitempty"` // the new session key

	// Inspections and their answers (inspect.go).
	Infos []SocketInfo `json:"o,omitempty"` // answer: the node's sockets
}

// Broadcast emits event with args to every socket in the engine room
// room: the sockets of this process, through the binding, and, when the
// store is a Relay (iosredis), those of every node sharing the store,
// whichever engine they run and whether or not it has a cluster adapter.
// args are sent as JSON. It returns an error if the binding cannot
// broadcast or the relay fails (the local sockets are told either way).
func (m *Manager) Broadcast(room, event string, args ...any) error {
	b := m.broadcaster()
	if b == nil {
		return errors.New("iosessions: Broadcast: the binding set no Broadcaster")
	}
	raw := make([]json.RawMessage, len(args))
	for i, a := range args {
		b, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("iosessions: Broadcast: argument %d: %w", i, err)
		}
		raw[i] = b
	}
	err := b.Broadcast(room, event, rawArgs(raw)...)
	if m.relay == nil {
		return err
	}
	msg, jerr := json.Marshal(relayed{Node: m.node, Room: room, Event: event, Args: raw})
	if jerr != nil {
		return errors.Join(err, jerr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StoreTimeout)
	defer cancel()
	if rerr := m.relay.Relay(ctx, msg); rerr != nil {
		err = errors.Join(err, m.storeErr(ctx, fmt.Errorf("relay: %w", rerr)))
	}
	return err
}

// fromRelay broadcasts, to this process's sockets, what another node
// relayed.
func (m *Manager) fromRelay(msg []byte) {
	var r relayed
	if json.Unmarshal(msg, &r) != nil || r.Node == m.node {
		return
	}
	switch r.Kind {
	case kindPush:
		m.fromPush(r)
		return
	case kindReport:
		m.fromReport(r)
		return
	case kindInspect:
		m.fromInspect(r)
		return
	case kindInspected:
		m.fromInspected(r)
		return
	case kindMove:
		if r.ID != "" && r.To != "" && r.Key != "" {
			m.moveSession(r.ID, r.To, r.Key) // before the old id's end arrives
		}
		return
	case kindDisconnect:
		m.kick(Target{room: r.Room, node: r.To, id: r.Socket})
		return
	}
	b := m.broadcaster()
	if b == nil {
		return
	}
	if err := b.Broadcast(r.Room, r.Event, rawArgs(r.Args)...); err != nil {
		m.ReportError(fmt.Errorf("iosessions: relayed broadcast: %w", err))
	}
}

// rawArgs makes JSON arguments emit arguments (bindings send a
// json.RawMessage as the JSON it holds).
func rawArgs(raw []json.RawMessage) []any {
	out := make([]any, len(raw))
	for i, r := range raw {
		out[i] = r
	}
	return out
}

// roomOf returns the engine room of session ref: the tail of its subject.
func (m *Manager) roomOf(ref string) string { return ident{sub: m.subjectOf(ref)}.room() }

// subjectOf returns the directory subject of session ref: sessionSubject
// and its room, made at once (ident.room is its tail).
func (m *Manager) subjectOf(ref string) string { return sessionSubject + roomPrefix + m.hashRef(ref) }

// roomPrefix begins the name of every session room.
const roomPrefix = "iosessions:"

// hashRef is the keyed hash that names rooms: nodes that share TokenKeys
// agree on it, and it reveals nothing of what it hashes.
func (m *Manager) hashRef(s string) string {
	h := hmac.New(sha256.New, m.tokens.roomKey)
	h.Write([]byte(s))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18])
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
		if s.flags.mark(flagEnded) {
			ending = append(ending, s)
		}
	}
	if len(ending) == 0 {
		return
	}
	b := m.broadcaster()
	m.goTracked(func() {
		// Handlers of one socket never overlap: wait for the ones running.
		var unlocks []func()
		if m.cfg.Mode == PerMessage {
			unlocks = append(unlocks, m.locks.lock(ref))
		} else {
			locked := make(map[*live]bool)
			for _, s := range ending {
				if lv := s.lv; lv != nil && !locked[lv] {
					locked[lv] = true
					lv.mu.Lock()
					unlocks = append(unlocks, lv.mu.Unlock)
				}
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
