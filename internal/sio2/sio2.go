// Package sio2 is a small socket.io client for tests. It speaks the real
// wire protocol of socket.io-client 2.x (engine.io protocol 3, socket.io
// protocol 4: EIO=3, the default) or of socket.io-client 3.x and 4.x
// (engine.io protocol 4, socket.io protocol 5: Options.EIO = 4), over
// websocket and over HTTP long-polling, with whatever headers and query a
// test chooses, so a server can be tested the way real clients, and hostile
// ones, reach it.
//
// It knows the root namespace, JSON events and acks, and heartbeats; not
// binary attachments, other namespaces or transport upgrades. Raw packets
// and polling bodies can be sent for malformed-input tests.
//
// In EIO=3 the client pings: it sends "2" every pingInterval of the open
// packet and the server answers "3". The server connects the root
// namespace on its own ("40"). A polling server answers each GET with
// the packets it has (the Go engine: one) and closes nothing on its own: a
// GET that fails ends the client, except the engine's "invalid sid value"
// to the first polls of a session it has not registered yet, which are
// retried for up to a second (see early).
//
// In EIO=4 the server pings: it sends "2" every pingInterval and the client
// answers "3" (unless NoPing). The client connects the root namespace: it
// sends "40", with Options.Auth as a JSON payload if set, and the server
// answers "40{"sid":…}" or refuses with "44{"message":…}" (a
// *ConnectError). Polling payloads are packets separated by the record
// separator \x1e (see EncodeText4). The client gives up on a server whose
// pings stop (ErrPingTimeout). Two habits keep a polling client from
// racing zishang520 v3.0.2: it pauses before each GET (see repoll), and
// Close lets the engine answer the GET that is out (see drain).
package sio2

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
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
	Base64    bool        // polling, EIO=3: ask for text framing (b64=1)
	NoPing    bool        // never ping, or in EIO=4 never pong (the server then times the client out)

	// EIO is the engine.io protocol: 3 (also 0), as socket.io-client 2.x
	// speaks it, or 4, as socket.io-client 3.x and 4.x do.
	EIO int
	// Auth is the payload of the namespace connect in EIO=4, as
	// io(url, {auth: …}) sends it: where the shim's token travels. Nil
	// sends a connect without payload ("40").
	Auth map[string]any

	// AckEvents acks every event of the server that asks for an ack, at
	// once and without arguments, as a socket.io-client handler that calls
	// its callback does. Without it such events are only recorded.
	AckEvents bool

	// NoRepoll drops the pause before each EIO=4 GET (see repoll): the
	// client then polls again the moment an answer arrives, as a fast
	// client does, which the bare zishang520 engine does not survive.
	NoRepoll bool

	// NetDial, if set, dials the client's TCP connections (the websocket,
	// the polling requests) instead of a net.Dialer: a test can keep them
	// to break them (an abrupt reset, a stalled peer).
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
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

// ConnectError is the server's refusal of the namespace connect in EIO=4:
// a CONNECT_ERROR packet, "44{"message":…,"data":…}". Dial returns it.
type ConnectError struct {
	Message string
	Data    json.RawMessage // absent: nil
}

func (e *ConnectError) Error() string {
	return "sio2: the server refused the namespace connect: " + e.Message
}

// ErrClosed is the Err of a client closed by Close.
var ErrClosed = errors.New("sio2: client closed")

// ErrConnectUnanswered is in the error of an EIO=4 Dial whose namespace
// connect got no answer before ctx ended or the connection did, with the
// cause. (zishang520 v3.0.2 drops a connect that arrives before it listens
// to the new session: a race of the server.)
var ErrConnectUnanswered = errors.New("sio2: the server did not answer the namespace connect")

// ErrPingTimeout is the Err of an EIO=4 client that got no ping for
// PingInterval+PingTimeout: the server is gone, or dropped the session
// without a word (zishang520 v3.0.2 never answers the pending GET of a
// polling session it closes).
var ErrPingTimeout = errors.New("sio2: ping timeout: no ping from the server")

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
	SocketID                  string // EIO=4: the socket's id, of the connect answer
	MaxPayload                int    // EIO=4: the open packet's maxPayload, in bytes

	ctx    context.Context // ends when the client ends
	cancel context.CancelFunc
	wmu    sync.Mutex // one websocket write or polling POST at a time
	wg     sync.WaitGroup
	events chan Event
	pinged chan struct{} // EIO=4: a ping arrived

	mu        sync.Mutex
	nextID    int
	acks      map[int]chan Ack
	seq       uint64
	pongs     int           // EIO=3: pongs received
	pings     int           // EIO=4: pings received
	closing   bool          // Close has begun
	polling   bool          // EIO=4: a GET is out
	connected chan struct{} // closed at the socket.io connect packet
	done      chan struct{}
	err       error
}

