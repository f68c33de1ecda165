package iosessions

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/sessions"

	"github.com/iosessions/iosessions/internal/once"
)

// Conn is what an engine binding adapts a socket.io connection to, so that
// the core needs no engine. Its methods must be safe for concurrent use
// and must not block for long.
type Conn interface {
	// ID is the connection's id, unique in this process.
	ID() string
	// Request is the handshake request. If the engine does not keep the
	// request's Host, Host is empty and the binding must have checked the
	// origin itself (Manager.CheckOrigin) before the engine saw it.
	Request() *http.Request
	// Emit sends event with args to the client.
	Emit(event string, args ...any) error
	// EmitAck sends event with args and an ack request: ack runs at most
	// once, with the client's ack arguments as JSON, if the client acks
	// within timeout (0: as long as the connection lives). A
	// json.RawMessage argument is sent as the JSON it holds.
	EmitAck(event string, args []any, timeout time.Duration, ack func(args []json.RawMessage)) error
	// Close disconnects the client. It may return before the connection
	// is closed; a binding that can (SendsBeforeClose in its conformance
	// suite) writes what was emitted before it first.
	Close() error
	// Join adds the connection to room, and Leave takes it out, in the
	// engine's own rooms (see Broadcaster).
	Join(room string) error
	Leave(room string) error
}

// Socket is one socket.io connection as the library sees it: its
// connection, and the session it carried at connect, if any.
type Socket struct {
	m      *Manager
	conn   Conn
	ready  once.Event // Open is done
	loaded once.Event // the session is loaded, before handlers run

	// mu guards ctx, cancel and gone, and serializes the socket's
	// registry indexing (registry.go).
	mu     sync.Mutex
	ctx    context.Context    // made by Context, on first use; guarded by mu
	cancel context.CancelFunc // guarded by mu

	// Set by Open before ready is closed, read-only afterwards.
	err  error                 // why the socket has no session; nil if it has one
	id   atomic.Pointer[ident] // the session's key, ref and room; nil before the cutter ran
	user string                // the session's user (Config.User), "" when anonymous
	at   int64                 // when the session was opened, Unix nanoseconds

	dirMu sync.Mutex // serializes the socket's directory calls (dirSync)

	lv *live // PerConnection: the session's live copy on this node

	flags sockFlags // flagDirIn, flagEnded, flagKicked, flagClosed

	gone     bool // the socket disconnected: ctx is cancelled; guarded by mu
	dirTried bool // a Join was sent since the last Leave; guarded by dirMu
}

// sockFlags are a socket's atomic flags, in one word: four atomic.Bools
// took 16 bytes, and put a Socket, kept for every connection, in the
// next size class.
type sockFlags struct{ v atomic.Uint32 }

const (
	flagDirIn  uint32 = 1 << iota // the directory has the socket, as far as we know
	flagEnded                     // the session ended: no more saves
	flagKicked                    // an operator disconnected it (Manager.Disconnect)
	flagClosed                    // the socket closed
)

// is reports whether flag is set: any of them, for flags or-ed together.
func (f *sockFlags) is(flag uint32) bool { return f.v.Load()&flag != 0 }

// set sets or clears flag.
func (f *sockFlags) set(flag uint32, on bool) {
	if on {
		f.v.Or(flag)
	} else {
		f.v.And(^flag)
	}
}

// mark sets flag and reports whether it was clear: whether this call set it.
func (f *sockFlags) mark(flag uint32) bool { return f.v.Or(flag)&flag == 0 }

// ident is who a socket's session is: it changes only when the session's
// id is rotated (Manager.Rotate), so it is read whole, through sid.
type ident struct {
	key string // the session key that loads it (the cookie's value)
	ref string // its registry key: the store's id (sessionRef)
	sub string // its directory subject, sessionSubject + its room; "" without a session
}

// room returns the engine room of the session, "" without a session: the
// tail of its subject, so a socket holds the name once.
func (id ident) room() string {
	if id.sub == "" {
		return ""
	}
	return id.sub[len(sessionSubject):]
}

// sid returns the socket's session identity (zero before the cutter ran
// and without a session).
func (s *Socket) sid() ident {
	if p := s.id.Load(); p != nil {
		return *p
	}
	return ident{}
}

