package googollee

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/googollee/go-socket.io/engineio/transport"
)

// go-socket.io v1.7.0 hands each new engine session to Serve on a
// channel, from a goroutine of its own, after the handshake's response has
// gone out; engine Close closes that channel, so a handshake that
// finishes after Close panics the process with "send on closed channel",
// where no handler can recover it. Server.Close therefore refuses new
// requests, then waits until every handshake in flight has been handed
// over (or has failed) before it closes the engine.
//
// A handshake is handed over when Serve's goroutine writes the socket.io
// connect packet: the second writer opened on the new connection (the
// first is the engine's open packet). It has failed when the engine
// returns without a connection, or closes the connection.

// Close also closes the connections of handshakes that Serve has not
// connected yet (a polling client that never polled again keeps its
// connect packet, and the goroutine writing it, waiting until the ping
// timeout otherwise).

// handoverWait bounds how long Close waits for handshakes in flight.
const handoverWait = 2 * time.Second

type handshakeKey struct{}

// handshake tracks one handshake request until its hand-over.
type handshake struct {
	s        *Server
	accepted bool           // a transport connection was made (engine goroutine)
	conn     transport.Conn // that connection, until it is closed
	writers  atomic.Int32   // writers opened on it
	once     sync.Once
}

// done takes the handshake off the server's count, once.
func (h *handshake) done() {
	h.once.Do(func() {
		h.s.mu.Lock()
		h.s.handshakes--
		h.s.mu.Unlock()
	})
}

// testHookOpen, if set, runs once the engine has written the open packet
// of a new connection: in the middle of a handshake, before the hand-over.
var testHookOpen func()

// opening counts a writer being opened on the handshake's connection
// (a polling connection's writer waits for a poll: count it before).
// It returns whether it is the open packet's.
func (h *handshake) opening() (first bool) {
	switch h.writers.Add(1) {
	case 1:
		return true
	case 2:
		h.done()
	}
	return false
}

type hookedWriter struct{ io.WriteCloser }

func (w hookedWriter) Close() error {
	err := w.WriteCloser.Close()
	testHookOpen()
	return err
}

// closed takes the handshake's closed connection off the server's list.
func (h *handshake) closed() {
	h.done()
	h.s.mu.Lock()
	delete(h.s.conns, h)
	h.s.mu.Unlock()
}

// accept returns the handshake that r is, if r's connection is yet to be
// made, and keeps c as that connection.
func accept(r *http.Request, c transport.Conn) *handshake {
	h, _ := r.Context().Value(handshakeKey{}).(*handshake)
	if h == nil || h.accepted {
		return nil
	}
	h.accepted = true
	h.s.mu.Lock()
	h.conn = c
	h.s.conns[h] = struct{}{}
	h.s.mu.Unlock()
	return h
}

// serve hands r to the engine unless the server is closed, counting it
// while it is a handshake in flight.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, isHandshake bool) {
	s.mu.Lock()
	if s.closed || (s.draining && isHandshake) {
		s.mu.Unlock()
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	if !isHandshake {
		s.mu.Unlock()
		s.engine.ServeHTTP(w, r)
		return
	}
	s.handshakes++
	s.mu.Unlock()
	h := &handshake{s: s}
	defer func() {
		if !h.accepted {
			h.done() // refused before a connection was made
		}
	}()
	s.engine.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), handshakeKey{}, h)))
}

// closeHandshakes closes the connections made by handshakes that are
// still open. Call it after waitHandshakes.
func (s *Server) closeHandshakes() {
	s.mu.Lock()
	conns := make([]transport.Conn, 0, len(s.conns))
	for h := range s.conns {
		conns = append(conns, h.conn)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// waitHandshakes waits, at most handoverWait, until no handshake is in
// flight. New requests must already be refused.
func (s *Server) waitHandshakes() {
	for deadline := time.Now().Add(handoverWait); ; time.Sleep(5 * time.Millisecond) {
		s.mu.Lock()
		n := s.handshakes
		s.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.m.Config().Logger.Warn("googollee: closing with handshakes in flight", "count", n)
			return
		}
	}
}
