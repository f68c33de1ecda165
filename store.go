package iosessions

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"hash/maphash"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
)

// Any sessions.Store works with a Manager unchanged: it loads a socket's
// session through the store's New method, with a request that carries only
// the session cookie and a context with Config.StoreTimeout. Stores may
// also implement the optional interfaces below, which the Manager finds by
// type assertion; MemoryStore implements Loader, Updater and Notifier, and
// the iosessions/iosredis store all five.

// A Loader loads a session by its key (the cookie value) and says why it
// cannot: ErrBadKey when the key does not decode, ErrNotFound when the
// session does not exist, anything else for a store failure. It must
// honour ctx.
type Loader interface {
	Load(ctx context.Context, name, key string) (*sessions.Session, error)
}

// An Updater applies fn to the values of the stored session id atomically,
// without extending its lifetime. It returns ErrNotFound, and calls nothing,
// when the session no longer exists: a save from a socket never brings back
// a session destroyed meanwhile. fn may be called more than once (on
// retries); it must only apply a change.
type Updater interface {
	Update(ctx context.Context, name, id string, fn func(values map[any]any)) error
}

// A Notifier reports sessions that end (deleted or expired) so that the
// Manager can tell their sockets. f must not block for long.
type Notifier interface {
	NotifyEnd(f func(id string))
}

// A Locker serializes the events of one session across processes, for
// PerMessage mode, so that two nodes never both act on the same version of
// a session: the Manager holds the session's lock from before it loads the
// session until its changes are saved. Lock waits for the lock until ctx
// ends. The held context it returns carries what the store needs to fence
// writes (its deadline does not count: the Manager gives every later call
// its own); the Manager passes it, or a context derived from it, to the
// Update of that event, and the store must refuse the write, rather than
// lose another holder's update, when the lock was lost meanwhile (it
// expired). unlock must not block for long. The Load of that event gets a
// context that carries the held context's values too, so a store may load
// the session together with the lock, in one round trip; and a store may
// release the lock with the event's save, its unlock then doing nothing.
type Locker interface {
	Lock(ctx context.Context, name, id string) (held context.Context, unlock func(), err error)
}

// A Checker says which of the sessions ids still exist, in one call. A
// store whose sessions expire without telling anyone (Redis) implements
// it: the Manager asks it about the sessions of its live sockets every
// Config.CheckInterval and ends those that are gone.
type Checker interface {
	Exist(ctx context.Context, name string, ids []string) ([]bool, error)
}

var (
	_ sessions.Store = (*MemoryStore)(nil)
	_ Loader         = (*MemoryStore)(nil)
	_ Updater        = (*MemoryStore)(nil)
	_ Notifier       = (*MemoryStore)(nil)
	_ Idler          = (*MemoryStore)(nil)
)

// memShards is the number of independently locked parts of a MemoryStore.
const memShards = 32

// DefaultMaxAge is the lifetime of a MemoryStore session whose Options
// give none (MaxAge 0, a browser-session cookie): 24 hours on the server.
const DefaultMaxAge = 24 * time.Hour