// ID returns the connection's id.
func (s *Socket) ID() string { return s.conn.ID() }

// Conn returns the binding's connection; bindings document how to reach
// the engine's own connection from it.
func (s *Socket) Conn() Conn { return s.conn }

// Context returns a context cancelled when the socket disconnects. It is
// not the handshake request's context, which ends with the handshake.
func (s *Socket) Context() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil { // made on first use: an idle socket holds none
		s.ctx, s.cancel = context.WithCancel(context.Background())
		if s.gone {
			s.cancel()
		}
	}
	return s.ctx
}

// cancelContext cancels the socket's context, now or when it is made.
func (s *Socket) cancelContext() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gone = true
	if s.cancel != nil {
		s.cancel()
	}
}

// storeContext is the context of the socket's calls to its store at
// connect: its Context, which ends if the client leaves meanwhile, but
// for a MemoryStore, which never waits (so an idle socket makes none).
func (s *Socket) storeContext() context.Context {
	if s.m.mem != nil {
		return context.Background()
	}
	return s.Context()
}

// userRoom is the engine room of the socket's user, "" when anonymous
// (made again at each call: a socket needs it at connect and close).
func (s *Socket) userRoom() string {
	if s.user == "" {
		return ""
	}
	return s.m.userRoom(s.user)
}

// binding names the Conn's binding (Binder), for observations.
func (s *Socket) binding() string { return bindingOf(s.conn) }

// Emit sends event with args to the client.
func (s *Socket) Emit(event string, args ...any) error { return s.conn.Emit(event, args...) }

// Close disconnects the client. The zishang520 binding first writes what
// was emitted before it, so a handler may emit a last event and close;
// go-socket.io's closes at once and may drop it. Close may return before
// the connection is closed.
func (s *Socket) Close() error { return s.conn.Close() }

// Room returns the name of the engine room that the socket joined for its
// session, or "" when it has no session. Every socket of one session is in
// it, so a room broadcast of the engine reaches them all. Room names are a
// hash of the session id keyed with the first TokenKeys hash key: nodes
// that share TokenKeys agree on them, and they reveal nothing of the id.
func (s *Socket) Room() string {
	<-s.loaded.Done()
	return s.sid().room()
}

// Err returns why the socket has no session (an error that matches one of
// the reasons, such as ErrNoSession), or nil when it has one. It waits
// for the handshake's session to be loaded.
func (s *Socket) Err() error {
	<-s.loaded.Done()
	if s.flags.is(flagEnded) {
		return ErrEnded
	}
	return s.err
}

// Accept registers a new connection. Bindings call it when the engine
// reports a connection, then call Open, from a goroutine where the
// connection may already emit. Accept does no I/O.
func (m *Manager) Accept(c Conn) *Socket {
	s := &Socket{m: m, conn: c}
	m.presOnce.Do(m.startPresence)
	m.reg.add(s)
	return s
}

