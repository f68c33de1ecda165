package zishang520

// The socket.io Admin UI (npm @socket.io/admin-ui 0.5.1) is a page that
// connects to a socket.io server and shows its servers, sockets, rooms
// and events. Its server side, instrument() in the package's dist/index.js,
// is Node only; AdminUI speaks the same protocol on the engine. The facts
// relied on, read from dist/index.js, dist/typed-events.d.ts and the UI's
// sources (ui/dist/js/app.*.js.map: App.vue, store/modules/*.js):
//
//   - The UI connects to namespace "/admin" (its form's default) with
//     auth {username, password}, or {sessionId} when it reconnects with
//     the id a former login sent it in event "session" (kept in its
//     localStorage). A refusal is a connect error with message
//     "invalid credentials", which the UI shows as such.
//   - On connect the server emits "config" {supportedFeatures: [...]}:
//     "DISCONNECT", "JOIN", "LEAVE" (and EMIT, MJOIN, MLEAVE, MDISCONNECT,
//     not offered here) let the UI act; "ALL_EVENTS" is development mode
//     (events listed); without "AGGREGATED_EVENTS" the UI does not draw
//     its byte and connection charts. In development mode the server then
//     emits "all_sockets" [socket...], which replaces the UI's list.
//   - A socket is {id, clientId, transport, nsp, data, handshake: {address,
//     headers, query, issued (ms since epoch: the UI's creation date),
//     secure, time, url, xdomain}, rooms: [...]}. The UI groups sockets by
//     clientId (its "clients") and shows data as JSON.
//   - Server → UI, to every admin socket: "server_stats" {serverId,
//     hostname, pid, uptime (s), clientsCount, pollingClientsCount,
//     namespaces: [{name, socketsCount}]} every 2 s (a server is shown
//     unhealthy after 10 s without one); "socket_connected" (socket, date);
//     "socket_updated" (partial socket with id and nsp, merged into the
//     UI's); "socket_disconnected" (nsp, id, reason, date); "room_joined"
//     and "room_left" (nsp, room, id, date); "event_received" and
//     "event_sent" (nsp, id, [event, args...], date). Dates are ISO 8601.
//   - UI → server: "_disconnect" (nsp, close, id), "join" (nsp, room, id),
//     "leave" (nsp, room, id): with the features above (not the M ones),
//     the third argument is one socket's id.
//
// What differs from instrument(): the password is checked whole, in
// constant time (instrument takes a bcrypt hash, which ignores bytes past
// the 72nd); only namespace "/" is shown; the handshake shown is redacted
// (see adminHandshake); clientId is a hash of the engine connection's id,
// which is a credential on the polling transport; server_stats carry no
// aggregated events.

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/iosessions/iosessions"
)

// DefaultAdminNamespace is the default of AdminUIOptions.Namespace, and
// the Admin UI's own default: "/admin".
const DefaultAdminNamespace = "/admin"

// AdminUIOptions configure Server.AdminUI.
type AdminUIOptions struct {
	// Username and Password are the login the Admin UI must send. Both
	// are required; both are compared whole and in constant time.
	Username string
	Password string

	// Namespace is the namespace the UI connects to. Default
	// DefaultAdminNamespace.
	Namespace string

	// Events turns on the UI's development mode: every event a socket of
	// the root namespace receives or is sent is shown, with its
	// arguments as the application sends them. Leave it off if those
	// arguments may hold secrets. Default off: the UI lists servers,
	// sockets and rooms only.
	Events bool

	// ReadOnly hides the UI's actions (disconnect, join, leave) and
	// ignores them if they come anyway. Default off.
	ReadOnly bool
}

// Errors of AdminUI.
var (
	// ErrAdminUIEnabled is what a second call of AdminUI returns.
	ErrAdminUIEnabled = errors.New("zishang520: Admin UI already enabled")
	// ErrClosed is what AdminUI returns after Close.
	ErrClosed = errors.New("zishang520: server closed")
)

// adminSessionTTL is how long the id a login gives the UI (event
// "session") lets it reconnect without the password.
const adminSessionTTL = 12 * time.Hour

// adminStatsEvery is how often every node sends its server_stats.
const adminStatsEvery = 2 * time.Second

// adminQueue is how many notes wait for the admin loop at most; more are
// dropped (the UI's view may then miss an event until it reconnects).
const adminQueue = 4096

