package iosessions

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
)

// Per message: every event reloads the session (one store load), runs the
// handler, and saves the changes (one store update, none when nothing
// changed) before the binding sends the ack. Events of one session are
// serialized in this process by a lock keyed by session, so two tabs never
// lose each other's writes.

func (s *Socket) doPerMessage(ctx context.Context, fn func(*Session) error) error {
	unlock := s.m.locks.lock(s.ref)
	defer unlock()
	sess, err := s.m.load(ctx, s.key)
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrBadKey) {
		s.end(ErrEnded)
		return noSession(ErrEnded)
	}
	if err != nil {
		return err
	}
	t, err := track(sess)
	if err != nil {
		return err
	}
	t.save = func(context.Context) error { return s.commit(t) }
	var ferr error
	if err := s.m.safely("smessage", func() { ferr = fn(t) }); err != nil {
		return err // nothing is saved after a panic
	}
	if err := s.commit(t); err != nil {
		return err
	}
	return ferr
}

// commit saves what changed in t since it was loaded or last saved.
func (s *Socket) commit(t *Session) error {
	c, err := t.diff()
	if err != nil || c.empty() {
		return err
	}
	// Not the socket's context: a client that leaves mid-save does not
	// cancel it.
	err = s.m.update(context.Background(), t.Session, s.key, c)
	if errors.Is(err, ErrNotFound) {
		s.end(ErrEnded)
		return errGone
	}
	if err != nil {
		return err
	}
	return t.rebase()
}

// lockTable holds one mutex per session with waiters, and nothing for the
// others: an entry goes away with its last holder.
type lockTable struct {
	seed   maphash.Seed
	shards [32]lockShard
}

type lockShard struct {
	mu sync.Mutex
	m  map[string]*lockEntry
}

type lockEntry struct {
	mu   sync.Mutex
	refs int
}

func (t *lockTable) init() {
	t.seed = maphash.MakeSeed()
	for i := range t.shards {
		t.shards[i].m = make(map[string]*lockEntry)
	}
}

// lock locks the session ref and returns its unlock.
func (t *lockTable) lock(ref string) (unlock func()) {
	sh := &t.shards[maphash.String(t.seed, ref)%uint64(len(t.shards))]
	sh.mu.Lock()
	e := sh.m[ref]
	if e == nil {
		e = &lockEntry{}
		sh.m[ref] = e
	}
	e.refs++
	sh.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		sh.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(sh.m, ref)
		}
		sh.mu.Unlock()
	}
}

// len returns the number of sessions locked or waited for.
func (t *lockTable) len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
