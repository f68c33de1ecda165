package iosessions

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"
)

// SocketInfo describes a live socket, on this node or another, as the
// registry answers it: a copy, safe to keep.
type SocketInfo struct {
	// ID is the connection's id, unique on its node.
	ID string `json:"id"`
	// Node names the Manager that holds the socket (Manager.Node).
	Node string `json:"node"`
	// Transport is "websocket" or "polling" ("" if the binding does not
	// say). For another node's socket it is the transport it last reported.
	Transport string `json:"transport"`
	// ConnectedAt is when the socket's session was opened.
	ConnectedAt time.Time `json:"connected_at"`
	// User is the session's user (Config.User), "" when anonymous.
	User string `json:"user,omitempty"`
	// Session refers to the socket's session without revealing its id: the
	// name of the session's room (Socket.Room).
	Session string `json:"session"`
	// Addr is the remote address of the handshake request, as the server
	// saw it (behind a proxy, the proxy's, unless the app rewrote it).
	Addr string `json:"addr,omitempty"`
	// Rooms are the engine rooms the socket is in, sorted, if the binding
	// says (Roomer); for another node's socket, as of its last record.
	Rooms []string `json:"rooms,omitempty"`
}

// A Directory keeps the registry of a cluster: the live sockets of every
// node, and which subjects are present. A subject is an opaque string the
// Manager derives from a user or a session; it is present while any socket
// of it is joined on a live node, and for a grace period after the last
// one left. Stores shared by many nodes implement it (iosredis); with any
// other store the Manager keeps its own, for one node. Every method must be
// safe for concurrent use and honour ctx.
type Directory interface {
	// Join records s, joined to subjects, on node s.Node, keeps that node
	// alive for ttl, and returns the subjects that were absent (not even in
	// their grace) and are now present. Joining a socket again only
	// updates its SocketInfo. fresh reports, as Beat does, that the node
	// was unknown: its other sockets must join again.
	Join(ctx context.Context, s SocketInfo, subjects []string, ttl time.Duration) (fresh bool, present []string, err error)
	// Leave forgets s; a subject it leaves without a socket starts its
	// grace. Leaving a socket that is not joined does nothing.
	Leave(ctx context.Context, s SocketInfo, subjects []string, grace time.Duration) error
	// Beat keeps node alive for ttl and settles the directory: it takes out
	// the sockets of nodes that missed their beats (their subjects start
	// their grace) and the subjects whose grace is over, which it returns,
	// each once across all callers. fresh reports that node was unknown
	// (first beat, or it was taken for dead): its sockets must join again.
	Beat(ctx context.Context, node string, ttl, grace time.Duration) (fresh bool, absent []string, err error)
	// Part takes node out at once, as if it had died.
	Part(ctx context.Context, node string, grace time.Duration) error
	// Nodes returns the live nodes.
	Nodes(ctx context.Context) ([]string, error)
	// Sockets returns the sockets of the live nodes.
	Sockets(ctx context.Context) ([]SocketInfo, error)
	// Present returns the present subjects.
	Present(ctx context.Context) ([]string, error)
}

// Subjects: a user, or a session by its room name.
const (
	userSubject    = "u:"
	sessionSubject = "s:"
)

// memDirectory is the Directory of one node: the Manager's own, when its
// store is not one. It keeps the ids of the joined sockets, not their
// SocketInfo, which info describes as they are now (the Manager's
// registry has them), and one entry per present subject.
type memDirectory struct {
	mu       sync.Mutex
	node     string                // the node
	live     bool                  // the node joined or beat, and did not part since
	ids      map[string]struct{}   // the joined sockets
	subjects map[string]memSubject // the present subjects
	info     func(id string) (SocketInfo, bool)
	now      func() time.Time
}

// memSubject is a present subject: it has n sockets, or none and is in its
// grace until end (Unix nanoseconds).
type memSubject struct {
	n   int
	end int64
}

