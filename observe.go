package iosessions

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"
)

// Observing: the Manager reports what it does (handshakes, session
// events, store calls, pushes, recovered panics) to one Observer, so that
// a subpackage (iosessions/iosprom) can export metrics without the core
// depending on a metrics library. Gauges (live sockets, live sessions)
// are not reported: read them from Manager.Sockets and Manager.Stats
// when they are wanted, which is exact.

// Observer receives the Manager's observations (see Manager.Observe).
//
// It has a single method taking a small struct, rather than one method
// per measurement, so that a measurement or a field added later breaks no
// implementation: an Observer ignores the kinds it does not know, and
// reads only the fields it needs.
//
// Observe is called on the goroutine doing the work (a binding's event
// goroutine, a goroutine of the Manager), possibly from many goroutines at
// once, never while a lock of the Manager's tables (registry, lock table)
// is held. Like a session event's handler, it may run while that socket's
// or session's own event lock is held (a store call made for the event),
// so a slow Observe slows that session. It must be safe for concurrent
// use and must not block: increment counters, do no I/O.
// A panic in Observe is recovered and reported to Config.ErrorHandler as
// a *PanicError from "observer"; the socket goes on.
type Observer interface {
	Observe(o Observation)
}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(o Observation)

// Observe calls f(o).
func (f ObserverFunc) Observe(o Observation) { f(o) }

// ObservationKind says what an Observation measured.
type ObservationKind int

// The kinds of Observation. New kinds may be added; an Observer ignores
// the ones it does not know.
const (
	// KindHandshake: a socket's session was opened (Outcome "ok") or the
	// socket got sinvalid at connect (Outcome is the reason, see
	// Observation.Outcome). Reported once per socket, before its
	// sconnection handler runs or its sinvalid is sent. Fields: Binding,
	// Outcome.
	KindHandshake ObservationKind = iota + 1
	// KindClose: a socket disconnected (Socket.Closed). Fields: Binding.
	KindClose
	// KindEvent: a session event was handled (Socket.Do), before its ack
	// is sent. Fields: Binding, Mode, Outcome, Duration.
	KindEvent
	// KindStoreCall: the Manager called its store. Fields: Op, Outcome
	// ("ok", "not_found", "timeout" or "error"), Duration.
	KindStoreCall
	// KindSaveLost: the changes of a disconnected socket could not be
	// saved, retries included (Config.ErrorHandler got an ErrUnsaved).
	// Fields: Binding.
	KindSaveLost
	// KindPush: Manager.Push returned without error. Fields: Sockets,
	// Acked.
	KindPush
	// KindPanic: a panic of a handler, a hook or the engine was recovered
	// (Config.ErrorHandler got a *PanicError). Fields: Where.
	KindPanic
)

// String returns the kind's name: "handshake", "close", "event",
// "store_call", "save_lost", "push", "panic", or "ObservationKind(n)".
func (k ObservationKind) String() string {
	switch k {
	case KindHandshake:
		return "handshake"
	case KindClose:
		return "close"
	case KindEvent:
		return "event"
	case KindStoreCall:
		return "store_call"
	case KindSaveLost:
		return "save_lost"
	case KindPush:
		return "push"
	case KindPanic:
		return "panic"
	}
	return fmt.Sprintf("ObservationKind(%d)", int(k))
}

// Observation is one measurement. Which fields are set depends on Kind;
// the others are zero. No field ever holds a session id, key, cookie,
// token, user or socket id, or an error's text: every string is from a
// small fixed set, so an Observer may use any of them as a metric label.
type Observation struct {
	Kind ObservationKind

	// Binding names the engine binding of the socket (the Conn's Binder:
	// "googollee", "zishang520"), "" when its Conn does not say.
	Binding string

	// Mode is the Manager's mode, for KindEvent.
	Mode Mode

	// Outcome is, for KindHandshake and KindEvent, "ok" or why not:
	// "no_session", "bad_key", "bad_token", "not_found", "ended",
	// "store_unavailable", "store_timeout", "origin", "shutdown",
	// "panic" (a handler panicked), "canceled" (the socket went away
	// first), or "error" (any other error: a handler's own, a store's
	// refusal to save). A handshake's outcome is the sinvalid reason the
	// client received; an event of a socket without a session is
	// "no_session", of one whose session ended "ended".
	//
	// For KindStoreCall it is "ok", "not_found" (the store answered that
	// there is no such session, or the key does not decode: not a
	// failure), "timeout" (Config.StoreTimeout passed) or "error".
	Outcome string

	// Op is the store operation of KindStoreCall (see the Op constants).
	Op string

	// Duration is how long the event's handling (KindEvent, lock wait
	// included) or the store call (KindStoreCall) took.
	Duration time.Duration

	// Sockets and Acked are, for KindPush, how many sockets the push
	// reached, on every node, and how many acked it (PushResult).
	Sockets, Acked int

	// Where is, for KindPanic, the PanicError's Where: which hook
	// panicked ("sconnection", "smessage", "engine", …, or the event name
	// of a handler without a session, as the application registered it).
	Where string
}