// MemoryStore is a server-side sessions.Store that keeps sessions in this
// process: the embedded default of a Manager. The cookie holds only the
// session id, signed (and encrypted, with a block key) by securecookie.
// Values are stored as deep copies, so every load returns a private copy:
// natively for the types people keep in sessions (numbers, strings,
// []byte, time.Time, and maps and slices of those), through gob for any
// other type, which must then be gob-encodable, as with every other store.
//
// It is safe for concurrent use. A session lives MaxAge seconds from its
// last save over HTTP (DefaultMaxAge when MaxAge is 0); an expired session
// is gone, and a janitor reclaims its memory once a minute until Close.
// With an idle timeout (SetIdleTimeout, which a Manager with
// Config.IdleTimeout calls), a session also ends when it has had no save
// or load over HTTP (Get, New) and no Touch for that long (see
// Idler.Touch).
// Saving with MaxAge < 0 deletes the session. An undecodable cookie
// (tampered, or signed with a dropped key) means a new, empty session and
// no error: never a 500.
type MemoryStore struct {
	// Options are the cookie options of new sessions. NewMemoryStore sets
	// Path "/", MaxAge 30 days, HttpOnly and SameSite Lax; set Secure
	// behind HTTPS.
	Options *sessions.Options

	codecs []securecookie.Codec
	seed   maphash.Seed
	shards [memShards]memShard
	now    func() time.Time
	idle   atomic.Int64 // the idle timeout (SetIdleTimeout), 0: none

	notifyMu sync.RWMutex
	notify   []func(id string) // NotifyEnd
	changes  []func(id string) // NotifyChange

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type memShard struct {
	mu sync.Mutex
	m  map[string]*memEntry
}

// memEntry is a stored session. Entries are replaced whole, never edited:
// values is shared by readers, which copy it.
type memEntry struct {
	values  frozen
	expires unixNano // the end of its lifetime
	idleAt  unixNano // its idle deadline; zero without an idle timeout

	// id is the session's id, the string it is stored under: a session
	// loaded from the entry takes it, so that the sockets of a connection
	// keep the store's id, not the copy their cookie decoded to.
	id string
}

// unixNano is a time in Unix nanoseconds, 0 for none: a third of a
// time.Time, in an entry kept for every session.
type unixNano int64

func nanoOf(t time.Time) unixNano { return unixNano(t.UnixNano()) }

// time returns n as a time.Time, zero for none.
func (n unixNano) time() time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(n))
}

// deadline is when the entry expires.
func (e *memEntry) deadline() time.Time {
	if e.idleAt != 0 && e.idleAt < e.expires {
		return e.idleAt.time()
	}
	return e.expires.time()
}

// NewMemoryStore returns a MemoryStore whose cookies are signed with the
// given securecookie key pairs (hash key, then optional block key; the first
// pair signs, all of them verify, so keys can be rotated). With no keys it
// generates a random pair: cookies then do not survive a restart.
func NewMemoryStore(keyPairs ...[]byte) *MemoryStore {
	if len(keyPairs) == 0 {
		keyPairs = [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)}
	}
	s := &MemoryStore{
		Options: &sessions.Options{Path: "/", MaxAge: 86400 * 30, HttpOnly: true, SameSite: http.SameSiteLaxMode},
		codecs:  securecookie.CodecsFromPairs(keyPairs...),
		seed:    maphash.MakeSeed(),
		now:     time.Now,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	for _, c := range s.codecs {
		// The session's server-side expiry is the one that counts; the
		// cookie's own timestamp limit (30 days by default) would log
		// out a session whose MaxAge is longer.
		sc := c.(*securecookie.SecureCookie)
		sc.MaxAge(0)
		// The cookie holds the id's bytes as they are: no gob to encode
		// and decode at every handshake (it was 40% of a load by cookie).
		sc.SetSerializer(securecookie.NopEncoder{})
	}
	for i := range s.shards {
		s.shards[i].m = make(map[string]*memEntry)
	}
	go s.janitor(time.Minute)
	return s
}

