package zishang520

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/iosessions/iosessions/internal/once"
)

// The engine (servers/engine/v3 and servers/socket/v3 v3.0.2) has three
// races at connect, each of which loses what a client sends at once:
//
//  1. The engine's Handshake (engine base-server.go) sends the open packet
//     from NewSocket and only then emits "connection", whose socket.io
//     listener registers the Client for the connection's "data" (socket
//     client.go, setup). A websocket's reading goroutine starts with its
//     transport (engine transports/websocket.go, Construct), so a namespace
//     connect read in between is emitted to no listener: never answered.
//  2. namespace._doConnect (socket namespace.go) writes the connect answer
//     (Socket._onconnect) before Client.doConnect's callback stores the
//     socket among the Client's namespaces; a packet read in between finds
//     no socket, and the Client closes the connection ("invalid state" in
//     client.go, ondecoded).
//  3. An upgrade to websocket (engine server.go, onWebSocket) creates the
//     transport, whose reading goroutine starts at once, before
//     socket.MaybeUpgrade registers for its packets: a probe read in
//     between is lost, and the connection stays on polling (by the code;
//     not seen in 12,000 upgrades of TestConnectRaces).
//  4. A polling GET's answer runs the GET's cleanup, which empties the
//     transport's slot of the pending GET, twice (engine
//     transports/polling.go DoWrite, then HttpContext.Write's
//     closeWithError, after it closed Done and so let the handler return):
//     a client whose next GET arrives in between, as a fast client on a
//     loaded server does, has that GET forgotten; the engine's next write
//     then fails ("polling write error") and the session ends without an
//     answer to it.
//  5. A poll GET's HttpContext watches the request's context from its
//     start (types.NewHttpContext), but the transport sets the cleanup
//     that the watcher calls only later (transports/polling.go
//     onPollRequest, ctx.Cleanup): a client that goes away in between is
//     a data race of the two goroutines.
//
// The binding closes them without changing the engine:
//
//  1, 3. The connection of a websocket request reads nothing until
//     the engine's handler has returned (hijackGate): the engine runs the
//     handshake, "connection" listeners included, or the upgrade's
//     registration, on that goroutine. A polling handshake needs no gate:
//     its response, the open packet, leaves when the handler returns.
//  2. While a root namespace connect is in flight, the connection's other
//     packets wait (connGate) in a listener of the engine socket's
//     "packet" event, which the engine emits on the reading goroutine
//     before "data", until the binding's root "connection" listener runs,
//     which is after the store.
//  4. A polling GET's handler returns (and so its answer leaves) only
//     after the transport's "drain", which the engine emits once the
//     answer is written and both cleanups ran (servePoll).
//  5. The engine gets a poll GET's request with a context that ends
//     after the client's, once the transport said "ready" (servePoll).
//     A polling handshake's GET is not covered.

// hijackGate is the ResponseWriter of a websocket request: the
// connection it hijacks reads nothing until open. It is used for that
// request only; every other engine request gets the ResponseWriter as it
// came.
type hijackGate struct {
	http.ResponseWriter
	mu     sync.Mutex
	conn   *gatedConn // once hijacked
	opened bool
}

// Hijack hijacks the connection and gates its reads.
func (g *hijackGate) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := g.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("zishang520: the ResponseWriter cannot hijack its connection")
	}
	c, rw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	// gorilla/websocket reads through its own buffer over the returned
	// conn (it refuses a handshake with data buffered in rw).
	gc := &gatedConn{Conn: c}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.opened {
		gc.opened.Store(true)
	} else {
		gc.mu.Lock()
		g.conn = gc
	}
	return gc, rw, nil
}

// open lets the hijacked connection read, now or once hijacked.
func (g *hijackGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.opened = true
	if g.conn != nil {
		g.conn.opened.Store(true)
		g.conn.mu.Unlock()
	}
}

// Unwrap returns the ResponseWriter, for http.ResponseController.
func (g *hijackGate) Unwrap() http.ResponseWriter { return g.ResponseWriter }

