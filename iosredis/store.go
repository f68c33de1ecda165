package iosredis

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/sessions"
	"github.com/rbcervilla/redisstore/v9"
	"github.com/redis/go-redis/v9"

	"github.com/iosessions/iosessions"
)

// Options configure a Store. The zero value of every field means the
// documented default.
type Options struct {
	// KeyPrefix is prepended to session ids to make their Redis keys;
	// locks, shim token nonces, the registry and the pub/sub channels are
	// named after it too. Default "session:", redisstore's. It may not
	// hold a brace: the keys' hash tags (see the package documentation)
	// must be the Store's own.
	KeyPrefix string

	// Session are the cookie options of new sessions, and MaxAge their
	// lifetime in Redis, counted from their first save. Default: Path "/",
	// MaxAge 30 days, HttpOnly, SameSite Lax. Set Secure behind HTTPS.
	// MaxAge must be positive: redisstore deletes a session saved with
	// MaxAge 0.
	Session *sessions.Options

	// LockTTL is how long a session's lock lives in Redis if its holder
	// dies. An event that takes longer than this to load, run and save
	// gets an error instead of saving. Default 5 s.
	LockTTL time.Duration
}

// Store is a sessions.Store in Redis for iosessions; see the package
// documentation. It is safe for concurrent use.
type Store struct {
	rs     *redisstore.RedisStore
	client redis.UniversalClient
	// pipe is client's autopipeliner, or nil: see runHot.
	pipe   redis.Scripter
	inHot  atomic.Int32 // scripts of runHot in flight
	prefix string
	opts   sessions.Options
	ttl    time.Duration // of locks
	codec  redisstore.GobSerializer
	// decoded remembers the values of the bytes last read or written per
	// session (decoded.go).
	decoded decodedCache
	idle    atomic.Int64 // the idle timeout (SetIdleTimeout), 0: none

	mu      sync.Mutex // guards notify, relays, sub and live
	live    []string   // the live nodes the last Sockets found
	notify  []func(id string)
	changes []func(id string) // NotifyChange
	relays  []func(msg []byte)
	pushes  []func(msg []byte)
	sub     *redis.PubSub
	subDone chan struct{}
	closed  bool

	stop     chan struct{} // closed by Close: background lock releases end
	stopOnce sync.Once
	releases sync.WaitGroup // background lock releases (see release)
}

var (
	_ sessions.Store      = (*Store)(nil)
	_ iosessions.Loader   = (*Store)(nil)
	_ iosessions.Updater  = (*Store)(nil)
	_ iosessions.Locker   = (*Store)(nil)
	_ iosessions.Notifier = (*Store)(nil)
	_ iosessions.Checker  = (*Store)(nil)
	_ iosessions.Idler    = (*Store)(nil)

	_ iosessions.TokenLedger = (*Store)(nil)
	_ iosessions.Relay       = (*Store)(nil)
	_ iosessions.PushFeed    = (*Store)(nil)
)

// NewStore returns a Store on client, which it does not close. It checks
// that Redis answers within ctx. A nil opts means the defaults.
//
// client is redis.NewClient's for one Redis, redis.NewClusterClient's for
// Redis Cluster (see the package documentation for its hash tags) or
// redis.NewFailoverClient's for Redis behind Sentinel:
//
//	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"}})
//	client := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "mymaster", SentinelAddrs: []string{"10.0.0.1:26379"}})
func NewStore(ctx context.Context, client redis.UniversalClient, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = "session:"
	}
	if strings.ContainsAny(o.KeyPrefix, "{}") {
		return nil, fmt.Errorf("iosredis: Options.KeyPrefix %q holds a brace; the Store's hash tags must be its own", o.KeyPrefix)
	}
	cookie := sessions.Options{Path: "/", MaxAge: 86400 * 30, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if o.Session != nil {
		cookie = *o.Session
	}
	if cookie.MaxAge <= 0 {
		return nil, fmt.Errorf("iosredis: Options.Session.MaxAge is %d; it must be positive", cookie.MaxAge)
	}
	if o.LockTTL < 0 {
		return nil, errors.New("iosredis: negative LockTTL")
	}
	if o.LockTTL == 0 {
		o.LockTTL = 5 * time.Second
	}
	rs, err := redisstore.NewRedisStore(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("iosredis: %w", err)
	}
	rs.KeyPrefix(o.KeyPrefix)
	rs.KeyGen(newID)
	rs.Options(cookie)
	return &Store{rs: rs, client: client, pipe: autoPipeliner(client), prefix: o.KeyPrefix, opts: cookie, ttl: o.LockTTL, stop: make(chan struct{})}, nil
}

