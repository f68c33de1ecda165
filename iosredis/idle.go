package iosredis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gorilla/sessions"
	"github.com/redis/go-redis/v9"

	"github.com/iosessions/iosessions"
)

// Idle expiry (iosessions.Idler): with an idle timeout, a session's key
// expires at its idle deadline or at the end of its lifetime, whichever
// comes first, so every read, save and check of the session (GET, SET XX
// KEEPTTL, the lock scripts, EXISTS, PTTL) sees an idle session gone with
// no change. The end of its lifetime, which the key's TTL no longer
// holds, is kept in <prefix>life:{<id>} (unix ms, expiring then), in the
// session's hash slot. touchScript moves the key's expiry, and writes
// only when that moves it by a tenth of the timeout or more: a session
// costs at most one write per tenth of the timeout, from any number of
// nodes; the deadline it writes is 6/5 of the timeout ahead, so that a
// session lives at least the timeout after its last activity (see
// iosessions.Idler).

// lifeKey is the key that keeps the end of the lifetime of session id.
func (s *Store) lifeKey(id string) string { return s.prefix + "life:" + id }

// touchScript extends a session's idle deadline: KEYS session, life; ARGV
// idle timeout in ms, "1" to return the session too. It returns {ms left,
// 1 if that is the idle deadline else 0, the session if asked}, or {-2}
// when the session is gone. The first touch of a session records the end
// of its lifetime, which its TTL still holds then (set by its first save).
var touchScript = redis.NewScript(`
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return {-2} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local life = tonumber(redis.call('GET', KEYS[2]))
if not life and ttl >= 0 then
  life = now + ttl
  redis.call('SET', KEYS[2], string.format('%d', life), 'PXAT', string.format('%d', life))
end
local idle = tonumber(ARGV[1])
local span, step = idle + math.floor(idle / 5), math.floor(idle / 10)
local cur = now + ttl
if life then
  local at = math.min(life, now + span)
  if ttl < 0 or at - cur >= step or (at == life and cur < life) or cur > now + span then
    redis.call('PEXPIREAT', KEYS[1], string.format('%d', at))
    cur = at
  end
end
local out = {cur - now, 0}
if life and cur < life then out[2] = 1 end
if ARGV[2] == '1' then out[3] = redis.call('GET', KEYS[1]) end
return out`)

// SetIdleTimeout implements iosessions.Idler. A Manager with
// Config.IdleTimeout calls it; every node sharing this Redis must use the
// same timeout.
func (s *Store) SetIdleTimeout(d time.Duration) { s.idle.Store(int64(d)) }

func (s *Store) idleTimeout() time.Duration { return time.Duration(s.idle.Load()) }

// Touch implements iosessions.Idler, in one script.
func (s *Store) Touch(ctx context.Context, _ string, id string) (iosessions.Expiry, error) {
	e, _, err := s.touch(ctx, id, false)
	return e, err
}

// touch runs touchScript for id, asking for the session if load.
func (s *Store) touch(ctx context.Context, id string, load bool) (e iosessions.Expiry, b []byte, err error) {
	if !validID(id) {
		return e, nil, iosessions.ErrNotFound
	}
	idle := s.idleTimeout()
	if idle <= 0 {
		return e, nil, errors.New("iosredis: Touch without an idle timeout (SetIdleTimeout)")
	}
	want := "0"
	if load {
		want = "1"
	}
	res, err := touchScript.Run(ctx, s.client, []string{s.prefix + id, s.lifeKey(id)}, idle.Milliseconds(), want).Slice()
	if err != nil {
		return e, nil, err
	}
	left, _ := res[0].(int64)
	if left == -2 {
		return e, nil, iosessions.ErrNotFound
	}
	if len(res) < 2 {
		return e, nil, fmt.Errorf("iosredis: touch: unexpected reply %v", res)
	}
	e.At = time.Now().Add(time.Duration(left) * time.Millisecond)
	e.Idle = res[1] == int64(1)
	if len(res) > 2 {
		v, ok := res[2].(string)
		if !ok { // expired between the two reads
			return iosessions.Expiry{}, nil, iosessions.ErrNotFound
		}
		b = []byte(v)
	}
	return e, b, nil
}

// Expiry implements iosessions.Idler, in one pipeline: the TTLs of each
// session and of the end of its lifetime.
func (s *Store) Expiry(ctx context.Context, _ string, ids []string) ([]iosessions.Expiry, error) {
	cmds, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			p.PTTL(ctx, s.prefix+id)
			p.PTTL(ctx, s.lifeKey(id))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]iosessions.Expiry, len(ids))
	for i := range ids {
		// go-redis reports -1 and -2 (no TTL, no key) as themselves.
		ttl, life := cmds[2*i].(*redis.DurationCmd).Val(), cmds[2*i+1].(*redis.DurationCmd).Val()
		switch {
		case ttl == -2:
			// gone: the zero Expiry
		case ttl < 0:
			out[i] = iosessions.Expiry{At: now.Add(100 * 365 * 24 * time.Hour)} // no TTL: never
		default:
			// Read first, the session's TTL is the larger when both
			// end together: idle only when it ends before its lifetime.
			out[i] = iosessions.Expiry{At: now.Add(ttl), Idle: life >= 0 && ttl < life}
		}
	}
	return out, nil
}

// loadTouch is Load over HTTP with an idle timeout: the session read and
// its idle deadline extended, in one script.
func (s *Store) loadTouch(ctx context.Context, name, key string) (*sessions.Session, error) {
	if !validID(key) {
		return nil, iosessions.ErrBadKey
	}
	_, b, err := s.touch(ctx, key, true)
	if err != nil {
		return nil, err
	}
	sess := s.fresh(name)
	if err := s.codec.Deserialize(b, sess); err != nil {
		return nil, fmt.Errorf("iosredis: decode: %w", err)
	}
	sess.ID = key
	sess.IsNew = false
	return sess, nil
}