// gatedConn is a net.Conn whose reads wait until it is opened: mu is held
// until then. It lives as long as the connection, so it holds no channel.
type gatedConn struct {
	net.Conn
	mu     sync.Mutex
	opened atomic.Bool
}

func (c *gatedConn) Read(p []byte) (int, error) {
	if !c.opened.Load() {
		c.mu.Lock()
		c.mu.Unlock() //nolint:staticcheck // an empty critical section: waits for open
	}
	return c.Conn.Read(p)
}

// serveGated serves a websocket request through a hijackGate, opened once
// the engine's handler returned.
func (s *Server) serveGated(w http.ResponseWriter, r *http.Request) {
	g := &hijackGate{ResponseWriter: w}
	defer g.open()
	s.handler.ServeHTTP(g, r)
}

// servePoll serves a polling GET of a live engine connection and returns
// once its answer was written and cleaned up after (the transport's next
// "drain"), the connection closed, or limit passed.
func (s *Server) servePoll(w http.ResponseWriter, r *http.Request, sid string) {
	v, ok := s.gates.Load(sid)
	if !ok { // unknown to the binding: the engine answers it
		s.handler.ServeHTTP(w, r)
		return
	}
	g := v.(*connGate)
	drained := g.drained.wait() // before the engine: it may write at once
	if r.Method == http.MethodGet {
		// The engine watches the request's context from the start, but
		// sets the poll's cleanup, which its watcher calls when the
		// context ends, only later, just before the transport's "ready":
		// a client that goes away in between races the two (a data race
		// the race detector reported in a soak). The engine sees the end
		// of the client's request after "ready" instead.
		ready := g.readied.wait()
		ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
		served := make(chan struct{})
		stop := context.AfterFunc(r.Context(), func() {
			select {
			case <-ready:
			case <-served:
			case <-g.closed.Done():
			}
			cancel()
		})
		defer func() { close(served); stop(); cancel() }()
		r = r.WithContext(ctx)
	}
	s.handler.ServeHTTP(w, r)
	t := time.NewTimer(s.limit)
	defer t.Stop()
	select {
	case <-drained:
	case <-g.closed.Done():
	case <-t.C:
	}
}

// connGate holds the packets of one engine connection while its root
// namespace connect is in flight, and tells its polling GETs when an
// answer was written.
type connGate struct {
	pending atomic.Bool // a root connect is in flight
	ready   once.Event  // the root socket is stored, or the connection closed
	closed  once.Event  // the connection closed

	drained nextEvent // the polling transport's "drain": an answer was written
	readied nextEvent // its "ready": a poll GET is set up

	// A websocket's gate is retired once released: its listeners on the
	// engine socket are removed (rootConnected).
	mu                sync.Mutex
	retired           bool
	onPacket, onClose types.EventListener
}

// nextEvent is the next time a transport event happens: wait returns a
// channel that fire closes, then a new one.
type nextEvent struct {
	mu sync.Mutex
	ch chan struct{}
}

func (e *nextEvent) wait() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ch == nil {
		e.ch = make(chan struct{})
	}
	return e.ch
}

// fire is the transport event's listener.
func (e *nextEvent) fire(...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ch != nil {
		close(e.ch)
		e.ch = nil
	}
}

// close releases everything waiting on g.
func (g *connGate) close() {
	g.release()
	g.closed.Fire()
}

// release lets every held and later packet through.
func (g *connGate) release() { g.ready.Fire() }

// hold runs on the engine's reading goroutine for each packet, before the
// socket.io layer sees it. A root namespace connect passes and marks the
// connect in flight; any other packet waits while one is, for at most
// limit. A second root connect waits too: let through while the first
// socket is not stored yet, it would connect a second root socket (the
// engine refuses one sent later, and closes the connection).
func (g *connGate) hold(p *packet.Packet, limit time.Duration) {
	if g.ready.Fired() || p == nil || p.Type != packet.MESSAGE {
		return
	}
	if !g.pending.Load() {
		if isRootConnect(p) {
			g.pending.Store(true)
		}
		return
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-g.ready.Done():
	case <-t.C:
	}
}