// Close stops the janitor. The store keeps working; expired sessions are
// then reclaimed only when they are looked up. Close is idempotent.
func (s *MemoryStore) Close() error {
	s.closeOnce.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

// Get returns the session name of r, cached in r's sessions registry.
func (s *MemoryStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// New returns the session name of r, or a new one when r has no usable
// cookie. The error is always nil: an unusable cookie means no session.
func (s *MemoryStore) New(r *http.Request, name string) (*sessions.Session, error) {
	if c, err := r.Cookie(name); err == nil {
		if sess, err := s.Load(r.Context(), name, c.Value); err == nil {
			_, _ = s.Touch(r.Context(), name, sess.ID) // activity over HTTP
			return sess, nil
		}
	}
	return s.newSession(name), nil
}

func (s *MemoryStore) newSession(name string) *sessions.Session {
	sess := sessions.NewSession(s, name)
	*sess.Options = *s.Options
	sess.IsNew = true
	return sess
}

// Load implements Loader.
func (s *MemoryStore) Load(_ context.Context, name, key string) (*sessions.Session, error) {
	sess, _, err := s.load(name, key)
	return sess, err
}

// load is Load that also returns the stored values that the session's are
// a copy of: entries are replaced whole, never edited.
func (s *MemoryStore) load(name, key string) (*sessions.Session, *frozen, error) {
	id, err := s.idOf(name, key)
	if err != nil {
		return nil, nil, err
	}
	return s.loadID(name, id)
}

// loadID is load by the session's id, for a caller that decoded its key
// before (a socket, at connect).
func (s *MemoryStore) loadID(name, id string) (*sessions.Session, *frozen, error) {
	e, ok := s.get(id)
	if !ok {
		return nil, nil, ErrNotFound
	}
	sess := s.newSession(name)
	if err := e.values.thawInto(sess.Values); err != nil {
		return nil, nil, fmt.Errorf("iosessions: memory store: copy: %w", err)
	}
	sess.ID = e.id
	sess.IsNew = false
	return sess, &e.values, nil
}

// Save stores sess and sets its cookie on w, or deletes both when
// sess.Options.MaxAge < 0.
func (s *MemoryStore) Save(_ *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	opts := sess.Options
	if opts == nil {
		opts = s.Options
	}
	if opts.MaxAge < 0 {
		if sess.ID != "" {
			s.delete(sess.ID)
		}
		http.SetCookie(w, sessions.NewCookie(sess.Name(), "", opts))
		return nil
	}
	if sess.ID == "" {
		sess.ID = newID()
	}
	values, err := freeze(sess.Values)
	if err != nil {
		return err
	}
	life := time.Duration(opts.MaxAge) * time.Second
	if life == 0 {
		life = DefaultMaxAge
	}
	now := s.now()
	e := &memEntry{values: values, expires: nanoOf(now.Add(life))}
	if idle := time.Duration(s.idle.Load()); idle > 0 {
		e.idleAt = nanoOf(now.Add(idleSpan(idle)))
	}
	s.put(sess.ID, e)
	s.notifyMu.RLock()
	fs := s.changes
	s.notifyMu.RUnlock()
	for _, f := range fs {
		f(sess.ID)
	}
	key, err := securecookie.EncodeMulti(sess.Name(), []byte(sess.ID), s.codecs...)
	if err != nil {
		return err
	}
	http.SetCookie(w, sessions.NewCookie(sess.Name(), key, opts))
	return nil
}

// Update implements Updater.
func (s *MemoryStore) Update(_ context.Context, _ string, id string, fn func(map[any]any)) error {
	return s.update(id, func(old frozen) (frozen, error) {
		values := old.shallow()
		fn(values) // sets keys to the caller's values: copied by freeze
		return freeze(values)
	})
}

// apply is Update with the Manager's changes, which say which keys they
// set and delete: only the values set are copied, the others shared with
// the entry replaced (stored values are never written to).
func (s *MemoryStore) apply(id string, c changes) error {
	return s.update(id, func(old frozen) (frozen, error) { return old.with(c) })
}

// update stores fn of the stored values of id. Entries are replaced
// whole, never edited.
func (s *MemoryStore) update(id string, fn func(frozen) (frozen, error)) error {
	sh := s.shard(id)
	for {
		sh.mu.Lock()
		e, ok := sh.m[id]
		sh.mu.Unlock()
		if !ok || !s.now().Before(e.deadline()) {
			return ErrNotFound
		}
		values, err := fn(e.values)
		if err != nil {
			return err
		}
		sh.mu.Lock()
		cur, ok := sh.m[id]
		if !ok {
			sh.mu.Unlock()
			return ErrNotFound
		}
		if cur != e { // entries are replaced whole, never edited
			sh.mu.Unlock()
			continue // changed meanwhile: apply again on the new value
		}
		sh.m[id] = &memEntry{values: values, expires: cur.expires, idleAt: cur.idleAt, id: id}
		sh.mu.Unlock()
		return nil
	}
}

// NotifyEnd implements Notifier: f is called, on the goroutine that
// deleted it or on the janitor's, with the id of every session deleted by
// Save or reclaimed after expiry.
func (s *MemoryStore) NotifyEnd(f func(id string)) {
	s.notifyMu.Lock()
	s.notify = append(s.notify, f)
	s.notifyMu.Unlock()
}

// idOf decodes the session id of a cookie key. What decodes is checked
// to be spelled as newID spells ids: a cookie verified with the hash key
// but decrypted with another block key is noise, and a bad key, not a
// missing session.
func (s *MemoryStore) idOf(name, key string) (string, error) {
	var raw []byte
	if err := securecookie.DecodeMulti(name, key, &raw, s.codecs...); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	if len(raw) != idLen || !isBase32(raw) {
		return "", fmt.Errorf("%w: not a session id", ErrBadKey)
	}
	return string(raw), nil
}

// NotifyChange implements ChangeNotifier: f is called, on the goroutine
// of Save, with the id of every session that Save stored.
func (s *MemoryStore) NotifyChange(f func(id string)) {
	s.notifyMu.Lock()
	s.changes = append(s.changes, f)
	s.notifyMu.Unlock()
}

// Len returns the number of sessions held, expired ones not yet reclaimed
// included.
func (s *MemoryStore) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

func (s *MemoryStore) shard(id string) *memShard {
	return &s.shards[maphash.String(s.seed, id)%memShards]
}

func (s *MemoryStore) get(id string) (*memEntry, bool) {
	sh := s.shard(id)
	sh.mu.Lock()
	e, ok := sh.m[id]
	expired := ok && !s.now().Before(e.deadline())
	if expired { // reclaimed on lookup, as Close promises
		delete(sh.m, id)
	}
	sh.mu.Unlock()
	if expired {
		s.ended([]string{id})
	}
	if !ok || expired {
		return nil, false
	}
	return e, true
}

func (s *MemoryStore) put(id string, e *memEntry) {
	e.id = id
	sh := s.shard(id)
	sh.mu.Lock()
	sh.m[id] = e
	sh.mu.Unlock()
}

func (s *MemoryStore) delete(id string) {
	sh := s.shard(id)
	sh.mu.Lock()
	_, ok := sh.m[id]
	delete(sh.m, id)
	sh.mu.Unlock()
	if ok {
		s.ended([]string{id})
	}
}

func (s *MemoryStore) ended(ids []string) {
	s.notifyMu.RLock()
	fs := s.notify
	s.notifyMu.RUnlock()
	for _, id := range ids {
		for _, f := range fs {
			f(id)
		}
	}
}

// reclaim deletes the expired sessions and reports them.
func (s *MemoryStore) reclaim() {
	now := s.now()
	var gone []string
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for id, e := range sh.m {
			if !now.Before(e.deadline()) {
				delete(sh.m, id)
				gone = append(gone, id)
			}
		}
		sh.mu.Unlock()
	}
	s.ended(gone)
}

func (s *MemoryStore) janitor(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.reclaim()
		}
	}
}

