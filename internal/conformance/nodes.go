package conformance

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"github.com/redis/go-redis/v9"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/internal/redistest"
	"github.com/iosessions/iosessions/iosredis"
)

// The cases of many nodes: two servers of the binding, each with its own
// Manager and its own Redis client, share one real redis-server through
// iosredis stores (and TokenKeys). Clients use websocket and are not
// sticky: a session made on one node is used on the other.

// nodeKeys are the TokenKeys every node of a cluster shares.
var nodeKeys = [][]byte{[]byte("nodes-hash-key-0123456789abcdef!"), []byte("nodes-block-key-0123456789abcdef")}

// cluster is two nodes on one redis-server.
type cluster struct {
	redis  *redistest.Server
	a, b   *env
	ra, rb *redis.Client // the nodes' Redis clients
}

type clusterOptions struct {
	Mode          iosessions.Mode
	CheckInterval time.Duration // default 200 ms
	SaveRetry     time.Duration
	StoreTimeout  time.Duration // default 1 s
	Grace         time.Duration // Config.Grace
	NodeTTL       time.Duration // Config.NodeTTL
	IdleTimeout   time.Duration // Config.IdleTimeout
	// Setup runs on each node's env before it serves.
	Setup func(e *env)
}

func newCluster(t *testing.T, b Binding, o clusterOptions) *cluster {
	t.Helper()
	rs := redistest.Start(t)
	if o.CheckInterval == 0 {
		o.CheckInterval = 200 * time.Millisecond
	}
	if o.StoreTimeout == 0 {
		o.StoreTimeout = time.Second
	}
	node := func(client *redis.Client) *env {
		store, err := iosredis.NewStore(context.Background(), client, &iosredis.Options{KeyPrefix: "conformance:"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		return newEnv(t, b, envOptions{Mode: o.Mode, Store: store, Config: func(c *iosessions.Config) {
			c.TokenKeys = nodeKeys
			c.StoreTimeout = o.StoreTimeout
			c.CheckInterval = o.CheckInterval
			c.SaveRetry = o.SaveRetry
			c.Grace = o.Grace
			c.NodeTTL = o.NodeTTL
			c.IdleTimeout = o.IdleTimeout
		}, Setup: o.Setup})
	}
	cl := &cluster{redis: rs, ra: rs.Client(), rb: rs.Client()}
	cl.a, cl.b = node(cl.ra), node(cl.rb)
	return cl
}

// reconnected waits until both nodes' Redis clients answer again after a
// restart: go-redis answers with its last dial error for up to a second
// once the dials of an outage (beats, save retries, lock releases)
// exhausted its pool, until a background dial succeeds.
func (cl *cluster) reconnected(t *testing.T) {
	t.Helper()
	waitFor(t, "the nodes' Redis clients to reconnect", func() bool {
		return cl.ra.Ping(context.Background()).Err() == nil && cl.rb.Ping(context.Background()).Err() == nil
	})
}

// redisKey is the Redis key of the session of cookie.
func redisKey(cookie *http.Cookie) string { return "conformance:" + cookie.Value }

// nodes runs the cases of many nodes.
func nodes(t *testing.T, b Binding) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, b Binding)
	}{
		{"SessionAcrossNodes", sessionAcrossNodes},
		{"LogoutAcrossNodes", logoutAcrossNodes},
		{"NoLostUpdates", noLostUpdates},
		{"Expiry", expiry},
		{"RedisDown", redisDown},
		{"SaveAtDisconnectRetried", saveRetried},
		{"OwnDeadlines", ownDeadlines},
		{"BroadcastAcrossNodes", broadcastAcrossNodes},
		{"RegistryAcrossNodes", registryAcrossNodes},
		{"PushAcrossNodes", pushAcrossNodes},
		{"PublishedPush", publishedPush},
		{"PresenceAcrossNodes", presenceAcrossNodes},
		{"NodeDeath", nodeDeath},
		{"RegistryAfterRedisLoss", registryAfterRedisLoss},
		{"InspectAcrossNodes", inspectAcrossNodes},
		{"ChangeAcrossNodes", changeAcrossNodes},
		{"RotateAcrossNodes", rotateAcrossNodes},
		{"KeysMergedAcrossNodes", keysMergedAcrossNodes},
		{"IdleAcrossNodes", idleAcrossNodes},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, b) })
	}
}