// isRootConnect reports whether p carries a socket.io connect to the root
// namespace: "0", or "0{…auth}" (protocol 5).
func isRootConnect(p *packet.Packet) bool {
	b, ok := p.Data.(*types.StringBuffer)
	if !ok {
		return false // binary: an attachment, never a connect
	}
	d := b.Bytes()
	return len(d) > 0 && d[0] == '0' && (len(d) == 1 || d[1] == '{')
}

// gateConnections installs connGates: one per engine connection, from its
// "connection" (after the socket.io Client's setup, which registered
// first) to its "close".
func (s *Server) gateConnections() error {
	limit := s.limit
	return s.io.Engine().On("connection", func(args ...any) {
		_ = s.guard("engine connection", func() error {
			es, ok := first[engine.Socket](args)
			if !ok {
				return nil
			}
			id := es.Id()
			// In protocol 3 (socket.io 2.x clients) the socket.io server
			// connects the root namespace itself, from its own listener,
			// which ran before this one: the root socket may be stored,
			// and the gate released, already.
			v, _ := s.gates.LoadOrStore(id, new(connGate))
			g := v.(*connGate)
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.retired { // a websocket released already: nothing to hold
				s.gates.CompareAndDelete(id, g)
				return nil
			}
			if es.Protocol() == 3 {
				g.pending.Store(true)
			}
			g.onPacket = func(args ...any) {
				p, _ := first[*packet.Packet](args)
				g.hold(p, limit)
			}
			if err := es.On("packet", g.onPacket); err != nil {
				return err
			}
			if isPolling(es) {
				t := es.Transport()
				if err := t.On("drain", g.drained.fire); err != nil {
					return err
				}
				if err := t.On("ready", g.readied.fire); err != nil {
					return err
				}
			}
			g.onClose = func(...any) { s.dropGate(id, g) }
			if err := es.Once("close", g.onClose); err != nil {
				return err
			}
			if es.ReadyState() != "open" { // closed before Once: no "close" to come
				s.dropGate(id, g)
			}
			return nil
		})
	})
}

// rootConnected releases the gate of sock's engine connection: its root
// socket is stored, so the socket.io layer routes its packets.
func (s *Server) rootConnected(sock *socket.Socket) {
	es := sock.Conn()
	id := es.Id()
	v, _ := s.gates.LoadOrStore(id, new(connGate))
	g := v.(*connGate)
	g.release()
	switch {
	case es.ReadyState() != "open":
		s.dropGate(id, g)
	case !isPolling(es):
		// A websocket's gate has nothing left to do once released (its
		// polling GETs are the only other users): its listeners and
		// entry go now, not at close, so an idle connection does not
		// keep them. In protocol 3 gateConnections may not have run
		// yet: the retired gate then stays in the map for it to find
		// (a new gate there would hold the connection's packets) and
		// drop.
		g.mu.Lock()
		g.retired = true
		installed := g.onPacket != nil
		if installed {
			es.RemoveListener("packet", g.onPacket)
			es.RemoveListener("close", g.onClose)
			g.onPacket, g.onClose = nil, nil
			if es.ListenerCount("packet") == 0 {
				// The engine keeps an emptied event's entry; "packet" was
				// ours alone (the engine listens on the transport).
				es.RemoveAllListeners("packet")
			}
		}
		g.mu.Unlock()
		if installed {
			s.gates.CompareAndDelete(id, g)
			return
		}
		// Should gateConnections have run already (a second root socket
		// of the connection), nothing else would drop it.
		_ = es.Once("close", func(...any) { s.gates.CompareAndDelete(id, g) })
		if es.ReadyState() != "open" {
			s.gates.CompareAndDelete(id, g)
		}
	}
}

// isPolling reports whether es is on the polling transport.
func isPolling(es engine.Socket) bool {
	t := es.Transport()
	return t != nil && t.Name() == transports.POLLING
}

func (s *Server) dropGate(id string, g *connGate) {
	g.close()
	s.gates.CompareAndDelete(id, g)
}