// adminSocketsEvent asks the other nodes, through the adapter, to send
// their sockets to one admin socket.
const adminSocketsEvent = "iosessions:admin:sockets"

// processStart stands for the process's start: uptime in server_stats.
var processStart = time.Now()

// adminUI serves the Admin UI's protocol. Its loop goroutine owns the
// table of root sockets and makes every emit to the admin namespace, in
// the order the notes came, so that the UI never sees a socket's
// disconnection before its connection.
type adminUI struct {
	s      *Server
	opts   AdminUIOptions
	nsp    socket.Namespace
	root   socket.Namespace
	user   [sha256.Size]byte
	pass   [sha256.Size]byte
	server string // server id: the Manager's node
	host   string

	notes chan func(*adminState)
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once

	mu       sync.Mutex
	sessions map[[sha256.Size]byte]time.Time // hashes of admin session ids, to their expiry
}

// adminState is what the loop owns.
type adminState struct {
	socks map[socket.SocketId]*watched
}

// watched is a root socket as the loop knows it.
type watched struct {
	s      *socket.Socket
	user   string // the session's user, once loaded
	loaded bool
}

// AdminUI serves the protocol of the socket.io Admin UI (npm
// @socket.io/admin-ui, its ui/dist page) on namespace opts.Namespace,
// for the login opts.Username / opts.Password: the UI lists this server
// (named by Manager.Node), the sockets of the root namespace with their
// transport, rooms, redacted handshake and, in data, their session's
// user, and can disconnect a socket or make it join or leave a room. An
// empty username or password is an error wrapping iosessions.ErrConfig.
//
// Call it once, before serving and after the engine's adapter is set.
// With an adapter that spans nodes (the engine's Redis adapter), call it
// on every node: each node then reports its own stats and sockets to
// every admin socket, and actions reach the socket on whichever node it
// is. The page must come from an origin the Manager allows.
//
// Nothing of a session's id, cookie or shim token is shown: headers and
// query parameters are whitelisted (see adminHandshake), the auth payload
// is never shown. With opts.Events, event arguments are shown as they are.
func (s *Server) AdminUI(opts AdminUIOptions) error {
	if opts.Username == "" || opts.Password == "" {
		return fmt.Errorf("%w: Admin UI needs a username and a password", iosessions.ErrConfig)
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultAdminNamespace
	}
	if !strings.HasPrefix(opts.Namespace, "/") || opts.Namespace == "/" {
		return fmt.Errorf("%w: Admin UI namespace %q", iosessions.ErrConfig, opts.Namespace)
	}
	a := &adminUI{
		s:        s,
		opts:     opts,
		user:     sha256.Sum256([]byte(opts.Username)),
		pass:     sha256.Sum256([]byte(opts.Password)),
		server:   s.m.Node(),
		notes:    make(chan func(*adminState), adminQueue),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		sessions: make(map[[sha256.Size]byte]time.Time),
	}
	a.host, _ = os.Hostname()
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return ErrClosed
	case s.admin != nil:
		s.mu.Unlock()
		return ErrAdminUIEnabled
	}
	s.admin = a
	s.mu.Unlock()

	a.root = s.io.Sockets()
	a.nsp = s.io.Of(opts.Namespace, nil)
	a.nsp.Use(a.authenticate)
	if err := a.nsp.On("connection", a.onAdmin); err != nil {
		return err
	}
	if err := a.nsp.On(adminSocketsEvent, a.onSocketsWanted); err != nil {
		return err
	}
	if err := s.io.On("connection", a.onRoot); err != nil {
		return err
	}
	ad := a.root.Adapter()
	if err := ad.On("join-room", func(args ...any) { a.onRoom("room_joined", args) }); err != nil {
		return err
	}
	if err := ad.On("leave-room", func(args ...any) { a.onRoom("room_left", args) }); err != nil {
		return err
	}
	go a.loop()
	return nil
}

// close stops the loop and waits for it. It is idempotent.
func (a *adminUI) close() {
	a.once.Do(func() { close(a.stop) })
	<-a.done
}

// note hands f to the loop; it drops f when the queue is full or the loop
// stopped. It never blocks.
func (a *adminUI) note(f func(*adminState)) {
	select {
	case <-a.stop:
	case a.notes <- f:
	default:
	}
}

