// Package iosredis keeps iosessions' sessions in Redis, for apps that run
// on several nodes: github.com/rbcervilla/redisstore/v9 (a session's key
// is KeyPrefix + id and its values are gob, as in redisstore; ids are
// redisstore's in braces, see below) with what it lacks for sockets on
// many nodes. It works on one Redis, on Redis Cluster and behind Sentinel.
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
//   - Idler: with Config.IdleTimeout, a session's key expires at its idle
//     deadline or at the end of its lifetime, whichever is first; loading
//     it over HTTP extends it in the same round trip, sockets through a
//     Touch script sent at most once per tenth of the timeout per node,
//     and Redis writes the new deadline at most once per tenth of the
//     timeout. The Manager then checks expiries (PTTL) instead of
//     existence.
//   - TokenLedger: a shim token is good for one handshake on any node.
//   - Relay: Manager.Broadcast reaches the room on every node, on any
//     engine (go-socket.io's own Redis adapter is not to be relied on).
//
// Cross-node messages use Redis pub/sub through go-redis, which resubscribes
// by itself after Redis restarts; a message published while a node was cut
// off is made up for by the check.
//
// # Redis Cluster and Sentinel
//
// NewStore takes any go-redis client: redis.NewClient for one Redis,
// redis.NewClusterClient for Redis Cluster, redis.NewFailoverClient for a
// master that Sentinel watches (or redis.NewUniversalClient for any of
// them). Every node of the app uses the same kind of client and the same
// KeyPrefix. The keys and channels of a Store are
//
//	<prefix>{<id>}          a session (its id is {…}: see below)
//	<prefix>lock:{<id>}     its lock while a PerMessage event runs
//	<prefix>life:{<id>}     the end of its lifetime, with an idle timeout
//	<prefix>token:<nonce>   a shim token's nonce, once used
//	<prefix>{reg}:…         the registry of sockets and presence (see Join)
//	<prefix>ended, <prefix>relay, <prefix>push   pub/sub channels
//
// A session id is 64 random bytes in base32 (redisstore's spelling) in
// braces, which make it a Redis Cluster hash tag: a session and its lock
// hash to one slot, so the scripts that take both run on a cluster, and
// sessions spread over its masters; the registry's keys share the tag
// {reg}. Every script names the keys it touches in KEYS. Classic pub/sub
// reaches every node of a cluster, whichever master a client publishes
// on or subscribes to. KeyPrefix may not hold a brace.
//
// The hash tags changed the key layout: ids without braces, saved by
// earlier versions, are not read (their users log in again).
package iosredis
