package iosredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrLockLost is what Update returns, and the event's ack reports as a
// store failure, when the session's lock expired (Options.LockTTL) before
// the event's changes were saved: they are not saved, rather than
// overwrite what the lock's next holder wrote.
var ErrLockLost = errors.New("iosredis: session lock expired before the save")

// held is a lock of Lock, carried by the context it returns.
type held struct {
	id, key, token string
}

type heldKey struct{}

// unlockScript deletes a lock only if it is still the caller's.
var unlockScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end return 0`)

// Lock implements iosessions.Locker: it takes the session's lock in Redis
// (SET NX with Options.LockTTL), waiting for it until ctx ends.
func (s *Store) Lock(ctx context.Context, _ string, id string) (context.Context, func(), error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := &held{id: id, key: s.prefix + "lock:" + id, token: hex.EncodeToString(b[:])}
	wait := time.Millisecond
	for {
		ok, err := s.client.SetNX(ctx, h.key, h.token, s.ttl).Result()
		if err != nil {
			return nil, nil, err
		}
		if ok {
			break
		}
		// Held by another node for the few milliseconds of one event:
		// poll, backing off to 20 ms.
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 20*time.Millisecond)
	}
	unlock := func() {
		// Its own deadline: the caller's may be over. If this fails, the
		// lock expires after LockTTL.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = unlockScript.Run(uctx, s.client, []string{h.key}, h.token).Err()
	}
	return context.WithValue(ctx, heldKey{}, h), unlock, nil
}
