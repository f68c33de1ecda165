package iosessions

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"time"
)

// Per message: every event reloads the session (one store load), runs the
// handler, and saves the changes (one store update, none when nothing
// changed) before the binding sends the ack. Events of one session are
// serialized in this process by a lock keyed by session, so two tabs never
// lose each other's writes. With a store that is a Locker (Redis), the
// session's lock in the store is held too, so that events of one session
// on different nodes are serialized as well.

func (s *Socket) doPerMessage(ctx context.Context, fn func(*Session) error) error {
	if s.m.shuttingDown() {
		return ErrShutdown
	}
	for waited := false; ; waited = true {
		ref, err := s.doPerMessageOnce(ctx, fn)
		if !errors.Is(err, errVanished) {
			return err
		}
		// Rotate on another node deletes the old id only after it relayed
		// the move, but the relay may still be on its way here: wait for
		// it (or for the end of the session), once, then go again.
		if waited || !s.awaitMove(ctx, ref) {
			s.end(ErrEnded)
			return noSession(ErrEnded)
		}
	}
}

// errVanished is doPerMessageOnce's answer when the session was not in
// the store.
var errVanished = errors.New("iosessions: session not in the store")

// moveWait bounds how long an event whose session vanished from the store
// waits for a rotation's move relayed by another node.
const moveWait = 2 * time.Second

// awaitMove waits until the socket's session is no longer ref (moved to a
// new id: true) or ended, ctx ends or moveWait passed (false). Only with
// a relay: in one process, Rotate moves the sockets before it deletes.
func (s *Socket) awaitMove(ctx context.Context, ref string) bool {
	if s.m.relay == nil {
		return false
	}
	deadline := time.NewTimer(moveWait)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.sid().ref != ref {
			return true
		}
		if s.flags.is(flagEnded) {
			return false
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// doPerMessageOnce runs fn on the session under its lock. It returns
// errVanished, and the session's ref, when the session is not in the
// store (ErrNotFound, ErrBadKey).
func (s *Socket) doPerMessageOnce(ctx context.Context, fn func(*Session) error) (string, error) {
	var (
		held   context.Context
		unlock func()
		id     ident
	)
	for {
		id = s.sid()
		var err error
		held, unlock, err = s.m.lockSession(ctx, id.ref)
		if err != nil {
			return "", err
		}
		if s.sid().ref == id.ref {
			break
		}
		unlock() // the session moved to a new id meanwhile (Rotate)
	}
	defer unlock()
	lctx := ctx
	if s.m.mem == nil { // a store may load with the lock (see Locker)
		lctx = withValues(ctx, held)
	}
	sess, base, err := s.m.loadBase(lctx, s.m.latestKey(id.ref, id.key), id.ref)
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrBadKey) {
		return id.ref, errVanished
	}
	if err != nil {
		return "", err
	}
	t, err := track(sess, base)
	if err != nil {
		return "", err
	}
	t.save = func(context.Context) error { return s.saveNow(held, t) }
	var ferr error
	if err := s.m.safely("smessage", func() { ferr = fn(t) }); err != nil {
		return "", err // nothing is saved after a panic
	}
	if err := s.commitLast(held, t); err != nil {
		return "", err
	}
	return "", ferr
}

// withValues returns ctx with the values of vals too (vals first): a load
// under a store's lock carries the lock, so the store may have loaded the
// session with it, and keeps ctx's deadline and cancellation.
func withValues(ctx, vals context.Context) context.Context { return valuesCtx{ctx, vals} }

type valuesCtx struct {
	context.Context
	vals context.Context
}

func (c valuesCtx) Value(k any) any {
	if v := c.vals.Value(k); v != nil {
		return v
	}
	return c.Context.Value(k)
}

// lockSession takes the session's lock in this process and, if the store
// is a Locker, in the store, within Config.StoreTimeout. held is the
// store's context for the writes made under the lock; it is never
// cancelled, so a client that leaves mid-save does not cancel the save.
func (m *Manager) lockSession(ctx context.Context, ref string) (held context.Context, unlock func(), err error) {
	unlockLocal := m.locks.lock(ref)
	l, ok := m.store.(Locker)
	if !ok || !storeID(ref) {
		return context.Background(), unlockLocal, nil
	}
	lctx, cancel := context.WithTimeout(ctx, m.cfg.StoreTimeout)
	defer cancel()
	t := m.callStart()
	held, unlockStore, err := l.Lock(lctx, m.cfg.Name, ref)
	if err != nil {
		err = m.storeErr(lctx, err)
		m.callEnd(OpLock, t, err)
		unlockLocal()
		return nil, nil, err
	}
	m.callEnd(OpLock, t, nil)
	return context.WithoutCancel(held), func() {
		t := m.callStart()
		unlockStore()
		var d time.Duration
		if !t.IsZero() {
			d = time.Since(t)
		}
		unlockLocal()
		m.callEndAfter(OpUnlock, t, d, nil)
	}, nil
}

// commit saves what changed in t since it was loaded or last saved, with
// held, the context of the session's lock.
func (s *Socket) commit(held context.Context, t *Session) error { return s.save(held, t, true) }

// commitLast is commit at the end of an event that drops t: its base need
// not follow the save.
func (s *Socket) commitLast(held context.Context, t *Session) error { return s.save(held, t, false) }

func (s *Socket) save(held context.Context, t *Session, rebase bool) error {
	c, err := t.diff()
	if err != nil || c.empty() {
		return err
	}
	id := s.sid()
	if s.m.clientSide(t.Session) {
		// Kept as the latest cookie here, and sent to a client that
		// applies write-backs, if the session has one.
		return s.m.writeBack(held, t, s.m.latestKey(id.ref, id.key), id.ref, s.m.writebackTarget(id.ref, s))
	}
	err = s.m.update(held, t.Session, id.key, c)
	if errors.Is(err, ErrNotFound) {
		s.end(ErrEnded)
		return errGone
	}
	if err != nil || !rebase {
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

// A lockEntry is pooled: its unlock, made once, serves every holder.
type lockEntry struct {
	mu     sync.Mutex
	held   bool       // guarded by mu: a holder has not released it yet
	refs   int        // holders and waiters; guarded by sh.mu
	sh     *lockShard // set while in the table
	ref    string     // set while in the table
	unlock func()     // e.release, made once
}

var lockEntries = sync.Pool{New: func() any { return new(lockEntry) }}

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
		e = lockEntries.Get().(*lockEntry)
		if e.unlock == nil {
			e.unlock = e.release
		}
		e.sh, e.ref = sh, ref
		sh.m[ref] = e
	}
	e.refs++
	sh.mu.Unlock()
	e.mu.Lock()
	e.held = true
	return e.unlock
}

// release unlocks e, and puts it back in the pool with its last holder.
// Each holder releases once: a second call panics (recoverably, unlike
// sync's fatal unlock of an unlocked mutex) when nobody holds e, and
// would release another holder's lock when somebody does, so every
// caller defers it exactly once.
func (e *lockEntry) release() {
	if !e.held {
		panic("iosessions: a session lock released twice")
	}
	e.held = false
	e.mu.Unlock()
	sh := e.sh
	sh.mu.Lock()
	e.refs--
	last := e.refs == 0
	if last {
		delete(sh.m, e.ref)
		e.sh, e.ref = nil, ""
	}
	sh.mu.Unlock()
	if last {
		lockEntries.Put(e)
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
