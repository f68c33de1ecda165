package iosessions

import (
	"bytes"
	"context"
	"encoding/gob"
	"reflect"

	"github.com/gorilla/sessions"
)

// Session is a socket's view of its gorilla session, as the sconnection
// and smessage handlers get it. Read and change Values as over HTTP; the
// Manager saves what changed (see the modes in the package doc). It must
// not be kept beyond the handler: the Manager owns it.
type Session struct {
	*sessions.Session

	base []byte // the values as last loaded or saved, gob-encoded
	save func(ctx context.Context) error
}

// Save writes this socket's changes to the store now, instead of at the
// end of the event (per message) or at disconnect (per connection). It
// writes only the keys the socket changed, onto the session as the store
// holds it now, and returns ErrNotFound, writing nothing, when the session
// has ended meanwhile. It shadows sessions.Session.Save, which needs an
// HTTP response a socket does not have.
func (s *Session) Save(ctx context.Context) error { return s.save(ctx) }

// track starts tracking changes of sess from its current values.
func track(sess *sessions.Session) (*Session, error) {
	b, err := encodeValues(sess.Values)
	if err != nil {
		return nil, err
	}
	return &Session{Session: sess, base: b}, nil
}

// changes is what a socket did to a session's values.
type changes struct {
	set map[any]any
	del []any
}

func (c changes) empty() bool { return len(c.set) == 0 && len(c.del) == 0 }

// apply makes the same changes to values.
func (c changes) apply(values map[any]any) {
	for k, v := range c.set {
		values[k] = v
	}
	for _, k := range c.del {
		delete(values, k)
	}
}

// diff returns what changed since the base was taken.
func (s *Session) diff() (changes, error) {
	base := make(map[any]any)
	if err := gob.NewDecoder(bytes.NewReader(s.base)).Decode(&base); err != nil {
		return changes{}, err
	}
	var c changes
	for k, v := range s.Values {
		if old, ok := base[k]; !ok || !reflect.DeepEqual(old, v) && !storedAs(k, v, old) {
			if c.set == nil {
				c.set = make(map[any]any)
			}
			c.set[k] = v
		}
	}
	for k := range base {
		if _, ok := s.Values[k]; !ok {
			c.del = append(c.del, k)
		}
	}
	return c, nil
}

// storedAs reports whether v reads back from the store as old: what a gob
// round trip drops (time.Time's monotonic reading) is no change.
func storedAs(k, v, old any) bool {
	switch v.(type) {
	case bool, string, int, int8, int16, int32, int64,
		uint, uint8, uint16, uint32, uint64, float32, float64:
		return false // gob keeps these exactly, and v is not old
	}
	b, err := encodeValues(map[any]any{k: v})
	m := make(map[any]any)
	return err == nil && gob.NewDecoder(bytes.NewReader(b)).Decode(&m) == nil && reflect.DeepEqual(old, m[k])
}

// rebase makes the current values the base of later diffs.
func (s *Session) rebase() error {
	b, err := encodeValues(s.Values)
	if err != nil {
		return err
	}
	s.base = b
	return nil
}
