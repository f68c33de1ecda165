// Package googollee binds iosessions to github.com/googollee/go-socket.io
// v1.7.0, the Go server of socket.io 1.x/2.x clients.
//
//	m, _ := iosessions.New(store, iosessions.Config{})
//	srv, _ := googollee.NewServer(m, nil)
//	m.OnConnection(func(s *iosessions.Socket, sess *iosessions.Session) {
//		s.Emit("welcome", sess.Values["user"])
//	})
//	googollee.OnMessage(srv, "incr", func(s *iosessions.Socket, sess *iosessions.Session, _ struct{}) (int, error) {
//		n, _ := sess.Values["count"].(int)
//		sess.Values["count"] = n + 1
//		return n + 1, nil
//	})
//	go srv.Serve()
//	defer srv.Close()
//	http.Handle("/socket.io/", m.Middleware(srv))
//
// The binding owns the root namespace's OnConnect, OnDisconnect and
// OnError hooks; register events with OnMessage (with a session) and
// OnEvent (without), and reach the engine for anything else with Engine.
//
// It also closes holes of the engine: it installs a crypto-random engine
// session id generator (the engine's own hands out 1, 2, 3…), checks the
// Origin of every engine request before the engine sees it (the engine
// accepts cross-origin polling), refuses JSONP polling (the engine echoes
// its parameter into JavaScript), caps the size of a message, ends the
// connection of a socket.io packet that the engine would crash on or
// misread (more than MaxAttachments attachments, a placeholder past
// them, an event without a name, an id past 2^64-1: the engine decodes
// on a goroutine where nothing recovers), and recovers panics in every
// hook it installs, reporting them to Config.ErrorHandler of the Manager.
//
// Goroutines: sconnection and sinvalid handlers run on a goroutine of the
// binding per connection; smessage and event handlers run on the engine's
// read goroutine of the connection, one at a time and in order, so a slow
// handler delays only its own socket.
package googollee

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	socketio "github.com/googollee/go-socket.io"
	"github.com/googollee/go-socket.io/engineio"
	"github.com/googollee/go-socket.io/engineio/transport"
	"github.com/googollee/go-socket.io/engineio/transport/polling"
	"github.com/googollee/go-socket.io/engineio/transport/websocket"

	"github.com/iosessions/iosessions"
)

// DefaultMaxMessageBytes is the default of Options.MaxMessageBytes: 1 MB.
const DefaultMaxMessageBytes = 1 << 20

// Options configure the binding. A nil *Options means the defaults.
type Options struct {
	// Engine are the engine's options. The binding fills in what is
	// missing: a crypto-random SessionIDGenerator, and polling and
	// websocket transports that check the origin. PingTimeout must exceed
	// PingInterval (the engine drops clients that have not pinged within
	// PingTimeout); defaults 20 s and 60 s, the engine's.
	Engine *engineio.Options

	// AllowUpgrade lets polling clients upgrade to websocket. Default
	// false: go-socket.io v1.7.0 loses events sent during the upgrade
	// (a POST then gets 400 "payload: paused") and sometimes fails the
	// upgrade itself, so a client stays on the transport it connected
	// with. Clients that want websocket connect with it directly
	// (transports: ["websocket"]). Only used when Engine.Transports is
	// nil.
	AllowUpgrade bool

	// MaxMessageBytes caps one websocket message and one polling POST
	// body. A client that sends more is disconnected; others are not
	// affected. Default DefaultMaxMessageBytes.
	MaxMessageBytes int64
}

// Server is a go-socket.io server whose root namespace carries sessions.
// Serve it through Manager.Middleware at "/socket.io/".
type Server struct {
	m      *iosessions.Manager
	engine *socketio.Server

	// The engine hands a new session to Serve on a channel, from a
	// goroutine of its own, after the handshake's response; its Close
	// closes that channel, so a handshake that finishes after Close
	// panics the process. Close therefore refuses new requests, then
	// waits until every handshake has been handed over.
	// (See handshake.go.)
	mu         sync.Mutex
	closed     bool
	draining   bool                    // Shutdown began: new handshakes get 503
	handshakes int                     // handshakes not yet handed over to Serve
	conns      map[*handshake]struct{} // connections they made, until closed
}

