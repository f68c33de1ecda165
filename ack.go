package iosessions

import (
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
)

// ErrorAck returns the ack that bindings send for an event that failed:
// {"error": text}. The text is "no session" when the socket has no valid
// session, the Reason for store failures, "internal error" for a panic,
// and the handler's own error text otherwise.
func ErrorAck(err error) map[string]string {
	var pe *PanicError
	if errors.As(err, &pe) {
		return map[string]string{"error": "internal error"}
	}
	if r := Reason(err); r != "session error" {
		return map[string]string{"error": r}
	}
	return map[string]string{"error": err.Error()}
}

// Call runs f, a handler that needs no session, turning a panic into a
// *PanicError that is reported and returned. Bindings use it.
func Call[T any](m *Manager, where string, f func() (T, error)) (out T, err error) {
	if perr := m.safely(where, func() { out, err = f() }); perr != nil {
		return out, perr
	}
	return out, err
}

// noSession is what Do returns for a socket without a usable session.
func noSession(reason error) error {
	if errors.Is(reason, ErrNoSession) {
		return reason
	}
	return fmt.Errorf("%w: %w", ErrNoSession, reason)
}

// Message adapts an smessage handler for a binding: the returned func runs
// h with the socket's session through Socket.Do, so the Manager's mode
// decides how it is loaded and saved. Bindings register it for the event
// and ack what it returns (ErrorAck for an error).
func Message[In, Out any](h func(s *Socket, sess *Session, in In) (Out, error)) func(s *Socket, in In) (Out, error) {
	return func(s *Socket, in In) (Out, error) {
		var out Out
		err := s.Do(s.Context(), func(sess *Session) error {
			var err error
			out, err = h(s, sess, in)
			return err
		})
		return out, err
	}
}

// Event adapts a handler that needs no session for a binding: a panic in
// h is recovered and reported as a *PanicError from where (see Call).
func Event[In, Out any](m *Manager, where string, h func(s *Socket, in In) (Out, error)) func(s *Socket, in In) (Out, error) {
	return func(s *Socket, in In) (Out, error) {
		return Call(m, where, func() (Out, error) { return h(s, in) })
	}
}

// RecoverEngine, deferred at the top of a binding's ServeHTTP, turns a
// panic of the engine into a reported *PanicError, so one request cannot
// take the process down. http.ErrAbortHandler is re-panicked, as net/http
// expects.
func (m *Manager) RecoverEngine() {
	if v := recover(); v != nil {
		if v == http.ErrAbortHandler {
			panic(v)
		}
		m.observe(Observation{Kind: KindPanic, Where: "engine"})
		m.ReportError(&PanicError{Where: "engine", Value: v, Stack: debug.Stack()})
	}
}
