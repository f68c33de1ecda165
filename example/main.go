// Command example is the runnable demo of iosessions: a login page whose
// socket.io connection carries the HTTP session. Its interface is fixed by
// the project's example contract; run it with `make run`.
package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
	"github.com/redis/go-redis/v9"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/iosredis"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	engine := flag.String("engine", "v4", "socket.io engine binding: v4 (zishang520/socket.io, socket.io-client 3.x/4.x) or googollee (go-socket.io, socket.io-client 1.x/2.x)")
	mode := flag.String("mode", "perconn", "perconn or permessage")
	storeKind := flag.String("store", "memory", "memory, redis, or cookie (gorilla's CookieStore: the session lives in the cookie; socket writes reach it through the shim's write-back)")
	redisURL := flag.String("redis", "redis://127.0.0.1:6379/0", "Redis URL, with -store redis")
	grace := flag.Duration("grace", 5*time.Second, "presence grace: how long a user with no socket left stays online")
	idle := flag.Duration("idle", 0, "idle timeout (0: off; else 1s or more): a session with no HTTP request, no handshake and no session event for this long expires, its sockets warned with sexpiring first")
	adminToken := flag.String("admin-token", "", "the secret of the admin views (empty: admin off): GET /admin/sockets with Authorization: Bearer TOKEN; with -engine v4 also the socket.io Admin UI's password, for user admin, at /admin-ui/")
	flag.Parse()

	if *grace <= 0 {
		return fmt.Errorf("-grace must be positive, not %v", *grace)
	}
	if *idle < 0 {
		return fmt.Errorf("-idle must not be negative, not %v", *idle)
	}
	cfg := iosessions.Config{Name: "session", Grace: *grace, User: userOf, IdleTimeout: *idle}
	switch *mode {
	case "perconn":
		cfg.Mode = iosessions.PerConnection
	case "permessage":
		cfg.Mode = iosessions.PerMessage
	default:
		return fmt.Errorf("unknown -mode %q", *mode)
	}

	be, err := newStore(*storeKind, *redisURL)
	if err != nil {
		return err
	}
	defer be.close()
	if be.redis != nil {
		// Every node on this Redis signs shim tokens and names session
		// rooms with the same keys. With -store memory, each process has
		// random keys of its own (the default).
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cfg.TokenKeys, err = sharedTokenKeys(ctx, be.redis)
		cancel()
		if err != nil {
			return err
		}
	}

	m, err := iosessions.New(be.store, cfg)
	if err != nil {
		return err
	}
	app := &app{m: m}
	metrics := metricsHandler(m)
	m.OnConnection(app.connected)
	m.OnPresence(app.presence)

	var io engineServer
	switch *engine {
	case "googollee":
		io, err = newGoogollee(app)
		if *adminToken != "" {
			adminUIUnsupported()
		}
	case "v4":
		io, err = newZishang520(app, be.redis, *adminToken)
	default:
		err = fmt.Errorf("unknown -engine %q", *engine)
	}
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("/socket.io/", io)
	mux.HandleFunc("GET /{$}", serveIndex)
	mux.HandleFunc("GET /static/socket.io.js", serveClient(*engine))
	mux.HandleFunc("POST /login", app.login)
	mux.HandleFunc("GET /me", app.me)
	mux.HandleFunc("POST /logout", app.logout)
	mux.HandleFunc("POST /count", app.setCount)
	mux.HandleFunc("POST /rotate", app.rotate)
	mux.HandleFunc("GET /presence", app.online)
	mux.HandleFunc("POST /push", app.push)
	if *adminToken != "" {
		// Opt-in: without -admin-token the paths are not mounted (404).
		mux.Handle("/admin/sockets", m.AdminHandler(iosessions.BearerToken(*adminToken)))
		if *engine == "v4" {
			mux.Handle("GET "+adminUIPath, serveAdminUI())
		}
	}
	mux.Handle("GET /metrics", metrics)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: m.Middleware(mux), ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("listening on http://%s\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}

	// Save the sessions of connected sockets first, then stop.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := io.Shutdown(sctx); err != nil {
		slog.Error("shutdown", "err", err)
	}
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// engineServer is what the example needs of a binding's server.
type engineServer interface {
	http.Handler
	// Shutdown refuses new handshakes, saves the sessions of connected
	// sockets (Manager.Shutdown), then closes the sockets and the engine.
	Shutdown(ctx context.Context) error
}

// backend is the example's session store and, with -store redis, the
// Redis client that the v4 engine's adapter shares.
type backend struct {
	store sessions.Store
	redis *redis.Client // nil with -store memory
	close func()
}

// exampleKeyPrefix prefixes every Redis key and channel of the example.
const exampleKeyPrefix = "iosessions-example:"

func newStore(kind, redisURL string) (*backend, error) {
	opts := sessions.Options{Path: "/", MaxAge: 86400, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	switch kind {
	case "memory":
		s := iosessions.NewMemoryStore()
		s.Options = &opts
		return &backend{store: s, close: func() { s.Close() }}, nil
	case "cookie":
		// The session lives in the browser's cookie, signed and encrypted
		// with keys of this process: sessions do not survive a restart. A
		// socket's change reaches the cookie through the shim's write-back.
		s := sessions.NewCookieStore(securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32))
		s.Options = &opts
		s.MaxAge(opts.MaxAge)
		return &backend{store: s, close: func() {}}, nil
	case "redis":
		o, err := redis.ParseURL(redisURL)
		if err != nil {
			return nil, fmt.Errorf("-redis: %w", err)
		}
		client := redis.NewClient(o)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := iosredis.NewStore(ctx, client, &iosredis.Options{KeyPrefix: exampleKeyPrefix, Session: &opts})
		if err != nil {
			client.Close()
			return nil, fmt.Errorf("redis store: %w", err)
		}
		return &backend{store: s, redis: client, close: func() {
			_ = s.Close()
			_ = client.Close()
		}}, nil
	}
	return nil, fmt.Errorf("unknown -store %q", kind)
}