// Dial connects to the socket.io server at serverURL ("http://host:port")
// and returns once the server has sent the socket.io connect packet, in
// EIO=4 the answer to the client's. An HTTP refusal is a *StatusError, a
// refused namespace connect a *ConnectError; a connect the server leaves
// unanswered fails at the end of ctx, or of the connection, with
// ErrConnectUnanswered. Dial does not retry.
func Dial(ctx context.Context, serverURL string, opts Options) (*Client, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, err
	}
	switch opts.EIO {
	case 0:
		opts.EIO = 3
	case 3, 4:
	default:
		return nil, fmt.Errorf("sio2: unsupported engine.io protocol %d", opts.EIO)
	}
	if opts.Transport == "" {
		opts.Transport = WebSocket
	}
	if opts.Path == "" {
		opts.Path = "/socket.io/"
	}
	u.Path, u.RawQuery = opts.Path, ""
	c := &Client{opts: opts, base: *u, acks: make(map[int]chan Ack),
		events: make(chan Event, 256), pinged: make(chan struct{}, 1), connected: make(chan struct{}), done: make(chan struct{}),
		hc: &http.Client{Transport: &http.Transport{DialContext: opts.NetDial}}}
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
	if err := c.open(open); err != nil {
		c.finish(err)
		c.Close()
		return nil, c.err
	}
	c.wg.Add(1)
	go c.read()
	switch {
	case c.v4() && c.PingInterval > 0:
		c.wg.Add(1)
		go c.watch()
	case !c.v4() && !opts.NoPing && c.PingInterval > 0:
		c.wg.Add(1)
		go c.ping()
	}
	if c.v4() {
		err = c.connect(ctx)
	}
	if err == nil {
		err = c.awaitConnect(ctx)
	}
	if err == nil {
		return c, nil
	}
	c.Close()
	return nil, err
}

// v4 reports whether the client speaks engine.io protocol 4.
func (c *Client) v4() bool { return c.opts.EIO == 4 }

// open reads the parameters of the engine's open packet.
func (c *Client) open(pkt string) error {
	var params struct {
		SID                       string
		PingInterval, PingTimeout int
		MaxPayload                int
	}
	if len(pkt) == 0 || pkt[0] != engineOpen || json.Unmarshal([]byte(pkt[1:]), &params) != nil {
		return fmt.Errorf("sio2: expected an open packet, got %q", pkt)
	}
	c.SID = params.SID
	c.PingInterval = time.Duration(params.PingInterval) * time.Millisecond
	c.PingTimeout = time.Duration(params.PingTimeout) * time.Millisecond
	c.MaxPayload = params.MaxPayload
	return nil
}

// connect sends the EIO=4 namespace connect of the root namespace, with
// Options.Auth as its payload.
func (c *Client) connect(ctx context.Context) error {
	pkt := "40"
	if c.opts.Auth != nil {
		b, err := json.Marshal(c.opts.Auth)
		if err != nil {
			return err
		}
		pkt += string(b)
	}
	return c.SendRaw(ctx, pkt)
}

// awaitConnect waits for the socket.io connect packet.
func (c *Client) awaitConnect(ctx context.Context) error {
	select {
	case <-c.connected:
		return nil
	case <-c.done:
		var ce *ConnectError
		if c.v4() && !errors.As(c.err, &ce) {
			return fmt.Errorf("%w: the connection ended: %w", ErrConnectUnanswered, c.err)
		}
		return c.err
	case <-ctx.Done():
		if c.v4() {
			return fmt.Errorf("%w: %w", ErrConnectUnanswered, ctx.Err())
		}
		return ctx.Err()
	}
}

// URL returns the URL of a request of the protocol for transport, with the
// client's session id once it has one and the query of Options.
func (c *Client) URL(t Transport) string {
	u := c.base
	q := url.Values{}
	maps.Copy(q, c.opts.Query)
	q.Set("EIO", strconv.Itoa(c.opts.EIO))
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
	d := *websocket.DefaultDialer
	d.NetDialContext = c.opts.NetDial
	ws, resp, err := d.DialContext(ctx, c.URL(WebSocket), c.opts.Header)
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
	if c.v4() {
		return DecodePayload4([]byte(resp.Body)), resp.Header, nil
	}
	pkts, err := DecodePayload([]byte(resp.Body), strings.HasPrefix(resp.Header.Get("Content-Type"), "application/octet-stream"))
	return pkts, resp.Header, err
}

// Payload frames packets for a polling POST in the client's protocol:
// EncodeText in EIO=3, EncodeText4 in EIO=4.
func (c *Client) Payload(packets ...string) []byte {
	if c.v4() {
		return EncodeText4(packets...)
	}
	return EncodeText(packets...)
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
// one websocket message each, or one polling POST with all of them, framed
// by Payload.
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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL(Polling), bytes.NewReader(c.Payload(packets...)))
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

// Pongs returns how many pongs the server sent (EIO=3).
func (c *Client) Pongs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pongs
}

