// Package iosessions brings gorilla/sessions cookie sessions into
// socket.io connections: a socket handler knows who is on the other end,
// can change the session, and stops acting for a user who logged out. The
// root package is the engine-agnostic core; a subpackage binds each
// socket.io engine (googollee for github.com/googollee/go-socket.io,
// socket.io 1.x/2.x clients).
//
// # Setup
//
// New takes any sessions.Store (nil means an in-memory MemoryStore) and a
// Config whose zero fields are documented defaults. Mount the binding's
// server under "/socket.io/" through Manager.Middleware, which also serves
// the client shim, and register handlers:
//
//   - sconnection (Manager.OnConnection): once per socket that connected
//     with a valid session, with that session;
//   - smessage (the binding's OnMessage): for every event, with the
//     session, as the mode says;
//   - sinvalid (Manager.OnInvalid): a socket without a usable session, or
//     whose session ended. The client receives the event "sinvalid" with
//     {"reason": text}.
//
// A Cutter finds the session key (the store's cookie value) in the
// handshake: the session cookie by default, then the shim's token.
//
// # Per connection
//
// In PerConnection mode (the default) the session is loaded once, at
// connect, and the sockets of one session on one node share one live copy
// of it, their events serialized on it. It is saved when the last of those
// sockets disconnects, at Shutdown, every Config.FlushInterval if set, and
// when a handler calls Session.Save. A save writes only the keys changed
// since the last save, onto the session as the store holds it then: it
// never brings back a session destroyed meanwhile (a logout wins) and never
// rolls back keys changed over HTTP. With a store that is a ChangeNotifier
// (MemoryStore, iosredis), an HTTP save reaches the live copy at once, and
// OnChange runs for its sockets. What it can lose: changes made since the
// last save when the process crashes; and when two places change the same
// key, the last write wins.
//
// # Per message
//
// In PerMessage mode every event reloads the session (one store load),
// runs the handler, and saves what changed (at most one store write, none
// when nothing changed) before the ack is sent. Events of one session are
// serialized in this process, so two tabs never lose each other's writes.
// A session destroyed meanwhile is not brought back; the socket is told
// instead.
//
// # Users, presence and push
//
// With Config.User, the Manager knows whose each session is. It keeps a
// registry of the live sockets by user and by session, on one node in
// memory or across nodes in a store that is a Directory (iosredis):
// SocketsOf, SessionsOf, Users and Online answer for the whole cluster.
// Push emits to every socket of a user (ToUser), a session (ToSession) or
// one socket (ToSocket), on every node, and counts the acks. OnPresence
// hears each user and session come online and go offline, once per change
// across the cluster; Config.Grace keeps a reload from flapping, and a
// node that dies is taken out after Config.NodeTTL. A store that is a
// PushFeed (iosredis) delivers pushes that other processes publish.
//
// # Rotation
//
// Rotate gives a session a new id with the same values and moves its
// sockets, on every node, to it: they keep their session. Renew, for
// login, starts an empty session and ends the old one's sockets.
//
// # Operators
//
// Inspect lists the live sockets of the cluster by user and session (a
// session shown only by its opaque reference), with their rooms and
// addresses; Disconnect ends one socket, one session's or one user's.
// AdminHandler serves both over HTTP behind a check the application
// gives (BearerToken).
//
// # Stores
//
// Any sessions.Store works. Stores may implement Loader (precise reasons,
// deadlines), Updater (atomic apply of a socket's changes) and Notifier
// (sessions that end reach their sockets at once); MemoryStore implements
// all three. Stores without Updater are saved by reload, apply and save.
// sessions.CookieStore keeps the session in the browser: sockets read it,
// and their changes reach the cookie through the shim's write-back (a
// signed, single-use, versioned Set-Cookie that the shim fetches at once
// from WritebackPath; see writeback.go). Clients without the shim get
// ErrClientSideStore from Session.Save.
//
// # Shim
//
// Middleware serves /socket.io/socket.io-sessions.js, which defines
// io.connectWithSession(url, opts) (and io.SessionSocket, its old name)
// for clients that cannot send the cookie. It inlines a token minted for
// the request's session: signed and encrypted with securecookie, valid for
// Config.TokenTTL (two minutes), never the session id or cookie. Before a
// reconnect with an expired token the shim fetches a fresh one.
//
// # Security
//
// A browser handshake (one with an Origin header) from an origin that is
// neither the server's own nor in Config.AllowedOrigins is refused
// (ErrOrigin); only UnsafeAllowAnyOrigin turns this off. Session ids,
// cookies and tokens are never logged nor sent to clients in clear. A
// panic in any handler is recovered and reported as a *PanicError to
// Config.ErrorHandler.
//
// # Observing
//
// Manager.Observe sets an Observer that receives what the Manager does:
// handshake outcomes, session events, store calls with their latency,
// saves lost, pushes and recovered panics, each as a small Observation
// whose strings come from fixed sets (never an id, a user or an error's
// text). The iosessions/iosprom subpackage turns them into Prometheus
// metrics; the core itself imports no metrics library.
//
// # Goroutines
//
// Bindings document which goroutine runs each handler. The core adds: the
// sinvalid handler for an ended session, saves at disconnect and the
// periodic flush run on goroutines of the Manager, which Shutdown waits
// for. Handlers of one socket never overlap with each other or with its
// saves.
package iosessions
