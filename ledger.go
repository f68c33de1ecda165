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

// memLedger is a TokenLedger in memory. Nonces also wait in a queue in
// the order they were used; each Use drops the expired ones from its
// front, so the ledger holds only live nonces and no Use walks it whole.
type memLedger struct {
	mu    sync.Mutex
	used  map[string]int64 // nonce -> expiry, Unix nanoseconds
	queue []ledgerEntry    // oldest first, from head
	head  int
	now   func() time.Time
}

type ledgerEntry struct {
	id  string
	exp int64
}

func newMemLedger() *memLedger {
	return &memLedger{used: make(map[string]int64), now: time.Now}
}

// Use implements TokenLedger.
func (l *memLedger) Use(_ context.Context, id string, ttl time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now().UnixNano()
	// Expiries grow along the queue while ttl stays the same, as a
	// Manager's does; an entry behind a longer-lived one leaves after it.
	for l.head < len(l.queue) && l.queue[l.head].exp <= now {
		e := l.queue[l.head]
		if l.used[e.id] == e.exp {
			delete(l.used, e.id)
		}
		l.queue[l.head] = ledgerEntry{}
		l.head++
	}
	if l.head > 0 && l.head*2 >= len(l.queue) { // reuse the drained front
		n := copy(l.queue, l.queue[l.head:])
		clear(l.queue[n:])
		l.queue, l.head = l.queue[:n], 0
	}
	if exp, ok := l.used[id]; ok && now < exp {
		return false, nil
	}
	exp := now + int64(ttl)
	l.used[id] = exp
	l.queue = append(l.queue, ledgerEntry{id, exp})
	return true, nil
}

// len returns the number of nonces held.
func (l *memLedger) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.used)
}
