package iosessions

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Idle expiry (Config.IdleTimeout): a session that has seen no activity
// for the timeout expires, on every node; its absolute lifetime (MaxAge)
// still bounds it. Activity is a load of the session over HTTP (the
// store's Get or New: the app's handlers), a handshake with the session
// and a session event (Socket.Do); pings, polling requests and events
// without a session are not.
//
// The store keeps the idle deadline (Idler): the HTTP side extends it in
// the store itself, as it loads the session; the socket side through
// Touch, which each node sends at most once per session per tenth of the
// timeout, on a goroutine of its own, off the event's path. A store writes
// only when that moves the deadline by a tenth of the timeout or more, so
// a session costs at most one write per tenth of the timeout, whatever
// the event rate and the number of nodes.
//
// Each node watches the deadlines of the sessions it has sockets of, in
// one store call per Config.CheckInterval (or an eighth of the timeout,
// if shorter), and wakes on the deadlines it knows: half the timeout
// before an idle expiry the session's sockets here get "sexpiring" with
// {"in_ms": time left}, once per deadline (activity that extends the
// deadline re-arms it); at the expiry, "sinvalid" and a close.

// An Idler is a store that expires sessions left idle. MemoryStore and
// iosredis implement it.
type Idler interface {
	// SetIdleTimeout makes the store expire a session d after its last
	// activity (a load over HTTP, Get or New, a save over HTTP or a
	// Touch), never later than its absolute lifetime; 0 turns idle expiry
	// off. New calls it with Config.IdleTimeout.
	SetIdleTimeout(d time.Duration)
	// Touch extends the idle deadline of session id to 6/5 of the timeout
	// from now (never past its absolute lifetime), writing only when that
	// moves it by a tenth of the timeout or more (or up to the end of the
	// lifetime), and returns the session's expiry; a load over HTTP does
	// the same. It returns ErrNotFound when the session is gone. As
	// activity is written at most once per tenth of the timeout, and the
	// store writes at most once per tenth, the extra fifth makes a
	// session live at least the timeout after its last activity, and at
	// most 6/5 of it.
	Touch(ctx context.Context, name, id string) (Expiry, error)
	// Expiry says when each of ids expires, in one call: the zero Expiry
	// for one that is gone.
	Expiry(ctx context.Context, name string, ids []string) ([]Expiry, error)
}

// Expiry is when a session expires.
type Expiry struct {
	// At is when the session expires; zero when it is gone.
	At time.Time
	// Idle reports that At is the idle deadline, which activity extends,
	// rather than the absolute end of the session's lifetime.
	Idle bool
}

// minIdle is the shortest Config.IdleTimeout.
const minIdle = time.Second

// idleSpan is how far ahead a touch sets the idle deadline, for an idle
// timeout d (see Idler.Touch).
func idleSpan(d time.Duration) time.Duration { return d + d/5 }

// idleState is what this node knows of a session's idle deadline.
type idleState struct {
	mu       sync.Mutex
	sent     time.Time // when the last Touch was sent
	inflight bool      // a Touch is on its way
	warned   time.Time // the deadline "sexpiring" was sent for
}

// activity records activity of the session ref on this node, and touches
// it in the store if the last touch from here is a tenth of the timeout
// old. It does no I/O on the caller's goroutine.
func (m *Manager) activity(ref string) {
	if m.idler == nil || !storeID(ref) {
		return
	}
	v, ok := m.idles.Load(ref)
	if !ok {
		v, _ = m.idles.LoadOrStore(ref, &idleState{})
	}
	st := v.(*idleState)
	now := time.Now()
	st.mu.Lock()
	if st.inflight || now.Sub(st.sent) < m.cfg.IdleTimeout/10 {
		st.mu.Unlock()
		return
	}
	st.inflight, st.sent = true, now
	st.mu.Unlock()
	m.goTracked(func() {
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StoreTimeout)
		defer cancel()
		t := m.callStart()
		_, err := m.idler.Touch(ctx, m.cfg.Name, ref)
		err = m.storeErr(ctx, err)
		m.callEnd(OpTouch, t, err)
		st.mu.Lock()
		st.inflight = false
		st.mu.Unlock()
		switch {
		case errors.Is(err, ErrNotFound):
			m.sessionEnded(ref)
		case err != nil:
			// The next activity a tenth of the timeout later tries again.
			m.cfg.Logger.Warn("iosessions: extending an idle session", "err", err)
		}
	})
}

// idleWatch watches the expiry of the sessions of live sockets until
// Shutdown: it replaces the checker (Expiry tells gone sessions too).
func (m *Manager) idleWatch() {
	period := min(m.cfg.CheckInterval, m.cfg.IdleTimeout/8)
	t := time.NewTimer(period)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		next, err := m.idleCheck()
		if err != nil && !failing { // once per outage, not once per tick
			m.ReportError(fmt.Errorf("iosessions: check sessions: %w", err))
		}
		failing = err != nil
		wait := period
		if !next.IsZero() {
			wait = max(min(wait, time.Until(next)), 5*time.Millisecond)
		}
		t.Reset(wait)
	}
}

// idleCheck asks the store when the sessions of the live sockets expire,
// ends the gone ones, warns those within half the timeout of their idle
// deadline, and returns when it should look again (zero: no sooner than
// the period).
func (m *Manager) idleCheck() (next time.Time, err error) {
	var ids []string
	live := make(map[string]bool)
	for _, ref := range m.reg.refs() {
		if storeID(ref) {
			ids = append(ids, ref)
			live[ref] = true
		}
	}
	m.idles.Range(func(k, _ any) bool {
		if !live[k.(string)] {
			m.idles.Delete(k)
		}
		return true
	})
	if len(ids) == 0 {
		return time.Time{}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StoreTimeout)
	defer cancel()
	t := m.callStart()
	exp, err := m.idler.Expiry(ctx, m.cfg.Name, ids)
	err = m.storeErr(ctx, err)
	m.callEnd(OpCheck, t, err)
	if err != nil {
		return time.Time{}, err
	}
	if len(exp) != len(ids) {
		return time.Time{}, fmt.Errorf("%w: Expiry answered %d of %d", ErrStoreUnavailable, len(exp), len(ids))
	}
	half, quarter := m.cfg.IdleTimeout/2, m.cfg.IdleTimeout/4
	soonest := func(at time.Time) {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	now := time.Now()
	for i, ref := range ids {
		e := exp[i]
		if e.At.IsZero() {
			m.sessionEnded(ref)
			continue
		}
		soonest(e.At.Add(10 * time.Millisecond)) // see it gone
		if !e.Idle {
			continue
		}
		v, _ := m.idles.LoadOrStore(ref, &idleState{})
		st := v.(*idleState)
		left := e.At.Sub(now)
		st.mu.Lock()
		// Activity moved the deadline since the warning (a store moves it
		// by a tenth of the timeout or more; At jitters by a round trip).
		armed := e.At.Sub(st.warned) > m.cfg.IdleTimeout/20
		warn := armed && left <= half && left >= quarter
		if warn {
			st.warned = e.At
		} else if armed && left > half {
			soonest(e.At.Add(-half))
		}
		st.mu.Unlock()
		if warn {
			m.warnExpiring(ref, left)
		}
	}
	return next, nil
}

// warnExpiring sends "sexpiring" to the sockets of ref on this node.
func (m *Manager) warnExpiring(ref string, left time.Duration) {
	payload := map[string]int64{"in_ms": left.Milliseconds()}
	for _, s := range m.reg.session(ref) {
		if s.active() {
			_ = s.conn.Emit("sexpiring", payload)
		}
	}
}
