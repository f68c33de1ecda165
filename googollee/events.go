package googollee

import (
	"fmt"
	"reflect"

	socketio "github.com/googollee/go-socket.io"
	"github.com/googollee/go-socket.io/parser"

	"github.com/iosessions/iosessions"
)

// OnMessage registers h for event on the root namespace: an smessage
// handler. h gets the socket's session as the Manager's mode says (loaded
// at connect, or reloaded for this event and saved after it) and its
// argument decoded from JSON into In (the zero In when the client sent
// none). What h returns is the ack: Out, or {"error": text} when h returns
// an error. A socket without a valid session does not reach h: it is
// acked {"error": "no session"} and nothing is written. Events of one
// socket run one at a time, in order, on the engine's read goroutine.
//
// It panics, when called, if In holds a struct type named Buffer other
// than the engine's parser.Buffer (bytes.Buffer, say): go-socket.io v1.7.0
// takes any such struct for its own and panics on every event.
func OnMessage[In, Out any](s *Server, event string, h func(s *iosessions.Socket, sess *iosessions.Session, in In) (Out, error)) {
	on(s, event, iosessions.Message(h))
}

// OnEvent registers h for event on the root namespace, without a
// session: for events that need none. What h returns is the ack, as with
// OnMessage. A panic in h is recovered, reported and acked
// {"error": "internal error"}. It panics on the argument types that
// OnMessage panics on.
func OnEvent[In, Out any](s *Server, event string, h func(s *iosessions.Socket, in In) (Out, error)) {
	on(s, event, iosessions.Event(s.m, event, h))
}

// on registers h for event on the root namespace, with the socket of the
// connection, and acks what h returns: Out, or {"error": text}. A
// connection the Manager does not know is acked {"error": "no session"}.
func on[In, Out any](s *Server, event string, h func(sock *iosessions.Socket, in In) (Out, error)) {
	if err := checkArg(reflect.TypeFor[In](), map[reflect.Type]bool{}); err != nil {
		panic(fmt.Sprintf("googollee: handler of %q: %v", event, err))
	}
	s.engine.OnEvent("/", event, func(c socketio.Conn, in In) any {
		sock := s.m.Socket(c.ID())
		if sock == nil {
			return iosessions.ErrorAck(iosessions.ErrNoSession)
		}
		out, err := h(sock, in)
		if err != nil {
			return iosessions.ErrorAck(err)
		}
		return out
	})
}

// bufferType is the one struct named Buffer that the engine can decode.
var bufferType = reflect.TypeFor[parser.Buffer]()

// checkArg reports a type in t that go-socket.io v1.7.0 would take for
// its parser.Buffer: a struct named Buffer of another package. The engine
// walks every field, pointer, slice, array and map of an argument.
func checkArg(t reflect.Type, seen map[reflect.Type]bool) error {
	if seen[t] {
		return nil
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Struct:
		if t.Name() == "Buffer" && t != bufferType {
			return fmt.Errorf("its argument holds %s.%s: the engine takes any struct named Buffer for its parser.Buffer and panics", t.PkgPath(), t.Name())
		}
		for i := range t.NumField() {
			if err := checkArg(t.Field(i).Type, seen); err != nil {
				return err
			}
		}
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return checkArg(t.Elem(), seen)
	case reflect.Map:
		if err := checkArg(t.Key(), seen); err != nil {
			return err
		}
		return checkArg(t.Elem(), seen)
	}
	return nil
}
