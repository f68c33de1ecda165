package zishang520

import (
	"bytes"
	"encoding/json"
	"math"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/iosessions/iosessions"
)

// OnMessage registers h for event on the root namespace: an smessage
// handler. h gets the socket's session as the Manager's mode says (loaded
// at connect, or reloaded for this event and saved after it) and the
// event's first argument decoded from JSON into In (the zero In when the
// client sent none). What h returns is the ack: Out, or {"error": text}
// when h returns an error. A socket without a valid session does not
// reach h: it is acked {"error": "no session"} and nothing is written. An
// argument that does not decode into In is acked {"error": "bad
// argument"}. Events of one socket run one at a time, in order, on the
// engine's task queue of the socket. Register events before serving:
// sockets get the events registered when they connect.
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

// badArgument is the ack of an event whose argument does not decode.
var badArgument = map[string]string{"error": "bad argument"}

// on registers h for event on the root namespace, with the socket of the
// connection, and acks what h returns: Out, or {"error": text}. A
// connection the Manager does not know is acked {"error": "no session"}.
func on[In, Out any](s *Server, event string, h func(sock *iosessions.Socket, in In) (Out, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events[event] = func(es *socket.Socket, args []any) {
		_ = s.guard(event, func() error {
			var ack socket.Ack
			if n := len(args); n > 0 {
				if a, ok := args[n-1].(socket.Ack); ok {
					ack, args = a, args[:n-1]
				}
			}
			reply := func(v any) {
				if ack != nil {
					ack([]any{ackJSON(v)}, nil)
				}
			}
			sock := s.m.Socket(string(es.Id()))
			if sock == nil {
				reply(iosessions.ErrorAck(iosessions.ErrNoSession))
				return nil
			}
			var in In
			if len(args) > 0 && args[0] != nil {
				if decodeArg(args[0], &in) != nil {
					reply(badArgument)
					return nil
				}
			}
			out, err := h(sock, in)
			if err != nil {
				reply(iosessions.ErrorAck(err))
				return nil
			}
			reply(out)
			return nil
		})
	}
}

// decodeArg sets *in to arg, the engine's decoding of an event's first
// argument, through JSON. A json.RawMessage is that JSON itself: valid,
// as encoding/json wrote it, so it is not decoded again.
func decodeArg[In any](arg any, in *In) error {
	b, err := json.Marshal(arg)
	if err != nil {
		return err
	}
	if raw, ok := any(in).(*json.RawMessage); ok {
		*raw = b
		return nil
	}
	return json.Unmarshal(b, in)
}

// asJSON returns v as encoding/json sees it: maps, slices, strings,
// json.Numbers. The engine's encoder takes any []byte it finds, a
// json.RawMessage too, for a binary attachment; an ack is JSON. A bool,
// string or number is returned as it is: the engine encodes it the same.
func asJSON(v any) any {
	switch x := v.(type) {
	case nil, bool, string, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return v
	case float64:
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			return v
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return map[string]string{"error": "internal error"}
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var out any
	if err := d.Decode(&out); err != nil {
		return map[string]string{"error": "internal error"}
	}
	return out
}

// ackJSON is asJSON for what goes to one client through the engine's
// JSON encoder and no adapter (an ack, a broadcast's emit to each socket):
// a json.RawMessage that holds JSON is sent as it is, not decoded and
// encoded again.
func ackJSON(v any) any {
	if raw, ok := v.(json.RawMessage); ok && raw != nil && json.Valid(raw) {
		return rawJSON{raw}
	}
	return asJSON(v)
}

// rawJSON is JSON that the engine's encoder copies: a struct, so that
// nothing takes it for binary.
type rawJSON struct{ b json.RawMessage }

// MarshalJSON implements json.Marshaler.
func (r rawJSON) MarshalJSON() ([]byte, error) { return r.b, nil }
