package iosessions

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
)

// Mode says when a socket's session is loaded and saved.
type Mode int

const (
	// PerConnection loads the session once, when the socket connects, and
	// saves the socket's changes at disconnect, at Shutdown, every
	// Config.FlushInterval, and when a handler calls Session.Save.
	PerConnection Mode = iota
	// PerMessage reloads the session before every smessage handler and
	// saves it after, only if it changed, before the ack goes out. Events
	// of one session are serialized in this process.
	PerMessage
)

// String returns "perconn", "permessage", or "Mode(n)" for an unknown n.
func (m Mode) String() string {
	switch m {
	case PerConnection:
		return "perconn"
	case PerMessage:
		return "permessage"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Config configures a Manager. The zero value of every field means the
// documented default.
type Config struct {
	// Name is the session name passed to the store, which is also the
	// cookie name. Default "session".
	Name string

	// Cutter gets the session key from a handshake request. Default: the
	// cookie called Name or the shim's token (m.TokenCutter()); when a
	// handshake carries both, they must name the same session.
	Cutter Cutter

	// Mode is PerConnection (the default) or PerMessage.
	Mode Mode

	// StoreTimeout bounds every store call made for a socket. It reaches
	// the store as the deadline of the request's context, so stores that
	// honour r.Context() (Redis) stop in time; the socket gets
	// ErrStoreTimeout either way. Default 5 s.
	StoreTimeout time.Duration

	// FlushInterval, in PerConnection mode, saves the changes of live
	// sockets this often, so a crash loses at most that much. Default 0:
	// no periodic flush.
	FlushInterval time.Duration

	// CheckInterval is how often the Manager asks a store that implements
	// Checker (Redis) whether the sessions of its live sockets still
	// exist, so that a session that expired in the store ends its sockets
	// (sinvalid, ErrEnded) within about this long. Default 1 s.
	CheckInterval time.Duration

	// IdleTimeout, when not 0, expires a session that has had no
	// activity for this long, on every node: no load over HTTP through the
	// store (the app's handlers), no handshake and no session event
	// (Socket.Do) from any of its sockets; pings, polling requests and
	// events without a session do not count. It expires between the
	// timeout and 6/5 of it after its last activity (see Idler.Touch),
	// and its absolute lifetime still bounds it. Activity costs at most
	// one store write per session per tenth of the timeout. Half the timeout before an idle expiry the
	// session's sockets get "sexpiring" {"in_ms": time left}, once per
	// deadline; at the expiry, "sinvalid" and a close. It needs a store
	// that implements Idler (MemoryStore, iosredis) and must be 1 s or
	// more. Default 0: off.
	IdleTimeout time.Duration

	// SaveRetry is how long a save at disconnect that failed because the
	// store was unavailable is retried, with backoff, before the changes
	// are reported lost to ErrorHandler (an error matching ErrUnsaved).
	// Default 10 s.
	SaveRetry time.Duration

	// CloseInvalid closes a socket right after sinvalid at connect. By
	// default it stays connected, without a session. Sockets whose session
	// ends (logout, expiry) are always closed.
	CloseInvalid bool

	// CloseGrace is how long a socket whose session ended has to receive
	// sinvalid before it is closed. Default 200 ms.
	CloseGrace time.Duration

	// TokenKeys are the key pairs (hash key of 32 or more bytes, block key
	// of 16, 24 or 32 bytes, as securecookie's) of the shim's tokens: each
	// pair makes one AES-256-GCM key. The first pair seals; all open, so
	// keys rotate by prepending a pair.
	// Default: a random pair per Manager, which is right for one process;
	// several nodes must share keys.
	TokenKeys [][]byte

	// TokenTTL is how long a shim token stays valid. Default 2 minutes.
	TokenTTL time.Duration

	// ShimPath is where Middleware serves the client shim. Default
	// "/socket.io/socket.io-sessions.js".
	ShimPath string

	// AllowedOrigins are the origins ("https://app.example.com"), besides
	// the server's own, that a browser handshake may come from. A handshake
	// without an Origin header (not a browser) is not checked.
	AllowedOrigins []string

	// UnsafeAllowAnyOrigin turns the origin check off, which lets any web
	// site open sockets with your users' sessions (cross-site WebSocket
	// hijacking). Default false; leave it so.
	UnsafeAllowAnyOrigin bool

	// User names the user of a session from its values (for example its
	// "user" value), for the registry, presence and Push: the sockets of
	// one user share a room, named by a keyed hash of the user. It runs
	// once per socket, when the session is loaded at connect; "" (and the
	// default, nil) means an anonymous session, which works as before.
	User func(values map[any]any) string

	// Grace is how long a user or a session stays online after its last
	// socket anywhere went away, so a reload or a reconnect changes
	// nothing (see OnPresence). Default 5 s.
	Grace time.Duration

	// NodeTTL bounds how long a node that died without a goodbye (SIGKILL)
	// stays in the registry of a shared store: its sockets leave every
	// answer, and its users start their grace, within NodeTTL. Default 15 s.
	NodeTTL time.Duration

	// MaxPush is the largest push, in bytes of JSON, that Push sends.
	// Default 1 MB, the engines' default message limit.
	MaxPush int

	// Logger receives the library's log lines. It never sees session ids,
	// keys, cookies or tokens. Default slog.Default().
	Logger *slog.Logger

	// ErrorHandler receives errors that have no caller to return to: a
	// save at disconnect that failed, a recovered panic (*PanicError). It
	// is called on the goroutine that met the error and must not block.
	// Default: log at error level.
	ErrorHandler func(err error)
}

// Manager bridges a gorilla/sessions store and socket.io connections. An
// engine binding (a subpackage) feeds it connections; the application
// registers the sconnection and sinvalid handlers on it and mounts its
// Middleware. It is safe for concurrent use.
type Manager struct {
	store   sessions.Store
	cfg     Config
	cutter  Cutter
	tokens  *tokens
	ledger  TokenLedger // the shim tokens used
	origins map[string]bool
	ownMem  *MemoryStore // the default store, closed by Shutdown
	mem     *MemoryStore // the store, if it is a MemoryStore: in-process calls, no timeout
	wb      writebacks   // cookie write-backs (writeback.go)

	onConnect  func(*Socket, *Session)
	onInvalid  func(*Socket, error)
	onClose    func(*Socket, string)
	onPresence func(Presence)
	onChange   func(*Socket)
	obs        atomic.Pointer[Observer] // see Observe; nil: none

	reg      registry
	locks    lockTable
	lives    liveTable                   // PerConnection: the live sessions of this node
	rooms    atomic.Pointer[Broadcaster] // the binding's room broadcast (broadcaster)
	relay    Relay                       // the store, if it relays broadcasts between nodes
	idler    Idler                       // the store, with Config.IdleTimeout; else nil
	idles    sync.Map                    // session ref -> *idleState, with idler
	node     string                      // this Manager's name among the nodes of the cluster
	pres     presence
	presOnce sync.Once // starts the presence goroutines with the first socket
	pushes   sync.Map  // push id -> *pending, this node's pushes awaiting reports
	// inspection id -> *inspection, this node's Inspects awaiting answers
	inspections sync.Map

	mu       sync.Mutex // guards closing, active and idle
	closing  bool
	active   int           // goroutines of the Manager: saves, ends, the flusher
	idle     chan struct{} // closed when active drops to 0, if someone waits
	stop     chan struct{}
	stopOnce sync.Once
}

// New returns a Manager for store, with cfg's defaults filled in. A nil
// store means a new MemoryStore with random keys, closed by Shutdown.
// Invalid configuration is an error wrapping ErrConfig, never a panic.
func New(store sessions.Store, cfg Config) (*Manager, error) {
	m := &Manager{store: store, stop: make(chan struct{})}
	if cfg.Name == "" {
		cfg.Name = "session"
	}
	if cfg.Mode != PerConnection && cfg.Mode != PerMessage {
		return nil, fmt.Errorf("%w: unknown Mode %d", ErrConfig, int(cfg.Mode))
	}
	if cfg.StoreTimeout < 0 || cfg.FlushInterval < 0 || cfg.TokenTTL < 0 || cfg.CloseGrace < 0 ||
		cfg.CheckInterval < 0 || cfg.SaveRetry < 0 || cfg.Grace < 0 || cfg.NodeTTL < 0 || cfg.MaxPush < 0 || cfg.IdleTimeout < 0 {
		return nil, fmt.Errorf("%w: negative duration", ErrConfig)
	}
	if cfg.IdleTimeout > 0 {
		if cfg.IdleTimeout < minIdle {
			return nil, fmt.Errorf("%w: IdleTimeout %v is under %v", ErrConfig, cfg.IdleTimeout, minIdle)
		}
		if _, ok := store.(Idler); store != nil && !ok {
			return nil, fmt.Errorf("%w: IdleTimeout needs a store that implements Idler", ErrConfig)
		}
	}
	if cfg.StoreTimeout == 0 {
		cfg.StoreTimeout = 5 * time.Second
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = 2 * time.Minute
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = time.Second
	}
	if cfg.SaveRetry == 0 {
		cfg.SaveRetry = 10 * time.Second
	}
	if cfg.Grace == 0 {
		cfg.Grace = 5 * time.Second
	}
	if cfg.NodeTTL == 0 {
		cfg.NodeTTL = 15 * time.Second
	}
	if cfg.MaxPush == 0 {
		cfg.MaxPush = 1 << 20
	}
	if cfg.CloseGrace == 0 {
		cfg.CloseGrace = 200 * time.Millisecond
	}
	if cfg.ShimPath == "" {
		cfg.ShimPath = "/socket.io/socket.io-sessions.js"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m.origins = make(map[string]bool)
	for _, o := range cfg.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("%w: AllowedOrigins: %q is not scheme://host[:port]", ErrConfig, o)
		}
		m.origins[originKey(u)] = true
	}
	t, err := newTokens(cfg.TokenKeys, cfg.TokenTTL)
	if err != nil {
		return nil, err
	}
	m.tokens = t
	m.wb.init(t.keys)
	m.ledger = newMemLedger()
	if l, ok := store.(TokenLedger); ok {
		m.ledger = observedLedger{l, m}
	}
	m.cfg = cfg
	if store == nil { // only now: a failed New must not leave its janitor running
		m.ownMem = NewMemoryStore()
		m.store = m.ownMem
	}
	m.mem, _ = m.store.(*MemoryStore)
	m.cutter = cfg.Cutter
	if m.cutter == nil {
		m.cutter = m.sessionCutter()
	}
	m.reg.init()
	m.locks.init()
	m.lives.init()
	if n, ok := m.store.(Notifier); ok {
		n.NotifyEnd(m.sessionEnded)
	}
	if n, ok := m.store.(ChangeNotifier); ok {
		n.NotifyChange(m.sessionChanged)
	}
	m.node = newID()[:12]
	if r, ok := m.store.(Relay); ok {
		m.relay = observedRelay{r, m}
		r.OnRelay(m.fromRelay)
	}
	if f, ok := m.store.(PushFeed); ok {
		f.OnPush(m.fromFeed)
	}
	m.pres.pending = make(map[*Socket]struct{})
	m.pres.events = make(chan change, 1024)
	m.pres.dir = newMemDirectory(func(id string) (SocketInfo, bool) {
		if s := m.reg.socket(id); s != nil {
			return s.info(), true
		}
		return SocketInfo{}, false
	})
	if d, ok := m.store.(Directory); ok {
		m.pres.dir = observedDir{d, m}
	}
	if i, ok := m.store.(Idler); ok && cfg.IdleTimeout > 0 {
		i.SetIdleTimeout(cfg.IdleTimeout)
		m.idler = i
		m.goTracked(m.idleWatch) // Expiry tells gone sessions too
	} else if c, ok := m.store.(Checker); ok {
		m.goTracked(func() { m.checker(observedChecker{c, m}, cfg.CheckInterval) })
	}
	if cfg.Mode == PerConnection && cfg.FlushInterval > 0 {
		m.goTracked(func() { m.flusher(cfg.FlushInterval) })
	}
	return m, nil
}

// Store returns the Manager's store, for the application's HTTP handlers.
func (m *Manager) Store() sessions.Store { return m.store }

// Config returns the configuration in use, defaults filled in.
func (m *Manager) Config() Config { return m.cfg }

// OnConnection sets the sconnection handler: it runs once per socket whose
// handshake carried a valid session, with that session, right after the
// socket connects. In PerConnection mode its changes are saved with the
// socket's; in PerMessage mode right after it returns. It runs on a
// goroutine of the binding, before any smessage handler of the socket, and
// may block that socket (only). Set it before serving.
func (m *Manager) OnConnection(h func(s *Socket, sess *Session)) { m.onConnect = h }

// OnInvalid sets the sinvalid handler: it runs when a socket has no usable
// session at connect (err says why: test it with errors.Is), and when the
// session of a connected socket ends (ErrEnded). The client has already
// been sent the "sinvalid" event with {"reason": Reason(err)}. It runs on
// a goroutine of the library and must not block for long. Set it before
// serving.
func (m *Manager) OnInvalid(h func(s *Socket, err error)) { m.onInvalid = h }

// OnDisconnect sets the handler run when a socket disconnects, after its
// session (PerConnection) has been handed to the saver. Set it before
// serving.
func (m *Manager) OnDisconnect(h func(s *Socket, reason string)) { m.onClose = h }

// Middleware serves the client shim at Config.ShimPath, cookie
// write-backs at WritebackPath, and passes every other request to next
// untouched. It never wraps the ResponseWriter, so
// WebSocket upgrades work through it.
func (m *Manager) Middleware(next http.Handler) http.Handler {
	shim, wb := m.ShimHandler(), m.WritebackPath()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case m.cfg.ShimPath:
			shim.ServeHTTP(w, r)
			return
		case wb:
			m.serveWriteback(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Renew starts a new session for r, against session fixation: call it at
// login instead of store.Get. The session r carries, if any, is deleted
// from the store and its sockets are told (sinvalid, ErrEnded) and closed.
// The new session is empty, with a new id once saved; the caller sets its
// values and saves it with sess.Save(r, w) as usual.
func (m *Manager) Renew(ctx context.Context, w http.ResponseWriter, r *http.Request) (*sessions.Session, error) {
	if _, err := m.end(ctx, discard{}, r); err != nil {
		return nil, err
	}
	req := r.Clone(ctx)
	req.Header.Del("Cookie")
	sess, err := m.store.New(req, m.cfg.Name)
	if err != nil {
		return nil, err
	}
	sess.ID = "" // never adopt an id the request brought
	sess.IsNew = true
	return sess, nil
}

// Destroy ends the session r carries: it is deleted from the store, its
// cookie is expired on w, and its sockets are told (sinvalid, ErrEnded)
// and closed. Destroying no session is not an error.
func (m *Manager) Destroy(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	found, err := m.end(ctx, w, r)
	if err != nil {
		return err
	}
	if !found { // the store did not expire a cookie: do it
		http.SetCookie(w, sessions.NewCookie(m.cfg.Name, "", &sessions.Options{Path: "/", MaxAge: -1}))
	}
	return nil
}

// end deletes the session r carries, lets the store expire its cookie on
// w, and ends its sockets. It reports whether there was a session.
func (m *Manager) end(ctx context.Context, w http.ResponseWriter, r *http.Request) (bool, error) {
	key, err := CookieCutter(m.cfg.Name)(r)
	if err != nil {
		return false, nil // no session to end
	}
	sess, err := m.load(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrBadKey):
		return false, nil
	case err != nil:
		return false, err
	}
	sess.Options.MaxAge = -1
	t := m.callStart()
	err = m.store.Save(m.request(ctx, key), w, sess)
	m.callEnd(OpDelete, t, err)
	if err != nil {
		return false, fmt.Errorf("iosessions: delete session: %w", err)
	}
	m.sessionEnded(sessionRef(sess, key))
	return true, nil
}

// Shutdown saves the sessions of all live sockets (PerConnection), waits
// for pending saves, stops the periodic flush and, if the Manager made
// its own MemoryStore, closes it. It returns ctx's error if ctx ends first.
// From its start, new sockets get ErrShutdown, and so do session events
// (an error ack "shutting down"): every event acked before is saved. It
// is idempotent. A binding's Server.Shutdown calls it between refusing new
// handshakes and closing the engine.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closing = true
	m.mu.Unlock()
	m.stopOnce.Do(func() { close(m.stop) })

	var (
		errMu sync.Mutex
		errs  []error
	)
	for _, s := range m.reg.all() {
		m.goTracked(func() {
			if err := s.flush(ctx); err != nil {
				errMu.Lock()
				errs = append(errs, err)
				errMu.Unlock()
			}
		})
	}
	if err := m.waitIdle(ctx); err != nil {
		return err
	}
	if m.ownMem != nil {
		m.ownMem.Close()
	}
	errMu.Lock()
	defer errMu.Unlock()
	return errors.Join(errs...)
}

func (m *Manager) shuttingDown() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closing
}