// sessionAcrossNodes: a session made on node A is the session of a socket
// on node B, and what B's socket saves is what A serves; a shim token of A
// is good on B, once.
func sessionAcrossNodes(t *testing.T, b Binding) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			cl := newCluster(t, b, clusterOptions{Mode: mode})
			cookie := cl.a.loginAs(t, "alice")
			c := cl.b.dial(t, "websocket", withCookie(cookie), "")
			wantJSON(t, "welcome", c.expect(t, "welcome"), `"alice"`)
			for i := 1; i <= 3; i++ {
				wantJSON(t, "incr", c.call(t, "incr"), strconv.Itoa(i))
			}
			_ = c.Close()
			waitFor(t, "count 3 on node A", func() bool { return cl.a.stored(t, cookie)["count"] == 3 })
			// The shim token of node A is good on node B (shared TokenKeys).
			tok := cl.a.token(t, cookie)
			c2 := cl.b.dial(t, "websocket", nil, tok)
			wantJSON(t, "welcome by token", c2.expect(t, "welcome"), `"alice"`)
			// And good once: replayed on node A, it is refused.
			c3 := cl.a.dial(t, "websocket", nil, tok)
			wantJSON(t, "replayed token", c3.expect(t, "sinvalid"), `{"reason":"invalid token"}`)
		})
	}
}

// logoutAcrossNodes: POST /logout on node A ends the session's sockets on
// node B within a second, through Redis pub/sub (the periodic check is
// off here, so it cannot be what delivers it), and again after Redis
// restarted.
func logoutAcrossNodes(t *testing.T, b Binding) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			cl := newCluster(t, b, clusterOptions{Mode: mode, CheckInterval: time.Hour})
			round := func(t *testing.T, within time.Duration) {
				t.Helper()
				alice, bob := cl.a.loginAs(t, "alice"), cl.a.loginAs(t, "bob")
				onB := []*conn{cl.b.dial(t, "websocket", withCookie(alice), ""), cl.b.dial(t, "websocket", withCookie(alice), "")}
				onA := cl.a.dial(t, "websocket", withCookie(alice), "")
				bobB := cl.b.dial(t, "websocket", withCookie(bob), "")
				for _, c := range append(onB, onA, bobB) {
					c.expect(t, "welcome")
				}
				if code := cl.a.post(t, "/logout", alice, nil); code != http.StatusNoContent {
					t.Fatalf("logout on A: %d", code)
				}
				loggedOut := time.Now()
				for _, c := range append(onB, onA) {
					wantJSON(t, "sinvalid", c.expect(t, "sinvalid"), `{"reason":"session ended"}`)
					c.waitClosed(t, loggedOut.Add(within))
					if n := c.count("sinvalid"); n != 1 {
						t.Errorf("a socket got sinvalid %d times", n)
					}
				}
				wantJSON(t, "bob on B", bobB.call(t, "whoami"), `{"user":"bob","count":0}`)
			}
			round(t, time.Second)

			cl.redis.Stop()
			time.Sleep(300 * time.Millisecond) // the subscriptions notice
			cl.redis.Restart()
			// go-redis resubscribes by itself; give it the first few
			// seconds, then delivery must be as quick as before.
			deadline := time.Now().Add(10 * time.Second)
			for !subscribed(cl) {
				if time.Now().After(deadline) {
					t.Fatal("the nodes did not resubscribe within 10 s of Redis's restart")
				}
				time.Sleep(50 * time.Millisecond)
			}
			round(t, time.Second)
		})
	}
}

