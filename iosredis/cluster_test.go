package iosredis_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/internal/redistest"
	"github.com/iosessions/iosessions/iosredis"
)

// TestCluster runs the Store on a private three-master Redis Cluster
// (redistest.StartCluster) through redis.NewClusterClient: every script
// and transaction of the Store works there (a CROSSSLOT error would fail
// it), and pub/sub reaches every master. The cluster is started once and
// emptied between the subtests.
func TestCluster(t *testing.T) {
	rc := redistest.StartCluster(t)
	cc := rc.Client()
	ctx := context.Background()
	newClusterStore := func(t *testing.T, client redis.UniversalClient, o *iosredis.Options) *iosredis.Store {
		t.Helper()
		if o == nil {
			o = &iosredis.Options{}
		}
		o.KeyPrefix = prefix
		s, err := iosredis.NewStore(ctx, client, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	run := func(name string, f func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
				return c.FlushAll(ctx).Err()
			})
			if err != nil {
				t.Fatal(err)
			}
			f(t)
		})
	}

	// Every key of a session hashes to the slot of its id's hash tag, and
	// sessions spread over the three masters.
	run("keyslots", func(t *testing.T) {
		s := newClusterStore(t, cc, nil)
		masters := map[string]int{}
		for i := range 30 {
			id := login(t, s, map[any]any{"i": i}, 0).Value
			_, unlock, err := s.Lock(ctx, "session", id)
			if err != nil {
				t.Fatal(err)
			}
			lock := prefix + "lock:" + id
			if cc.Exists(ctx, lock).Val() != 1 {
				t.Fatalf("no lock at the key %s", strings.Replace(lock, id, "<id>", 1))
			}
			unlock()
			if a, b := cc.ClusterKeySlot(ctx, prefix+id).Val(), cc.ClusterKeySlot(ctx, lock).Val(); a != b {
				t.Fatalf("a session in slot %d, its lock in slot %d", a, b)
			}
			node, err := cc.MasterForKey(ctx, prefix+id)
			if err != nil {
				t.Fatal(err)
			}
			masters[node.Options().Addr]++
		}
		if len(masters) != 3 {
			t.Fatalf("30 sessions on %d masters (%v), want all 3", len(masters), masters)
		}
		t.Logf("30 sessions per master: %v", masters)
	})

	// Save and load over HTTP; a client's own id is never adopted.
	run("http", func(t *testing.T) {
		s := newClusterStore(t, cc, nil)
		cookie := login(t, s, map[any]any{"user": "ann"}, 0)
		sess, err := s.Get(request(cookie), "session")
		if err != nil || sess.IsNew || sess.Values["user"] != "ann" {
			t.Fatalf("Get: %v, IsNew %v, values %v", err, sess.IsNew, sess.Values)
		}
		sess.Values["n"] = 1
		if err := sess.Save(request(cookie), httptest.NewRecorder()); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load(ctx, "session", cookie.Value)
		if err != nil || got.Values["n"] != 1 {
			t.Fatalf("Load after Save: %v, %v", got, err)
		}
		chosen := "{" + strings.Repeat("A", 103) + "}"
		fresh, err := s.New(request(cookieOf(chosen)), "session")
		if err != nil || !fresh.IsNew || fresh.ID != "" {
			t.Fatalf("New with an unknown id: %v, IsNew %v, id set %v", err, fresh.IsNew, fresh.ID != "")
		}
	})

	// Per message: the lock and the session in one script, the save and
	// the release in another; a holder whose lock expired cannot write.
	run("lock", func(t *testing.T) {
		s := newClusterStore(t, cc, &iosredis.Options{LockTTL: 200 * time.Millisecond})
		id := login(t, s, map[any]any{"n": 0}, 0).Value
		held1, unlock1, err := s.Lock(ctx, "session", id)
		if err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if _, _, err := s.Lock(short, "session", id); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("second Lock while held: %v, want the context's deadline", err)
		}
		waitUntil(t, "the first lock to expire", func() bool { return cc.Exists(ctx, prefix+"lock:"+id).Val() == 0 })
		held2, unlock2, err := s.Lock(ctx, "session", id)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Update(held1, "session", id, func(v map[any]any) { v["n"] = 1 }); !errors.Is(err, iosredis.ErrLockLost) {
			t.Fatalf("write under an expired lock: %v, want ErrLockLost", err)
		}
		unlock1()
		if cc.Exists(ctx, prefix+"lock:"+id).Val() != 1 {
			t.Fatal("the expired holder's unlock released the current lock")
		}
		if err := s.Update(held2, "session", id, func(v map[any]any) { v["n"] = 2 }); err != nil {
			t.Fatal(err)
		}
		if cc.Exists(ctx, prefix+"lock:"+id).Val() != 0 {
			t.Fatal("the save under the lock left the lock")
		}
		unlock2()
		// Update without a lock: WATCH/MULTI on the session's key.
		if err := s.Update(ctx, "session", id, func(v map[any]any) { v["n"] = v["n"].(int) + 1 }); err != nil {
			t.Fatal(err)
		}
		if sess, err := s.Load(ctx, "session", id); err != nil || sess.Values["n"] != 3 {
			t.Fatalf("n = %v, %v; want 3", sess.Values["n"], err)
		}
	})

	// A session deleted meanwhile is not brought back by any save.
	run("ended", func(t *testing.T) {
		s := newClusterStore(t, cc, nil)
		cookie := login(t, s, map[any]any{"user": "ann"}, 0)
		id := cookie.Value
		sess, err := s.New(request(cookie), "session")
		if err != nil {
			t.Fatal(err)
		}
		held, unlock, err := s.Lock(ctx, "session", id)
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		cc.Del(ctx, prefix+id)
		if err := sess.Save(request(cookie), httptest.NewRecorder()); !errors.Is(err, iosessions.ErrNotFound) {
			t.Errorf("Save after delete: %v, want ErrNotFound", err)
		}
		if err := s.Update(held, "session", id, func(map[any]any) {}); !errors.Is(err, iosessions.ErrNotFound) {
			t.Errorf("Update under the lock after delete: %v, want ErrNotFound", err)
		}
		if err := s.Update(ctx, "session", id, func(map[any]any) {}); !errors.Is(err, iosessions.ErrNotFound) {
			t.Errorf("Update after delete: %v, want ErrNotFound", err)
		}
		if cc.Exists(ctx, prefix+id, prefix+"lock:"+id).Val() != 0 {
			t.Error("the deleted session, or its lock, is back")
		}
	})

	// A shim token's nonce is good once, on any node.
	run("tokens", func(t *testing.T) {
		s, other := newClusterStore(t, cc, nil), newClusterStore(t, rc.Client(), nil)
		for i := range 10 {
			nonce := fmt.Sprint("n", i)
			if first, err := s.Use(ctx, nonce, time.Minute); !first || err != nil {
				t.Fatalf("first use: %v %v", first, err)
			}
			if first, err := other.Use(ctx, nonce, time.Minute); first || err != nil {
				t.Fatalf("replay through another client: %v %v, want refused", first, err)
			}
		}
	})

	// PerMessage events cost two commands each on a cluster too.
	run("two commands", func(t *testing.T) {
		client := rc.Client()
		var log commandLog
		client.AddHook(&log)
		s := newClusterStore(t, client, nil)
		m, err := iosessions.New(s, iosessions.Config{Mode: iosessions.PerMessage})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
		cookie := login(t, s, map[any]any{"n": 0}, 0)
		sock := m.Accept(newBenchConn(cookie))
		sock.Open()
		incr := func(sess *iosessions.Session) error {
			sess.Values["n"] = sess.Values["n"].(int) + 1
			return nil
		}
		for range 5 {
			if err := sock.Do(ctx, incr); err != nil {
				t.Fatal(err)
			}
		}
		log.takeAll()
		before := clusterStats(t, cc)
		const n = 50
		for range n {
			if err := sock.Do(ctx, incr); err != nil {
				t.Fatal(err)
			}
		}
		after := clusterStats(t, cc)
		sent := log.takeAll()
		beats := count(sent, "script:beat") + count(sent, "script:live")
		background := beats + count(sent, "noscript") + count(sent, "exists") +
			count(sent, "hello") + count(sent, "client") + count(sent, "cluster") + count(sent, "command")
		evalsha := after["evalsha"] - before["evalsha"] - int64(beats)
		t.Logf("%d events: %d commands sent (%d beside them left out), the masters counted %d EVALSHA", n, len(sent)-background, background, evalsha)
		if top := len(sent) - background; top > 2*n || evalsha > 2*n {
			t.Errorf("%d commands sent and %d scripts run for %d events, want at most 2 each: %v", top, evalsha, n, tally(sent))
		}
		for _, tx := range []string{"watch", "multi", "exec"} {
			if d := after[tx] - before[tx]; d != 0 {
				t.Errorf("events ran %s %d times", strings.ToUpper(tx), d)
			}
		}
		if sess, err := s.Load(ctx, "session", cookie.Value); err != nil || sess.Values["n"] != n+5 {
			t.Fatalf("n = %v, %v; want %d", sess.Values["n"], err, n+5)
		}
	})

	// A logout through one Store reaches NotifyEnd of a Store on another
	// client, and a message published on any master reaches the
	// subscriber, wherever it is connected.
	run("notify", func(t *testing.T) {
		s, other := newClusterStore(t, cc, nil), newClusterStore(t, rc.Client(), nil)
		ended := make(chan string, 8)
		other.NotifyEnd(func(id string) { ended <- id })
		waitClusterSubscribed(t, cc, prefix+"ended")
		for range 3 { // PUBLISH goes to any master
			cookie := login(t, s, map[any]any{"u": "a"}, 0)
			sess, _ := s.Get(request(cookie), "session")
			sess.Options.MaxAge = -1
			if err := sess.Save(request(cookie), httptest.NewRecorder()); err != nil {
				t.Fatal(err)
			}
			select {
			case id := <-ended:
				if id != cookie.Value {
					t.Fatal("NotifyEnd got another id")
				}
			case <-time.After(2 * time.Second):
				t.Fatal("no end notified to the other store")
			}
		}
		for _, addr := range rc.Addrs { // through each master in turn
			c := redis.NewClient(&redis.Options{Addr: addr})
			err := c.Publish(ctx, prefix+"ended", "via "+addr).Err()
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
			select {
			case id := <-ended:
				if id != "via "+addr {
					t.Fatalf("got %q, want the message published on %s", id, addr)
				}
			case <-time.After(2 * time.Second):
				t.Fatalf("a message published on %s did not reach the subscriber", addr)
			}
		}
	})

	// Pushes of a Publisher, on the cluster client or on a client of any
	// one master, reach OnPush.
	run("push", func(t *testing.T) {
		s := newClusterStore(t, cc, nil)
		pushes := make(chan string, 8)
		s.OnPush(func(msg []byte) { pushes <- string(msg) })
		waitClusterSubscribed(t, cc, iosredis.PushChannel(prefix))
		clients := []redis.UniversalClient{rc.Client()}
		for _, addr := range rc.Addrs {
			c := redis.NewClient(&redis.Options{Addr: addr})
			t.Cleanup(func() { c.Close() })
			clients = append(clients, c)
		}
		for i, c := range clients {
			user := fmt.Sprint("u", i)
			if err := iosredis.NewPublisher(c, prefix).PushUser(ctx, user, "note", "hi"); err != nil {
				t.Fatal(err)
			}
			select {
			case msg := <-pushes:
				if !strings.Contains(msg, `"user":"`+user+`"`) {
					t.Fatalf("push %s, want one to %s", msg, user)
				}
			case <-time.After(2 * time.Second):
				t.Fatalf("push %d did not arrive", i)
			}
		}
	})

	// The registry's scripts (join, leave, beat, part, sockets).
	run("registry", func(t *testing.T) { testRegistry(t, rc.Client()) })
}

