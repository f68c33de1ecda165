package iosessions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/sessions"
)

// Push reaches people, not sockets: every socket of a user, or of a
// session, on every node, with the socket.io ack the client already knows.
// On one node it emits through the binding; with a store that relays
// (iosredis), the push goes to every node over the relay and each node
// reports back how many sockets it reached and how many acked.

// Target is what a Push reaches: made by Manager.ToUser,
// Manager.ToSession or ToSocket.
type Target struct {
	room string // a user's or a session's room
	user string // ToUser
	node string // ToSocket
	id   string // ToSocket
}

// ToUser targets every socket of every session of user.
func (m *Manager) ToUser(user string) Target {
	return Target{room: m.userRoom(user), user: user}
}

// ToSession targets the sockets of sess, a session as the store gave it
// to an HTTP handler. A session the store has not saved (no id) reaches
// nobody.
func (m *Manager) ToSession(sess *sessions.Session) Target {
	if sess == nil || sess.ID == "" {
		return Target{}
	}
	return Target{room: m.roomOf(sess.ID)}
}

// ToSocket targets one socket: id on node (SocketInfo.ID and .Node).
func ToSocket(node, id string) Target { return Target{node: node, id: id} }

// reaches reports whether the socket described by si is one of t's.
func (t Target) reaches(si SocketInfo) bool {
	switch {
	case t.id != "":
		return si.Node == t.node && si.ID == t.id
	case t.user != "":
		return si.User == t.user
	case t.room != "":
		return si.Session == t.room
	}
	return false
}

func (m *Manager) userRoom(user string) string {
	return "iosessions:u:" + m.hashRef("user\x00"+user)
}

// PushResult says what a push reached.
type PushResult struct {
	// Sockets is how many sockets the push was emitted to.
	Sockets int `json:"sockets"`
	// Acked is how many of them acked it before the push returned.
	Acked int `json:"acked"`
}

// ErrPushTooLarge is what Push returns, sending nothing, when the
// arguments encode to more than Config.MaxPush bytes.
var ErrPushTooLarge = errors.New("iosessions: push larger than Config.MaxPush")

// reservedEvents are the events socket.io keeps for itself.
var reservedEvents = map[string]bool{
	"connect": true, "connect_error": true, "disconnect": true, "disconnecting": true,
	"newListener": true, "removeListener": true, "sinvalid": true,
}

