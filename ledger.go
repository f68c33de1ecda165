package iosessions

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Shim tokens are single-use: each carries a random nonce, and the first
// handshake that presents it records it in a TokenLedger until the token
// would have expired anyway; a second handshake with it is refused like any
// other bad token. The shim fetches a fresh token before every reconnect.

// A TokenLedger records the nonces of the shim tokens that were used, so
// that each token is accepted once. Use records id for ttl and reports
// whether it was new. A Manager uses its store as its ledger when the
// store implements TokenLedger (the iosredis store does: one ledger for
// every node on that Redis); otherwise a ledger in this process's memory.
type TokenLedger interface {
	Use(ctx context.Context, id string, ttl time.Duration) (first bool, err error)
}

// useToken records the nonce of a token being used, within StoreTimeout.
func (m *Manager) useToken(nonce string) error {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StoreTimeout)
	defer cancel()
	// A token lives at most TokenTTL, and one second of rounding.
	first, err := m.ledger.Use(ctx, nonce, m.cfg.TokenTTL+time.Second)
	if err != nil {
		return m.storeErr(ctx, fmt.Errorf("token ledger: %w", err))
	}
	if !first {
		return ErrBadToken
	}
	return nil
}

// memLedger is a TokenLedger in memory. Entries are dropped once expired,
// by a sweep every so many insertions.
type memLedger struct {
	mu      sync.Mutex
	used    map[string]time.Time // nonce -> expiry
	inserts int
	now     func() time.Time
}

func newMemLedger() *memLedger {
	return &memLedger{used: make(map[string]time.Time), now: time.Now}
}

// Use implements TokenLedger.
func (l *memLedger) Use(_ context.Context, id string, ttl time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if exp, ok := l.used[id]; ok && now.Before(exp) {
		return false, nil
	}
	l.used[id] = now.Add(ttl)
	if l.inserts++; l.inserts >= 1024 {
		l.inserts = 0
		for k, exp := range l.used {
			if !now.Before(exp) {
				delete(l.used, k)
			}
		}
	}
	return true, nil
}

// len returns the number of nonces held.
func (l *memLedger) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.used)
}
