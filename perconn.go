package iosessions

import (
	"context"
	"errors"
	"time"
)

// Per connection: the session is loaded once, at connect (Socket.Open),
// kept in the Socket, and saved at disconnect, at Shutdown, every
// FlushInterval and on Session.Save. A save writes only the keys this
// socket changed since its last save, onto the session as the store holds
// it then, so it neither rolls back keys changed over HTTP nor brings back
// a session destroyed meanwhile.

// doPerConn runs fn with the connection's session; handlers and saves of
// the socket never overlap.
func (s *Socket) doPerConn(fn func(*Session) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Checked under the lock that Shutdown's save takes: an event either
	// ran before that save, which then holds its changes, or is refused.
	if s.m.shuttingDown() {
		return ErrShutdown
	}
	var ferr error
	if err := s.m.safely("smessage", func() { ferr = fn(s.sess) }); err != nil {
		return err
	}
	return ferr
}

// flush saves the socket's changes, if it has a session and any changes.
// A session that ended meanwhile is not an error here: the socket is
// being ended.
func (s *Socket) flush(ctx context.Context) error {
	select {
	case <-s.ready:
	default:
		return nil // still opening: nothing to save yet
	}
	if s.err != nil || s.ended.Load() || s.m.cfg.Mode != PerConnection {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.saveLocked(ctx); !errors.Is(err, ErrNotFound) {
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

// saveLocked writes the changes of s.sess; s.mu is held.
func (s *Socket) saveLocked(ctx context.Context) error {
	if s.sess == nil {
		return nil
	}
	c, err := s.sess.diff()
	if err != nil || c.empty() {
		return err
	}
	err = s.m.update(ctx, s.sess.Session, s.key, c)
	if errors.Is(err, ErrNotFound) {
		s.end(ErrEnded)
		return errGone
	}
	if err != nil {
		return err
	}
	return s.sess.rebase()
}

// flusher saves the changes of every live socket each interval, until
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
