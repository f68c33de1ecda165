// Package sio2 is a small socket.io v2 client (engine.io protocol 3, EIO=3)
// for tests. It speaks the real wire protocol, over websocket and over HTTP
// long-polling, with whatever headers and query a test chooses, so a server
// can be tested the way real clients, and hostile ones, reach it.
//
// It knows the root namespace, JSON events and acks, and pings; not binary
// attachments, other namespaces or transport upgrades. Raw packets and
// polling bodies can be sent for malformed-input tests.
//
// In EIO=3 the client pings: it sends "2" every pingInterval of the open
// packet and the server answers "3". A polling server answers each GET with
// the packets it has (the Go engine: one) and closes nothing on its own: a
// GET that fails ends the client, except the engine's "invalid sid value"
// to the first polls of a session it has not registered yet, which are
// retried for up to a second (see early).
package sio2

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Transport names an engine.io transport.
type Transport string

// The transports a Client can dial.
const (
	WebSocket Transport = "websocket"
	Polling   Transport = "polling"
)

// Options configure Dial. The zero value dials a websocket at /socket.io/.
type Options struct {
	Transport Transport   // default WebSocket
	Path      string      // default "/socket.io/"
	Header    http.Header // sent with every request: Cookie, Origin…
	Query     url.Values  // added to every request's query (a token…)
	Base64    bool        // polling: ask for text framing (b64=1)
	NoPing    bool        // never ping (the server then times the client out)
}

// Event is an event the server emitted.
type Event struct {
	Name string
	Args []json.RawMessage
}

// Ack is the server's answer to an event sent with EmitAck.
type Ack struct {
	Args []json.RawMessage
	// Seq is the arrival rank of the ack among all socket.io packets the
	// client received, to check the order of acks.
	Seq uint64
}

// StatusError is an HTTP request of the protocol that did not succeed.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("sio2: HTTP %d: %s", e.Code, strings.TrimSpace(e.Body))
}

// ErrClosed is the Err of a client closed by Close.
var ErrClosed = errors.New("sio2: client closed")

// Client is one socket.io connection. Its methods are safe for concurrent
// use.
type Client struct {
	opts   Options
	base   url.URL // scheme, host and path of the server
	hc     *http.Client
	ws     *websocket.Conn
	header http.Header // of the handshake response

	SID                       string // engine.io session id
	PingInterval, PingTimeout time.Duration

	ctx    context.Context // ends when the client ends
	cancel context.CancelFunc
	wmu    sync.Mutex // one websocket write or polling POST at a time
	wg     sync.WaitGroup
	events chan Event

	mu        sync.Mutex
	nextID    int
	acks      map[int]chan Ack
	seq       uint64
	pongs     int
	closing   bool          // Close has begun
	connected chan struct{} // closed at the socket.io connect packet
	done      chan struct{}
	err       error
}

