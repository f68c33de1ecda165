package iosessions

import (
	"context"
	"errors"
	"sync"
)

// One live session per node: in PerConnection mode the sockets of one
// session on this node share one copy of it (a live), so two tabs see and
// keep each other's changes. Their events are serialized on it, as
// PerMessage serializes them on the session's lock. The live is saved at
// its last socket's disconnect, at Shutdown, every FlushInterval and on
// Session.Save, writing the keys changed since the last save onto the
// session as the store holds it then. When the session is saved over HTTP
// (a store that implements ChangeNotifier tells us), the live takes the
// new values and keeps the keys its sockets changed and have not saved.

// A ChangeNotifier is a store that tells when a session was saved over
// HTTP (sessions.Store.Save), on this node or, for a shared store, on any
// node, so the live copies of PerConnection sockets take the new values.
// f must be called without the store's locks held and may block for a
// store round trip. f("") means that any session may have changed (the
// store lost track of changes for a while, as when pub/sub reconnects).
// MemoryStore and iosredis implement it.
type ChangeNotifier interface {
	NotifyChange(f func(id string))
}

// live is the copy of a session that this node's PerConnection sockets of
// that session share.
type live struct {
	mu   sync.Mutex // serializes handlers, saves and refreshes
	sess *Session   // guarded by mu
	gone bool       // the session ended: never saved again; guarded by mu

	// Guarded by the table's lock; key and ref change when the session's
	// id is rotated (then under mu too).
	key string // a key that loads the session (its first socket's)
	ref string // the session's reference, the table's key
	n   int    // sockets attached
}

// liveTable holds the lives of this node by session reference. Its lock
// is taken when a socket opens or closes and when a session changes or
// moves, never per event.
type liveTable struct {
	mu sync.Mutex
	m  map[string]*live
}

func (t *liveTable) init() { t.m = make(map[string]*live) }

// attach adds a socket to the live of ref, made from fresh (a session just
// loaded) if there is none; existed reports that there was one.
func (t *liveTable) attach(ref, key string, fresh *Session) (lv *live, existed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if lv = t.m[ref]; lv != nil {
		lv.n++
		return lv, true
	}
	lv = &live{sess: fresh, key: key, n: 1, ref: ref}
	t.m[ref] = lv
	return lv, false
}

// detach takes a socket off lv and reports whether it was the last one.
func (t *liveTable) detach(lv *live) (last bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lv.n--
	return lv.n == 0
}

// forget drops lv from the table unless a socket attached again.
func (t *liveTable) forget(lv *live) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m[lv.ref] == lv && lv.n == 0 {
		delete(t.m, lv.ref)
	}
}

// get returns the live of ref, or nil.
func (t *liveTable) get(ref string) *live {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[ref]
}

// idOf returns the reference and the key of lv's session now.
func (t *liveTable) idOf(lv *live) (ref, key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return lv.ref, lv.key
}

// move files lv under ref, loaded by key (a rotated session id).
func (t *liveTable) move(lv *live, ref, key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m[lv.ref] == lv {
		delete(t.m, lv.ref)
	}
	lv.ref, lv.key = ref, key
	t.m[ref] = lv
}

// refs returns the references of the lives.
func (t *liveTable) refs() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.m))
	for ref := range t.m {
		out = append(out, ref)
	}
	return out
}

// len returns the number of lives.
func (t *liveTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// saveLive writes the live's changes; lv.mu is held. A session that ended
// meanwhile ends its sockets (by, a socket already out of the registry,
// included) and returns errGone.
func (m *Manager) saveLive(ctx context.Context, lv *live, by *Socket) error {
	if lv.gone {
		return errGone
	}
	c, err := lv.sess.diff()
	if err != nil || c.empty() {
		return err
	}
	ref, key := m.lives.idOf(lv)
	if m.clientSide(lv.sess.Session) {
		if to := m.writebackTarget(ref, by); to != nil {
			return m.writeBack(ctx, lv.sess, key, ref, to)
		}
	}
	err = m.update(ctx, lv.sess.Session, key, c)
	if errors.Is(err, ErrNotFound) {
		lv.gone = true
		m.sessionEnded(ref)
		if by != nil {
			by.end(ErrEnded)
		}
		return errGone
	}
	if err != nil {
		return err
	}
	return lv.sess.rebase()
}

// sessionChanged makes the live copy of ref, if this node has one, take
// the values the store holds now, keeping its unsaved changes, then runs
// the OnChange handler for the session's sockets here.
func (m *Manager) sessionChanged(ref string) {
	if ref == "" {
		for _, ref := range m.lives.refs() {
			m.sessionChanged(ref)
		}
		return
	}
	if len(m.reg.session(ref)) == 0 {
		return
	}
	m.goTracked(func() {
		if lv := m.lives.get(ref); lv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StoreTimeout)
			lv.mu.Lock()
			if !lv.gone {
				_, key := m.lives.idOf(lv)
				sess, err := m.load(ctx, key)
				switch {
				case errors.Is(err, ErrNotFound):
					lv.gone = true
					m.sessionEnded(ref)
				case err != nil:
					// The next change, or the save, catches up.
					m.cfg.Logger.Warn("iosessions: refreshing a live session", "err", err)
				default:
					if err := lv.sess.refresh(sess.Values); err != nil {
						m.ReportError(err)
					}
				}
			}
			lv.mu.Unlock()
			cancel()
		}
		if h := m.onChange; h != nil {
			for _, s := range m.reg.session(ref) {
				if s.active() {
					m.safely("OnChange", func() { h(s) })
				}
			}
		}
	})
}

// OnChange registers h, called for each socket of a session on this node
// after the session was saved over HTTP on any node (with a store that
// implements ChangeNotifier): in PerConnection mode the socket's session
// already holds the new values; in PerMessage mode its next event loads
// them. It runs on a goroutine of the Manager, may block and may emit,
// to tell the client. Register it before serving.
func (m *Manager) OnChange(h func(s *Socket)) { m.onChange = h }