// CheckOrigin returns ErrOrigin when r comes from a browser (it has an
// Origin header) on an origin that is neither r's own host nor allowed.
// Bindings call it on every engine request.
func (m *Manager) CheckOrigin(r *http.Request) error {
	o := r.Header.Get("Origin")
	if o == "" || m.cfg.UnsafeAllowAnyOrigin {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return ErrOrigin
	}
	if strings.EqualFold(u.Host, r.Host) || m.origins[originKey(u)] {
		return nil
	}
	return ErrOrigin
}

// originKey is how an origin is looked up in Manager.origins.
func originKey(u *url.URL) string { return strings.ToLower(u.Scheme + "://" + u.Host) }

// AllowedOrigin reports whether origin is in Config.AllowedOrigins, for
// bindings that set CORS headers.
func (m *Manager) AllowedOrigin(origin string) bool {
	return m.cfg.UnsafeAllowAnyOrigin || m.origins[strings.ToLower(origin)]
}

// load loads the session of key, within ctx and Config.StoreTimeout, and
// says why not.
func (m *Manager) load(ctx context.Context, key string) (*sessions.Session, error) {
	sess, _, err := m.loadBase(ctx, key, "")
	return sess, err
}

// loadBase is load that also returns, from a MemoryStore, the stored
// values the session was copied from: a base for its diff that need not
// be copied again (it is never written to). Other stores give a nil base.
// ref, if not "", is the session's reference, known from an earlier load
// of key: a MemoryStore loads by it, without decoding key again.
func (m *Manager) loadBase(ctx context.Context, key, ref string) (*sessions.Session, *frozen, error) {
	if m.mem != nil { // in this process: no call to time out
		t := m.callStart()
		var sess *sessions.Session
		var base *frozen
		var err error
		if ref != "" && storeID(ref) {
			sess, base, err = m.mem.loadID(m.cfg.Name, ref)
		} else {
			sess, base, err = m.mem.load(m.cfg.Name, key)
		}
		m.callEnd(OpLoad, t, err)
		return sess, base, err
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.StoreTimeout)
	defer cancel()
	var sess *sessions.Session
	var err error
	t := m.callStart()
	if l, ok := m.store.(Loader); ok {
		sess, err = l.Load(ctx, m.cfg.Name, key)
	} else {
		sess, err = m.store.New(m.request(ctx, key), m.cfg.Name)
		switch {
		case err != nil && isDecodeError(err):
			err = fmt.Errorf("%w: %w", ErrBadKey, err)
		case err == nil && sess.IsNew:
			err = ErrNotFound
		}
	}
	if err != nil {
		err = m.storeErr(ctx, err)
		m.callEnd(OpLoad, t, err)
		return nil, nil, err // never a session beside an error
	}
	m.callEnd(OpLoad, t, nil)
	return sess, nil, nil
}

