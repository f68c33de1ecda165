package iosessions

import (
	"context"
	"fmt"
	"time"
)

// Sessions end in three ways that sockets must hear of: over HTTP in this
// process (Destroy, Renew: the Manager ends them at once), in the store by
// another process or by expiry. A store that reports ends (Notifier) is
// heard at once; one that cannot report expiry (Checker) is asked every
// CheckInterval about the sessions this process has sockets of.

// checker ends the sockets of sessions that the store no longer has,
// every interval, until Shutdown.
func (m *Manager) checker(c Checker, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		err := m.check(c)
		if err != nil && !failing { // once per outage, not once per tick
			m.ReportError(fmt.Errorf("iosessions: check sessions: %w", err))
		}
		failing = err != nil
	}
}

// check asks c about the sessions of the live sockets, in one call, and
// ends those that are gone.
func (m *Manager) check(c Checker) error {
	var ids []string
	for _, ref := range m.reg.refs() {
		if storeID(ref) {
			ids = append(ids, ref)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StoreTimeout)
	defer cancel()
	alive, err := c.Exist(ctx, m.cfg.Name, ids)
	if err != nil {
		return m.storeErr(ctx, err)
	}
	if len(alive) != len(ids) {
		return fmt.Errorf("%w: Exist answered %d of %d", ErrStoreUnavailable, len(alive), len(ids))
	}
	for i, ok := range alive {
		if !ok {
			m.sessionEnded(ids[i])
		}
	}
	return nil
}