// newMemDirectory returns the directory of one node; info describes a
// joined socket, false if it is gone.
func newMemDirectory(info func(id string) (SocketInfo, bool)) *memDirectory {
	return &memDirectory{
		ids:      make(map[string]struct{}),
		subjects: make(map[string]memSubject),
		info:     info,
		now:      time.Now,
	}
}

var _ Directory = (*memDirectory)(nil)

// up marks node live and reports whether it was already (fresh is the
// opposite); d.mu is held. One node only: its Manager's.
func (d *memDirectory) up(node string) (known bool) {
	known = d.live && d.node == node
	d.node, d.live = node, true
	return known
}

func (d *memDirectory) Join(_ context.Context, s SocketInfo, subjects []string, _ time.Duration) (bool, []string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	known := d.up(s.Node)
	if _, joined := d.ids[s.ID]; joined {
		return !known, nil, nil
	}
	d.ids[s.ID] = struct{}{}
	var present []string
	for _, sub := range subjects {
		st, ok := d.subjects[sub]
		if !ok {
			present = append(present, sub)
		}
		st.n++
		st.end = 0
		d.subjects[sub] = st
	}
	return !known, present, nil
}

func (d *memDirectory) Leave(_ context.Context, s SocketInfo, subjects []string, grace time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.ids[s.ID]; !ok {
		return nil
	}
	delete(d.ids, s.ID)
	end := d.now().Add(grace).UnixNano()
	for _, sub := range subjects {
		if st, ok := d.subjects[sub]; ok {
			if st.n--; st.n <= 0 {
				st.n, st.end = 0, end
			}
			d.subjects[sub] = st
		}
	}
	return nil
}

// Beat settles the directory. Its one node is the one that beats: it is
// never taken for dead here (only Part takes it out).
func (d *memDirectory) Beat(_ context.Context, node string, _, _ time.Duration) (bool, []string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	known := d.up(node)
	now := d.now().UnixNano()
	var absent []string
	for sub, st := range d.subjects {
		if st.n == 0 && st.end <= now {
			delete(d.subjects, sub)
			absent = append(absent, sub)
		}
	}
	sort.Strings(absent)
	return !known, absent, nil
}

func (d *memDirectory) Part(_ context.Context, node string, grace time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.live || d.node != node {
		return nil
	}
	end := d.now().Add(grace).UnixNano()
	for sub, st := range d.subjects {
		if st.n > 0 {
			d.subjects[sub] = memSubject{end: end}
		}
	}
	clear(d.ids)
	d.live = false
	return nil
}

func (d *memDirectory) Nodes(context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.live {
		return []string{}, nil
	}
	return []string{d.node}, nil
}

func (d *memDirectory) Sockets(context.Context) ([]SocketInfo, error) {
	d.mu.Lock()
	ids := make([]string, 0, len(d.ids))
	for id := range d.ids {
		ids = append(ids, id)
	}
	d.mu.Unlock()
	var out []SocketInfo
	for _, id := range ids {
		if s, ok := d.info(id); ok {
			out = append(out, s)
		}
	}
	return out, nil
}

func (d *memDirectory) Present(context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.subjects))
	for sub := range d.subjects {
		out = append(out, sub)
	}
	return out, nil
}

// subjectsOf returns the subjects a socket joins: its user's, if any,
// and its session's, sub (ident.sub).
func subjectsOf(user, sub string) []string {
	if user == "" {
		return []string{sub}
	}
	return []string{userSubject + user, sub}
}

// presenceOf makes the change a subject's transition is.
func presenceOf(subject string, online bool) (Presence, bool) {
	if u, ok := strings.CutPrefix(subject, userSubject); ok {
		return Presence{User: u, Online: online}, true
	}
	if s, ok := strings.CutPrefix(subject, sessionSubject); ok {
		return Presence{Session: s, Online: online}, true
	}
	return Presence{}, false
}