// Dial connects to the socket.io server at serverURL ("http://host:port")
// and returns once the server has sent the socket.io connect packet. An
// HTTP refusal is a *StatusError.
func Dial(ctx context.Context, serverURL string, opts Options) (*Client, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, err
	}
	if opts.Transport == "" {
		opts.Transport = WebSocket
	}
	if opts.Path == "" {
		opts.Path = "/socket.io/"
	}
	u.Path, u.RawQuery = opts.Path, ""
	c := &Client{opts: opts, base: *u, acks: make(map[int]chan Ack),
		events: make(chan Event, 256), connected: make(chan struct{}), done: make(chan struct{}),
		hc: &http.Client{Transport: &http.Transport{}}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	var open string
	if opts.Transport == WebSocket {
		open, err = c.dialWebSocket(ctx)
	} else {
		open, err = c.dialPolling(ctx)
	}
	if err != nil {
		c.finish(err)
		c.hc.CloseIdleConnections()
		return nil, err
	}
	var params struct {
		SID                       string
		PingInterval, PingTimeout int
	}
	if len(open) == 0 || open[0] != engineOpen || json.Unmarshal([]byte(open[1:]), &params) != nil {
		c.finish(fmt.Errorf("sio2: expected an open packet, got %q", open))
		c.Close()
		return nil, c.err
	}
	c.SID = params.SID
	c.PingInterval = time.Duration(params.PingInterval) * time.Millisecond
	c.PingTimeout = time.Duration(params.PingTimeout) * time.Millisecond
	c.wg.Add(1)
	go c.read()
	if !opts.NoPing && c.PingInterval > 0 {
		c.wg.Add(1)
		go c.ping()
	}
	select {
	case <-c.connected:
		return c, nil
	case <-c.done:
		err = c.err
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.Close()
	return nil, err
}

// URL returns the URL of a request of the protocol for transport, with the
// client's session id once it has one and the query of Options.
func (c *Client) URL(t Transport) string {
	u := c.base
	q := url.Values{}
	maps.Copy(q, c.opts.Query)
	q.Set("EIO", "3")
	q.Set("transport", string(t))
	q.Set("t", strconv.FormatInt(time.Now().UnixNano(), 36))
	if c.SID != "" {
		q.Set("sid", c.SID)
	}
	if c.opts.Base64 && t == Polling {
		q.Set("b64", "1")
	}
	if t == WebSocket {
		u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Header returns the header of the handshake response.
func (c *Client) Header() http.Header { return c.header }

func (c *Client) dialWebSocket(ctx context.Context) (string, error) {
	ws, resp, err := websocket.DefaultDialer.DialContext(ctx, c.URL(WebSocket), c.opts.Header)
	if err != nil {
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			return "", &StatusError{Code: resp.StatusCode, Body: string(b)}
		}
		return "", err
	}
	c.ws, c.header = ws, resp.Header
	_, msg, err := ws.ReadMessage()
	return string(msg), err
}

func (c *Client) dialPolling(ctx context.Context) (string, error) {
	pkts, h, err := c.poll(ctx)
	if err != nil {
		return "", err
	}
	c.header = h
	if len(pkts) == 0 {
		return "", errPayload
	}
	for _, p := range pkts[1:] {
		c.handle(p) // the Go engine sends one packet per GET; others might not
	}
	return pkts[0], nil
}

// poll makes one polling GET and returns its packets.
func (c *Client) poll(ctx context.Context) ([]string, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL(Polling), nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, nil, err
	}
	pkts, err := DecodePayload([]byte(resp.Body), strings.HasPrefix(resp.Header.Get("Content-Type"), "application/octet-stream"))
	return pkts, resp.Header, err
}

// Response is the answer to a raw polling POST.
type Response struct {
	Status int
	Header http.Header
	Body   string
}

// Post sends body as one polling POST to the client's session, with
// contentType, and returns the answer whatever its status: for malformed
// or oversized payloads. Use SendRaw for well-framed packets.
func (c *Client) Post(ctx context.Context, contentType string, body io.Reader) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL(Polling), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.roundTrip(req)
}

// do sends req with Options.Header and fails on a status other than 200.
func (c *Client) do(req *http.Request) (*Response, error) {
	resp, err := c.roundTrip(req)
	if err == nil && resp.Status != http.StatusOK {
		err = &StatusError{Code: resp.Status, Body: resp.Body}
	}
	return resp, err
}

func (c *Client) roundTrip(req *http.Request) (*Response, error) {
	maps.Copy(req.Header, c.opts.Header)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}, err
}

