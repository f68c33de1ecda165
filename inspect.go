package iosessions

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// The operators' view: who is connected, grouped by user and session,
// across nodes, with every secret left out. A session appears only by its
// opaque reference (SocketInfo.Session, a keyed hash); no session id,
// cookie, token or request header is in it.

// View is the sockets of the cluster grouped by user, then by session.
type View struct {
	// Users are sorted by name; anonymous sessions come first, under "".
	Users []UserView `json:"users"`
	// Partial lists the live nodes that did not answer in time; their
	// sockets are shown as the registry last recorded them (no rooms).
	Partial []string `json:"partial,omitempty"`
}

// UserView is one user's sessions that have a live socket.
type UserView struct {
	User     string        `json:"user"`
	Sessions []SessionView `json:"sessions"`
}

// SessionView is one session's live sockets, sorted by node and id.
type SessionView struct {
	// Ref is the session's opaque reference: ToSessionRef targets it.
	Ref     string       `json:"ref"`
	Sockets []SocketInfo `json:"sockets"`
}

// Kinds of relayed messages for operators.
const (
	kindInspect    = "q" // asks every node for its sockets
	kindInspected  = "o" // a node's answer
	kindDisconnect = "d" // disconnect the sockets of a target
)

// inspection is an Inspect of this node waiting for the others' answers.
type inspection struct {
	mu      sync.Mutex
	answers map[string][]SocketInfo
	changed chan struct{}
}

// Inspect returns the live sockets of every node, grouped by user and
// session, each with its rooms and remote address. With a store that
// relays (iosredis) it asks every live node and waits for the answers
// until ctx ends (2 s when ctx has no deadline); a node that does not
// answer in time is listed in View.Partial and its sockets are shown as
// the registry last recorded them.
func (m *Manager) Inspect(ctx context.Context) (View, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
	}
	all := m.localInfos()
	if m.relay != nil {
		others, partial, err := m.inspectOthers(ctx)
		if err != nil {
			return View{}, err
		}
		all = append(all, others...)
		var v View
		v.Partial = partial
		v.Users = group(all)
		return v, nil
	}
	return View{Users: group(all)}, nil
}

// inspectOthers asks the other live nodes for their sockets.
func (m *Manager) inspectOthers(ctx context.Context) ([]SocketInfo, []string, error) {
	nodes, err := m.pres.dir.Nodes(ctx)
	if err != nil {
		return nil, nil, m.storeErr(ctx, fmt.Errorf("inspect: nodes: %w", err))
	}
	want := make(map[string]bool)
	for _, n := range nodes {
		if n != m.node {
			want[n] = true
		}
	}
	if len(want) == 0 {
		return nil, nil, nil
	}
	q := &inspection{answers: make(map[string][]SocketInfo), changed: make(chan struct{}, 1)}
	id := newID()
	m.inspections.Store(id, q)
	defer m.inspections.Delete(id)
	msg, _ := json.Marshal(relayed{Kind: kindInspect, Node: m.node, ID: id})
	if err := m.relay.Relay(ctx, msg); err != nil {
		return nil, nil, m.storeErr(ctx, fmt.Errorf("inspect: relay: %w", err))
	}
	for {
		q.mu.Lock()
		missing := 0
		for n := range want {
			if _, ok := q.answers[n]; !ok {
				missing++
			}
		}
		q.mu.Unlock()
		if missing == 0 {
			break
		}
		select {
		case <-q.changed:
			continue
		case <-ctx.Done():
		}
		break
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []SocketInfo
	var partial []string
	for n := range want {
		if a, ok := q.answers[n]; ok {
			out = append(out, a...)
		} else {
			partial = append(partial, n)
		}
	}
	sort.Strings(partial)
	if len(partial) > 0 {
		// The registry's record of the silent nodes, if it can be read.
		rctx, cancel := context.WithTimeout(context.Background(), m.cfg.StoreTimeout)
		defer cancel()
		if recs, err := m.pres.dir.Sockets(rctx); err == nil {
			silent := make(map[string]bool, len(partial))
			for _, n := range partial {
				silent[n] = true
			}
			for _, si := range recs {
				if silent[si.Node] {
					out = append(out, si)
				}
			}
		}
	}
	return out, partial, nil
}

// fromInspect answers another node's Inspect, off the relay's goroutine.
func (m *Manager) fromInspect(r relayed) {
	if r.ID == "" {
		return
	}
	m.goTracked(func() {
		msg, err := json.Marshal(relayed{Kind: kindInspected, Node: m.node, ID: r.ID, To: r.Node, Infos: m.localInfos()})
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StoreTimeout)
		defer cancel()
		if err := m.relay.Relay(ctx, msg); err != nil {
			m.ReportError(m.storeErr(ctx, fmt.Errorf("inspect answer: %w", err)))
		}
	})
}