func (a *adminUI) loop() {
	defer close(a.done)
	st := &adminState{socks: make(map[socket.SocketId]*watched)}
	t := time.NewTicker(adminStatsEvery)
	defer t.Stop()
	a.stats(st)
	for {
		select {
		case <-a.stop:
			return
		case f := <-a.notes:
			_ = a.s.guard("admin ui", func() error { f(st); return nil })
		case <-t.C:
			_ = a.s.guard("admin ui", func() error { a.stats(st); return nil })
		}
	}
}

// emit sends ev to every admin socket (on every node, with an adapter
// that spans nodes), or, with to, to that admin socket only (on any node).
func (a *adminUI) emit(to socket.SocketId, ev string, args ...any) {
	for i, v := range args {
		args[i] = asJSON(v)
	}
	room := adminRoom
	if to != "" {
		room = socket.Room(to)
	}
	// To a room, not Namespace.Emit: the engine's Redis adapter (v3.0.2)
	// carried only room broadcasts to the other nodes when tried.
	_ = a.nsp.To(room).Emit(ev, args...)
}

// adminRoom is the room of every admin socket, on every node.
const adminRoom socket.Room = "iosessions:admin"

// authenticate is the admin namespace's middleware: the login, or the id
// of an earlier login, else "invalid credentials".
func (a *adminUI) authenticate(sock *socket.Socket, next func(*socket.ExtendedError)) {
	var auth map[string]any
	if h := sock.Handshake(); h != nil {
		auth = h.Auth
	}
	str := func(k string) string { v, _ := auth[k].(string); return v }
	if id := str("sessionId"); id != "" && a.validSession(id) {
		next(nil)
		return
	}
	u := sha256.Sum256([]byte(str("username")))
	p := sha256.Sum256([]byte(str("password")))
	// Both compared, whatever the first says: the time tells nothing.
	ok := subtle.ConstantTimeCompare(u[:], a.user[:]) & subtle.ConstantTimeCompare(p[:], a.pass[:])
	if ok != 1 {
		next(socket.NewExtendedError("invalid credentials", nil))
		return
	}
	sock.SetData(adminLogin{})
	next(nil)
}

// adminLogin marks, in the admin socket's data, a login by password: it
// gets a session id.
type adminLogin struct{}

// newSession returns a fresh admin session id, and keeps its hash.
func (a *adminUI) newSession() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, exp := range a.sessions {
		if now.After(exp) {
			delete(a.sessions, k)
		}
	}
	a.sessions[sha256.Sum256([]byte(id))] = now.Add(adminSessionTTL)
	return id
}

func (a *adminUI) validSession(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.sessions[sha256.Sum256([]byte(id))]
	return ok && time.Now().Before(exp)
}

// features are the UI's supportedFeatures for these options.
func (a *adminUI) features() []string {
	var f []string
	if !a.opts.ReadOnly {
		f = append(f, "JOIN", "LEAVE", "DISCONNECT")
	}
	if a.opts.Events {
		f = append(f, "ALL_EVENTS")
	}
	if f == nil {
		f = []string{}
	}
	return f
}

// onAdmin runs when an admin socket connected.
func (a *adminUI) onAdmin(args ...any) {
	_ = a.s.guard("admin connect", func() error {
		sock, ok := first[*socket.Socket](args)
		if !ok {
			return nil
		}
		if !a.opts.ReadOnly {
			a.actions(sock)
		}
		var session string
		if _, ok := sock.Data().(adminLogin); ok {
			session = a.newSession()
		}
		id := sock.Id()
		sock.Join(adminRoom)
		a.note(func(st *adminState) {
			if session != "" {
				a.emit(id, "session", session)
			}
			a.emit(id, "config", map[string]any{"supportedFeatures": a.features()})
			a.emit(id, "all_sockets", a.all(st))
			a.stats(st)
			// Then the other nodes send theirs, after all_sockets, which
			// resets the UI's list (an adapter that spans nodes carries
			// the request; the in-memory one has no other node).
			_ = a.nsp.ServerSideEmit(adminSocketsEvent, string(id))
		})
		return nil
	})
}

// onSocketsWanted runs when another node's admin socket connected: this
// node sends it its sockets.
func (a *adminUI) onSocketsWanted(args ...any) {
	id, ok := first[string](args)
	if !ok {
		return
	}
	a.note(func(st *adminState) {
		for _, w := range st.sorted() {
			a.emit(socket.SocketId(id), "socket_connected", a.serialize(w), now())
		}
	})
}

