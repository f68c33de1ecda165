package googollee

import (
	"bytes"
	"io"
	"runtime"
	"testing"

	"github.com/googollee/go-socket.io/engineio/frame"
	"github.com/googollee/go-socket.io/engineio/packet"
	"github.com/googollee/go-socket.io/engineio/session"
	"github.com/googollee/go-socket.io/engineio/transport"
	"github.com/googollee/go-socket.io/parser"
)

// bufConn is a transport connection that writes every message into one
// buffer.
type bufConn struct {
	transport.Conn
	buf bytes.Buffer
}

func (c *bufConn) NextWriter(frame.Type, packet.Type) (io.WriteCloser, error) {
	return nopCloser{&c.buf}, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// packetWriter is the socket.io encoder's view of a limitedConn, as the engine's
// session gives it.
type packetWriter struct{ c limitedConn }

func (f packetWriter) NextWriter(session.FrameType) (io.WriteCloser, error) {
	return f.c.NextWriter(frame.String, packet.MESSAGE)
}

// The engine's socket.io encoder wraps a writer that cannot WriteByte in
// a new 4 KB bufio.Writer for every packet; a limitedConn's writers can,
// and the packet comes out the same.
func TestWriterTakesBytes(t *testing.T) {
	bc := &bufConn{}
	enc := parser.NewEncoder(packetWriter{limitedConn{Conn: bc}})
	h := parser.Header{Type: parser.Ack, ID: 12, NeedAck: true}
	if err := enc.Encode(h, []any{map[string]int{"n": 7}}); err != nil {
		t.Fatal(err)
	}
	if got, want := bc.buf.String(), "312[{\"n\":7}]\n"; got != want {
		t.Fatalf("encoded %q, want %q", got, want)
	}
	var before, after runtime.MemStats
	const n = 200
	runtime.ReadMemStats(&before)
	for range n {
		bc.buf.Reset()
		if err := enc.Encode(h, []any{map[string]int{"n": 7}}); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 2048 {
		t.Errorf("an encoded packet allocates %d bytes; the engine's bufio.Writer is back", per)
	}
}