// autoPipeliner returns client's autopipeliner (go-redis's, shared by
// every user of client), or nil where it has none.
func autoPipeliner(client redis.UniversalClient) redis.Scripter {
	if c, ok := client.(interface {
		AutoPipeline() (*redis.AutoPipeliner, error)
	}); ok && autoPipeline {
		if ap, err := c.AutoPipeline(); err == nil {
			return ap
		}
	}
	return nil
}

// runHot runs a script of per-message events (lock.go). While another
// runs, it goes through the autopipeliner, which sends the scripts that
// wait at the same moment in one write and reads their replies in one
// read: with 50 sessions' events at a time an event took 15 to 35% less
// time on an idle machine, and half as long on a loaded one. A lone
// script goes straight to the client: through the autopipeliner's
// goroutines it would wait some 60 µs longer for nothing.
func (s *Store) runHot(ctx context.Context, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	var c redis.Scripter = s.client
	if s.pipe != nil {
		if s.inHot.Add(1) > 1 {
			c = s.pipe
		}
		defer s.inHot.Add(-1)
	}
	return script.Run(ctx, c, keys, args...)
}

// autoPipeline is false only in benchmarks that measure without it.
var autoPipeline = true

// Get returns the session name of r, cached in r's sessions registry.
func (s *Store) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// New returns the session name of r, or a new session, with no id until it
// is saved, when r's cookie names no session in Redis. The error is
// Redis's, if it failed. With an idle timeout, loading the session is
// activity: it extends the session's idle deadline, in the same round
// trip.
func (s *Store) New(r *http.Request, name string) (*sessions.Session, error) {
	c, err := r.Cookie(name)
	if err != nil {
		return s.fresh(name), nil
	}
	var sess *sessions.Session
	if s.idleTimeout() > 0 {
		sess, err = s.loadTouch(r.Context(), name, c.Value)
	} else {
		sess, err = s.Load(r.Context(), name, c.Value)
	}
	switch {
	case err == nil:
		return sess, nil
	case errors.Is(err, iosessions.ErrNotFound), errors.Is(err, iosessions.ErrBadKey):
		return s.fresh(name), nil // redisstore would keep c.Value as the id
	}
	return s.fresh(name), err
}

// fresh returns a new, empty session of this store.
func (s *Store) fresh(name string) *sessions.Session {
	sess := sessions.NewSession(s, name)
	opts := s.opts
	sess.Options = &opts
	sess.IsNew = true
	return sess
}