// The store operations of KindStoreCall observations. The Manager makes
// directory, relay and token-ledger calls to its store only when the
// store implements Directory, Relay and TokenLedger (iosredis); their own
// in-memory versions are not observed.
const (
	OpLoad       = "load"        // a socket's session loaded (Loader.Load or Store.New)
	OpUpdate     = "update"      // a socket's changes saved through Updater.Update
	OpSave       = "save"        // a socket's changes saved through Store.Save (no Updater)
	OpDelete     = "delete"      // a session deleted (Manager.Destroy, Manager.Renew)
	OpLock       = "lock"        // Locker.Lock (PerMessage), the wait included
	OpUnlock     = "unlock"      // the unlock Locker.Lock returned
	OpCheck      = "check"       // Checker.Exist, Idler.Expiry
	OpTouch      = "touch"       // Idler.Touch (Config.IdleTimeout)
	OpToken      = "token"       // TokenLedger.Use (a shim token's single use)
	OpRelay      = "relay"       // Relay.Relay (broadcasts, pushes, push reports)
	OpDirJoin    = "dir_join"    // Directory.Join
	OpDirLeave   = "dir_leave"   // Directory.Leave
	OpDirBeat    = "dir_beat"    // Directory.Beat
	OpDirPart    = "dir_part"    // Directory.Part
	OpDirNodes   = "dir_nodes"   // Directory.Nodes
	OpDirSockets = "dir_sockets" // Directory.Sockets
	OpDirPresent = "dir_present" // Directory.Present
)

// Outcomes that several kinds share.
const (
	outcomeOK      = "ok"
	outcomeError   = "error"
	outcomeMiss    = "not_found"
	outcomeTimeout = "timeout"
)

// Binder is a Conn that names its engine binding, for observations
// (Observation.Binding). Both bindings of this module implement it.
type Binder interface {
	Binding() string
}

func bindingOf(c Conn) string {
	if b, ok := c.(Binder); ok {
		return b.Binding()
	}
	return ""
}

// Observe makes o receive the Manager's observations (see Observer); nil
// stops them. A Manager has one Observer: a later call replaces it. Set
// it before serving, like OnConnection; without one, observing costs a
// nil check.
func (m *Manager) Observe(o Observer) {
	if o == nil {
		m.obs.Store(nil)
		return
	}
	m.obs.Store(&o)
}

// observing reports whether an Observer is set.
func (m *Manager) observing() bool { return m.obs.Load() != nil }

// observe hands ob to the Observer, if any, with a net under it. A panic
// of the Observer is reported, not observed (that would call it again).
func (m *Manager) observe(ob Observation) {
	p := m.obs.Load()
	if p == nil {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			m.ReportError(&PanicError{Where: "observer", Value: v, Stack: debug.Stack()})
		}
	}()
	(*p).Observe(ob)
}

// callStart returns the start of a store call, or the zero time when no
// Observer is set (then callEnd does nothing).
func (m *Manager) callStart() time.Time {
	if !m.observing() {
		return time.Time{}
	}
	return time.Now()
}

// callEnd observes a store call op that began at start and returned err,
// classified as the Manager classifies it for sockets (storeErr).
func (m *Manager) callEnd(op string, start time.Time, err error) {
	if start.IsZero() {
		return
	}
	m.callEndAfter(op, start, time.Since(start), err)
}

// callEndAfter is callEnd for a call that took d, observed later.
func (m *Manager) callEndAfter(op string, start time.Time, d time.Duration, err error) {
	if start.IsZero() {
		return
	}
	m.observe(Observation{Kind: KindStoreCall, Op: op, Outcome: storeOutcome(err), Duration: d})
}

// storeOutcome is the Outcome of a store call that returned err.
func storeOutcome(err error) string {
	switch {
	case err == nil:
		return outcomeOK
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrBadKey):
		return outcomeMiss
	case errors.Is(err, ErrStoreTimeout), errors.Is(err, context.DeadlineExceeded):
		return outcomeTimeout
	}
	return outcomeError
}

// outcomes are the Outcome of each reason, in the order outcomeOf tries
// them (ErrEnded and ErrNoSession before the reasons they wrap).
var outcomes = []struct {
	err error
	out string
}{
	{ErrEnded, "ended"},
	{ErrNoSession, "no_session"},
	{ErrBadKey, "bad_key"},
	{ErrBadToken, "bad_token"},
	{ErrNotFound, "not_found"},
	{ErrStoreTimeout, "store_timeout"},
	{ErrStoreUnavailable, "store_unavailable"},
	{ErrOrigin, "origin"},
	{ErrShutdown, "shutdown"},
	{context.Canceled, "canceled"},
	{context.DeadlineExceeded, "canceled"},
}

// outcomeOf is the Outcome of a handshake or an event that ended with err.
func outcomeOf(err error) string {
	if err == nil {
		return outcomeOK
	}
	var pe *PanicError
	if errors.As(err, &pe) {
		return "panic"
	}
	for _, o := range outcomes {
		if errors.Is(err, o.err) {
			return o.out
		}
	}
	return outcomeError
}
