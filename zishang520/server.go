// Package zishang520 binds iosessions to github.com/zishang520/socket.io
// v3 (servers/socket/v3), the Go server of socket.io 3.x/4.x clients, which
// is what current browsers and apps ship.
//
//	m, _ := iosessions.New(store, iosessions.Config{})
//	srv, _ := zishang520.NewServer(m, nil)
//	m.OnConnection(func(s *iosessions.Socket, sess *iosessions.Session) {
//		s.Emit("welcome", sess.Values["user"])
//	})
//	zishang520.OnMessage(srv, "incr", func(s *iosessions.Socket, sess *iosessions.Session, _ struct{}) (int, error) {
//		n, _ := sess.Values["count"].(int)
//		sess.Values["count"] = n + 1
//		return n + 1, nil
//	})
//	defer srv.Close()
//	http.Handle("/socket.io/", m.Middleware(srv))
//
// The binding owns the root namespace's "connection" event and each
// socket's "disconnect" event; register events with OnMessage (with a
// session) and OnEvent (without), before serving, and reach the engine for
// anything else with Engine.
//
// The shim's token travels in the handshake auth payload
// (io(url, {auth: {iosessions_token: …}}), which the shim's
// io.connectWithSession does); the session cookie, as always, on the
// handshake request.
//
// The binding checks the Origin of every engine request before the engine
// sees it (403 for a foreign one), sends CORS headers only to
// Config.AllowedOrigins, caps a message at Options.MaxMessageBytes, and
// recovers panics in every hook it installs, reporting them to
// Config.ErrorHandler of the Manager.
//
// Goroutines: sconnection and sinvalid handlers run on a goroutine of the
// binding per connection; smessage and event handlers run on the engine's
// task queue of the socket, one at a time and in order, so a slow handler
// delays only its own socket.
package zishang520

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/iosessions/iosessions"
)

// DefaultMaxMessageBytes is the default of Options.MaxMessageBytes: 1 MB.
const DefaultMaxMessageBytes = 1 << 20

// DefaultConnectTimeout is how long an engine connection may go without
// a namespace connect before the binding closes it, unless
// Options.Server sets ConnectTimeout: 3 s (the engine's default is 45 s).
const DefaultConnectTimeout = 3 * time.Second

// Options configure the binding. A nil *Options means the defaults.
type Options struct {
	// Server are the engine's options (ping interval, transports…). Its
	// ConnectTimeout defaults to DefaultConnectTimeout. The
	// binding overrides MaxHttpBufferSize with MaxMessageBytes, turns
	// the engine's CORS and client serving off (it sends CORS headers to
	// the Manager's AllowedOrigins itself).
	Server *socket.ServerOptions

	// MaxMessageBytes caps one websocket message and one polling POST
	// body. A client that sends more is disconnected; others are not
	// affected. Default DefaultMaxMessageBytes.
	MaxMessageBytes int64
}

// Server is a zishang520/socket.io server whose root namespace carries
// sessions. Serve it through Manager.Middleware at "/socket.io/".
type Server struct {
	m       *iosessions.Manager
	io      *socket.Server
	handler http.Handler
	max     int64 // Options.MaxMessageBytes

	mu       sync.RWMutex
	closed   bool
	draining bool                                   // Shutdown began: new handshakes get 503
	events   map[string]func(*socket.Socket, []any) // by event name

	admin *adminUI // see AdminUI; guarded by mu

	gates sync.Map      // engine id -> *connGate, see gate.go
	limit time.Duration // how long a gate holds at most: the engine's ConnectTimeout
}

// NewServer returns a zishang520/socket.io server bound to m. Bad options
// are an error, never a panic.
func NewServer(m *iosessions.Manager, opts *Options) (*Server, error) {
	if m == nil {
		return nil, errors.New("zishang520: nil Manager")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxMessageBytes < 0 {
		return nil, errors.New("zishang520: negative MaxMessageBytes")
	}
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	so := socket.DefaultServerOptions()
	if o.Server != nil {
		so.Assign(o.Server) // a copy: the caller's options stay theirs
	}
	if o.Server == nil || o.Server.GetRawConnectTimeout() == nil {
		// An engine connection that never joins a namespace holds its
		// goroutines and buffers for nothing: 3 s, not 45.
		so.SetConnectTimeout(DefaultConnectTimeout)
	}
	so.SetMaxHttpBufferSize(o.MaxMessageBytes)
	so.SetServeClient(false)
	so.SetCors(nil) // CORS is ServeHTTP's: only for allowed origins
	s := &Server{m: m, max: o.MaxMessageBytes, events: make(map[string]func(*socket.Socket, []any))}
	s.io = socket.NewServer(nil, so)
	s.handler = s.io.ServeHandler(so)
	if err := s.io.On("connection", s.onConnection); err != nil {
		return nil, err
	}
	s.limit = so.ConnectTimeout()
	if err := s.gateConnections(); err != nil {
		return nil, err
	}
	if err := s.closeTransports(); err != nil {
		return nil, err
	}
	m.SetBroadcaster(broadcaster{s.io})
	return s, nil
}

// Engine returns the zishang520/socket.io server, for rooms, broadcasts,
// adapters and other namespaces. Do not replace the root namespace's
// "connection" listener.
func (s *Server) Engine() *socket.Server { return s.io }

// ServeHTTP checks an engine request and hands it to the engine: a
// request from a foreign origin gets 403, any request after Close 503. It
// does not wrap w.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer s.m.RecoverEngine()
	s.mu.RLock()
	closed := s.closed || (s.draining && !r.URL.Query().Has("sid"))
	s.mu.RUnlock()
	switch {
	case closed:
		http.Error(w, "server closed", http.StatusServiceUnavailable)
	case s.m.CheckOrigin(r) != nil:
		http.Error(w, "origin not allowed", http.StatusForbidden)
	case s.cors(w, r):
	case r.Method == http.MethodPost && s.capBody(w, r):
	case websocket.IsWebSocketUpgrade(r):
		s.serveGated(w, r)
	case r.Method == http.MethodGet && r.URL.Query().Has("sid"):
		s.servePoll(w, r, r.URL.Query().Get("sid"))
	default:
		s.handler.ServeHTTP(w, r)
	}
}