// fromInspected records another node's answer to an Inspect of this node.
func (m *Manager) fromInspected(r relayed) {
	v, ok := m.inspections.Load(r.ID)
	if !ok || r.To != m.node {
		return
	}
	q := v.(*inspection)
	q.mu.Lock()
	q.answers[r.Node] = r.Infos
	q.mu.Unlock()
	select {
	case q.changed <- struct{}{}:
	default:
	}
}

// localInfos describes this node's sockets that have a session.
func (m *Manager) localInfos() []SocketInfo {
	var out []SocketInfo
	for _, s := range m.reg.all() {
		if !s.active() {
			continue
		}
		out = append(out, s.Info())
	}
	return out
}

// active reports whether s has a loaded session and is still connected.
func (s *Socket) active() bool {
	if !s.loaded.Fired() {
		return false
	}
	return s.sid().room() != "" && !s.flags.is(flagClosed|flagEnded)
}

// group sorts sockets into users and sessions.
func group(all []SocketInfo) []UserView {
	users := make(map[string]map[string][]SocketInfo)
	for _, si := range all {
		if users[si.User] == nil {
			users[si.User] = make(map[string][]SocketInfo)
		}
		users[si.User][si.Session] = append(users[si.User][si.Session], si)
	}
	out := make([]UserView, 0, len(users))
	for u, sess := range users {
		uv := UserView{User: u}
		for ref, socks := range sess {
			sort.Slice(socks, func(i, j int) bool {
				if socks[i].Node != socks[j].Node {
					return socks[i].Node < socks[j].Node
				}
				return socks[i].ID < socks[j].ID
			})
			uv.Sessions = append(uv.Sessions, SessionView{Ref: ref, Sockets: socks})
		}
		sort.Slice(uv.Sessions, func(i, j int) bool { return uv.Sessions[i].Ref < uv.Sessions[j].Ref })
		out = append(out, uv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].User < out[j].User })
	return out
}

// ToSessionRef targets the sockets of the session whose opaque reference
// is ref (SessionView.Ref, SocketInfo.Session), as an operator knows it.
// A string that is not a session reference reaches nobody.
func ToSessionRef(ref string) Target {
	const p = "iosessions:"
	if !strings.HasPrefix(ref, p) || strings.ContainsAny(ref[len(p):], ":") || len(ref) == len(p) {
		return Target{}
	}
	return Target{room: ref}
}

// Disconnect ends the sockets that to reaches, on every node, as a
// logout does (the client gets "sinvalid" with the reason
// "disconnected by the server", then the socket is closed), but their
// sessions go on and, in PerConnection mode, their changes are saved as
// at any disconnect. It returns how many sockets the registry listed for
// to; other nodes are told over the relay, at most once.
func (m *Manager) Disconnect(ctx context.Context, to Target) (int, error) {
	if to.room == "" && to.id == "" {
		return 0, nil
	}
	listed, err := m.SocketsOf(ctx, to)
	if err != nil {
		return 0, err
	}
	m.kick(to)
	if m.relay != nil && !(to.id != "" && to.node == m.node) {
		msg, _ := json.Marshal(relayed{Kind: kindDisconnect, Node: m.node, Room: to.room, To: to.node, Socket: to.id})
		if err := m.relay.Relay(ctx, msg); err != nil {
			return len(listed), m.storeErr(ctx, fmt.Errorf("disconnect: relay: %w", err))
		}
	}
	return len(listed), nil
}

// kick disconnects this node's sockets of to.
func (m *Manager) kick(to Target) {
	socks := m.localSockets(to)
	for _, s := range socks {
		if !s.active() || !s.flags.mark(flagKicked) {
			continue
		}
		m.goTracked(func() {
			unlock := s.lockHandlers()
			s.tell(ErrDisconnected)
			unlock()
			s.closeLater()
		})
	}
}