// cookieOf is a session cookie of value v.
func cookieOf(v string) *http.Cookie { return &http.Cookie{Name: "session", Value: v} }

// clusterStats sums INFO commandstats over the cluster's masters.
func clusterStats(t *testing.T, cc *redis.ClusterClient) map[string]int64 {
	t.Helper()
	var mu sync.Mutex
	out := make(map[string]int64)
	err := cc.ForEachMaster(context.Background(), func(ctx context.Context, c *redis.Client) error {
		info, err := c.Info(ctx, "commandstats").Result()
		if err != nil {
			return err
		}
		one := parseStats(info)
		mu.Lock()
		defer mu.Unlock()
		for k, v := range one {
			out[k] += v
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitClusterSubscribed waits until a master has a subscriber of channel.
func waitClusterSubscribed(t *testing.T, cc *redis.ClusterClient, channel string) {
	t.Helper()
	waitUntil(t, "a subscriber of "+channel, func() bool {
		var mu sync.Mutex
		n := int64(0)
		_ = cc.ForEachMaster(context.Background(), func(ctx context.Context, c *redis.Client) error {
			subs := c.PubSubNumSub(ctx, channel).Val()[channel]
			mu.Lock()
			n += subs
			mu.Unlock()
			return nil
		})
		return n > 0
	})
}
