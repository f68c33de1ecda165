// Package iosredis keeps iosessions' sessions in Redis, for apps that run
// on several nodes: github.com/rbcervilla/redisstore/v9 (the key layout,
// ids and gob encoding of its sessions are redisstore's) with what it
// lacks for sockets on many nodes.
//
// Store guards against two habits of redisstore: it never adopts a session
// id that a client chose (redisstore keeps a cookie's value as the id of a
// new session when no such key exists: session fixation), and a save never
// extends a session's life (redisstore resets the TTL on every save, so an
// active session would never end): a session ends MaxAge after it was first
// saved. On top, Store implements the optional store interfaces of
// iosessions:
//
//   - Loader: sockets load by key, with the Manager's own deadline.
//   - Updater: a socket's changes are applied with WATCH/MULTI (under a
//     lock: compare-and-set on the session's SHA-1), so they never
//     overwrite a change made meanwhile and never bring back a session
//     that ended.
//   - Locker: in PerMessage mode, a per-session lock in Redis is held
//     from load to save, so events of one session on different nodes
//     never act on the same version: one script takes it (SET NX PX) and
//     reads the session, one writes the session and releases it; two
//     round trips an event. Writes are fenced by the lock, so a holder
//     whose lock expired gets an error instead of losing another's
//     update.
//   - Directory: the registry of sockets and presence, and PushFeed:
//     pushes published on <prefix>push (Publisher).
//   - Notifier: a session deleted on any node (logout, a new login) is
//     published on a Redis channel, so every node ends its sockets at once.
//   - Checker: the Manager asks, every Config.CheckInterval, whether the
//     sessions of its sockets still exist, so sessions that expire in
//     Redis (which tells nobody) end on every node in bounded time.
//   - TokenLedger: a shim token is good for one handshake on any node.
//   - Relay: Manager.Broadcast reaches the room on every node, on any
//     engine (go-socket.io's own Redis adapter is not to be relied on).
//
// Cross-node messages use Redis pub/sub through go-redis, which resubscribes
// by itself after Redis restarts; a message published while a node was cut
// off is made up for by the check.
package iosredis
