package iosessions

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Presence: a user, and a session, is online while any socket of it is
// connected on any node, and goes offline only after Config.Grace has
// passed with no socket anywhere, so a reload, a reconnect or a socket
// that moves to another node changes nothing. The Directory holds that
// state: the Manager's own for one node, the store's (iosredis) for many.
// Each node joins its sockets to the directory when they connect and
// leaves them when they disconnect; it beats every second (see beatEvery)
// and settles the directory, which is how a grace ends, and how a node
// that died (no beat for about NodeTTL) is taken out with its sockets.

// Presence is one change of a user's or a session's presence.
type Presence struct {
	// User is the user who came online or went offline; "" for a
	// session's change.
	User string
	// Session is the session's opaque reference (SocketInfo.Session) for a
	// session's change; "" for a user's.
	Session string
	// Online is true when the first socket came, false when the grace
	// after the last one ran out.
	Online bool
}

// OnPresence sets the presence handler: it runs once per change of a
// user's or a session's presence, on exactly one node of the cluster (the
// one whose directory call saw the change), on a goroutine of the Manager
// that runs the changes one at a time, in order. It must not block for
// long. Set it before serving.
func (m *Manager) OnPresence(h func(p Presence)) { m.onPresence = h }

// presence is the Manager's side of the directory.
type presence struct {
	dir    Directory
	events chan change // to the presence handler: a subject and its presence

	started atomic.Bool // a call made this node known to the directory

	mu      sync.Mutex
	pending map[*Socket]struct{} // sockets the directory does not know as they are
}

// startPresence starts the beats and the presence handler's goroutine,
// with the first socket: a Manager that serves none runs nothing.
func (m *Manager) startPresence() {
	if m.shuttingDown() {
		return
	}
	m.goTracked(m.presenceEvents)
	m.goTracked(m.beats)
}

// beatEvery is how often a node beats: every second, or a quarter of the
// grace if that is shorter (10 ms at least), so graces end on time.
func (m *Manager) beatEvery() time.Duration {
	return min(max(m.cfg.Grace/4, 10*time.Millisecond), time.Second)
}

// beatTTL is how long one beat keeps this node alive: NodeTTL less two
// beats, so that a node that dies just after a beat is taken out (by
// another node's beat) and its graces end (at a later beat) within
// NodeTTL plus the grace of its death.
func (m *Manager) beatTTL() time.Duration {
	e := m.beatEvery()
	return max(m.cfg.NodeTTL-2*e, e)
}

// beats keeps this node alive in the directory and settles it.
func (m *Manager) beats() {
	t := time.NewTicker(m.beatEvery())
	defer t.Stop()
	failing := false
	for {
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StoreTimeout)
		fresh, absent, err := m.pres.dir.Beat(ctx, m.node, m.beatTTL(), m.cfg.Grace)
		cancel()
		if err == nil && fresh && !m.pres.started.Swap(true) {
			fresh = false // the first beat: nothing to join again
		}
		switch {
		case err != nil && !failing:
			failing = true
			m.ReportError(fmt.Errorf("%w: presence: %w", ErrStoreUnavailable, err))
		case err == nil:
			failing = false
			for _, sub := range absent {
				m.tellPresence(sub, false)
			}
			if fresh {
				m.rejoin()
			}
			m.dirRetry()
		}
		select {
		case <-m.stop:
			ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StoreTimeout)
			_ = m.pres.dir.Part(ctx, m.node, m.cfg.Grace)
			cancel()
			return
		case <-t.C:
		}
	}
}

// rejoin marks every socket for joining again: the directory did not
// know this node (it took it for dead, or lost its data).
func (m *Manager) rejoin() {
	for _, s := range m.reg.all() {
		s.flags.set(flagDirIn, false)
		m.dirLater(s)
	}
}

// presenceEvents runs the presence handler, one change at a time.
func (m *Manager) presenceEvents() {
	for {
		select {
		case c := <-m.pres.events:
			p, ok := presenceOf(c.subject, c.online)
			if h := m.onPresence; h != nil && ok {
				m.safely("presence", func() { h(p) })
			}
		case <-m.stop:
			return
		}
	}
}

func (m *Manager) tellPresence(subject string, online bool) {
	if m.onPresence == nil {
		return
	}
	select {
	case m.pres.events <- change{subject, online}:
	case <-m.stop:
	}
}

// change is a subject's change of presence on its way to the handler: a
// Presence is made of it there (the queue holds 1,024 of them, so they
// are small).
type change struct {
	subject string
	online  bool
}

// info describes s for the registry.
func (s *Socket) info() SocketInfo {
	si := SocketInfo{
		ID:          s.ID(),
		Node:        s.m.node,
		Transport:   transportOf(s.conn),
		ConnectedAt: time.Unix(0, s.at),
		User:        s.user,
		Session:     s.sid().room(),
	}
	if r := s.conn.Request(); r != nil {
		si.Addr = r.RemoteAddr
	}
	return si
}

// Info describes s as it is now, with its rooms: a copy, safe to keep. It
// waits for the handshake's session to be loaded.
func (s *Socket) Info() SocketInfo {
	<-s.loaded.Done()
	si := s.info()
	if r, ok := s.conn.(Roomer); ok {
		si.Rooms = r.Rooms()
		sort.Strings(si.Rooms)
	}
	return si
}

