package iosessions

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// ErrorAck returns the ack that bindings send for an event that failed:
// {"error": text}. The text is "no session" when the socket has no valid
// session, the Reason for store failures, "internal error" for a panic,
// and the handler's own error text otherwise.
func ErrorAck(err error) map[string]string {
	var pe *PanicError
	switch {
	case errors.As(err, &pe):
		return map[string]string{"error": "internal error"}
	case Reason(err) != "session error":
		return map[string]string{"error": Reason(err)}
	}
	return map[string]string{"error": err.Error()}
}

// Call runs f, a handler that needs no session, turning a panic into a
// *PanicError that is reported and returned. Bindings use it.
func Call[T any](m *Manager, where string, f func() (T, error)) (out T, err error) {
	defer func() {
		if v := recover(); v != nil {
			pe := &PanicError{Where: where, Value: v, Stack: debug.Stack()}
			m.ReportError(pe)
			err = pe
		}
	}()
	return f()
}

// noSession is what Do returns for a socket without a usable session.
func noSession(reason error) error {
	if errors.Is(reason, ErrNoSession) {
		return reason
	}
	return fmt.Errorf("%w: %w", ErrNoSession, reason)
}