// Save stores sess and sets its cookie on w. A new session gets an id and
// lives MaxAge seconds from now; saving it again keeps that deadline.
// MaxAge < 0 deletes it and tells every node. Saving a session that ended
// meanwhile is an error matching iosessions.ErrNotFound: it is not
// brought back.
func (s *Store) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	if sess.Options == nil {
		opts := s.opts
		sess.Options = &opts
	}
	switch {
	case sess.Options.MaxAge < 0:
		if sess.ID == "" {
			http.SetCookie(w, sessions.NewCookie(sess.Name(), "", sess.Options))
			return nil
		}
		if err := s.rs.Save(r, w, sess); err != nil { // DEL, and expires the cookie
			return fmt.Errorf("iosredis: delete: %w", err)
		}
		if s.idleTimeout() > 0 { // best effort: it expires with the lifetime anyway
			_ = s.client.Unlink(r.Context(), s.lifeKey(sess.ID)).Err()
		}
		s.publishEnded(r.Context(), sess.ID)
		return nil
	case sess.Options.MaxAge == 0:
		return errors.New("iosredis: MaxAge 0 would delete the session (redisstore); use a positive MaxAge")
	case sess.ID == "":
		if err := s.rs.Save(r, w, sess); err != nil { // a new id, SET with the TTL
			return fmt.Errorf("iosredis: save: %w", err)
		}
		if s.idleTimeout() > 0 { // from now on it expires when idle
			if _, _, err := s.touch(r.Context(), sess.ID, false); err != nil {
				return fmt.Errorf("iosredis: save: idle deadline: %w", err)
			}
		}
		return nil
	}
	b, err := s.codec.Serialize(sess)
	if err != nil {
		return fmt.Errorf("iosredis: encode: %w", err)
	}
	// XX: never recreate a session that ended; KEEPTTL: never extend it.
	err = s.client.SetArgs(r.Context(), s.prefix+sess.ID, b, redis.SetArgs{Mode: "XX", KeepTTL: true}).Err()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("iosredis: save: %w", iosessions.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("iosredis: save: %w", err)
	}
	s.publishChanged(r.Context(), sess.ID)
	http.SetCookie(w, sessions.NewCookie(sess.Name(), sess.ID, sess.Options))
	return nil
}

// Load implements iosessions.Loader. The key is the cookie's value, which
// is the session id (redisstore's cookies are not signed; ids are 512
// random bits, see newID).
func (s *Store) Load(ctx context.Context, name, key string) (*sessions.Session, error) {
	if !validID(key) {
		return nil, iosessions.ErrBadKey
	}
	var b []byte
	found := true
	var err error
	if h, ok := ctx.Value(heldKey{}).(*held); ok {
		b, found, ok = h.cached(key)
		if !ok {
			b, found, err = s.get(ctx, key)
		}
	} else {
		b, found, err = s.get(ctx, key)
	}
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, iosessions.ErrNotFound
	}
	sess := s.fresh(name)
	if err := s.decode(key, b, sha1.Sum(b), sess); err != nil {
		return nil, err
	}
	sess.ID = key
	sess.IsNew = false
	return sess, nil
}

// get reads the session id.
func (s *Store) get(ctx context.Context, id string) (b []byte, found bool, err error) {
	b, err = s.client.Get(ctx, s.prefix+id).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	return b, err == nil, err
}

// maxAttempts bounds the retries of an Update whose key kept changing.
const maxAttempts = 50

// errConflict is returned when an Update lost its race maxAttempts times.
var errConflict = errors.New("iosredis: session changed during every attempt to update it")

// Update implements iosessions.Updater with WATCH and MULTI: fn applies its
// change to the session as Redis holds it at the time, and the write fails
// and is retried if the session changed meanwhile. The TTL is kept. Under a
// lock of Lock (ctx derived from its held context), the write also fails,
// with ErrLockLost, if the lock is no longer held.
func (s *Store) Update(ctx context.Context, _, id string, fn func(values map[any]any)) error {
	if lk, ok := ctx.Value(heldKey{}).(*held); ok && lk.id == id {
		return s.updateHeld(ctx, lk, fn)
	}
	key := s.prefix + id
	for range maxAttempts {
		err := s.client.Watch(ctx, func(tx *redis.Tx) error {
			b, err := tx.Get(ctx, key).Bytes()
			if errors.Is(err, redis.Nil) {
				return iosessions.ErrNotFound
			}
			if err != nil {
				return err
			}
			nb, _, _, err := s.apply(id, b, fn)
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.SetArgs(ctx, key, nb, redis.SetArgs{Mode: "XX", KeepTTL: true})
				return nil
			})
			return err
		}, key)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
	}
	return errConflict
}

// apply decodes b, the stored session id, applies fn to its values and
// encodes the result; it returns the result and the SHA-1s of b and of
// the result.
func (s *Store) apply(id string, b []byte, fn func(map[any]any)) (nb []byte, was, now [sha1.Size]byte, err error) {
	was = sha1.Sum(b)
	sess := new(sessions.Session) // only its Values: the codec needs no more
	if err := s.decode(id, b, was, sess); err != nil {
		return nil, was, now, err
	}
	fn(sess.Values)
	nb, now, err = s.encodeOwned(id, sess)
	return nb, was, now, err
}

