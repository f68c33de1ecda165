package iosessions

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gorilla/sessions"
)

// Rotation gives a session a new id and keeps its sockets: against
// long-lived ids, and after a privilege change. Unlike Renew, which is
// for login, it keeps the values and moves the sockets, on every node, to
// the new id before the old one is deleted, so no socket sees the end.

// Rotate gives the session that r carries a new id with the same values,
// sets its cookie on w and deletes the old id from the store. Its sockets,
// on every node, move to the new id: they keep their session, with no
// sinvalid and no reconnect. It returns the new session, saved; ErrNoSession
// (or the load's error) when r carries no valid session, and
// ErrClientSideStore for a store that keeps sessions in the cookie (its
// sessions have no id). The new id starts a new lifetime in the store.
//
// At login, use Renew instead: a fresh, empty session whose old sockets
// end. Moving the sockets there would hand a socket that an attacker
// opened with a fixated id the victim's session.
func (m *Manager) Rotate(ctx context.Context, w http.ResponseWriter, r *http.Request) (*sessions.Session, error) {
	key, err := CookieCutter(m.cfg.Name)(r)
	if err != nil {
		return nil, ErrNoSession
	}
	old, err := m.load(ctx, key)
	if err != nil {
		return nil, err
	}
	if old.ID == "" {
		return nil, ErrClientSideStore
	}
	values, err := cloneValues(old.Values)
	if err != nil {
		return nil, fmt.Errorf("iosessions: rotate: %w", err)
	}
	req := r.Clone(ctx)
	req.Header.Del("Cookie")
	ns, err := m.store.New(req, m.cfg.Name)
	if err != nil {
		return nil, m.storeErr(ctx, err)
	}
	ns.ID, ns.IsNew, ns.Values = "", true, values
	if old.Options != nil {
		o := *old.Options
		ns.Options = &o
	}
	rec := headerRecorder{h: http.Header{}}
	if err := m.store.Save(req, rec, ns); err != nil {
		return nil, m.storeErr(ctx, fmt.Errorf("rotate: save: %w", err))
	}
	newKey := ""
	for _, line := range rec.h.Values("Set-Cookie") {
		if c, err := http.ParseSetCookie(line); err == nil && c.Name == m.cfg.Name {
			newKey = c.Value
		}
	}
	if ns.ID == "" || newKey == "" {
		return nil, fmt.Errorf("iosessions: rotate: the store gave the new session no id or cookie")
	}
	// Sockets move before the old id goes: every node hears of the move
	// (relay) before it hears of the end (same connection, later message).
	m.moveSession(old.ID, ns.ID, newKey)
	if m.relay != nil {
		msg, _ := json.Marshal(relayed{Kind: kindMove, Node: m.node, ID: old.ID, To: ns.ID, Key: newKey})
		if err := m.relay.Relay(ctx, msg); err != nil {
			// The other nodes' sockets would end with the old id: keep it.
			return nil, m.storeErr(ctx, fmt.Errorf("rotate: relay: %w", err))
		}
	}
	old.Options.MaxAge = -1
	t := m.callStart()
	err = m.store.Save(m.request(ctx, key), discard{}, old)
	m.callEnd(OpDelete, t, err)
	if err != nil {
		m.ReportError(fmt.Errorf("iosessions: rotate: delete the old id: %w", err))
	}
	for _, line := range rec.h.Values("Set-Cookie") {
		w.Header().Add("Set-Cookie", line)
	}
	return ns, nil
}

// kindMove relays a rotation: ID is the old reference, To the new one,
// Key the new session key.
const kindMove = "m"

// moveSession moves this node's sockets of the session oldRef to newRef,
// loaded by newKey, once their running handlers are done.
func (m *Manager) moveSession(oldRef, newRef, newKey string) {
	socks := m.reg.session(oldRef)
	if len(socks) == 0 {
		return
	}
	var unlock func()
	if lv := m.lives.get(oldRef); lv != nil {
		lv.mu.Lock()
		unlock = lv.mu.Unlock
		m.lives.move(lv, newRef, newKey)
		lv.sess.ID = newRef
	} else {
		unlock = m.locks.lock(oldRef)
	}
	defer unlock()
	newSub := m.subjectOf(newRef)
	newRoom := ident{sub: newSub}.room()
	for _, s := range socks {
		old := s.sid()
		if old.ref != oldRef {
			continue
		}
		s.id.Store(&ident{key: newKey, ref: newRef, sub: newSub})
		m.reg.rebind(s, old)
		if err := s.conn.Join(newRoom); err != nil {
			m.ReportError(fmt.Errorf("iosessions: join session room: %w", err))
		}
		_ = s.conn.Leave(old.room())
		m.goTracked(func() { m.dirMove(s, old) })
	}
}

// dirMove takes s out of the directory under its old session, then joins
// it under the new one.
func (m *Manager) dirMove(s *Socket, old ident) {
	s.dirMu.Lock()
	if s.flags.is(flagDirIn) {
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StoreTimeout)
		info := s.info()
		info.Session = old.room()
		if err := m.pres.dir.Leave(ctx, info, subjectsOf(s.user, old.sub), m.cfg.Grace); err != nil {
			m.ReportError(fmt.Errorf("%w: registry: %w", ErrStoreUnavailable, err))
		}
		cancel()
		s.flags.set(flagDirIn, false)
		s.dirTried = false
	}
	s.dirMu.Unlock()
	m.dirSync(s)
}
