package googollee

import (
	"context"
	"errors"
)

// Shutdown stops the server in order: from now on a new handshake gets
// 503 (the connections already open are still served, so acks of events
// in flight go out); the Manager saves the session of every live socket
// and refuses new session events (Manager.Shutdown, within ctx); then the
// sockets are closed, and the engine. The clients see their connection
// drop, not a logout, and reconnect, to another node if there is one.
// It returns the Manager's error, if any, joined with Close's.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	err := s.m.Shutdown(ctx)
	return errors.Join(err, s.Close())
}