// saveUnlock runs saveUnlockScript. The script is idempotent (a write it
// finds done it reports done), so when the reply is lost (the connection
// broke, Redis restarted) it is run again until it answers or ctx ends:
// a save that landed is reported saved, one that did not is made or
// reported failed, never guessed.
func (s *Store) saveUnlock(ctx context.Context, keys []string, token string, was [sha1.Size]byte, nb []byte, now [sha1.Size]byte) (int, error) {
	wait := 20 * time.Millisecond
	for {
		res, err := s.runHot(ctx, saveUnlockScript, keys, token, hex.EncodeToString(was[:]), nb, hex.EncodeToString(now[:])).Int()
		var reply redis.Error
		if err == nil || errors.As(err, &reply) || ctx.Err() != nil {
			return res, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, err
		case <-t.C:
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// updateHeld is Update under the session's lock lk: fn's change applied
// to the session as the lock read it, written with a compare-and-set
// (the session's SHA-1, so an HTTP save meanwhile is not overwritten) that
// also releases the lock, in one script. A save after the lock was
// released (a handler's Session.Save, then the event's own) takes it again.
func (s *Store) updateHeld(ctx context.Context, lk *held, fn func(map[any]any)) error {
	lk.mu.Lock()
	b, found, released := lk.loaded, lk.found, lk.released
	lk.mu.Unlock()
	if released {
		if err := s.lockLoad(ctx, lk); err != nil {
			return err
		}
		lk.mu.Lock()
		b, found = lk.loaded, lk.found
		lk.mu.Unlock()
	}
	keys := []string{lk.key, s.prefix + lk.id}
	for range maxAttempts {
		if !found {
			return iosessions.ErrNotFound
		}
		nb, was, now, err := s.apply(lk.id, b, fn)
		if err != nil {
			return err
		}
		res, err := s.saveUnlock(ctx, keys, lk.token, was, nb, now)
		if err != nil {
			return err
		}
		switch res {
		case 1, 0:
			lk.mu.Lock()
			lk.released, lk.loaded, lk.found = true, nb, res == 1
			lk.mu.Unlock()
			if res == 0 {
				return iosessions.ErrNotFound
			}
			return nil
		case -1:
			return ErrLockLost
		}
		// Saved over HTTP since the lock read it: apply the change again
		// on what Redis holds now.
		if b, found, err = s.get(ctx, lk.id); err != nil {
			return err
		}
	}
	return errConflict
}

// Exist implements iosessions.Checker, in one pipeline.
func (s *Store) Exist(ctx context.Context, _ string, ids []string) ([]bool, error) {
	cmds, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			p.Exists(ctx, s.prefix+id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(ids))
	for i, c := range cmds {
		out[i] = c.(*redis.IntCmd).Val() > 0
	}
	return out, nil
}

// newID returns a new session id: 64 random bytes in base32 without
// padding, as redisstore spells them, in braces. The braces make the id a
// Redis Cluster hash tag, so that every key of the session (prefix+id, its
// lock prefix+"lock:"+id) hashes to one slot and the scripts that take
// several of them work on a cluster, while sessions spread over the
// cluster's masters. Braces are cookie-octets (RFC 6265): the cookie
// carries the id as it is.
func newID() (string, error) {
	var b [64]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "{" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]) + "}", nil
}

// validID reports whether id is spelled like an id of newID. Anything
// else, ids of the layout before hash tags included, is not looked up.
func validID(id string) bool {
	if len(id) != 105 || id[0] != '{' || id[104] != '}' {
		return false
	}
	for i := 1; i < 104; i++ {
		if c := id[i]; !('A' <= c && c <= 'Z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

// Use implements iosessions.TokenLedger: a shim token's nonce is recorded
// with SET NX for ttl, so a token is good once on all nodes of this Redis.
func (s *Store) Use(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	return s.client.SetNX(ctx, s.prefix+"token:"+id, 1, ttl).Result()
}