// Push emits event with data (sent as JSON) to every live socket that to
// reaches, on every node, asking each for an ack, and waits until all of
// them acked or ctx ends (without a deadline on ctx, 5 s at most). It
// returns how many sockets it reached and how many acked meanwhile; a
// push that reaches nobody is not an error. It fails, sending nothing,
// when data does not encode, the event is reserved ("connect",
// "disconnect", "sinvalid", …) or the push is larger than
// Config.MaxPush. With many nodes, a node cut off from the relay misses
// the push (pub/sub delivers at most once) and is not counted.
func (m *Manager) Push(ctx context.Context, to Target, event string, data any) (PushResult, error) {
	raw, err := m.pushPayload(event, data)
	if err != nil {
		return PushResult{}, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	p := &pending{id: newID(), reports: make(map[string]PushResult), changed: make(chan struct{}, 1)}
	var nodes []string
	if m.relay != nil && !(to.id != "" && to.node == m.node) {
		m.pushes.Store(p.id, p)
		defer m.pushes.Delete(p.id)
		nodes, err = m.pres.dir.Nodes(ctx)
		if err != nil {
			return PushResult{}, m.storeErr(ctx, fmt.Errorf("push: nodes: %w", err))
		}
		deadline, _ := ctx.Deadline()
		msg, _ := json.Marshal(relayed{Kind: kindPush, Node: m.node, ID: p.id, Room: to.room,
			To: to.node, Socket: to.id, Event: event, Args: []json.RawMessage{raw},
			Wait: time.Until(deadline).Milliseconds()})
		if err := m.relay.Relay(ctx, msg); err != nil {
			return PushResult{}, m.storeErr(ctx, fmt.Errorf("push: relay: %w", err))
		}
	}
	var local atomic.Int64
	n := m.deliver(to, event, raw, time.Until(deadlineOf(ctx)), func() {
		local.Add(1)
		p.signal()
	})
	for {
		res := PushResult{Sockets: n, Acked: int(local.Load())}
		done := true
		p.mu.Lock()
		for _, r := range p.reports {
			res.Sockets += r.Sockets
			res.Acked += r.Acked
		}
		for _, node := range nodes {
			if _, ok := p.reports[node]; !ok && node != m.node {
				done = false
			}
		}
		p.mu.Unlock()
		if done && res.Acked >= res.Sockets {
			m.pushed(res)
			return res, nil
		}
		select {
		case <-p.changed:
		case <-ctx.Done():
			m.pushed(res)
			return res, nil
		}
	}
}

// pushed observes a push that returned res.
func (m *Manager) pushed(res PushResult) {
	m.observe(Observation{Kind: KindPush, Sockets: res.Sockets, Acked: res.Acked})
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// pushPayload checks a push and encodes its data.
func (m *Manager) pushPayload(event string, data any) (json.RawMessage, error) {
	if event == "" || reservedEvents[event] {
		return nil, fmt.Errorf("iosessions: push: event %q is reserved", event)
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("iosessions: push: %w", err)
	}
	if len(raw)+len(event) > m.cfg.MaxPush {
		return nil, ErrPushTooLarge
	}
	return raw, nil
}

// pending is a push of this node waiting for the reports of the others.
type pending struct {
	id      string
	mu      sync.Mutex
	reports map[string]PushResult // node -> what it reached so far
	changed chan struct{}
}

func (p *pending) signal() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// localSockets returns this node's sockets that to reaches.
func (m *Manager) localSockets(to Target) []*Socket {
	switch {
	case to.id != "":
		if to.node == m.node {
			if s := m.reg.socket(to.id); s != nil {
				return []*Socket{s}
			}
		}
	case to.room != "":
		return m.reg.room(to.room)
	}
	return nil
}

// deliver emits to this node's sockets of to, each with an ack that
// calls acked once; it returns how many sockets it emitted to.
func (m *Manager) deliver(to Target, event string, raw json.RawMessage, wait time.Duration, acked func()) int {
	socks := m.localSockets(to)
	n := 0
	for _, s := range socks {
		if s.flags.is(flagClosed|flagEnded) || s.sid().room() == "" {
			continue
		}
		var err error
		if acked == nil {
			err = s.conn.Emit(event, raw)
		} else {
			var once sync.Once
			err = s.conn.EmitAck(event, []any{raw}, wait, func([]json.RawMessage) { once.Do(acked) })
		}
		if err == nil {
			n++
		}
	}
	return n
}

// Kinds of relayed messages.
const (
	kindPush   = "p" // a push to deliver and report on
	kindReport = "r" // a node's report on a push
)

// fromPush delivers another node's push and reports back: at once what
// it reached, then as acks come, until all acked or the pusher stops
// waiting.
func (m *Manager) fromPush(r relayed) {
	if len(r.Args) != 1 || r.ID == "" {
		return
	}
	wait := time.Duration(r.Wait) * time.Millisecond
	if wait <= 0 || wait > time.Minute {
		return
	}
	to := Target{room: r.Room, node: r.To, id: r.Socket}
	if to.id != "" && to.node != m.node {
		return // another node's socket; its node answers
	}
	var acked atomic.Int64
	changed := make(chan struct{}, 1)
	n := m.deliver(to, r.Event, r.Args[0], wait, func() {
		acked.Add(1)
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	report := func(a int) {
		msg, _ := json.Marshal(relayed{Kind: kindReport, Node: m.node, ID: r.ID, To: r.Node, Sockets: n, Acked: a})
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StoreTimeout)
		defer cancel()
		if err := m.relay.Relay(ctx, msg); err != nil {
			m.ReportError(m.storeErr(ctx, fmt.Errorf("push report: %w", err)))
		}
	}
	// Off the relay's goroutine, which delivers the other pushes.
	m.goTracked(func() {
		sent := int(acked.Load())
		report(sent)
		stop := time.NewTimer(wait)
		defer stop.Stop()
		for sent < n {
			select {
			case <-changed:
			case <-stop.C:
				return
			case <-m.stop:
				return
			}
			time.Sleep(2 * time.Millisecond) // coalesce a burst of acks
			if a := int(acked.Load()); a > sent {
				sent = a
				report(a)
			}
		}
	})
}

// fromReport records another node's report on a push of this node.
func (m *Manager) fromReport(r relayed) {
	v, ok := m.pushes.Load(r.ID)
	if !ok || r.To != m.node {
		return
	}
	p := v.(*pending)
	p.mu.Lock()
	if old, ok := p.reports[r.Node]; !ok || r.Acked > old.Acked {
		p.reports[r.Node] = PushResult{Sockets: r.Sockets, Acked: min(r.Acked, r.Sockets)}
	}
	p.mu.Unlock()
	p.signal()
}

// PushMessage is a push that another process publishes for the Manager to
// deliver, without acks, to this node's sockets of a user or a session:
// with iosredis, JSON on the channel <KeyPrefix>push (see
// iosredis.Publisher), {"user":NAME,"event":EVENT,"data":DATA} or
// {"session":ID,"event":EVENT,"data":DATA} where ID is the session's id in
// the store.
type PushMessage struct {
	User    string          `json:"user,omitempty"`
	Session string          `json:"session,omitempty"`
	Event   string          `json:"event"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// A PushFeed hands the Manager the pushes other processes publish; f is
// called with each message, on any node, and must not block for long.
// The iosredis store is one. A Manager whose store is a PushFeed delivers
// them.
type PushFeed interface {
	OnPush(f func(msg []byte))
}

// fromFeed delivers a published push to this node's sockets. A message
// that does not parse is dropped with a log line.
func (m *Manager) fromFeed(msg []byte) {
	var p PushMessage
	err := json.Unmarshal(msg, &p)
	var to Target
	switch {
	case err != nil:
	case (p.User == "") == (p.Session == ""):
		err = errors.New(`need exactly one of "user" and "session"`)
	case p.User != "":
		to = m.ToUser(p.User)
	default:
		to = Target{room: m.roomOf(p.Session)}
	}
	if err == nil {
		data := p.Data
		if len(data) == 0 {
			data = json.RawMessage("null")
		}
		if _, err = m.pushPayload(p.Event, data); err == nil {
			m.deliver(to, p.Event, data, 0, nil)
			return
		}
	}
	m.cfg.Logger.Warn("iosessions: dropped a published push", "error", err, "bytes", len(msg))
}
