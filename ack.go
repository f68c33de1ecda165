package iosessions

import (
	"errors"
	"fmt"
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
