// Package conformance is the behaviour suite that every engine binding of
// iosessions must pass. A binding's tests describe the binding (how to make
// its server, how to dial its clients) and call Run; every case below then
// runs against that binding with a real server and real clients of the
// binding's protocol, so a new binding gets the whole suite for free and no
// case is weaker for one binding than for another.
//
// The cases: the session is loaded at connect, saved (at disconnect, or
// before the ack), reloaded per message, serialized (acks in order, no lost
// updates between two sockets of one session), invalid for each reason,
// the origin check, the shim token accepted and refused, logout through
// the session's room, panics contained, and mounting on chi, gorilla/mux
// and net/http.
package conformance

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/iosessions/iosessions"
)

// Binding describes an engine binding to the suite.
type Binding struct {
	// Name names the binding in failures.
	Name string
	// EIO is the engine.io protocol version the binding speaks (3 or 4),
	// for the suite's raw HTTP requests.
	EIO int
	// Transports are the transports its clients dial: "websocket",
	// "polling".
	Transports []string
	// NewServer makes the binding's server for m, serving nothing yet.
	NewServer func(m *iosessions.Manager) (Server, error)
	// Dial connects a client of the binding's protocol to the server at
	// url (http://host:port), and returns once the socket is connected.
	Dial func(ctx context.Context, url string, o DialOptions) (Client, error)
	// SendsBeforeClose reports that the binding's Conn.Close writes what
	// was emitted before it, so that a socket told "sinvalid" gets it
	// however short Config.CloseGrace is (EndedBeforeClose), and a
	// handler's emit right before its Close is sent (CloseAfterEmit);
	// without it, the grace is all that lets the "sinvalid" out.
	SendsBeforeClose bool
}

// Server is a binding's server as the suite drives it.
type Server interface {
	// ServeHTTP serves /socket.io/.
	http.Handler
	// Message registers an smessage handler through the binding's own
	// typed API (OnMessage), with In json.RawMessage and Out any.
	Message(event string, h func(s *iosessions.Socket, sess *iosessions.Session, in json.RawMessage) (any, error))
	// Event registers a handler without a session (OnEvent).
	Event(event string, h func(s *iosessions.Socket, in json.RawMessage) (any, error))
	// Typed registers the suite's typed handlers with the binding's
	// generic API, so that decoding into Go types is tested too.
	Typed(h TypedHandlers)
	// Start starts serving, after the handlers are registered.
	Start()
	// Shutdown stops the server in order (the binding's Server.Shutdown).
	Shutdown(ctx context.Context) error
	// Close stops the server.
	Close() error
}

// TypedHandlers are handlers with concrete argument and ack types.
type TypedHandlers struct {
	// Set is an smessage: "set" {"key": k, "value": v}.
	Set func(s *iosessions.Socket, sess *iosessions.Session, in SetArg) (SetArg, error)
	// Shout is an event: "shout" "text" acks "TEXT".
	Shout func(s *iosessions.Socket, in string) (string, error)
}

// SetArg is the argument and ack of the "set" event.
type SetArg struct {
	Key   string `json:"key"`
	Value int    `json:"value"`
}

// DialOptions say how a client connects.
type DialOptions struct {
	// Transport is "websocket" or "polling".
	Transport string
	// Header is sent with the handshake (Cookie, Origin).
	Header http.Header
	// Token is the shim's token, sent the way the binding's clients send
	// it (the query for socket.io 1.x/2.x, the auth payload for 3.x/4.x).
	Token string
	// Writeback says, as the shim does, that the client applies cookie
	// write-backs (iosessions.WritebackParam, where the token goes).
	Writeback bool
	// NoAck leaves the server's events that ask for an ack unanswered;
	// by default the client acks each at once.
	NoAck bool
	// OnEvent is called for every event the server emits to the client,
	// in order, from one goroutine.
	OnEvent func(name string, args []json.RawMessage)
}

// Client is a connected client.
type Client interface {
	// Send emits event with args and an ack request; the ack arrives on
	// the channel.
	Send(ctx context.Context, event string, args ...any) (<-chan Ack, error)
	// Done is closed when the connection ends, either side.
	Done() <-chan struct{}
	// Close disconnects.
	Close() error
}

// Ack is the server's answer to an event.
type Ack struct {
	Args []json.RawMessage
	// Seq is the arrival rank of the ack among the client's acks.
	Seq uint64
}
