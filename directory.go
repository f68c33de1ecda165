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

// memDirectory is the Directory of one node.
type memDirectory struct {
	mu      sync.Mutex
	nodes   map[string]time.Time             // node -> deadline
	sockets map[string]map[string]SocketInfo // node -> id -> info
	counts  map[string]map[string]int        // node -> subject -> sockets
	total   map[string]int                   // subject -> sockets
	grace   map[string]time.Time             // present subject -> end of grace (zero: has sockets)
	now     func() time.Time
}

func newMemDirectory() *memDirectory {
	return &memDirectory{
		nodes:   make(map[string]time.Time),
		sockets: make(map[string]map[string]SocketInfo),
		counts:  make(map[string]map[string]int),
		total:   make(map[string]int),
		grace:   make(map[string]time.Time),
		now:     time.Now,
	}
}

var _ Directory = (*memDirectory)(nil)

func (d *memDirectory) Join(_ context.Context, s SocketInfo, subjects []string, ttl time.Duration) (bool, []string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, known := d.nodes[s.Node]
	d.nodes[s.Node] = d.now().Add(ttl)
	socks := d.sockets[s.Node]
	if socks == nil {
		socks = make(map[string]SocketInfo)
		d.sockets[s.Node] = socks
		d.counts[s.Node] = make(map[string]int)
	}
	_, joined := socks[s.ID]
	socks[s.ID] = s
	if joined {
		return !known, nil, nil
	}
	var present []string
	for _, sub := range subjects {
		d.counts[s.Node][sub]++
		if d.total[sub]++; d.total[sub] == 1 {
			if _, ok := d.grace[sub]; !ok {
				present = append(present, sub)
			}
			d.grace[sub] = time.Time{}
		}
	}
	return !known, present, nil
}

func (d *memDirectory) Leave(_ context.Context, s SocketInfo, subjects []string, grace time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.sockets[s.Node][s.ID]; !ok {
		return nil
	}
	delete(d.sockets[s.Node], s.ID)
	for _, sub := range subjects {
		if d.counts[s.Node][sub]--; d.counts[s.Node][sub] <= 0 {
			delete(d.counts[s.Node], sub)
		}
		d.drop(sub, 1, grace)
	}
	return nil
}

// drop takes n sockets from sub; d.mu is held.
func (d *memDirectory) drop(sub string, n int, grace time.Duration) {
	if d.total[sub] -= n; d.total[sub] <= 0 {
		delete(d.total, sub)
		d.grace[sub] = d.now().Add(grace)
	}
}

func (d *memDirectory) Beat(_ context.Context, node string, ttl, grace time.Duration) (bool, []string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	_, known := d.nodes[node]
	d.nodes[node] = now.Add(ttl)
	for n, deadline := range d.nodes {
		if !deadline.After(now) {
			d.partLocked(n, grace)
		}
	}
	var absent []string
	for sub, end := range d.grace {
		if !end.IsZero() && !end.After(now) {
			delete(d.grace, sub)
			absent = append(absent, sub)
		}
	}
	sort.Strings(absent)
	return !known, absent, nil
}

func (d *memDirectory) Part(_ context.Context, node string, grace time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.partLocked(node, grace)
	return nil
}

func (d *memDirectory) partLocked(node string, grace time.Duration) {
	for sub, n := range d.counts[node] {
		d.drop(sub, n, grace)
	}
	delete(d.nodes, node)
	delete(d.sockets, node)
	delete(d.counts, node)
}

func (d *memDirectory) Nodes(context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.nodes))
	for n := range d.nodes {
		out = append(out, n)
	}
	return out, nil
}

func (d *memDirectory) Sockets(context.Context) ([]SocketInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []SocketInfo
	for _, socks := range d.sockets {
		for _, s := range socks {
			out = append(out, s)
		}
	}
	return out, nil
}

func (d *memDirectory) Present(context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.grace))
	for sub := range d.grace {
		out = append(out, sub)
	}
	return out, nil
}

// subjectsOf returns the subjects a socket joins.
func subjectsOf(user, session string) []string {
	if user == "" {
		return []string{sessionSubject + session}
	}
	return []string{userSubject + user, sessionSubject + session}
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