// actions registers the UI's actions on an admin socket. They reach the
// target socket through the root namespace's adapter: on any node.
func (a *adminUI) actions(sock *socket.Socket) {
	target := func(args []any) (socket.SocketId, bool) {
		if len(args) < 3 {
			return "", false
		}
		nsp, _ := args[0].(string)
		id, _ := args[2].(string)
		return socket.SocketId(id), nsp == "/" && id != ""
	}
	_ = sock.On("_disconnect", func(args ...any) {
		_ = a.s.guard("admin disconnect", func() error {
			if id, ok := target(args); ok {
				closeConn, _ := args[1].(bool)
				a.root.In(socket.Room(id)).DisconnectSockets(closeConn)
			}
			return nil
		})
	})
	for _, ev := range []string{"join", "leave"} {
		_ = sock.On(ev, func(args ...any) {
			_ = a.s.guard("admin "+ev, func() error {
				id, ok := target(args)
				room, _ := args[1].(string)
				if !ok || room == "" {
					return nil
				}
				if ev == "join" {
					a.root.In(socket.Room(id)).SocketsJoin(socket.Room(room))
				} else {
					a.root.In(socket.Room(id)).SocketsLeave(socket.Room(room))
				}
				return nil
			})
		})
	}
}

// onRoot runs when a socket connected to the root namespace, after the
// binding's own listener (which registered it with the Manager).
func (a *adminUI) onRoot(args ...any) {
	_ = a.s.guard("admin watch", func() error {
		sock, ok := first[*socket.Socket](args)
		if !ok {
			return nil
		}
		id := sock.Id()
		a.note(func(st *adminState) {
			w := &watched{s: sock}
			st.socks[id] = w
			a.emit("", "socket_connected", a.serialize(w), now())
		})
		if core := a.s.m.Socket(string(id)); core != nil {
			// User waits for the session's load: not on the engine's
			// goroutine. It ends when Open has loaded the session.
			go func() {
				user := core.User()
				a.note(func(st *adminState) {
					w := st.socks[id]
					if w == nil {
						return // gone already
					}
					w.user, w.loaded = user, true
					a.emit("", "socket_updated", map[string]any{"id": id, "nsp": "/", "data": a.data(w)})
				})
			}()
		}
		if err := sock.On("disconnect", func(reason ...any) {
			r, _ := first[string](reason)
			a.note(func(st *adminState) {
				delete(st.socks, id)
				a.emit("", "socket_disconnected", "/", id, r, now())
			})
		}); err != nil {
			return err
		}
		if err := sock.Conn().On("upgrade", func(...any) {
			a.note(func(*adminState) {
				a.emit("", "socket_updated", map[string]any{"id": id, "nsp": "/", "transport": transportName(sock)})
			})
		}); err != nil {
			return err
		}
		if a.opts.Events {
			sock.OnAny(func(args ...any) { a.onEvent("event_received", id, args) })
			sock.OnAnyOutgoing(func(args ...any) { a.onEvent("event_sent", id, args) })
		}
		return nil
	})
}

// onEvent reports an event of a root socket: its name and arguments,
// without an ack callback.
func (a *adminUI) onEvent(kind string, id socket.SocketId, args []any) {
	out := make([]any, 0, len(args))
	for _, v := range args {
		switch v.(type) {
		case socket.Ack:
			continue
		}
		out = append(out, v)
	}
	at := now()
	a.note(func(*adminState) { a.emit("", kind, "/", id, out, at) })
}

// onRoom reports a root socket joining or leaving a room: the adapter's
// "join-room" and "leave-room" (room, id).
func (a *adminUI) onRoom(kind string, args []any) {
	if len(args) < 2 {
		return
	}
	room, _ := args[0].(socket.Room)
	id, _ := args[1].(socket.SocketId)
	at := now()
	a.note(func(*adminState) { a.emit("", kind, "/", room, id, at) })
}

// stats sends this node's server_stats.
func (a *adminUI) stats(st *adminState) {
	polling := 0
	for _, w := range st.socks {
		if transportName(w.s) == "polling" {
			polling++
		}
	}
	a.emit("", "server_stats", map[string]any{
		"serverId":            a.server,
		"hostname":            a.host,
		"pid":                 os.Getpid(),
		"uptime":              time.Since(processStart).Seconds(),
		"clientsCount":        a.s.io.Engine().ClientsCount(),
		"pollingClientsCount": polling,
		"namespaces": []map[string]any{
			{"name": "/", "socketsCount": a.root.Sockets().Len()},
			{"name": a.opts.Namespace, "socketsCount": a.nsp.Sockets().Len()},
		},
	})
}