// NewServer returns a go-socket.io server bound to m. Bad options are an
// error, never a panic.
func NewServer(m *iosessions.Manager, opts *Options) (*Server, error) {
	if m == nil {
		return nil, errors.New("googollee: nil Manager")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	var eo engineio.Options
	if o.Engine != nil {
		eo = *o.Engine
	}
	if eo.PingInterval < 0 || eo.PingTimeout < 0 || o.MaxMessageBytes < 0 {
		return nil, errors.New("googollee: negative option")
	}
	if eo.PingInterval == 0 {
		eo.PingInterval = 20 * time.Second
	}
	if eo.PingTimeout == 0 {
		eo.PingTimeout = 60 * time.Second
	}
	if eo.PingTimeout <= eo.PingInterval {
		return nil, fmt.Errorf("googollee: PingTimeout (%v) must exceed PingInterval (%v)", eo.PingTimeout, eo.PingInterval)
	}
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if eo.SessionIDGenerator == nil {
		eo.SessionIDGenerator = randomIDs{}
	}
	if eo.Transports == nil {
		poll := &polling.Transport{
			Client: polling.Default.Client,
			// CORS headers only for the allowed cross-origin sites.
			CheckOrigin: func(r *http.Request) bool {
				o := r.Header.Get("Origin")
				return o != "" && m.AllowedOrigin(o)
			},
		}
		ws := &websocket.Transport{
			CheckOrigin: func(r *http.Request) bool { return m.CheckOrigin(r) == nil },
		}
		// The engine offers a client the upgrades to the transports
		// listed after its own: none after polling, unless allowed.
		// (Websocket clients never probe a downgrade.)
		eo.Transports = []transport.Transport{ws, poll}
		if o.AllowUpgrade {
			eo.Transports = []transport.Transport{poll, ws}
		}
	}
	// A new slice: the caller's Options keep their own transports.
	capped := make([]transport.Transport, len(eo.Transports))
	for i, t := range eo.Transports {
		capped[i] = limited{Transport: t, max: o.MaxMessageBytes}
	}
	eo.Transports = capped
	s := &Server{m: m, conns: make(map[*handshake]struct{})}
	s.engine = socketio.NewServer(&eo)
	s.engine.OnConnect("/", s.onConnect)
	s.engine.OnDisconnect("/", s.onDisconnect)
	s.engine.OnError("/", s.onError)
	m.SetBroadcaster(broadcaster{s.engine})
	return s, nil
}

// Engine returns the go-socket.io server, for rooms, broadcasts and other
// namespaces. Do not replace the root namespace's OnConnect, OnDisconnect
// or OnError hooks.
func (s *Server) Engine() *socketio.Server { return s.engine }

// Serve accepts connections until Close. Run it on its own goroutine.
func (s *Server) Serve() error { return s.engine.Serve() }

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
	s.mu.Unlock()
	s.waitHandshakes()
	for _, sock := range s.m.Sockets() {
		if c, ok := sock.Conn().(*Conn); ok && c.srv == s {
			_ = c.Close()
		}
	}
	s.closeHandshakes()
	return s.engine.Close()
}

// ServeHTTP checks an engine request and hands it to the engine: a
// request from a foreign origin gets 403, a JSONP poll 400, any request
// after Close 503. It does not wrap w.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer s.m.RecoverEngine()
	q := r.URL.Query()
	switch {
	case q.Has("j"):
		http.Error(w, "JSONP polling is not supported", http.StatusBadRequest)
	case s.m.CheckOrigin(r) != nil:
		http.Error(w, "origin not allowed", http.StatusForbidden)
	default:
		s.serve(w, r, !q.Has("sid"))
	}
}

func (s *Server) onConnect(c socketio.Conn) error {
	return s.guard("connect", func() error {
		if s.m.Socket(c.ID()) != nil {
			return nil // a repeated connect packet: the socket is open already
		}
		sock := s.m.Accept(newConn(s, c))
		// The engine hangs a connection that emits inside OnConnect: open
		// (which may emit sinvalid or run sconnection) once it has returned.
		go sock.Open()
		return nil
	})
}

func (s *Server) onDisconnect(c socketio.Conn, reason string) {
	_ = s.guard("disconnect", func() error {
		if sock := s.m.Socket(c.ID()); sock != nil {
			sock.Closed(reason)
		}
		return nil
	})
}

func (s *Server) onError(_ socketio.Conn, err error) {
	_ = s.guard("error", func() error {
		// Engine errors are a client's bad input or a closed connection;
		// they are logged at debug level, without ids.
		s.m.Config().Logger.Debug("googollee: engine error", "err", err)
		return nil
	})
}

// guard runs f, the body of an engine hook, turning a panic into a
// reported *iosessions.PanicError.
func (s *Server) guard(where string, f func() error) error {
	_, err := iosessions.Call(s.m, where, func() (struct{}, error) { return struct{}{}, f() })
	return err
}

// broadcaster is the engine's room broadcast on the root namespace.
type broadcaster struct{ engine *socketio.Server }

func (b broadcaster) Broadcast(room, event string, args ...any) error {
	if !b.engine.BroadcastToRoom("/", room, event, args...) {
		return errors.New("googollee: no root namespace")
	}
	return nil
}

// randomIDs makes engine session ids of 128 random bits.
type randomIDs struct{}

func (randomIDs) NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