// SendRaw sends engine.io packets as they are ("42[\"e\"]", "2", garbage):
// one websocket message each, or one polling POST with all of them.
func (c *Client) SendRaw(ctx context.Context, packets ...string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.ws != nil {
		for _, p := range packets {
			if err := c.ws.WriteMessage(websocket.TextMessage, []byte(p)); err != nil {
				return err
			}
		}
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL(Polling), bytes.NewReader(EncodeText(packets...)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	_, err = c.do(req)
	return err
}

// Emit sends event with args, without asking for an ack.
func (c *Client) Emit(ctx context.Context, event string, args ...any) error {
	b, err := json.Marshal(append([]any{event}, args...))
	if err != nil {
		return err
	}
	return c.SendRaw(ctx, "42"+string(b))
}

// EmitAck sends event with args and an ack id (0, 1, … as socket.io-client
// numbers them); the channel receives the server's ack.
func (c *Client) EmitAck(ctx context.Context, event string, args ...any) (<-chan Ack, error) {
	b, err := json.Marshal(append([]any{event}, args...))
	if err != nil {
		return nil, err
	}
	ch := make(chan Ack, 1)
	c.mu.Lock()
	id := c.nextID
	c.nextID++
	c.acks[id] = ch
	c.mu.Unlock()
	if err := c.SendRaw(ctx, "42"+strconv.Itoa(id)+string(b)); err != nil {
		return nil, err
	}
	return ch, nil
}

// Call sends event with args and waits for its ack.
func (c *Client) Call(ctx context.Context, event string, args ...any) ([]json.RawMessage, error) {
	ch, err := c.EmitAck(ctx, event, args...)
	if err != nil {
		return nil, err
	}
	select {
	case a := <-ch:
		return a.Args, nil
	case <-c.done:
		return nil, c.Err()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Events returns the events the server emitted, in order. It is closed
// when the client ends. The client stops reading while it is full (256).
func (c *Client) Events() <-chan Event { return c.events }

// Next returns the next event, or the client's Err once it ended and every
// event was taken.
func (c *Client) Next(ctx context.Context) (Event, error) {
	select {
	case e, ok := <-c.events:
		if !ok {
			return Event{}, c.Err()
		}
		return e, nil
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// Expect returns the next event called name, discarding others.
func (c *Client) Expect(ctx context.Context, name string) (Event, error) {
	for {
		e, err := c.Next(ctx)
		if err != nil || e.Name == name {
			return e, err
		}
	}
}

// Pongs returns how many pongs the server sent.
func (c *Client) Pongs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pongs
}

// Done is closed when the connection ends, by either side.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err says why the connection ended (nil while it is open).
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Close ends the connection as a client does (a close packet, then the
// websocket or the pending GET), and waits for the client's goroutines.
// It is idempotent.
func (c *Client) Close() error {
	select {
	case <-c.done:
	default:
		c.mu.Lock()
		c.closing = true
		c.mu.Unlock()
		if c.ws != nil {
			c.wmu.Lock()
			_ = c.ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			c.wmu.Unlock()
		} else if c.SID != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = c.SendRaw(ctx, string(engineClose))
			cancel()
		}
		c.finish(ErrClosed)
	}
	c.wg.Wait()
	c.hc.CloseIdleConnections()
	return nil
}

// finish ends the client with err, once.
func (c *Client) finish(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
		return
	default:
	}
	if c.closing {
		err = ErrClosed
	}
	c.err = err
	close(c.done)
	c.cancel()
	if c.ws != nil {
		_ = c.ws.Close()
	}
}

// read receives packets until the connection ends.
func (c *Client) read() {
	defer c.wg.Done()
	defer close(c.events)
	for {
		var pkts []string
		var err error
		if c.ws != nil {
			var msg []byte
			if _, msg, err = c.ws.ReadMessage(); err == nil {
				pkts = []string{string(msg)}
			}
		} else {
			pkts, _, err = c.poll(c.ctx)
			for try := 0; try < 100 && c.early(err); try++ {
				time.Sleep(10 * time.Millisecond)
				pkts, _, err = c.poll(c.ctx)
			}
		}
		if err != nil {
			c.finish(err)
			return
		}
		for _, p := range pkts {
			c.handle(p)
		}
		select {
		case <-c.done:
			return
		default:
		}
	}
}

// early reports whether err is the Go engine's answer to a poll that came
// before it registered the session it had just opened (go-socket.io
// v1.7.0 registers a polling session only after the handshake's answer is
// written): 400 "invalid sid value", before the socket.io connect packet.
func (c *Client) early(err error) bool {
	var se *StatusError
	select {
	case <-c.connected:
		return false
	default:
		return errors.As(err, &se) && se.Code == http.StatusBadRequest && strings.HasPrefix(se.Body, "invalid sid value")
	}
}

// ping sends a ping every PingInterval.
func (c *Client) ping() {
	defer c.wg.Done()
	t := time.NewTicker(c.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			_ = c.SendRaw(c.ctx, string(enginePing))
		}
	}
}

// handle dispatches one engine.io packet.
func (c *Client) handle(s string) {
	if s == "" {
		return
	}
	switch s[0] {
	case engineClose:
		c.finish(io.EOF)
	case enginePong:
		c.mu.Lock()
		c.pongs++
		c.mu.Unlock()
	case engineMessage:
		p, err := parsePacket(s[1:])
		if err != nil || p.nsp != "" && p.nsp != "/" {
			return
		}
		c.dispatch(p)
	}
}

// dispatch handles one socket.io packet of the root namespace.
func (c *Client) dispatch(p packet) {
	c.mu.Lock()
	c.seq++
	seq := c.seq
	c.mu.Unlock()
	var args []json.RawMessage
	if (p.typ == '2' || p.typ == '3') && p.data != "" && json.Unmarshal([]byte(p.data), &args) != nil {
		return
	}
	switch p.typ {
	case '0':
		select {
		case <-c.connected:
		default:
			close(c.connected)
		}
	case '1':
		c.finish(errors.New("sio2: server disconnected the socket"))
	case '2':
		var e Event
		if len(args) == 0 || json.Unmarshal(args[0], &e.Name) != nil {
			return
		}
		e.Args = args[1:]
		select {
		case c.events <- e:
		case <-c.ctx.Done():
		}
	case '3':
		c.mu.Lock()
		ch := c.acks[p.id]
		delete(c.acks, p.id)
		c.mu.Unlock()
		if ch != nil {
			ch <- Ack{Args: args, Seq: seq}
		}
	case '4':
		c.finish(fmt.Errorf("sio2: server error packet: %s", p.data))
	}
}