// Open finds and loads the socket's session, then tells the application:
// the sconnection handler with the session, or the client's "sinvalid"
// event and the sinvalid handler with the reason. Bindings call it once,
// after Accept, on a goroutine where emitting does not block the engine.
func (s *Socket) Open() {
	m := s.m
	sess, base, err := s.open()
	if err != nil {
		s.err = err
		s.loaded.Fire()
		s.ready.Fire()
		s.handshake(err)
		s.tell(err)
		if m.cfg.CloseInvalid {
			s.closeLater()
		}
		return
	}
	t, err := track(sess, base)
	if err != nil {
		s.err = fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
		s.loaded.Fire()
		s.ready.Fire()
		s.handshake(s.err)
		s.tell(s.err)
		return
	}
	key := s.sid().key
	ref := sessionRef(sess, key)
	s.id.Store(&ident{key: key, ref: ref, sub: m.subjectOf(ref)})
	s.at = time.Now().UnixNano()
	if h := m.cfg.User; h != nil {
		m.safely("Config.User", func() { s.user = h(sess.Values) })
	}
	// From here on, in PerConnection mode, the session may be the live copy
	// that other sockets of it share: read it only under lv.mu.
	existed := false
	if m.cfg.Mode == PerConnection {
		s.lv, existed = m.lives.attach(ref, key, t)
	}
	userRoom := s.userRoom() // one string for the registry and the engine
	m.reg.bind(s, userRoom)
	m.activity(s.sid().ref) // a handshake with the session
	for _, room := range []string{s.sid().room(), userRoom} {
		if room == "" {
			continue
		}
		if err := s.conn.Join(room); err != nil {
			m.ReportError(fmt.Errorf("iosessions: join session room: %w", err))
		}
	}
	s.loaded.Fire() // Err may be called from the sconnection handler
	// In the registry before sconnection: a push or a lookup from the
	// handler, on any node, finds the socket.
	m.dirSync(s)
	if m.cfg.Mode == PerMessage {
		held, unlock, err := m.lockSession(s.storeContext(), s.sid().ref)
		if err != nil { // the sconnection handler cannot save: do not run it
			s.err = err
			s.ready.Fire()
			s.handshake(err)
			s.tell(err)
			return
		}
		s.handshake(nil)
		t.save = func(context.Context) error { return s.saveNow(held, t) }
		if s.connected(t) == nil { // nothing is saved after a panic
			if err := s.commit(held, t); err != nil {
				m.ReportError(err)
			}
		}
		unlock()
	} else {
		s.handshake(nil)
		lv := s.lv
		lv.mu.Lock()
		if err := lv.sess.wake(); err != nil {
			m.ReportError(err)
		}
		if existed {
			// The live may hold changes not saved yet: keep them on top of
			// what the store holds now.
			if err := lv.sess.refresh(t.Values); err != nil {
				m.ReportError(err)
			}
		} else {
			t.save = func(ctx context.Context) error { return m.saveLive(ctx, lv, nil) }
		}
		s.connected(lv.sess)
		lv.sess.sleep() // unless the handler changed it: idle until an event
		lv.mu.Unlock()
	}
	s.ready.Fire()
}

// open loads the socket's session; base is as Manager.loadBase says.
func (s *Socket) open() (sess *sessions.Session, base *frozen, err error) {
	m := s.m
	if m.shuttingDown() {
		return nil, nil, ErrShutdown
	}
	r := s.conn.Request()
	if r.Host != "" {
		if err := m.CheckOrigin(r); err != nil {
			return nil, nil, err
		}
	}
	key, err := s.cut(r)
	if err != nil {
		return nil, nil, err
	}
	s.id.Store(&ident{key: key})
	return m.loadBase(s.storeContext(), key, "")
}

// cut runs the cutter, which parses attacker input, with a net under it.
func (s *Socket) cut(r *http.Request) (key string, err error) {
	if s.m.safely("cutter", func() { key, err = s.m.cutter(r) }) != nil {
		return "", ErrBadKey
	}
	return key, err
}

func (s *Socket) connected(t *Session) error {
	if h := s.m.onConnect; h != nil {
		return s.m.safely("sconnection", func() { h(s, t) })
	}
	return nil
}

// Do runs fn with the socket's session, as the mode says: in PerConnection
// mode with the session loaded at connect; in PerMessage mode with the
// session freshly loaded, saved after fn if it changed, while no other
// event of the session runs in this process. Bindings call it for every
// session event and send the ack after it returns. It returns the socket's
// reason when it has no session, ErrShutdown once Shutdown began, the
// store's error, fn's error, or a *PanicError when fn panicked; fn runs
// only with a valid session.
func (s *Socket) Do(ctx context.Context, fn func(sess *Session) error) error {
	if !s.m.observing() {
		return s.do(ctx, fn)
	}
	start := time.Now()
	err := s.do(ctx, fn)
	s.m.observe(Observation{Kind: KindEvent, Binding: s.binding(), Mode: s.m.cfg.Mode,
		Outcome: outcomeOf(err), Duration: time.Since(start)})
	return err
}

