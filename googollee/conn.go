package googollee

import (
	"encoding/json"
	"net/http"
	"time"

	socketio "github.com/googollee/go-socket.io"

	"github.com/iosessions/iosessions"
)

// Conn adapts a go-socket.io connection to iosessions.Conn. Reach it with
// Socket.Conn().(*googollee.Conn).
type Conn struct {
	srv *Server
	c   socketio.Conn
}

var _ iosessions.Conn = (*Conn)(nil)

func newConn(srv *Server, c socketio.Conn) *Conn { return &Conn{srv: srv, c: c} }

// ID returns the engine's connection id (random, see the package doc).
func (c *Conn) ID() string { return c.c.ID() }

// Request returns the handshake request, without its Host: a new one at
// each call, made from what the engine keeps of it (its URL, path and
// query, and headers; ServeHTTP checked the origin already), so that an
// idle connection holds no copy of it. Its context is
// context.Background().
func (c *Conn) Request() *http.Request {
	u := c.c.URL()
	r := &http.Request{
		Method:     http.MethodGet,
		URL:        &u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     c.c.RemoteHeader(), // shared: the engine never writes it
	}
	if a := c.c.RemoteAddr(); a != nil {
		r.RemoteAddr = a.String()
	}
	return r
}

// Emit sends event to the client. It never blocks for long: after the
// connection closed it does nothing.
func (c *Conn) Emit(event string, args ...any) error {
	c.c.Emit(event, args...)
	return nil
}

// EmitAck sends event with an ack request; ack runs once if the client
// acks. The engine has no ack timeout: an ack request the client never
// answers is kept until the connection closes, and timeout is ignored.
func (c *Conn) EmitAck(event string, args []any, _ time.Duration, ack func([]json.RawMessage)) error {
	// The engine decodes the ack's arguments into the callback's
	// parameters: with none, it takes any and drops them.
	c.c.Emit(event, append(append([]any(nil), args...), func() { ack(nil) })...)
	return nil
}

// Transport returns "websocket" or "polling": the transport the
// connection is on now (after an upgrade that Options.AllowUpgrade allows,
// "websocket").
func (c *Conn) Transport() string {
	u := c.c.URL() // of the engine's connection now: the upgrade's once upgraded
	return u.Query().Get("transport")
}

// Close disconnects the client.
func (c *Conn) Close() error { return c.c.Close() }

// Engine returns the go-socket.io connection.
func (c *Conn) Engine() socketio.Conn { return c.c }

// Join adds the connection to the engine room.
func (c *Conn) Join(room string) error {
	c.c.Join(room)
	return nil
}

// Rooms returns the engine rooms the connection is in.
func (c *Conn) Rooms() []string { return c.c.Rooms() }

// Leave takes the connection out of the engine room.
func (c *Conn) Leave(room string) error {
	c.c.Leave(room)
	return nil
}

// Binding returns "googollee", the name of this binding in observations
// (iosessions.Binder).
func (c *Conn) Binding() string { return "googollee" }

var (
	_ iosessions.Roomer = (*Conn)(nil)
	_ iosessions.Binder = (*Conn)(nil)
)