// sorted returns the watched sockets in the order they connected.
func (st *adminState) sorted() []*watched {
	out := make([]*watched, 0, len(st.socks))
	for _, w := range st.socks {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].s.Handshake().Issued < out[j].s.Handshake().Issued
	})
	return out
}

// all is the all_sockets list of this node.
func (a *adminUI) all(st *adminState) []adminSocket {
	ws := st.sorted()
	out := make([]adminSocket, len(ws))
	for i, w := range ws {
		out[i] = a.serialize(w)
	}
	return out
}

// adminSocket is a socket as the UI shows it.
type adminSocket struct {
	ID        string         `json:"id"`
	ClientID  string         `json:"clientId"`
	Transport string         `json:"transport"`
	Nsp       string         `json:"nsp"`
	Data      map[string]any `json:"data"`
	Handshake adminHandshake `json:"handshake"`
	Rooms     []string       `json:"rooms"`
}

// adminHandshake is the handshake the UI shows, redacted: only the
// headers of shownHeaders and the query parameters of shownQuery, so no
// Cookie, Authorization or other credential, and no shim token; the
// auth payload (where socket.io 3/4 clients send the token) is never
// shown.
type adminHandshake struct {
	Address string            `json:"address"`
	Headers map[string]string `json:"headers"`
	Query   map[string]string `json:"query"`
	Issued  int64             `json:"issued"`
	Secure  bool              `json:"secure"`
	Time    string            `json:"time"`
	URL     string            `json:"url"`
	Xdomain bool              `json:"xdomain"`
}

// shownHeaders are the handshake headers the UI may show, with Host.
var shownHeaders = []string{"Origin", "User-Agent", "Accept-Language", "Connection", "Upgrade", "Sec-Websocket-Version"}

// shownQuery are the handshake query parameters the UI may show.
var shownQuery = []string{"EIO", "transport"}

// serialize describes w for the UI.
func (a *adminUI) serialize(w *watched) adminSocket {
	s := w.s
	rooms := s.Rooms().Keys()
	rs := make([]string, len(rooms))
	for i, r := range rooms {
		rs[i] = string(r)
	}
	sort.Strings(rs)
	hs := adminHandshake{Headers: map[string]string{}, Query: map[string]string{}}
	if h := s.Handshake(); h != nil {
		hs.Address, hs.Issued, hs.Secure, hs.Time, hs.Xdomain = h.Address, h.Issued, h.Secure, h.Time, h.Xdomain
	}
	if hc := s.Request(); hc != nil && hc.Request() != nil {
		r := hc.Request()
		if r.Host != "" { // Go keeps it out of Header
			hs.Headers["host"] = r.Host
		}
		for _, k := range shownHeaders {
			if v := r.Header.Values(k); len(v) > 0 {
				hs.Headers[strings.ToLower(k)] = strings.Join(v, ", ")
			}
		}
		q := r.URL.Query()
		shown := url.Values{}
		for _, k := range shownQuery {
			if q.Has(k) {
				hs.Query[k] = q.Get(k)
				shown.Set(k, q.Get(k))
			}
		}
		hs.URL = (&url.URL{Path: r.URL.Path, RawQuery: shown.Encode()}).String()
	}
	return adminSocket{
		ID:        string(s.Id()),
		ClientID:  a.clientID(s),
		Transport: transportName(s),
		Nsp:       "/",
		Data:      a.data(w),
		Handshake: hs,
		Rooms:     rs,
	}
}

// data is a socket's data as the UI shows it: its node and, once its
// session is loaded, its user.
func (a *adminUI) data(w *watched) map[string]any {
	d := map[string]any{"node": a.server}
	if w.loaded && w.user != "" {
		d["user"] = w.user
	}
	return d
}

// clientID names the socket's engine connection for the UI: a hash of
// its id, which a polling client presents as its credential.
func (a *adminUI) clientID(s *socket.Socket) string {
	h := sha256.Sum256([]byte("iosessions admin client\x00" + s.Conn().Id()))
	return hex.EncodeToString(h[:6])
}

// transportName is the transport s runs on now.
func transportName(s *socket.Socket) string {
	if t := s.Conn().Transport(); t != nil {
		return t.Name()
	}
	return ""
}

// now is a date as the UI reads it (JavaScript's Date in JSON).
func now() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000Z") }