func (s *Socket) do(ctx context.Context, fn func(sess *Session) error) error {
	select {
	case <-s.ready.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.err != nil {
		return noSession(s.err)
	}
	if s.flags.is(flagEnded) {
		return noSession(ErrEnded)
	}
	s.m.activity(s.sid().ref) // a session event
	if s.m.cfg.Mode == PerMessage {
		return s.doPerMessage(ctx, fn)
	}
	return s.doPerConn(fn)
}

// Closed tells the Manager that the connection ended. Bindings call it
// once, from the engine's disconnect hook. In PerConnection mode the
// socket's changes are saved, on a goroutine of the Manager.
func (s *Socket) Closed(reason string) {
	if !s.flags.mark(flagClosed) {
		return
	}
	m := s.m
	m.observe(Observation{Kind: KindClose, Binding: s.binding()})
	m.goTracked(func() {
		<-s.ready.Done()
		m.reg.remove(s)
		m.forgetLatest(s.sid().ref)
		if s.sid().room() != "" {
			_ = s.conn.Leave(s.sid().room())
			m.dirSync(s)
		}
		if room := s.userRoom(); room != "" {
			_ = s.conn.Leave(room)
		}
		if s.lv != nil && m.lives.detach(s.lv) {
			// The session's last socket here: save what its sockets changed.
			if err := s.flushRetry(); err != nil {
				m.observe(Observation{Kind: KindSaveLost, Binding: s.binding()})
				m.ReportError(fmt.Errorf("%w: save at disconnect: %w", ErrUnsaved, err))
			}
			m.lives.forget(s.lv)
		}
		s.cancelContext()
		if h := m.onClose; h != nil {
			m.safely("disconnect", func() { h(s, reason) })
		}
	})
}

// handshake observes the outcome of the socket's handshake: err is why
// it has no session, nil when it has one.
func (s *Socket) handshake(err error) {
	if s.m.observing() {
		s.m.observe(Observation{Kind: KindHandshake, Binding: s.binding(), Outcome: outcomeOf(err)})
	}
}

// tell sends the client "sinvalid" and runs the sinvalid handler.
func (s *Socket) tell(err error) {
	_ = s.conn.Emit("sinvalid", map[string]string{"reason": Reason(err)})
	if h := s.m.onInvalid; h != nil {
		s.m.safely("sinvalid", func() { h(s, err) })
	}
}

// end tells the socket its session ended and closes it.
func (s *Socket) end(err error) {
	if !s.flags.mark(flagEnded) {
		return
	}
	s.m.goTracked(func() {
		// After the handler that may be running: handlers of one socket
		// never overlap.
		unlock := s.lockHandlers()
		s.tell(err)
		unlock()
		s.closeLater()
	})
}

// lockHandlers takes the lock that the socket's handlers run under.
func (s *Socket) lockHandlers() (unlock func()) {
	if s.lv == nil {
		return s.m.locks.lock(s.sid().ref)
	}
	s.lv.mu.Lock()
	return s.lv.mu.Unlock
}

// closeLater closes the connection after Config.CloseGrace, so that what
// was emitted reaches the client first.
func (s *Socket) closeLater() {
	s.m.goTracked(func() {
		select {
		case <-s.Context().Done():
			return
		case <-s.m.stop:
		case <-time.After(s.m.cfg.CloseGrace):
		}
		_ = s.conn.Close()
	})
}

// safely runs a handler, turning a panic into a reported *PanicError.
func (m *Manager) safely(where string, f func()) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Where: where, Value: v, Stack: debug.Stack()}
			m.observe(Observation{Kind: KindPanic, Where: where})
			m.ReportError(err)
		}
	}()
	f()
	return nil
}

// goTracked runs f on a goroutine that Shutdown waits for.
func (m *Manager) goTracked(f func()) {
	m.mu.Lock()
	m.active++
	m.mu.Unlock()
	go func() {
		defer func() {
			m.mu.Lock()
			if m.active--; m.active == 0 && m.idle != nil {
				close(m.idle)
				m.idle = nil
			}
			m.mu.Unlock()
		}()
		f()
	}()
}

// waitIdle waits until no goroutine of the Manager runs, or ctx ends.
func (m *Manager) waitIdle(ctx context.Context) error {
	m.mu.Lock()
	if m.active == 0 {
		m.mu.Unlock()
		return nil
	}
	if m.idle == nil {
		m.idle = make(chan struct{})
	}
	idle := m.idle
	m.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