// update applies c to the stored session, within ctx and
// Config.StoreTimeout, never bringing back one that ended.
func (m *Manager) update(ctx context.Context, sess *sessions.Session, key string, c changes) error {
	if _, ok := m.store.(*sessions.CookieStore); ok || sess.ID == "" {
		return ErrClientSideStore
	}
	if m.mem != nil { // in this process: no call to time out
		t := m.callStart()
		err := m.mem.apply(sess.ID, c)
		m.callEnd(OpUpdate, t, err)
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.StoreTimeout)
	defer cancel()
	t := m.callStart()
	if u, ok := m.store.(Updater); ok {
		err := m.storeErr(ctx, u.Update(ctx, m.cfg.Name, sess.ID, c.apply))
		m.callEnd(OpUpdate, t, err)
		return err
	}
	// Any other store: reload, apply, save. Not atomic against another
	// process; PerMessage serializes this process's writers.
	r := m.request(ctx, key)
	cur, err := m.store.New(r, m.cfg.Name)
	if err != nil || cur.IsNew || cur.ID != sess.ID {
		if err == nil || isDecodeError(err) {
			err = ErrNotFound
		} else {
			err = m.storeErr(ctx, err)
		}
		m.callEnd(OpLoad, t, err)
		return err
	}
	m.callEnd(OpLoad, t, nil)
	c.apply(cur.Values)
	t = m.callStart()
	err = m.storeErr(ctx, m.store.Save(r, discard{}, cur))
	m.callEnd(OpSave, t, err)
	return err
}

