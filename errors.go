package iosessions

import (
	"errors"
	"fmt"
)

// Reasons a socket has no usable session. Each reaches the sinvalid handler
// (wrapped, so test them with errors.Is) and its text, without the package
// prefix, is the reason the client receives.
var (
	// ErrNoSession means the handshake carried no session key at all.
	ErrNoSession = errors.New("iosessions: no session")

	// ErrBadKey means the handshake carried a session key that does not
	// decode: tampered, truncated, or signed with a key that was dropped.
	ErrBadKey = errors.New("iosessions: invalid session key")

	// ErrBadToken is the one error for every unusable shim token: tampered,
	// expired, oversized or minted under other keys. It says no more on
	// purpose.
	ErrBadToken = errors.New("iosessions: invalid token")

	// ErrNotFound means the key decoded but the store has no such session:
	// it expired, was destroyed, or never existed.
	ErrNotFound = errors.New("iosessions: session not found")

	// ErrEnded means the session ended while the socket was connected
	// (logout, expiry, or a new login replacing it).
	ErrEnded = errors.New("iosessions: session ended")

	// ErrStoreUnavailable means the store failed to answer. The store's
	// own error is wrapped too, but never sent to the client.
	ErrStoreUnavailable = errors.New("iosessions: session store unavailable")

	// ErrStoreTimeout means the store did not answer within
	// Config.StoreTimeout. It also matches ErrStoreUnavailable.
	ErrStoreTimeout = fmt.Errorf("%w: timeout", ErrStoreUnavailable)

	// ErrOrigin means a browser handshake came from an origin that is
	// neither the server's own nor in Config.AllowedOrigins.
	ErrOrigin = errors.New("iosessions: origin not allowed")

	// ErrShutdown means the Manager is shutting down.
	ErrShutdown = errors.New("iosessions: shutting down")

	// ErrDisconnected means an operator disconnected the socket
	// (Manager.Disconnect); its session goes on.
	ErrDisconnected = errors.New("iosessions: disconnected by the server")
)

// errGone is what a save returns when the session ended meanwhile.
var errGone = fmt.Errorf("%w: %w", ErrEnded, ErrNotFound)

// Errors of configuration and of saving.
var (
	// ErrClientSideStore is returned when a session whose data lives in
	// the browser's cookie (sessions.CookieStore) must be saved and no
	// socket of it on this node has a client that applies write-backs (the
	// shim): a socket cannot set a cookie, so the write would be lost. In
	// PerConnection mode such changes are reported at the last disconnect
	// (ErrUnsaved wrapping it). Use the shim, or a server-side store
	// (MemoryStore, Redis, filesystem), to save from sockets.
	ErrClientSideStore = errors.New("iosessions: store keeps sessions in the cookie; a socket cannot save it")

	// ErrCookieTooLarge fails an event whose change would make a session
	// kept in the cookie larger than browsers keep (MaxCookieLen): the
	// change is undone, and nothing is written back.
	ErrCookieTooLarge = errors.New("iosessions: session cookie too large")

	// ErrUnsaved is what Config.ErrorHandler receives, wrapping the
	// store's error, when the changes of a socket that disconnected could
	// not be saved, retries included.
	ErrUnsaved = errors.New("iosessions: changes not saved")

	// ErrConfig wraps every invalid Config field reported by New.
	ErrConfig = errors.New("iosessions: invalid config")
)

// reasons are the sentinels whose text reaches clients, in the order
// Reason tries them.
var reasons = []error{ErrNoSession, ErrBadKey, ErrBadToken, ErrEnded,
	ErrNotFound, ErrStoreTimeout, ErrStoreUnavailable, ErrOrigin, ErrShutdown, ErrDisconnected}

// Reason returns the text sent to a client for err: the message of the
// first sentinel of this package that err matches, without the package
// prefix, so store details never reach the client.
func Reason(err error) string {
	for _, s := range reasons {
		if errors.Is(err, s) {
			return s.Error()[len("iosessions: "):]
		}
	}
	return "session error"
}

// PanicError is what a handler's recovered panic is reported as, through
// Config.ErrorHandler. The process keeps serving.
type PanicError struct {
	// Where names the hook that panicked: "sconnection", "smessage",
	// "sinvalid", "cutter", a binding's hook, or the event of a handler
	// without a session.
	Where string
	// Value is what was passed to panic.
	Value any
	// Stack is the goroutine's stack at the panic.
	Stack []byte
}

// Error returns "iosessions: panic in " Where and the panic's value.
func (e *PanicError) Error() string {
	return fmt.Sprintf("iosessions: panic in %s: %v", e.Where, e.Value)
}