// subscribed reports whether both nodes listen on the channel of ended
// sessions again.
func subscribed(cl *cluster) bool {
	c := redis.NewClient(&redis.Options{Addr: cl.redis.Addr, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	n, err := c.PubSubNumSub(ctx, "conformance:ended").Result()
	return err == nil && n["conformance:ended"] == 2
}

// noLostUpdates: in PerMessage mode, two sockets of one session on two
// nodes send 200 incr each at once; the count ends at exactly 400 and
// every value from 1 to 400 is acked once.
func noLostUpdates(t *testing.T, b Binding) {
	// The case is about lost updates, not latency: 400 events queued on
	// one session's lock can wait more than the usual 1 s on a loaded CPU
	// (a CI run beside a soak acked one "session store unavailable").
	cl := newCluster(t, b, clusterOptions{Mode: iosessions.PerMessage, StoreTimeout: 30 * time.Second})
	cookie := cl.a.loginAs(t, "alice")
	ca := cl.a.dial(t, "websocket", withCookie(cookie), "")
	cb := cl.b.dial(t, "websocket", withCookie(cookie), "")
	ca.expect(t, "welcome")
	cb.expect(t, "welcome")
	const n = 200
	type result struct {
		vals []int
		err  error
	}
	fire := func(c *conn, out chan<- result) {
		vals, err := incrBurst(ctxT(t), c, n)
		out <- result{vals, err}
	}
	out := make(chan result, 2)
	go fire(ca, out)
	go fire(cb, out)
	seen := make(map[int]bool)
	for range 2 {
		r := <-out
		if r.err != nil {
			t.Fatal(r.err)
		}
		for i, v := range r.vals {
			if i > 0 && v <= r.vals[i-1] {
				t.Fatalf("acks of one socket out of order: %d after %d", v, r.vals[i-1])
			}
			if seen[v] {
				t.Fatalf("count %d acked twice: an update was lost", v)
			}
			seen[v] = true
		}
	}
	if got := cl.a.stored(t, cookie)["count"]; got != 2*n {
		t.Fatalf("the store has count %v, want %d", got, 2*n)
	}
}

// expiry: a session that expires in Redis ends its sockets on both nodes
// within CheckInterval (200 ms here) and a margin; saves from its sockets
// meanwhile did not extend it (redisstore would reset the TTL).
func expiry(t *testing.T, b Binding) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			cl := newCluster(t, b, clusterOptions{Mode: mode})
			cookie := cl.a.loginAs(t, "alice", "maxage", "2")
			loggedIn := time.Now()
			ca := cl.a.dial(t, "websocket", withCookie(cookie), "")
			cb := cl.b.dial(t, "websocket", withCookie(cookie), "")
			ca.expect(t, "welcome")
			cb.expect(t, "welcome")
			for i := 1; i <= 3; i++ { // saves (PerMessage) that must not extend it
				wantJSON(t, "incr", cb.call(t, "incr"), strconv.Itoa(i))
			}
			// An HTTP save must not extend it either.
			if code := cl.b.post(t, "/rename", cookie, url.Values{"user": {"alicia"}}); code != http.StatusOK {
				t.Fatalf("rename: %d", code)
			}
			rc := cl.redis.Client()
			var gone time.Time
			for {
				n, err := rc.Exists(context.Background(), redisKey(cookie)).Result()
				if err == nil && n == 0 {
					gone = time.Now()
					break
				}
				if time.Since(loggedIn) > 4*time.Second {
					t.Fatal("the session outlived its MaxAge of 2 s by 2 s: a save extended it")
				}
				time.Sleep(10 * time.Millisecond)
			}
			for _, c := range []*conn{ca, cb} {
				wantJSON(t, "sinvalid", c.expect(t, "sinvalid"), `{"reason":"session ended"}`)
				c.waitClosed(t, gone.Add(time.Second))
			}
		})
	}
}

