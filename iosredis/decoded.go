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

// put remembers a copy of values as those of the bytes whose SHA-1 is sum.
func (c *decodedCache) put(id string, sum [sha1.Size]byte, values map[any]any) {
	v, err := iosessions.CloneValues(values)
	if err != nil {
		return
	}
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

// decode fills sess from b, the stored bytes of session id, from the
// remembered values when they are b's.
func (s *Store) decode(id string, b []byte, sess *sessions.Session) error {
	sum := sha1.Sum(b)
	if v, ok := s.decoded.get(id, sum); ok {
		sess.Values = v
		return nil
	}
	if err := s.codec.Deserialize(b, sess); err != nil {
		return fmt.Errorf("iosredis: decode: %w", err)
	}
	s.decoded.put(id, sum, sess.Values)
	return nil
}

// encode returns the stored bytes of sess, and remembers its values as
// theirs.
func (s *Store) encode(id string, sess *sessions.Session) ([]byte, error) {
	b, err := s.codec.Serialize(sess)
	if err != nil {
		return nil, fmt.Errorf("iosredis: encode: %w", err)
	}
	s.decoded.put(id, sha1.Sum(b), sess.Values)
	return b, nil
}