// sharedTokenKeys returns the TokenKeys of every example node on this
// Redis: the first node to ask stores a random secret (SET NX), and every
// node derives the same hash and block keys from it, so a shim token made
// on one node is good on the others. The secret never expires; deleting it
// makes nodes started afterwards disagree with the running ones.
func sharedTokenKeys(ctx context.Context, client *redis.Client) ([][]byte, error) {
	key := exampleKeyPrefix + "keys"
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return nil, err
	}
	if err := client.SetNX(ctx, key, hex.EncodeToString(secret[:]), 0).Err(); err != nil {
		return nil, fmt.Errorf("token keys: %w", err)
	}
	v, err := client.Get(ctx, key).Bytes()
	if err != nil {
		return nil, fmt.Errorf("token keys: %w", err)
	}
	derive := func(label string) []byte {
		h := hmac.New(sha256.New, v)
		h.Write([]byte(label))
		return h.Sum(nil) // 32 bytes
	}
	return [][]byte{derive("hash key"), derive("block key")}, nil
}

// app holds the HTTP handlers and the socket event handlers.
type app struct {
	m *iosessions.Manager
}

// profile is what the client sees of a session.
type profile struct {
	User  string `json:"user"`
	Count int    `json:"count"`
}

func profileOf(values map[any]any) profile {
	n, _ := values["count"].(int)
	return profile{User: userOf(values), Count: n}
}

// userOf is the Manager's Config.User: the user set at login.
func userOf(values map[any]any) string {
	u, _ := values["user"].(string)
	return u
}

var validUser = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	user := r.PostFormValue("user")
	if !validUser.MatchString(user) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "user must be 1 to 64 letters, digits, _, - or ."})
		return
	}
	// A new session (new id) at every login, against fixation; sockets of
	// the old one get sinvalid.
	sess, err := a.m.Renew(r.Context(), w, r)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "session store unavailable"})
		return
	}
	sess.Values["user"] = user
	sess.Values["count"] = 0
	if err := sess.Save(r, w); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "session store unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, profile{User: user})
}

func (a *app) me(w http.ResponseWriter, r *http.Request) {
	if sess := a.session(w, r); sess != nil {
		writeJSON(w, http.StatusOK, profileOf(sess.Values))
	}
}

// setCount sets the session's count over HTTP; the sockets of the session,
// on every node, see it within a second (a live session takes HTTP saves).
func (a *app) setCount(w http.ResponseWriter, r *http.Request) {
	sess := a.session(w, r)
	if sess == nil {
		return
	}
	n, err := strconv.Atoi(r.PostFormValue("count"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "count must be an integer"})
		return
	}
	sess.Values["count"] = n
	if err := sess.Save(r, w); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "session store unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, profileOf(sess.Values))
}

// rotate gives the session a new id with the same values; its sockets,
// on every node, move to it without a reconnect.
func (a *app) rotate(w http.ResponseWriter, r *http.Request) {
	if a.session(w, r) == nil {
		return
	}
	if _, err := a.m.Rotate(r.Context(), w, r); err != nil {
		if errors.Is(err, iosessions.ErrStoreUnavailable) {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "session store unavailable"})
			return
		}
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "no session"})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	if err := a.m.Destroy(r.Context(), w, r); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "session store unavailable"})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// connected is the sconnection handler: greet the user, and join the
// room of every socket with a session, which hears presence changes.
func (a *app) connected(s *iosessions.Socket, sess *iosessions.Session) {
	_ = s.Conn().Join(sessionsRoom)
	_ = s.Emit("welcome", profileOf(sess.Values))
}

// incr adds one to the session's count and acks the new count.
func (a *app) incr(_ *iosessions.Socket, sess *iosessions.Session, _ json.RawMessage) (int, error) {
	n, _ := sess.Values["count"].(int)
	sess.Values["count"] = n + 1
	return n + 1, nil
}

// whoami acks the session as it is now; it never writes.
func (a *app) whoami(_ *iosessions.Socket, sess *iosessions.Session, _ json.RawMessage) (profile, error) {
	return profileOf(sess.Values), nil
}

// echo acks its argument unchanged and touches no session.
func echo(_ *iosessions.Socket, in json.RawMessage) (json.RawMessage, error) {
	if in == nil {
		return json.RawMessage("null"), nil
	}
	return in, nil
}

// session returns the logged-in session of r, or nil after answering
// 401 (no session) or 503 (the store failed: the example's stores report
// a missing or undecodable session as a new one, never as an error).
func (a *app) session(w http.ResponseWriter, r *http.Request) *sessions.Session {
	sess, err := a.m.Store().Get(r, a.m.Config().Name)
	var sc securecookie.Error
	if errors.As(err, &sc) && sc.IsDecode() {
		// The cookie store's answer for a cookie it cannot read (tampered,
		// or from before a restart): no session.
		sess, err = sessions.NewSession(a.m.Store(), a.m.Config().Name), nil
		sess.IsNew = true
	}
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "session store unavailable"})
		return nil
	}
	if sess.IsNew || userOf(sess.Values) == "" {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "no session"})
		return nil
	}
	return sess
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