// redisDown: with Redis stopped, a new socket gets sinvalid "session store
// unavailable" within StoreTimeout (1 s here) and a margin; HTTP still
// answers; a connected socket still gets its events answered, a session
// event with an error ack and nothing written; once Redis is back, the
// same app serves new sockets and events again.
func redisDown(t *testing.T, b Binding) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			cl := newCluster(t, b, clusterOptions{Mode: mode})
			e := cl.a
			cookie := e.loginAs(t, "alice")
			c := e.dial(t, "websocket", withCookie(cookie), "")
			c.expect(t, "welcome")
			wantJSON(t, "incr", c.call(t, "incr"), `1`)

			cl.redis.Stop()
			nc := e.dial(t, "websocket", withCookie(cookie), "")
			// From the connect answer: the session's load starts as the
			// socket connects (the engine handshake before it needs no
			// store, and its time is the scheduler's, not ours).
			start := time.Now()
			reason := nc.expect(t, "sinvalid")
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("sinvalid took %v after the connect with StoreTimeout 1 s", took)
			}
			if !jsonEq(reason, `{"reason":"session store unavailable"}`) && !jsonEq(reason, `{"reason":"session store unavailable: timeout"}`) {
				t.Errorf("sinvalid %s, want session store unavailable", reason)
			}
			resp, _ := e.raw(t, http.MethodPost, e.URL+"/logout", withCookie(cookie), nil)
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("HTTP logout with Redis down: %d, want 503", resp.StatusCode)
			}
			wantJSON(t, "echo", c.call(t, "echo", "still here"), `"still here"`)
			if mode == iosessions.PerMessage {
				ack := c.call(t, "incr")
				if jsonEq(ack, `2`) || !jsonEq(ack, `{"error":"session store unavailable"}`) && !jsonEq(ack, `{"error":"session store unavailable: timeout"}`) {
					t.Errorf("incr with Redis down acked %s, want a store error", ack)
				}
			}

			cl.redis.Restart()
			cl.reconnected(t)
			want := 1 // PerMessage saved the first incr before its ack
			if mode == iosessions.PerConnection {
				want = 0 // saved at disconnect
			}
			if got := e.stored(t, cookie)["count"]; got != want {
				t.Errorf("after the outage the store has count %v, want %d: a write was partial", got, want)
			}
			waitFor(t, "a new socket with Redis back", func() bool {
				nc, err := e.tryDial(t, "websocket", withCookie(cookie), "")
				if err != nil {
					return false
				}
				defer nc.Close()
				waitFor(t, "welcome or sinvalid", func() bool { return nc.count("welcome")+nc.count("sinvalid") > 0 })
				return nc.count("welcome") == 1
			})
			bob := e.loginAs(t, "bob")
			bc := e.dial(t, "websocket", withCookie(bob), "")
			bc.expect(t, "welcome")
			wantJSON(t, "bob's incr", bc.call(t, "incr"), `1`)
			if mode == iosessions.PerMessage {
				wantJSON(t, "incr with Redis back", c.call(t, "incr"), `2`)
			}
		})
	}
}

// saveRetried: in PerConnection mode, a save at disconnect that fails
// because Redis is down is retried, and lands once Redis is back; when
// Redis stays down past SaveRetry, ErrorHandler gets ErrUnsaved.
func saveRetried(t *testing.T, b Binding) {
	cl := newCluster(t, b, clusterOptions{Mode: iosessions.PerConnection, SaveRetry: 1500 * time.Millisecond})
	e := cl.a
	cookie := e.loginAs(t, "alice")
	c := e.dial(t, "websocket", withCookie(cookie), "")
	c.expect(t, "welcome")
	for i := 1; i <= 3; i++ {
		wantJSON(t, "incr", c.call(t, "incr"), strconv.Itoa(i))
	}
	cl.redis.Stop()
	_ = c.Close()
	time.Sleep(500 * time.Millisecond) // a save or two fail
	cl.redis.Restart()
	cl.reconnected(t)
	waitFor(t, "the retried save", func() bool { return e.stored(t, cookie)["count"] == 3 })

	c = e.dial(t, "websocket", withCookie(cookie), "")
	c.expect(t, "welcome")
	wantJSON(t, "incr", c.call(t, "incr"), `4`)
	cl.redis.Stop()
	_ = c.Close()
	waitFor(t, "ErrUnsaved reported", func() bool {
		for _, err := range e.reported() {
			if errors.Is(err, iosessions.ErrUnsaved) && errors.Is(err, iosessions.ErrStoreUnavailable) {
				return true
			}
		}
		return false
	})
	cl.redis.Restart()
	cl.reconnected(t)
	if got := e.stored(t, cookie)["count"]; got != 3 {
		t.Errorf("the store has count %v after the lost save, want 3", got)
	}
}