// SetIdleTimeout implements Idler.
func (s *MemoryStore) SetIdleTimeout(d time.Duration) { s.idle.Store(int64(d)) }

// Touch implements Idler.
func (s *MemoryStore) Touch(_ context.Context, _ string, id string) (Expiry, error) {
	if _, ok := s.get(id); !ok { // reclaimed and reported if expired
		return Expiry{}, ErrNotFound
	}
	idle := time.Duration(s.idle.Load())
	sh := s.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[id]
	if !ok {
		return Expiry{}, ErrNotFound
	}
	if idle > 0 {
		at := s.now().Add(idleSpan(idle))
		expires, idleAt := e.expires.time(), e.idleAt.time()
		if expires.Before(at) {
			at = expires
		}
		// Entries are replaced whole, never edited.
		if idleAt.IsZero() || at.Sub(idleAt) >= idle/10 || idleAt.After(at) ||
			(at.Equal(expires) && idleAt.Before(at)) {
			e = &memEntry{values: e.values, expires: e.expires, idleAt: nanoOf(at), id: id}
			sh.m[id] = e
		}
	}
	return e.expiry(), nil
}

// Expiry implements Idler.
func (s *MemoryStore) Expiry(_ context.Context, _ string, ids []string) ([]Expiry, error) {
	out := make([]Expiry, len(ids))
	for i, id := range ids {
		if e, ok := s.get(id); ok { // reclaimed and reported if expired
			out[i] = e.expiry()
		}
	}
	return out, nil
}

// expiry is when e expires.
func (e *memEntry) expiry() Expiry {
	at := e.deadline()
	return Expiry{At: at, Idle: at.Before(e.expires.time())}
}

// idEncoding spells session ids.
var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newID returns 160 random bits, base32: a session id nobody can guess.
// idLen is the length of newID's ids.
var idLen = idEncoding.EncodedLen(20)

func newID() string {
	var b [20]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return idEncoding.EncodeToString(b[:])
}
