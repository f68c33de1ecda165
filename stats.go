package iosessions

// Stats are counts of the Manager's side tables at one moment, for
// monitoring and tests: after every connection has closed (and the
// Manager's goroutines have finished), all are zero.
type Stats struct {
	Sockets  int // live sockets in the registry (Manager.Sockets)
	Sessions int // sessions with at least one live socket
	Locks    int // sessions whose per-message lock is held or waited for
	Lives    int // PerConnection: live session copies shared by sockets
}

// Stats returns the counts of the Manager's tables. It takes each shard's
// lock in turn, so the counts are not one snapshot under churn.
func (m *Manager) Stats() Stats {
	var st Stats
	for i := range m.reg.shards {
		sh := &m.reg.shards[i]
		sh.mu.Lock()
		st.Sockets += len(sh.conns)
		st.Sessions += len(sh.bySess.one)
		sh.mu.Unlock()
	}
	st.Locks = m.locks.len()
	st.Lives = m.lives.len()
	return st
}