// storeErr classifies a store error for sockets.
func (m *Manager) storeErr(ctx context.Context, err error) error {
	switch {
	case err == nil, errors.Is(err, ErrBadKey), errors.Is(err, ErrNotFound), errors.Is(err, ErrClientSideStore):
		return err
	case errors.Is(err, context.DeadlineExceeded), ctx.Err() != nil:
		return fmt.Errorf("%w: %w", ErrStoreTimeout, err)
	}
	return fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
}

// request is what a store sees of a socket: the session cookie and a
// context with a deadline.
func (m *Manager) request(ctx context.Context, key string) *http.Request {
	r, _ := http.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
	r.Header.Set("Cookie", m.cfg.Name+"="+key)
	return r
}

// ReportError hands err to Config.ErrorHandler, or logs it. Bindings call
// it for errors that have no caller to return to.
func (m *Manager) ReportError(err error) {
	if h := m.cfg.ErrorHandler; h != nil {
		h(err)
		return
	}
	m.cfg.Logger.Error("iosessions", "err", err)
}

// isDecodeError reports whether err is securecookie's "does not decode".
func isDecodeError(err error) bool {
	var e securecookie.Error
	return errors.As(err, &e) && e.IsDecode()
}

// sessionRef is the registry key of a session: its id, or for a store that
// keeps no id (CookieStore) a hash of its key, marked so that it is never
// taken for an id (see storeID). A hash, not the key: a cookie that holds
// the values is long, and a ref is kept for every socket.
func sessionRef(sess *sessions.Session, key string) string {
	if sess.ID != "" {
		return sess.ID
	}
	h := sha256.Sum256([]byte(key))
	return keyRef + base64.RawURLEncoding.EncodeToString(h[:18])
}

// keyRef starts the ref of a session that has no id in its store.
const keyRef = "key:"

// storeID reports whether ref is the id of a session the store holds (and
// so can lock, check or notify), rather than a cookie store's key.
func storeID(ref string) bool { return !strings.HasPrefix(ref, keyRef) }

// discard is the ResponseWriter of saves made for sockets.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return io.Discard.Write(b) }
func (discard) WriteHeader(int)             {}