// User returns the session's user (Config.User), "" when the socket is
// anonymous or has no session. It waits for the handshake's session.
func (s *Socket) User() string {
	<-s.loaded.Done()
	return s.user
}

// Transporter is a Conn that says which transport it runs on now.
type Transporter interface {
	Transport() string
}

// Roomer is a Conn that lists the engine rooms it is in (the engine's own
// per-socket room included, if the engine has one).
type Roomer interface {
	Rooms() []string
}

func transportOf(c Conn) string {
	if t, ok := c.(Transporter); ok {
		return t.Transport()
	}
	return ""
}

// dirSync brings the directory in line with s: joined while s is live,
// left once it closed. A failed call is retried by the beats.
func (m *Manager) dirSync(s *Socket) {
	if !s.loaded.Fired() {
		return // Open syncs it once loaded
	}
	if s.sid().room() == "" {
		return // no session: not in the registry
	}
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StoreTimeout)
	defer cancel()
	subjects := subjectsOf(s.user, s.sid().sub)
	if !s.flags.is(flagClosed) {
		if s.flags.is(flagDirIn) {
			return
		}
		s.dirTried = true
		fresh, present, err := m.pres.dir.Join(ctx, s.info(), subjects, m.beatTTL())
		if err != nil {
			m.dirLater(s)
			return
		}
		s.flags.set(flagDirIn, true)
		if fresh && m.pres.started.Swap(true) {
			m.rejoin() // taken for dead meanwhile: the others join again at the next beat
		}
		for _, sub := range present {
			m.tellPresence(sub, true)
		}
		return
	}
	if !s.dirTried {
		return
	}
	if err := m.pres.dir.Leave(ctx, s.info(), subjects, m.cfg.Grace); err != nil {
		m.dirLater(s)
		return
	}
	s.dirTried = false
	s.flags.set(flagDirIn, false)
}

// dirLater marks s for the next beat.
func (m *Manager) dirLater(s *Socket) {
	m.pres.mu.Lock()
	m.pres.pending[s] = struct{}{}
	m.pres.mu.Unlock()
}

func (m *Manager) dirRetry() {
	m.pres.mu.Lock()
	var todo []*Socket
	for s := range m.pres.pending {
		todo = append(todo, s)
	}
	clear(m.pres.pending)
	m.pres.mu.Unlock()
	for _, s := range todo {
		m.dirSync(s)
	}
}

// transportChanged records s's new transport in the directory.
func (m *Manager) transportChanged(s *Socket) {
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	if !s.flags.is(flagDirIn) || s.flags.is(flagClosed) {
		return // dirSync records the transport of the moment when it joins
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StoreTimeout)
	defer cancel()
	if _, _, err := m.pres.dir.Join(ctx, s.info(), subjectsOf(s.user, s.sid().sub), m.beatTTL()); err != nil {
		m.ReportError(fmt.Errorf("%w: registry: %w", ErrStoreUnavailable, err))
	}
}

// Upgraded tells the Manager that the socket's transport changed (from
// polling to websocket). Bindings call it from the engine's upgrade hook.
func (s *Socket) Upgraded() {
	if !s.ready.Fired() {
		return // Open records the transport of the moment
	}
	if s.sid().room() != "" {
		s.m.goTracked(func() { s.m.transportChanged(s) })
	}
}

// Online reports whether user is online: a socket of the user is
// connected on a node, or the last one left less than Config.Grace ago.
func (m *Manager) Online(ctx context.Context, user string) (bool, error) {
	subs, err := m.pres.dir.Present(ctx)
	if err != nil {
		return false, err
	}
	for _, s := range subs {
		if s == userSubject+user {
			return true, nil
		}
	}
	return false, nil
}

// Users returns the users online, sorted (see Online).
func (m *Manager) Users(ctx context.Context) ([]string, error) {
	subs, err := m.pres.dir.Present(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range subs {
		if u, ok := strings.CutPrefix(s, userSubject); ok {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out, nil
}

// SocketsOf returns the live sockets that to reaches, on every node: a
// copy, sorted by node and id. This node's sockets are described as they
// are now; another node's as it last recorded them.
func (m *Manager) SocketsOf(ctx context.Context, to Target) ([]SocketInfo, error) {
	all, err := m.pres.dir.Sockets(ctx)
	if err != nil {
		return nil, err
	}
	var out []SocketInfo
	for _, si := range all {
		if si.Node == m.node || !to.reaches(si) {
			continue
		}
		out = append(out, si)
	}
	for _, s := range m.reg.all() {
		if s.sid().room() == "" || s.flags.is(flagClosed) {
			continue
		}
		if si := s.info(); to.reaches(si) {
			out = append(out, si)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Node != out[j].Node {
			return out[i].Node < out[j].Node
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// SessionsOf returns the sessions of user that have a live socket on some
// node, by their opaque references (SocketInfo.Session), sorted.
func (m *Manager) SessionsOf(ctx context.Context, user string) ([]string, error) {
	socks, err := m.SocketsOf(ctx, m.ToUser(user))
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool)
	var out []string
	for _, s := range socks {
		if !seen[s.Session] {
			seen[s.Session] = true
			out = append(out, s.Session)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Node returns the name of this Manager among the nodes of the cluster
// (SocketInfo.Node): random, made by New.
func (m *Manager) Node() string { return m.node }
