package iosessions

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Per connection: the session is loaded once, at connect (Socket.Open),
// and the sockets of one session on this node share it (live.go). It is
// saved at the last such socket's disconnect, at Shutdown, every
// FlushInterval and on Session.Save. A save writes only the keys changed
// since the last save, onto the session as the store holds it then, so it
// neither rolls back keys changed over HTTP nor brings back a session
// destroyed meanwhile.

// doPerConn runs fn with the session's live copy; handlers and saves of
// the session on this node never overlap.
func (s *Socket) doPerConn(fn func(*Session) error) error {
	lv := s.lv
	lv.mu.Lock()
	defer lv.mu.Unlock()
	// Checked under the lock that Shutdown's save takes: an event either
	// ran before that save, which then holds its changes, or is refused.
	if s.m.shuttingDown() {
		return ErrShutdown
	}
	if lv.gone {
		return noSession(ErrEnded)
	}
	if err := lv.sess.wake(); err != nil {
		return fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	var ferr error
	if err := s.m.safely("smessage", func() { ferr = fn(lv.sess) }); err != nil {
		return err
	}
	// A session in the cookie is written back at once, if a client of
	// it applies write-backs; otherwise its changes wait, as others do.
	if s.m.clientSide(lv.sess.Session) {
		if to := s.m.writebackTarget(lv.ref, s); to != nil {
			if err := s.m.writeBack(s.Context(), lv.sess, lv.key, lv.ref, to); err != nil {
				return err
			}
		}
	}
	return ferr
}

// flush saves the changes of the socket's live session, if it has one.
// A session that ended meanwhile is not an error here: its sockets are
// being ended.
func (s *Socket) flush(ctx context.Context) error {
	if !s.ready.Fired() {
		return nil // still opening: nothing to save yet
	}
	if s.err != nil || s.lv == nil || s.flags.is(flagEnded) {
		return nil
	}
	s.lv.mu.Lock()
	defer s.lv.mu.Unlock()
	err := s.m.saveLive(ctx, s.lv, s)
	if err == nil {
		s.lv.sess.sleep() // saved, and no handler runs: idle until the next
	}
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// flushRetry flushes, and retries a flush that failed because the store
// was unavailable, with backoff, for Config.SaveRetry (a last attempt
// right away once Shutdown began). It returns the last error.
func (s *Socket) flushRetry() error {
	deadline := time.Now().Add(s.m.cfg.SaveRetry)
	wait := 50 * time.Millisecond
	for {
		err := s.flush(context.Background())
		if !errors.Is(err, ErrStoreUnavailable) || !time.Now().Add(wait).Before(deadline) {
			return err
		}
		select {
		case <-s.m.stop:
			return s.flush(context.Background())
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// flusher saves the changes of every live session each interval, until
// Shutdown.
func (m *Manager) flusher(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			for _, s := range m.reg.all() {
				if err := s.flush(context.Background()); err != nil {
					m.ReportError(err)
				}
			}
		}
	}
}