// Pings returns how many pings the server sent (EIO=4), answered or not.
func (c *Client) Pings() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pings
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
// websocket or the pending GET, which an EIO=4 engine is given a second to
// answer), and waits for the client's goroutines. It is idempotent.
func (c *Client) Close() error {
	select {
	case <-c.done:
	default:
		c.mu.Lock()
		c.closing = true
		polling := c.polling
		c.mu.Unlock()
		if c.ws != nil {
			c.wmu.Lock()
			_ = c.ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			c.wmu.Unlock()
		} else if c.SID != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := c.SendRaw(ctx, string(engineClose))
			cancel()
			if err == nil && polling {
				c.drain()
			}
		}
		c.finish(ErrClosed)
	}
	c.wg.Wait()
	c.hc.CloseIdleConnections()
	return nil
}

// drain waits up to a second for the read loop to end on its own after
// the close packet of an EIO=4 polling client with a GET out: the engine
// answers the GET (a noop packet), and the loop sends no other. Aborting
// that GET instead trips a data race inside zishang520 v3.0.2
// (HttpContext.Cleanup) under the race detector.
func (c *Client) drain() {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
	}
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
			var typ int
			var msg []byte
			if typ, msg, err = c.ws.ReadMessage(); err == nil && typ == websocket.TextMessage {
				pkts = []string{string(msg)} // binary frames: not supported, dropped
			}
		} else {
			if c.v4() && !c.startPoll() {
				c.finish(ErrClosed)
				return
			}
			pkts, _, err = c.poll(c.ctx)
			for try := 0; try < 100 && c.early(err); try++ {
				time.Sleep(10 * time.Millisecond)
				pkts, _, err = c.poll(c.ctx)
			}
			c.mu.Lock()
			c.polling = false
			c.mu.Unlock()
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

// repoll is the pause of an EIO=4 polling client before each GET.
// zishang520 v3.0.2 clears its slot of the pending GET a second time just
// after it writes a GET's answer (HttpContext.Write runs the cleanup that
// DoWrite already ran); a GET that arrives before that is forgotten, the
// engine's next write to it fails ("polling write error") and the session
// closes, without answering the GET. Browsers are rarely that fast; the
// pause keeps the client from racing the server.
const repoll = 5 * time.Millisecond

// startPoll pauses before an EIO=4 GET (see repoll) and reports whether
// to send it: not once Close has begun, so that the close packet finds
// either a GET the engine holds, which it answers, or none.
func (c *Client) startPoll() bool {
	if !c.opts.NoRepoll {
		t := time.NewTimer(repoll)
		defer t.Stop()
		select {
		case <-c.ctx.Done():
		case <-t.C:
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.polling = !c.closing
	return c.polling
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

// ping sends a ping every PingInterval (EIO=3).
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

// watch ends the client when the server's pings stop (EIO=4), as
// socket.io-client does: after PingInterval+PingTimeout without one.
func (c *Client) watch() {
	defer c.wg.Done()
	d := c.PingInterval + c.PingTimeout
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.pinged:
			t.Reset(d)
		case <-t.C:
			c.finish(ErrPingTimeout)
			return
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
	case enginePing:
		c.onPing(s[1:])
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

// onPing answers a ping of the server with a pong of the same data, in
// EIO=4 and unless NoPing. (An EIO=3 server does not ping.)
func (c *Client) onPing(data string) {
	if !c.v4() {
		return
	}
	c.mu.Lock()
	c.pings++
	c.mu.Unlock()
	select {
	case c.pinged <- struct{}{}:
	default:
	}
	if !c.opts.NoPing {
		_ = c.SendRaw(c.ctx, string(enginePong)+data)
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
		c.connectPacket(p.data)
	case '1':
		c.finish(errors.New("sio2: server disconnected the socket"))
	case '2':
		var e Event
		if len(args) == 0 || json.Unmarshal(args[0], &e.Name) != nil {
			return
		}
		e.Args = args[1:]
		if p.id >= 0 && c.opts.AckEvents {
			go func() { _ = c.SendRaw(c.ctx, "43"+strconv.Itoa(p.id)+"[]") }()
		}
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
		if c.v4() {
			c.finish(connectError(p.data))
			return
		}
		c.finish(fmt.Errorf("sio2: server error packet: %s", p.data))
	}
}

// connectPacket handles the socket.io connect packet: in EIO=4 the answer
// to the client's, with the socket's id.
func (c *Client) connectPacket(data string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.connected:
		return
	default:
	}
	if c.v4() {
		var v struct{ SID string }
		_ = json.Unmarshal([]byte(data), &v)
		c.SocketID = v.SID
	}
	close(c.connected)
}

// connectError reads the payload of an EIO=4 CONNECT_ERROR packet: an
// object with a message and perhaps data, or (older servers) a string.
func connectError(data string) *ConnectError {
	var v struct {
		Message string
		Data    json.RawMessage
	}
	if json.Unmarshal([]byte(data), &v) == nil && v.Message != "" {
		return &ConnectError{Message: v.Message, Data: v.Data}
	}
	var msg string
	if json.Unmarshal([]byte(data), &msg) != nil {
		msg = data
	}
	return &ConnectError{Message: msg}
}
