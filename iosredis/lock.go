package iosredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrLockLost is what Update returns, and the event's ack reports as a
// store failure, when the session's lock expired (Options.LockTTL) before
// the event's changes were saved: they are not saved, rather than
// overwrite what the lock's next holder wrote.
var ErrLockLost = errors.New("iosredis: session lock expired before the save")

// held is a lock of Lock, carried by the context it returns. Lock loads
// the session with the lock (loaded, found), for the event's Load; the
// event's save releases the lock with the write (released).
type held struct {
	id, key, token string

	mu       sync.Mutex
	loaded   []byte // the session as the lock found it
	found    bool   // it existed
	fresh    bool   // loaded is unused by a Load yet
	released bool   // a save released the lock
}

type heldKey struct{}

// unlockScript deletes a lock only if it is still the caller's.
var unlockScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end return 0`)

// lockLoadScript takes a session's lock and reads the session, in one
// round trip: KEYS lock, session; ARGV token, ttl in ms. It returns
// {1, session or nil} once taken (also when the caller's token holds it
// already: a retry whose first reply was lost), {0} while another holds it.
var lockLoadScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) or redis.call('GET', KEYS[1]) == ARGV[1] then
  return {1, redis.call('GET', KEYS[2])}
end
return {0}`)

// saveUnlockScript writes a session under its lock and releases the lock,
// in one round trip: KEYS lock, session; ARGV token, SHA-1 (hex) of the
// session as the writer read it, the new session, SHA-1 of the new
// session. It returns 1 when written (or found written already: a retry
// after a lost reply), 0 when the session is gone (the lock released),
// -1 when the lock is no longer the caller's, -2 when the session changed
// since it was read (an HTTP save meanwhile; the lock kept).
var saveUnlockScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[2])
local h = cur and redis.sha1hex(cur)
if h == ARGV[4] then
  if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
  return 1
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if not cur then
  redis.call('DEL', KEYS[1])
  return 0
end
if h ~= ARGV[2] then return -2 end
redis.call('SET', KEYS[2], ARGV[3], 'XX', 'KEEPTTL')
redis.call('DEL', KEYS[1])
return 1`)

// Lock implements iosessions.Locker: it takes the session's lock in Redis
// (SET NX with Options.LockTTL) and loads the session with it, in one
// script, waiting for the lock until ctx ends. The event's Load then
// costs nothing, and its save releases the lock (see Update): two round
// trips an event.
func (s *Store) Lock(ctx context.Context, _ string, id string) (context.Context, func(), error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	// The id is a hash tag (see newID): the lock and the session share a
	// slot, as the scripts that take both need on Redis Cluster.
	h := &held{id: id, key: s.prefix + "lock:" + id, token: hex.EncodeToString(b[:])}
	if err := s.lockLoad(ctx, h); err != nil {
		return nil, nil, err
	}
	unlock := func() {
		h.mu.Lock()
		released := h.released
		h.mu.Unlock()
		if !released {
			s.release(h)
		}
	}
	return context.WithValue(ctx, heldKey{}, h), unlock, nil
}

// release deletes h's lock if it is still h's. When Redis does not
// answer (it is down, or restarting), it keeps trying in the background,
// until the lock would have expired anyway: a lock whose holder met an
// outage does not block its session for the whole LockTTL once Redis is
// back. Close stops the tries.
func (s *Store) release(h *held) {
	try := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return s.runHot(ctx, unlockScript, []string{h.key}, h.token).Err()
	}
	if try() == nil {
		return
	}
	deadline := time.Now().Add(s.ttl)
	s.releases.Add(1)
	go func() {
		defer s.releases.Done()
		for time.Now().Before(deadline) {
			select {
			case <-s.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if try() == nil {
				return
			}
		}
	}()
}

// lockLoad takes h's lock, polling while another holds it, and keeps the
// session it read.
func (s *Store) lockLoad(ctx context.Context, h *held) error {
	wait := time.Millisecond
	for {
		res, err := s.runHot(ctx, lockLoadScript, []string{h.key, s.prefix + h.id}, h.token, s.ttl.Milliseconds()).Slice()
		var reply redis.Error
		if err != nil && !errors.As(err, &reply) {
			s.release(h) // the lock may have been taken, its reply lost
		}
		if err != nil {
			return err
		}
		if len(res) > 0 && res[0] == int64(1) {
			h.mu.Lock()
			h.loaded, h.found, h.fresh, h.released = nil, false, true, false
			if len(res) > 1 {
				if v, ok := res[1].(string); ok {
					h.loaded, h.found = []byte(v), true
				}
			}
			h.mu.Unlock()
			return nil
		}
		// Held by another node for the few milliseconds of one event:
		// poll, backing off to 20 ms.
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 20*time.Millisecond)
	}
}

// cached returns, once, the session that h's lock read, if it is id's.
func (h *held) cached(id string) (b []byte, found, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.id != id || !h.fresh || h.released {
		return nil, false, false
	}
	h.fresh = false
	return h.loaded, h.found, true
}
