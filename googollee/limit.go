package googollee

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/googollee/go-socket.io/engineio/frame"
	"github.com/googollee/go-socket.io/engineio/packet"
	"github.com/googollee/go-socket.io/engineio/transport"
	"github.com/iosessions/iosessions/internal/chunks"
)

// errTooLarge ends a connection that sent a message over the cap.
var errTooLarge = errors.New("googollee: message too large")

// limited wraps an engine transport so that its connections refuse
// messages over max bytes (a websocket message is cut off and the
// connection closed; a polling POST body over max is refused with 413)
// and packets the engine would crash on or misread (see inspect.go:
// the connection is closed; a polling POST holding one gets 400).
type limited struct {
	transport.Transport
	max int64
}

func (t limited) Accept(w http.ResponseWriter, r *http.Request) (transport.Conn, error) {
	c, err := t.Transport.Accept(w, r)
	if err != nil {
		return nil, err
	}
	lc := limitedConn{Conn: c, max: t.max, hs: accept(r, c)}
	if p, ok := c.(pauser); ok {
		// Polling connections are paused during an upgrade.
		return pausingConn{limitedConn: lc, p: p}, nil
	}
	return lc, nil
}

type pauser interface {
	Pause()
	Resume()
}

// limitedConn is an engine connection whose messages are capped.
type limitedConn struct {
	transport.Conn
	max int64
	hs  *handshake // until handed over to Serve; nil for upgrades
}

func (c limitedConn) NextWriter(ft frame.Type, pt packet.Type) (io.WriteCloser, error) {
	first := c.hs != nil && c.hs.opening()
	w, err := c.Conn.NextWriter(ft, pt)
	if err != nil {
		return w, err
	}
	if first && testHookOpen != nil {
		w = hookedWriter{w}
	}
	return &byteWriter{WriteCloser: w}, nil
}

// byteWriter is an engine writer with the WriteByte of io.ByteWriter.
// go-socket.io v1.7.0's socket.io encoder wraps a writer without it in a
// new bufio.Writer, 4 KB, for every packet it sends (parser/encoder.go,
// writePacket), though the writers underneath buffer the message
// themselves (gorilla/websocket's, the polling payload's): three
// quarters of what the engine allocated, and most of its garbage.
type byteWriter struct {
	io.WriteCloser
	b [1]byte
}

func (w *byteWriter) WriteByte(b byte) error {
	w.b[0] = b
	_, err := w.Write(w.b[:])
	return err
}

func (c limitedConn) Close() error {
	if c.hs != nil {
		c.hs.closed()
	}
	return c.Conn.Close()
}

// NextReader caps the next message. A socket.io packet (a text message)
// is read whole, through the cap, and inspected before the engine reads
// any of it; attachments (binary messages) go through as they come.
func (c limitedConn) NextReader() (frame.Type, packet.Type, io.ReadCloser, error) {
	ft, pt, rc, err := c.Conn.NextReader()
	if err != nil {
		return ft, pt, rc, err
	}
	cr := &capReader{rc: rc, left: c.max, conn: c.Conn}
	if pt != packet.MESSAGE || ft != frame.String {
		return ft, pt, cr, nil
	}
	m := &message{rc: cr}
	if m.chunks, err = chunks.Read(cr); err == nil {
		var s packetScanner
		for _, b := range m.chunks {
			if err = s.write(b); err != nil {
				break
			}
		}
		if err == nil {
			_, err = s.end()
		}
	}
	if err != nil {
		_ = c.Conn.Close() // before Close drains what is left
		_ = cr.Close()
		return ft, pt, nil, err
	}
	return ft, pt, m, nil
}

// message is a packet read ahead, for the engine to read.
type message struct {
	chunks [][]byte
	rc     io.Closer // the transport's message, at its end
}

func (m *message) Read(p []byte) (int, error) {
	for len(m.chunks) > 0 && len(m.chunks[0]) == 0 {
		m.chunks = m.chunks[1:]
	}
	if len(m.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, m.chunks[0])
	m.chunks[0] = m.chunks[0][n:]
	return n, nil
}

func (m *message) Close() error {
	m.chunks = nil
	return m.rc.Close()
}

// ServeHTTP caps polling POST bodies, re-frames text payloads (see
// reframe.go) and hands the request on. The engine calls it for every
// request on the connection's own transport, never for the websocket
// upgrade: only polling responses are ever buffered here.
func (c limitedConn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, polling := c.Conn.(pauser); polling && r.Method == http.MethodGet && r.URL.Query().Get("b64") != "" {
		// A text poll: the engine frames it in bytes, the client reads
		// UTF-16 units.
		buf := &pollResponse{header: w.Header(), code: http.StatusOK}
		c.serve(buf, r)
		body := buf.body.Bytes()
		if buf.code == http.StatusOK {
			body = bytesToUnits(body)
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(buf.code)
		_, _ = w.Write(body)
		return
	}
	c.serve(w, r)
}

func (c limitedConn) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var body []byte
		var err error
		if r.ContentLength > c.max {
			err = errTooLarge // refused before reading
		} else {
			body, err = readBody(http.MaxBytesReader(w, r.Body, c.max), r.ContentLength)
		}
		var tooLarge *http.MaxBytesError
		switch {
		case err == errTooLarge, errors.As(err, &tooLarge):
			http.Error(w, errTooLarge.Error(), http.StatusRequestEntityTooLarge)
			_ = c.Conn.Close()
			return
		case err != nil:
			http.Error(w, "bad request body", http.StatusBadRequest)
			return
		}
		ct := r.Header.Get("Content-Type")
		if strings.HasPrefix(ct, "text/plain") {
			body = unitsToBytes(body)
		}
		if err := checkPayload(body, ct); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			_ = c.Conn.Close()
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	if h, ok := c.Conn.(http.Handler); ok {
		h.ServeHTTP(w, r)
	}
}

// readBody reads a POST body of length n (-1: unknown) from r: in one
// allocation when its length is known, in chunks otherwise.
func readBody(r io.Reader, n int64) ([]byte, error) {
	if n >= 0 {
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		var one [1]byte
		if _, err := r.Read(one[:]); err != io.EOF {
			return nil, errors.New("googollee: body longer than its Content-Length")
		}
		return b, nil
	}
	return chunks.ReadAll(r)
}

// pollResponse holds a polling response until it is re-framed.
type pollResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (p *pollResponse) Header() http.Header         { return p.header }
func (p *pollResponse) WriteHeader(code int)        { p.code = code }
func (p *pollResponse) Write(b []byte) (int, error) { return p.body.Write(b) }

type pausingConn struct {
	limitedConn
	p pauser
}

func (c pausingConn) Pause()  { c.p.Pause() }
func (c pausingConn) Resume() { c.p.Resume() }

// capReader reads one message, and closes the connection when the
// message is longer than the cap.
type capReader struct {
	rc   io.ReadCloser
	left int64
	conn io.Closer
}

func (r *capReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		// One byte more than allowed tells a long message from an exact one.
		var one [1]byte
		if n, _ := r.rc.Read(one[:]); n > 0 {
			_ = r.conn.Close()
			return 0, errTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.rc.Read(p)
	r.left -= int64(n)
	return n, err
}

// Close skips the rest of the message through the cap: the engine closes
// the messages it does not parse, and the transport would drain them whole.
func (r *capReader) Close() error {
	_, err := io.Copy(io.Discard, r)
	if cerr := r.rc.Close(); err == nil {
		err = cerr
	}
	return err
}
