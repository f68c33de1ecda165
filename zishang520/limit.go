package zishang520

import (
	"bytes"
	"errors"
	"io"
	"net/http"

	"github.com/iosessions/iosessions/internal/chunks"
)

// zishang520/socket.io v3.0.2 caps a message itself (MaxHttpBufferSize):
// a websocket message over it fails at the first frame header that goes
// past it (gorilla's read limit), and a polling POST whose Content-Length
// is over it gets 413. But the session of that POST stays open, and a
// body without a Content-Length (chunked) is cut at the cap and decoded
// from what is left of it (a 10 MB chunked POST cost 14 MB of
// allocations, and got 429 when the cut packet closed the session).
// capBody closes both holes before the engine reads the body.
//
// Its socket.io parser needs no guard: it caps attachments at 10 and
// checks placeholders (FuzzDecoder and TestPacketCatalogue keep it so).

// errTooLarge is the answer to a POST body over the cap.
var errTooLarge = errors.New("zishang520: message too large")

// capBody reads a polling POST body through Options.MaxMessageBytes and
// hands it to the engine from memory. A body over the cap gets 413, and
// its engine session is closed; capBody reports whether it answered.
func (s *Server) capBody(w http.ResponseWriter, r *http.Request) (answered bool) {
	var body []byte
	var err error
	if r.ContentLength > s.max {
		err = errTooLarge // refused before reading
	} else {
		body, err = chunks.ReadAll(http.MaxBytesReader(w, r.Body, s.max))
	}
	var tooLarge *http.MaxBytesError
	switch {
	case err == errTooLarge, errors.As(err, &tooLarge):
		http.Error(w, errTooLarge.Error(), http.StatusRequestEntityTooLarge)
		if sock, ok := s.io.Engine().Clients().Load(r.URL.Query().Get("sid")); ok {
			sock.Close(true)
		}
		return true
	case err != nil:
		http.Error(w, "bad request body", http.StatusBadRequest)
		return true
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return false
}
