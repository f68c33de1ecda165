package googollee

import (
	socketio "github.com/googollee/go-socket.io"

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
func OnMessage[In, Out any](s *Server, event string, h func(s *iosessions.Socket, sess *iosessions.Session, in In) (Out, error)) {
	on(s, event, iosessions.Message(h))
}

// OnEvent registers h for event on the root namespace, without a
// session: for events that need none. What h returns is the ack, as with
// OnMessage. A panic in h is recovered, reported and acked
// {"error": "internal error"}.
func OnEvent[In, Out any](s *Server, event string, h func(s *iosessions.Socket, in In) (Out, error)) {
	on(s, event, iosessions.Event(s.m, event, h))
}

// on registers h for event on the root namespace, with the socket of the
// connection, and acks what h returns: Out, or {"error": text}. A
// connection the Manager does not know is acked {"error": "no session"}.
func on[In, Out any](s *Server, event string, h func(sock *iosessions.Socket, in In) (Out, error)) {
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
