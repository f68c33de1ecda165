package iosessions

import (
	"context"
	"slices"

	"github.com/gorilla/sessions"
)

// Session is a socket's view of its gorilla session, as the sconnection
// and smessage handlers get it. Read and change Values as over HTTP; the
// Manager saves what changed (see the modes in the package doc). It must
// not be kept beyond the handler: the Manager owns it (between events it
// may drop the Values of an idle PerConnection session, and make them
// again for the next handler).
type Session struct {
	*sessions.Session

	base   frozen // a copy of the values as last loaded or saved
	save   func(ctx context.Context) error
	asleep bool // Values dropped, equal to base: see sleep
}

// sleep drops the values of a session that has no changes since base (the
// live copy of an idle PerConnection session), so that an idle connection
// holds no map of them; wake makes them again, before a handler gets the
// session. A session asleep has no changes and refreshes its base only.
func (s *Session) sleep() {
	if s.asleep {
		return
	}
	if c, err := s.diff(); err != nil || !c.empty() {
		return
	}
	s.Values, s.asleep = nil, true
}

// wake makes the values of a session asleep again, from its base.
func (s *Session) wake() error {
	if !s.asleep {
		return nil
	}
	values, err := s.base.thaw()
	if err != nil {
		return err
	}
	s.Values, s.asleep = values, false
	return nil
}

// Save writes this socket's changes to the store now, instead of at the
// end of the event (per message) or at disconnect (per connection). It
// writes only the keys the socket changed, onto the session as the store
// holds it now, and returns ErrNotFound, writing nothing, when the session
// has ended meanwhile. It shadows sessions.Session.Save, which needs an
// HTTP response a socket does not have.
func (s *Session) Save(ctx context.Context) error { return s.save(ctx) }

// track starts tracking changes of sess from its current values: from
// base, if the store gave the values it copied them from (Manager.loadBase;
// never written to), or else from a copy of them.
func track(sess *sessions.Session, base *frozen) (*Session, error) {
	if base != nil {
		return &Session{Session: sess, base: *base}, nil
	}
	b, err := freeze(sess.Values)
	if err != nil {
		return nil, err
	}
	return &Session{Session: sess, base: b}, nil
}

// changes is what a socket did to a session's values.
type changes struct {
	set []frozenValue // keys set, to the handler's values (not copies)
	del []any
}

func (c changes) empty() bool { return len(c.set) == 0 && len(c.del) == 0 }

// apply makes the same changes to values.
func (c changes) apply(values map[any]any) {
	for _, e := range c.set {
		values[e.k] = e.v
	}
	for _, k := range c.del {
		delete(values, k)
	}
}

// diff returns what changed since the base was taken.
func (s *Session) diff() (changes, error) {
	var c changes
	if s.asleep {
		return c, nil
	}
	for k, v := range s.Values {
		if old, ok := s.base.get(k); !ok || !sameValue(old, v) {
			c.set = append(c.set, frozenValue{k, v})
		}
	}
	for _, e := range s.base.kv {
		if _, ok := s.Values[e.k]; !ok {
			c.del = append(c.del, e.k)
		}
	}
	return c, nil
}

// refresh makes fresh, values just loaded from the store, the base of
// later diffs, and the current values fresh with the changes made since
// the last save on top, except on the keys that fresh changed too: the
// store's write came later, and the last write of a key wins.
func (s *Session) refresh(fresh map[any]any) error {
	if s.asleep {
		base, err := freeze(fresh)
		if err == nil {
			s.base = base
		}
		return err
	}
	c, err := s.diff()
	if err != nil {
		return err
	}
	c.set = slices.DeleteFunc(c.set, func(e frozenValue) bool { return changedSince(s.base, fresh, e.k) })
	kept := c.del[:0]
	for _, k := range c.del {
		if !changedSince(s.base, fresh, k) {
			kept = append(kept, k)
		}
	}
	c.del = kept
	base, err := freeze(fresh)
	if err != nil {
		return err
	}
	values, err := cloneValues(fresh)
	if err != nil {
		return err
	}
	c.apply(values)
	s.base, s.Values = base, values
	return nil
}

// changedSince reports whether key k differs between base and now.
func changedSince(base frozen, now map[any]any, k any) bool {
	b, inBase := base.get(k)
	n, inNow := now[k]
	return inBase != inNow || (inBase && !sameValue(b, n))
}

// rebase makes the current values the base of later diffs.
func (s *Session) rebase() error {
	if s.asleep {
		return nil
	}
	base, err := freeze(s.Values)
	if err != nil {
		return err
	}
	s.base = base
	return nil
}