// cors sets CORS headers, with credentials, for a request from an origin
// of Config.AllowedOrigins (only: the engine's own CORS answers "false" or
// "*" to the others), and answers its preflight, which it reports.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) (answered bool) {
	o := r.Header.Get("Origin")
	if o == "" || !s.m.AllowedOrigin(o) {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", o)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Add("Vary", "Origin")
	if r.Method != http.MethodOptions {
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET, POST")
	h.Set("Access-Control-Allow-Headers", "Content-Type")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true
}

// Close disconnects the server's sockets and stops the engine. Engine
// requests after Close get 503. Shutdown is Close done in order (the
// sessions of live sockets saved first). It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	admin := s.admin
	s.mu.Unlock()
	if admin != nil {
		admin.close()
	}
	done := make(chan error, 1)
	s.io.Close(func(err error) { done <- err })
	err := <-done
	// The engine does not report the disconnect of a socket that was
	// still connecting when it closed: end those here (Closed is
	// idempotent), or they stay in the Manager's registry for good.
	for _, sock := range s.m.Sockets() {
		if c, ok := sock.Conn().(*Conn); ok && c.s.Nsp().Server() == s.io {
			sock.Closed("server shut down")
		}
	}
	return err
}

func (s *Server) onConnection(args ...any) {
	_ = s.guard("connect", func() error {
		sock, ok := first[*socket.Socket](args)
		if !ok {
			return errors.New("zishang520: connection without a socket")
		}
		s.rootConnected(sock)
		if testHookConnection != nil {
			testHookConnection(sock)
		}
		c := newConn(sock)
		core := s.m.Accept(c)
		if err := sock.On("disconnect", func(reason ...any) {
			_ = s.guard("disconnect", func() error {
				r, _ := first[string](reason)
				core.Closed(r)
				return nil
			})
		}); err != nil {
			return err
		}
		// The engine sends the connect answer before it emits "connection"
		// (namespace._doConnect), so a client may have gone, and its
		// "disconnect" been emitted to no listener, before the one above:
		// the socket would stay in the registry for good. The engine marks
		// the socket disconnected before it emits "disconnect", and Closed
		// is idempotent.
		if !sock.Connected() {
			core.Closed(goneBeforeConnect)
		}
		if isPolling(sock.Conn()) { // a websocket has nothing to upgrade to
			if err := sock.Conn().On("upgrade", func(...any) { core.Upgraded() }); err != nil {
				return err
			}
		}
		s.mu.RLock()
		for name, h := range s.events {
			if err := sock.On(name, func(args ...any) { h(sock, args) }); err != nil {
				s.mu.RUnlock()
				return err
			}
		}
		s.mu.RUnlock()
		// Load the session off the engine's goroutine; events wait for it.
		go core.Open()
		return nil
	})
}

// goneBeforeConnect is the disconnect reason of a socket whose connection
// ended before the binding's connection handler ran: the engine's own
// reason went to no listener.
const goneBeforeConnect = "transport close"

// testHookConnection, if set, runs at the start of the connection
// handler, before it listens for the socket's disconnect.
var testHookConnection func(*socket.Socket)

// guard runs f, the body of an engine hook, turning a panic into a
// reported *iosessions.PanicError.
func (s *Server) guard(where string, f func() error) error {
	_, err := iosessions.Call(s.m, where, func() (struct{}, error) { return struct{}{}, f() })
	return err
}

// first returns args[0] as a T.
func first[T any](args []any) (T, bool) {
	var zero T
	if len(args) == 0 {
		return zero, false
	}
	v, ok := args[0].(T)
	return v, ok
}

// broadcaster emits to the sockets of a room of the root namespace on this
// node: the library relays to other nodes itself, so with a Redis adapter
// a cluster-wide broadcast would tell each socket twice.
//
// It emits to each socket rather than through the engine's broadcast: that
// hands every socket the same pre-encoded frame, from which the websocket
// transport builds a new gorilla/websocket PreparedMessage for each socket
// (servers/engine/v3 v3.0.2, transports/websocket.go, lines 150-166), two
// frame preparations with a 4 KB buffer each, some 11 KB and three to five
// times the time of the plain write that an emit to one socket takes.
type broadcaster struct{ io *socket.Server }

func (b broadcaster) Broadcast(room, event string, args ...any) error {
	if socket.SOCKET_RESERVED_EVENTS.Has(event) {
		return fmt.Errorf("zishang520: %q is a reserved event name", event)
	}
	nsp := b.io.Sockets()
	ids, ok := nsp.Adapter().Rooms().Load(socket.Room(room))
	if !ok {
		return nil
	}
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = ackJSON(a) // no adapter encodes it: JSON is sent as it is
	}
	for _, id := range ids.Keys() {
		if s, ok := nsp.Sockets().Load(id); ok && s.Connected() {
			emitQueued(s, event, out) // as Conn.Emit
		}
	}
	return nil
}
