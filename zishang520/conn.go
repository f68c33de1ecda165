package zishang520

import (
	"encoding/json"
	"net/http"
	"net/url"
	"time"

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
	out := emitArgs(args)
	// On the socket's task queue, where the engine writes its acks: the
	// engine's writes are not safe from two goroutines at once.
	c.s.Enqueue(func() { _ = c.s.Emit(event, out...) })
	return nil
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

// Close disconnects the client and closes its connection.
func (c *Conn) Close() error {
	waitSent(c.s.Conn(), closeWait)
	c.s.Disconnect(true)
	return nil
}

// closeWait bounds how long Close waits for a websocket's send in flight.
const closeWait = time.Second

// waitSent waits, for at most max, until es's websocket transport has no
// send in flight. The engine (servers/engine/v3 v3.0.2,
// transports/websocket.go) queues a websocket's sends on a goroutine of
// its own, and its DoClose closes the websocket at once: a packet flushed
// just before a close, such as the "sinvalid" of an ended session, would
// be dropped unsent. A polling transport needs no wait: the engine's
// socket Close waits for its buffered packets. Its listener stays on the
// transport, which closes next: the engine removes listeners by their
// code pointer, so removing one nextEvent's fire would remove them all.
func waitSent(es engine.Socket, max time.Duration) {
	if es == nil {
		return
	}
	t := es.Transport()
	if t == nil || t.Name() != transports.WEBSOCKET {
		return
	}
	// "ready" follows each send; the engine's own listener may start the
	// next send of what was buffered meanwhile: check again after each.
	var sent nextEvent
	if err := t.On("ready", sent.fire); err != nil {
		return
	}
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	for {
		next := sent.wait() // before the check: a "ready" between is not missed
		if t.Writable() {
			return
		}
		select {
		case <-next:
		case <-deadline.C:
			return
		}
	}
}

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