// deadlineStore records, for every Load, Update and Lock, whether its
// context had a deadline within StoreTimeout and was still live.
type deadlineStore struct {
	*iosredis.Store
	timeout time.Duration
	mu      sync.Mutex
	bad     []string
	calls   int
}

func (s *deadlineStore) check(what string, ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	d, ok := ctx.Deadline()
	switch {
	case ctx.Err() != nil:
		s.bad = append(s.bad, what+": context already done")
	case !ok:
		s.bad = append(s.bad, what+": no deadline")
	case time.Until(d) > s.timeout:
		s.bad = append(s.bad, what+": deadline beyond StoreTimeout")
	}
}

func (s *deadlineStore) Load(ctx context.Context, name, key string) (*sessions.Session, error) {
	s.check("Load", ctx)
	return s.Store.Load(ctx, name, key)
}

func (s *deadlineStore) Update(ctx context.Context, name, id string, fn func(map[any]any)) error {
	s.check("Update", ctx)
	return s.Store.Update(ctx, name, id, fn)
}

func (s *deadlineStore) Lock(ctx context.Context, name, id string) (context.Context, func(), error) {
	s.check("Lock", ctx)
	return s.Store.Lock(ctx, name, id)
}

// ownDeadlines: every store call made for a socket has a deadline of its
// own, within StoreTimeout, and a live context: never the handshake
// request's, which is over by then.
func ownDeadlines(t *testing.T, b Binding) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			rs := redistest.Start(t)
			store, err := iosredis.NewStore(context.Background(), rs.Client(), &iosredis.Options{KeyPrefix: "conformance:"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { store.Close() })
			ds := &deadlineStore{Store: store, timeout: 2 * time.Second}
			e := newEnv(t, b, envOptions{Mode: mode, Store: ds, Config: func(c *iosessions.Config) { c.StoreTimeout = 2 * time.Second }})
			cookie := e.loginAs(t, "alice")
			c := e.dial(t, "websocket", withCookie(cookie), "")
			c.expect(t, "welcome")
			time.Sleep(50 * time.Millisecond) // the handshake request is long over
			wantJSON(t, "incr", c.call(t, "incr"), `1`)
			_ = c.Close()
			waitFor(t, "the save", func() bool { // not through ds
				sess, err := store.Load(context.Background(), "session", cookie.Value)
				return err == nil && sess.Values["count"] == 1
			})
			ds.mu.Lock()
			defer ds.mu.Unlock()
			if ds.calls < 2 {
				t.Fatalf("%d store calls seen", ds.calls)
			}
			for _, bad := range ds.bad {
				t.Error(bad)
			}
		})
	}
}

// broadcastAcrossNodes: Manager.Broadcast to a session's room reaches its
// sockets on both nodes, once each, through the store's relay, whatever
// the engine; another session's socket gets nothing.
func broadcastAcrossNodes(t *testing.T, b Binding) {
	cl := newCluster(t, b, clusterOptions{Mode: iosessions.PerConnection})
	alice, bob := cl.a.loginAs(t, "alice"), cl.a.loginAs(t, "bob")
	ca := cl.a.dial(t, "websocket", withCookie(alice), "")
	cb := cl.b.dial(t, "websocket", withCookie(alice), "")
	other := cl.b.dial(t, "websocket", withCookie(bob), "")
	for _, c := range []*conn{ca, cb, other} {
		c.expect(t, "welcome")
	}
	var room string
	for _, s := range cl.a.m.Sockets() {
		room = s.Room()
	}
	if room == "" {
		t.Fatal("no session room on node A")
	}
	if err := cl.a.m.Broadcast(room, "news", map[string]any{"n": 1, "text": "héllo"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*conn{ca, cb} {
		wantJSON(t, "news", c.expect(t, "news"), `{"n":1,"text":"héllo"}`)
	}
	wantJSON(t, "bob's whoami", other.call(t, "whoami"), `{"user":"bob","count":0}`)
	time.Sleep(100 * time.Millisecond)
	for i, c := range []*conn{ca, cb, other} {
		want := 1
		if c == other {
			want = 0
		}
		if n := c.count("news"); n != want {
			t.Errorf("socket %d got news %d times, want %d", i, n, want)
		}
	}
}
