package googollee

// SetTestHookOpen sets a func that runs in the middle of each handshake,
// on the engine's goroutine, before the session is handed over to Serve.
func SetTestHookOpen(f func()) { testHookOpen = f }

// HandshakeEntries returns the server's handshakes in flight and the
// connections it keeps for Close (0 once every connection has ended).
func HandshakeEntries(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handshakes + len(s.conns)
}
