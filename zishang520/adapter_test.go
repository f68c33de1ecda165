package zishang520_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	sioredis "github.com/zishang520/socket.io/adapters/redis/v3"
	"github.com/zishang520/socket.io/adapters/redis/v3/adapter"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/internal/redistest"
	"github.com/iosessions/iosessions/internal/sio2"
	"github.com/iosessions/iosessions/iosredis"
	"github.com/iosessions/iosessions/zishang520"
)

// TestAdapter runs two binding servers, each with its own Manager, on one
// redis-server (iosredis stores, shared TokenKeys), both with the engine's
// Redis adapter (adapters/redis v3.0.2): a room broadcast of the engine on
// one node reaches the room's sockets on the other, for a room that
// sockets joined and for the session room of the binding, and again after
// Redis restarted.
func TestAdapter(t *testing.T) {
	rs := redistest.Start(t)
	a, b := newAdapterNode(t, rs, "A"), newAdapterNode(t, rs, "B")

	t.Run("JoinedRoom", func(t *testing.T) {
		inA, inB, outB := a.dial(t, ""), b.dial(t, ""), b.dial(t, "")
		for _, c := range []*sio2.Client{inA, inB} {
			if got := call(t, c, "join", "news"); got != "true" {
				t.Fatalf("join acked %s", got)
			}
		}
		// Each node's broadcast reaches the room's sockets on both.
		for _, from := range []*adapterNode{a, b} {
			if err := from.srv.Engine().To("news").Emit("news", from.name); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*sio2.Client{inA, inB} {
				wantEvent(t, c, "news", `"`+from.name+`"`)
			}
		}
		// Not the socket outside the room.
		time.Sleep(200 * time.Millisecond)
		select {
		case ev := <-outB.Events():
			t.Errorf("a socket outside the room got %s %s", ev.Name, ev.Args)
		default:
		}
	})

	t.Run("SessionRoom", func(t *testing.T) {
		cookie := a.login(t, "alice")
		ca, cb := a.dial(t, cookie), b.dial(t, cookie)
		roomA, roomB := <-a.rooms, <-b.rooms
		if roomA == "" || roomA != roomB {
			t.Fatalf("session rooms %q on A, %q on B: want one name on both nodes (shared TokenKeys)", roomA, roomB)
		}
		if err := a.srv.Engine().To(socket.Room(roomA)).Emit("hello", "from A"); err != nil {
			t.Fatal(err)
		}
		wantEvent(t, ca, "hello", `"from A"`)
		wantEvent(t, cb, "hello", `"from A"`)
	})

	t.Run("AfterRedisRestart", func(t *testing.T) {
		inA, inB := a.dial(t, ""), b.dial(t, "")
		for _, c := range []*sio2.Client{inA, inB} {
			call(t, c, "join", "after")
		}
		rs.Stop()
		time.Sleep(300 * time.Millisecond) // the subscriptions notice
		rs.Restart()
		// go-redis resubscribes each adapter's pattern by itself.
		deadline := time.Now().Add(10 * time.Second)
		for patternSubscribers(rs) < 2 {
			if time.Now().After(deadline) {
				t.Fatal("the adapters did not resubscribe within 10 s of Redis's restart")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := a.srv.Engine().To("after").Emit("news", "again"); err != nil {
			t.Fatal(err)
		}
		wantEvent(t, inB, "news", `"again"`)
		wantEvent(t, inA, "news", `"again"`)
	})
}

// adapterNode is one node of TestAdapter.
type adapterNode struct {
	name  string
	srv   *zishang520.Server
	m     *iosessions.Manager
	url   string
	rooms chan string // the session room of every socket with a session
}

var adapterKeys = [][]byte{[]byte("adapter-hash-key-0123456789abcdef"), []byte("adapter-block-key-0123456789abcd")}

func newAdapterNode(t *testing.T, rs *redistest.Server, name string) *adapterNode {
	t.Helper()
	ctx := context.Background()
	store, err := iosredis.NewStore(ctx, rs.Client(), &iosredis.Options{KeyPrefix: "adapter:"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := iosessions.New(store, iosessions.Config{Name: "session", TokenKeys: adapterKeys, StoreTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	n := &adapterNode{name: name, m: m, rooms: make(chan string, 16)}
	m.OnConnection(func(s *iosessions.Socket, _ *iosessions.Session) { n.rooms <- s.Room() })

	rc := sioredis.NewRedisClient(ctx, rs.Client())
	opts := &adapter.RedisAdapterOptions{}
	opts.SetKey("adapter:socket.io")
	so := socket.DefaultServerOptions()
	so.SetAdapter(&adapter.RedisAdapterBuilder{Redis: rc, Opts: opts})
	srv, err := zishang520.NewServer(m, &zishang520.Options{Server: so})
	if err != nil {
		t.Fatal(err)
	}
	n.srv = srv
	// While Redis is down the adapter retries its reads at once; pace it.
	// After NewServer: the adapter's own listener, which warns when it is
	// alone, runs first.
	_ = rc.On("error", func(...any) { time.Sleep(50 * time.Millisecond) })
	zishang520.OnEvent(srv, "join", func(s *iosessions.Socket, room string) (bool, error) {
		return true, s.Conn().Join(room)
	})

	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		sess, err := m.Renew(r.Context(), w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		sess.Values["user"] = r.FormValue("user")
		if err := sess.Save(r, w); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	ts := httptest.NewServer(m.Middleware(mux))
	n.url = ts.URL
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = m.Shutdown(ctx)
		_ = srv.Close()
		ts.Close()
		_ = store.Close()
	})
	return n
}

// login logs in as user on n and returns the Cookie header of the session.
func (n *adapterNode) login(t *testing.T, user string) string {
	t.Helper()
	res, err := http.Post(n.url+"/login", "application/x-www-form-urlencoded", strings.NewReader("user="+user))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || len(res.Cookies()) == 0 {
		t.Fatalf("login: %s, cookies %v", res.Status, res.Cookies())
	}
	c := res.Cookies()[0]
	return c.Name + "=" + c.Value
}

// dial connects a websocket sio2 client (EIO=4) to n, with cookie if not
// empty. t's cleanup closes it.
func (n *adapterNode) dial(t *testing.T, cookie string) *sio2.Client {
	t.Helper()
	opts := sio2.Options{EIO: 4, Header: http.Header{}}
	if cookie != "" {
		opts.Header.Set("Cookie", cookie)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	c, err := sio2.Dial(ctx, n.url, opts)
	cancel()
	if err != nil {
		t.Fatalf("dial %s: %v", n.name, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if cookie == "" {
		wantEvent(t, c, "sinvalid", "") // and stays connected
	}
	return c
}

// call emits event with arg and returns the ack's argument as JSON.
func call(t *testing.T, c *sio2.Client, event string, arg any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	args, err := c.Call(ctx, event, arg)
	if err != nil || len(args) != 1 {
		t.Fatalf("%s: ack %s, %v", event, args, err)
	}
	return string(args[0])
}

// wantEvent waits up to 3 s for event on c, with one argument that is
// the JSON want, or any argument if want is "".
func wantEvent(t *testing.T, c *sio2.Client, event, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ev, err := c.Expect(ctx, event)
	if err != nil {
		t.Fatalf("waiting for %s: %v", event, err)
	}
	if want != "" && (len(ev.Args) != 1 || !jsonEqual(ev.Args[0], want)) {
		t.Fatalf("%s %s; want %s", event, ev.Args, want)
	}
}

// jsonEqual reports whether a and b are the same JSON value.
func jsonEqual(a json.RawMessage, b string) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	bx, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return string(bx) == string(by)
}

// patternSubscribers is the number of Redis connections with a pattern
// subscription on rs: one per adapter (PUBSUB NUMPAT counts distinct
// patterns, and the nodes share theirs).
func patternSubscribers(rs *redistest.Server) int {
	c := redis.NewClient(&redis.Options{Addr: rs.Addr, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	list, err := c.ClientList(ctx).Result()
	if err != nil {
		return 0
	}
	n := 0
	for _, line := range strings.Split(list, "\n") {
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "psub=") && f != "psub=0" {
				n++
			}
		}
	}
	return n
}
