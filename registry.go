package iosessions

import (
	"hash/maphash"
	"slices"
	"sync"
)

// registry indexes live sockets by connection and by session. It is
// sharded; its getters return copies.
type registry struct {
	seed   maphash.Seed
	shards [32]regShard
}

type regShard struct {
	mu     sync.Mutex
	conns  map[string]*Socket
	bySess sockIndex // by session ref
	byRoom sockIndex // by session and user room
}

// sockIndex is a set of sockets per key. Most keys (a session, a user)
// have one socket: it sits in one, a pointer in the map; the others of
// the key, in order, in more.
type sockIndex struct {
	one  map[string]*Socket
	more map[string][]*Socket
}

func (x *sockIndex) init() {
	x.one = make(map[string]*Socket)
	x.more = make(map[string][]*Socket)
}

func (x *sockIndex) add(k string, s *Socket) {
	first, ok := x.one[k]
	switch {
	case !ok:
		x.one[k] = s
	case first != s && !slices.Contains(x.more[k], s):
		x.more[k] = append(x.more[k], s)
	}
}

func (x *sockIndex) remove(k string, s *Socket) {
	first, ok := x.one[k]
	if !ok {
		return
	}
	more := x.more[k]
	if first == s {
		if len(more) == 0 {
			delete(x.one, k)
			return
		}
		x.one[k], more = more[0], more[1:]
	} else if i := slices.Index(more, s); i >= 0 {
		more = slices.Delete(more, i, i+1)
	} else {
		return
	}
	if len(more) == 0 {
		delete(x.more, k)
	} else {
		x.more[k] = more
	}
}

// members returns the sockets of k, a copy.
func (x *sockIndex) members(k string) []*Socket {
	first, ok := x.one[k]
	if !ok {
		return nil
	}
	return append([]*Socket{first}, x.more[k]...)
}

func (r *registry) init() {
	r.seed = maphash.MakeSeed()
	for i := range r.shards {
		r.shards[i].conns = make(map[string]*Socket)
		r.shards[i].bySess.init()
		r.shards[i].byRoom.init()
	}
}

func (r *registry) shard(k string) *regShard {
	return &r.shards[maphash.String(r.seed, k)%uint64(len(r.shards))]
}

func (r *registry) add(s *Socket) {
	sh := r.shard(s.ID())
	sh.mu.Lock()
	sh.conns[s.ID()] = s
	sh.mu.Unlock()
}

// bind indexes s under its session and its rooms; userRoom is
// s.userRoom().
func (r *registry) bind(s *Socket, userRoom string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.indexSession(s, s.sid())
	if userRoom != "" {
		r.index(s, userRoom, byRoom)
	}
}

// rebind moves s from the session old to its session now (a rotation).
func (r *registry) rebind(s *Socket, old ident) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flags.is(flagClosed) {
		return // removed, or about to be: remove unindexes what sid says
	}
	r.unindexSession(s, old)
	r.indexSession(s, s.sid())
}

func (r *registry) indexSession(s *Socket, id ident) {
	if id.ref == "" {
		return
	}
	r.index(s, id.ref, bySess)
	if id.room() != "" {
		r.index(s, id.room(), byRoom)
	}
}

func (r *registry) unindexSession(s *Socket, id ident) {
	if id.ref == "" {
		return
	}
	r.unindex(s, id.ref, bySess)
	if id.room() != "" {
		r.unindex(s, id.room(), byRoom)
	}
}

func bySess(sh *regShard) *sockIndex { return &sh.bySess }
func byRoom(sh *regShard) *sockIndex { return &sh.byRoom }

func (r *registry) index(s *Socket, k string, of func(*regShard) *sockIndex) {
	sh := r.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	of(sh).add(k, s)
}

func (r *registry) unindex(s *Socket, k string, of func(*regShard) *sockIndex) {
	sh := r.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	of(sh).remove(k, s)
}

func (r *registry) remove(s *Socket) {
	sh := r.shard(s.ID())
	sh.mu.Lock()
	if sh.conns[s.ID()] == s {
		delete(sh.conns, s.ID())
	}
	sh.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	r.unindexSession(s, s.sid())
	if room := s.userRoom(); room != "" {
		r.unindex(s, room, byRoom)
	}
}

func (r *registry) socket(id string) *Socket {
	sh := r.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.conns[id]
}

func (r *registry) session(ref string) []*Socket { return r.members(ref, bySess) }

// room returns the sockets in a session's or a user's room.
func (r *registry) room(name string) []*Socket { return r.members(name, byRoom) }

// members returns a copy of the set k of index of.
func (r *registry) members(k string, of func(*regShard) *sockIndex) []*Socket {
	sh := r.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return of(sh).members(k)
}

// refs returns the sessions that have live sockets.
func (r *registry) refs() []string {
	var out []string
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for ref := range sh.bySess.one {
			out = append(out, ref)
		}
		sh.mu.Unlock()
	}
	return out
}

func (r *registry) all() []*Socket {
	var out []*Socket
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for _, s := range sh.conns {
			out = append(out, s)
		}
		sh.mu.Unlock()
	}
	return out
}

// Sockets returns the live sockets, a copy.
func (m *Manager) Sockets() []*Socket { return m.reg.all() }

// Socket returns the live socket with connection id id, or nil.
func (m *Manager) Socket(id string) *Socket { return m.reg.socket(id) }
