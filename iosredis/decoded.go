package iosredis

import (
	"crypto/sha1"
	"fmt"
	"sync"

	"github.com/gorilla/sessions"

	"github.com/iosessions/iosessions"
)

// The per-message path loads a session and saves it on every event; gob,
// the encoding of the stored bytes, is slow to decode (each decoder builds
// its engines anew). So the Store remembers, per session, the values of
// the bytes it last read or wrote, by their SHA-1: when Redis gives back
// the same bytes, their values are a native copy of the ones remembered,
// not a decode. Bytes written by anyone else differ, and are decoded.

// maxDecoded bounds the remembered sessions; past it, an arbitrary one is
// forgotten (it is decoded again next time).
const maxDecoded = 4096

type decodedEntry struct {
	sum    [sha1.Size]byte
	values map[any]any // never handed out: callers get copies
}

type decodedCache struct {
	mu sync.Mutex
	m  map[string]decodedEntry
}

// get returns a copy of the values remembered for id if they are those of
// b (whose SHA-1 is sum).
func (c *decodedCache) get(id string, sum [sha1.Size]byte) (map[any]any, bool) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if !ok || e.sum != sum {
		return nil, false
	}
	v, err := iosessions.CloneValues(e.values)
	return v, err == nil
}

// put remembers values, which the caller hands over and never uses
// again, as those of the bytes whose SHA-1 is sum.
func (c *decodedCache) put(id string, sum [sha1.Size]byte, v map[any]any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]decodedEntry)
	}
	if _, ok := c.m[id]; !ok && len(c.m) >= maxDecoded {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[id] = decodedEntry{sum: sum, values: v}
}

// forget drops what is remembered of id.
func (c *decodedCache) forget(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

// decode fills sess from b, the stored bytes of session id, whose SHA-1
// is sum, from the remembered values when they are b's.
func (s *Store) decode(id string, b []byte, sum [sha1.Size]byte, sess *sessions.Session) error {
	if v, ok := s.decoded.get(id, sum); ok {
		sess.Values = v
		return nil
	}
	if err := s.codec.Deserialize(b, sess); err != nil {
		return fmt.Errorf("iosredis: decode: %w", err)
	}
	if v, err := iosessions.CloneValues(sess.Values); err == nil {
		s.decoded.put(id, sum, v)
	}
	return nil
}

// encodeOwned returns the stored bytes of sess and their SHA-1, and
// remembers its values as theirs: the caller hands them over with sess,
// which it never uses again.
func (s *Store) encodeOwned(id string, sess *sessions.Session) ([]byte, [sha1.Size]byte, error) {
	b, err := s.codec.Serialize(sess)
	if err != nil {
		return nil, [sha1.Size]byte{}, fmt.Errorf("iosredis: encode: %w", err)
	}
	sum := sha1.Sum(b)
	s.decoded.put(id, sum, sess.Values)
	return b, sum, nil
}
