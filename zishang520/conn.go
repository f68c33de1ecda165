package zishang520

import (
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/iosessions/iosessions"
)

// Conn adapts a zishang520/socket.io socket to iosessions.Conn. Reach it
// with Socket.Conn().(*zishang520.Conn).
type Conn struct {
	s *socket.Socket
}

var _ iosessions.Conn = (*Conn)(nil)

func newConn(s *socket.Socket) *Conn { return &Conn{s: s} }

// ID returns the socket's id (random, distinct from the engine's session
// id).
func (c *Conn) ID() string { return string(c.s.Id()) }

// Request returns the handshake request, with the auth payload on its
// context: a new one at each call, made from what the engine keeps of the
// first request of the engine session (its URL, headers and Host), so that
// an idle connection holds no copy of it.
func (c *Conn) Request() *http.Request {
	var r *http.Request
	if hc := c.s.Request(); hc != nil && hc.Request() != nil {
		orig := hc.Request()
		u := *orig.URL
		r = &http.Request{
			Method:     http.MethodGet,
			URL:        &u,
			Proto:      orig.Proto,
			ProtoMajor: orig.ProtoMajor,
			ProtoMinor: orig.ProtoMinor,
			Header:     orig.Header, // shared: nothing writes it once it was served
			Host:       orig.Host,
			RemoteAddr: orig.RemoteAddr,
			TLS:        orig.TLS,
		}
	} else {
		r = &http.Request{Method: http.MethodGet, URL: new(url.URL), Header: http.Header{}}
	}
	var auth map[string]any
	if h := c.s.Handshake(); h != nil {
		auth = h.Auth
	}
	return iosessions.WithAuth(r, auth)
}

// Emit sends event to the client. A json.RawMessage argument is sent as
// the JSON it holds (the engine would take it for binary data); other
// []byte arguments are binary attachments.
func (c *Conn) Emit(event string, args ...any) error {
	emitQueued(c.s, event, emitArgs(args))
	return nil
}

// emitQueued emits on s's task queue, where the engine writes its acks
// (its writes are not safe from two goroutines at once): in order with
// the socket's other emits, and never between an EmitAck's Timeout and
// its Emit (the engine keeps those flags on the socket).
func emitQueued(s *socket.Socket, event string, out []any) {
	s.Enqueue(func() { _ = s.Emit(event, out...) })
}

// EmitAck sends event with an ack request; ack runs once if the client
// acks within timeout (0: while the connection lives).
func (c *Conn) EmitAck(event string, args []any, timeout time.Duration, ack func([]json.RawMessage)) error {
	out := append(emitArgs(args), socket.Ack(func(args []any, err error) {
		if err != nil { // timed out
			return
		}
		raw := make([]json.RawMessage, 0, len(args))
		for _, a := range args {
			b, _ := json.Marshal(a)
			raw = append(raw, b)
		}
		ack(raw)
	}))
	c.s.Enqueue(func() {
		s := c.s
		if timeout > 0 {
			s = s.Timeout(timeout)
		}
		_ = s.Emit(event, out...)
	})
	return nil
}

// Transport returns the name of the transport the connection runs on
// now: "polling" or "websocket".
func (c *Conn) Transport() string {
	if t := c.s.Conn().Transport(); t != nil {
		return t.Name()
	}
	return ""
}

// emitArgs returns args with every json.RawMessage as the JSON it holds,
// in a new slice (args may be the caller's).
func emitArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		if raw, ok := a.(json.RawMessage); ok {
			a = asJSON(raw)
		}
		out[i] = a
	}
	return out
}

// Close disconnects the client and closes its connection once what was
// emitted before is written. It returns at once: the close runs on the
// socket's task queue, after the emits queued there (a handler that emits
// and then closes runs on that queue too). Over websocket it then sends
// the namespace's disconnect packet and waits, at most closeWait, until
// the engine has written it: the engine (servers/engine/v3 v3.0.2,
// transports/websocket.go) writes from a goroutine of its own and its
// close closes the websocket under a write in flight, so an "sinvalid"
// flushed just before would be dropped unsent. The engine's socket Close
// waits for a polling transport's buffered packets itself.
func (c *Conn) Close() error {
	c.s.Enqueue(c.close)
	return nil
}

// closeWait bounds how long Close waits for a websocket's writes.
const closeWait = time.Second

func (c *Conn) close() {
	if !c.s.Connected() {
		return
	}
	if es := c.s.Conn(); es != nil {
		sendDisconnect(es, string(c.s.Nsp().Name()), closeWait)
	}
	c.s.Disconnect(true)
}

// sendDisconnect writes the disconnect packet of namespace nsp to es, if
// es is an open websocket, and waits, at most max, until the engine has
// written it and so every packet before it: the engine calls a packet's
// callback once the batch holding it is written. The socket's own
// Disconnect then sends its disconnect packet again, which clients ignore.
func sendDisconnect(es engine.Socket, nsp string, max time.Duration) {
	t := es.Transport()
	if t == nil || t.Name() != transports.WEBSOCKET || es.ReadyState() != "open" {
		return
	}
	done := make(chan struct{}, 1)
	fire := func() {
		select {
		case done <- struct{}{}:
		default:
		}
	}
	_ = es.Once("close", func(...any) { fire() })
	for _, p := range disconnectEncoder.Encode(&parser.Packet{Type: parser.DISCONNECT, Nsp: nsp}) {
		es.Write(p, nil, func(transports.Transport) { fire() })
	}
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	select {
	case <-done:
	case <-deadline.C:
	}
}

var disconnectEncoder = parser.NewEncoder()

// Join adds the socket to the engine room.
func (c *Conn) Join(room string) error {
	c.s.Join(socket.Room(room))
	return nil
}

// Rooms returns the engine rooms the socket is in, its own id's room
// included.
func (c *Conn) Rooms() []string {
	keys := c.s.Rooms().Keys()
	out := make([]string, len(keys))
	for i, r := range keys {
		out[i] = string(r)
	}
	return out
}

// Leave takes the socket out of the engine room.
func (c *Conn) Leave(room string) error {
	c.s.Leave(socket.Room(room))
	return nil
}

// Engine returns the zishang520/socket.io socket.
func (c *Conn) Engine() *socket.Socket { return c.s }

// Binding returns "zishang520", the name of this binding in observations
// (iosessions.Binder).
func (c *Conn) Binding() string { return "zishang520" }

var (
	_ iosessions.Roomer = (*Conn)(nil)
	_ iosessions.Binder = (*Conn)(nil)
)
