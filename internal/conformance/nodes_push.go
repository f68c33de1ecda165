package conformance

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/iosredis"
)

// The registry, push and presence on two nodes sharing one redis-server.

// aliceAndBob connects alice on A (one session, one socket) and on B
// (another session, two sockets), and bob on B.
func aliceAndBob(t *testing.T, cl *cluster) (onA *conn, onB []*conn, bob *conn, cookies []*http.Cookie) {
	t.Helper()
	a1, a2, b1 := cl.a.loginAs(t, "alice"), cl.b.loginAs(t, "alice"), cl.a.loginAs(t, "bob")
	onA = cl.a.dial(t, "websocket", withCookie(a1), "")
	onB = []*conn{cl.b.dial(t, "websocket", withCookie(a2), ""), cl.b.dial(t, "websocket", withCookie(a2), "")}
	bob = cl.b.dial(t, "websocket", withCookie(b1), "")
	for _, c := range append(onB, onA, bob) {
		c.expect(t, "welcome")
	}
	return onA, onB, bob, []*http.Cookie{a1, a2, b1}
}

// registryAcrossNodes: each node answers for the whole cluster.
func registryAcrossNodes(t *testing.T, b Binding) {
	cl := newCluster(t, b, clusterOptions{Mode: iosessions.PerConnection})
	aliceAndBob(t, cl)
	ctx := ctxT(t)
	for _, e := range []*env{cl.a, cl.b} {
		var socks []iosessions.SocketInfo
		waitFor(t, "alice's three sockets", func() bool {
			socks, _ = e.m.SocketsOf(ctx, e.m.ToUser("alice"))
			return len(socks) == 3
		})
		perNode := map[string]int{}
		for _, si := range socks {
			perNode[si.Node]++
			if si.User != "alice" || si.Transport != "websocket" || si.ConnectedAt.IsZero() {
				t.Errorf("socket info %+v", si)
			}
		}
		if perNode[cl.a.m.Node()] != 1 || perNode[cl.b.m.Node()] != 2 {
			t.Errorf("alice's sockets per node: %v", perNode)
		}
		if refs, _ := e.m.SessionsOf(ctx, "alice"); len(refs) != 2 {
			t.Errorf("alice's sessions: %v", refs)
		}
		if users, err := e.m.Users(ctx); err != nil || strings.Join(users, ",") != "alice,bob" {
			t.Errorf("Users = %v, %v", users, err)
		}
	}
}

// pushAcrossNodes: a push from A reaches the sockets on B and counts
// their acks; to a session, to one socket of the other node, to nobody.
func pushAcrossNodes(t *testing.T, b Binding) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			cl := newCluster(t, b, clusterOptions{Mode: mode})
			onA, onB, bob, cookies := aliceAndBob(t, cl)
			ctx := ctxT(t)
			check := func(what string, to iosessions.Target, want iosessions.PushResult, got ...*conn) {
				t.Helper()
				res, err := cl.a.m.Push(ctx, to, "note", what)
				if err != nil || res != want {
					t.Fatalf("push %s: %+v, %v; want %+v", what, res, err, want)
				}
				for _, c := range got {
					wantJSON(t, "note", c.expect(t, "note"), `"`+what+`"`)
				}
			}
			check("alice", cl.a.m.ToUser("alice"), iosessions.PushResult{Sockets: 3, Acked: 3}, append(onB, onA)...)
			check("session on B", cl.a.m.ToSession(cl.a.session(t, cookies[1])), iosessions.PushResult{Sockets: 2, Acked: 2}, onB...)
			bobs, err := cl.a.m.SocketsOf(ctx, cl.a.m.ToUser("bob"))
			if err != nil || len(bobs) != 1 {
				t.Fatalf("bob's sockets: %v, %v", bobs, err)
			}
			check("bob's socket", iosessions.ToSocket(bobs[0].Node, bobs[0].ID), iosessions.PushResult{Sockets: 1, Acked: 1}, bob)
			check("nobody", cl.a.m.ToUser("carol"), iosessions.PushResult{})
			for i, c := range []*conn{onA, onB[0], onB[1], bob} {
				if n, want := c.count("note"), []int{1, 2, 2, 1}[i]; n != want {
					t.Errorf("socket %d got %d notes, want %d", i, n, want)
				}
			}
		})
	}
}

// publishedPush: a push that another process PUBLISHes reaches the user's
// (or the session's) sockets on both nodes; garbage changes nothing.
func publishedPush(t *testing.T, b Binding) {
	cl := newCluster(t, b, clusterOptions{Mode: iosessions.PerConnection})
	onA, onB, bob, cookies := aliceAndBob(t, cl)
	ctx := ctxT(t)
	waitFor(t, "both nodes subscribed to pushes", func() bool {
		n, err := cl.ra.PubSubNumSub(ctx, iosredis.PushChannel("conformance:")).Result()
		return err == nil && n[iosredis.PushChannel("conformance:")] == 2
	})
	ch := iosredis.PushChannel("conformance:")
	for _, garbage := range []string{
		`not json`, `{"user":"alice"}`, `{"event":"note","data":1}`,
		`{"user":"alice","session":"x","event":"note"}`, `{"user":"alice","event":"disconnect"}`,
		`{"user":"alice","event":"note","data":` + strings.Repeat("[", 100) + `}`,
	} {
		if err := cl.ra.Publish(ctx, ch, garbage).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.ra.Publish(ctx, ch, `{"user":"alice","event":"note","data":{"text":"from PUBLISH"}}`).Err(); err != nil {
		t.Fatal(err)
	}
	for _, c := range append(onB, onA) {
		wantJSON(t, "published note", c.expect(t, "note"), `{"text":"from PUBLISH"}`)
	}
	pub := iosredis.NewPublisher(cl.rb, "conformance:")
	if err := pub.PushSession(ctx, cl.a.session(t, cookies[0]).ID, "note", "to A's session"); err != nil {
		t.Fatal(err)
	}
	wantJSON(t, "session note", onA.expect(t, "note"), `"to A's session"`)
	if err := pub.PushUser(ctx, "bob", "note", 42); err != nil {
		t.Fatal(err)
	}
	wantJSON(t, "bob's note", bob.expect(t, "note"), `42`)
	for i, c := range []*conn{onA, onB[0], onB[1], bob} {
		if n, want := c.count("note"), []int{2, 1, 1, 1}[i]; n != want {
			t.Errorf("socket %d got %d notes, want %d", i, n, want)
		}
		if c.count("disconnect") != 0 || !c.open() {
			t.Errorf("socket %d was disturbed by garbage", i)
		}
	}
}

// presenceAcrossNodes: a user's changes are heard once across the
// cluster, in order; a socket moving between nodes within the grace
// changes nothing; both nodes answer Online alike.
func presenceAcrossNodes(t *testing.T, b Binding) {
	const grace = 1500 * time.Millisecond // a reconnect under load lands within it
	var log presenceLog
	cl := newCluster(t, b, clusterOptions{Mode: iosessions.PerConnection, Grace: grace,
		Setup: func(e *env) { e.m.OnPresence(log.add) }})
	ctx := ctxT(t)
	alice := cl.a.loginAs(t, "alice")
	ca := cl.a.dial(t, "websocket", withCookie(alice), "")
	ca.expect(t, "welcome")
	waitFor(t, "alice online", func() bool { return len(log.users()) == 1 })
	for _, e := range []*env{cl.a, cl.b} {
		if on, err := e.m.Online(ctx, "alice"); err != nil || !on {
			t.Errorf("Online(alice) = %v, %v", on, err)
		}
	}
	// The socket moves to B: connect there, leave A.
	cb := cl.b.dial(t, "websocket", withCookie(alice), "")
	cb.expect(t, "welcome")
	_ = ca.Close()
	time.Sleep(grace + 300*time.Millisecond) // long enough for a wrong offline to be heard
	_ = cb.Close()
	// A reload on A within the grace.
	waitFor(t, "alice's sockets gone", func() bool {
		s, _ := cl.b.m.SocketsOf(ctx, cl.b.m.ToUser("alice"))
		return len(s) == 0
	})
	c2 := cl.a.dial(t, "websocket", withCookie(alice), "")
	c2.expect(t, "welcome")
	_ = c2.Close()
	waitFor(t, "alice offline", func() bool { return len(log.users()) >= 2 })
	time.Sleep(grace / 2) // a second offline would show by now
	if got := strings.Join(log.users(), " "); got != "+alice -alice" {
		t.Errorf("presence changes across both nodes: %s, want +alice -alice", got)
	}
	for _, e := range []*env{cl.a, cl.b} {
		if on, _ := e.m.Online(ctx, "alice"); on {
			t.Error("alice online after the grace")
		}
	}
}

// nodeDeath: a node that dies without a goodbye (its Redis connection
// gone, as after SIGKILL) leaves the registry within NodeTTL, and its
// users go offline on the other node within NodeTTL plus the grace.
func nodeDeath(t *testing.T, b Binding) {
	const grace, ttl = 300 * time.Millisecond, time.Second
	var log presenceLog
	cl := newCluster(t, b, clusterOptions{Mode: iosessions.PerConnection, Grace: grace, NodeTTL: ttl,
		Setup: func(e *env) { e.m.OnPresence(log.add) }})
	ctx := ctxT(t)
	ca := cl.a.dial(t, "websocket", withCookie(cl.a.loginAs(t, "alice")), "")
	cb := cl.b.dial(t, "websocket", withCookie(cl.a.loginAs(t, "bob")), "")
	ca.expect(t, "welcome")
	cb.expect(t, "welcome")
	waitFor(t, "both online", func() bool { return len(log.users()) == 2 })

	_ = cl.ra.Close() // node A is cut off: no beat, no leave, no goodbye
	died := time.Now()
	waitFor(t, "alice offline", func() bool {
		for _, u := range log.users() {
			if u == "-alice" {
				return true
			}
		}
		return false
	})
	// NodeTTL plus the grace, and the handler's delivery.
	if took, bound := time.Since(died), ttl+grace+500*time.Millisecond; took > bound {
		t.Errorf("alice offline %v after node A died, bound %v", took, bound)
	}
	socks, err := cl.b.m.SocketsOf(ctx, cl.b.m.ToUser("alice"))
	if err != nil || len(socks) != 0 {
		t.Errorf("node B still lists %v, %v", socks, err)
	}
	if users, _ := cl.b.m.Users(ctx); strings.Join(users, ",") != "bob" {
		t.Errorf("Users = %v, want bob", users)
	}
	if got := strings.Join(log.users(), " "); got != "+alice +bob -alice" && got != "+bob +alice -alice" {
		t.Errorf("presence changes: %s", got)
	}
}

// registryAfterRedisLoss: after a Redis restart, and after the registry's
// keys are lost, each node joins its sockets again: push and presence
// work without restarting a node.
func registryAfterRedisLoss(t *testing.T, b Binding) {
	var log presenceLog
	cl := newCluster(t, b, clusterOptions{Mode: iosessions.PerConnection, Grace: 300 * time.Millisecond,
		Setup: func(e *env) { e.m.OnPresence(log.add) }})
	ctx := ctxT(t)
	onA, onB, bob, _ := aliceAndBob(t, cl)
	waitFor(t, "both online", func() bool { return len(log.users()) == 2 })

	cl.redis.Stop()
	cl.redis.Restart()
	cl.reconnected(t)
	waitFor(t, "both nodes subscribed again", func() bool { return subscribed(cl) })
	res, err := cl.b.m.Push(ctx, cl.b.m.ToUser("alice"), "note", "after restart")
	if err != nil || res != (iosessions.PushResult{Sockets: 3, Acked: 3}) {
		t.Errorf("push after restart: %+v, %v", res, err)
	}
	for _, c := range append(onB, onA) {
		c.expect(t, "note")
	}

	// The registry's keys vanish (a Redis without persistence restarted):
	// the nodes notice at their next beat and join their sockets again.
	keys, err := cl.rb.Keys(ctx, "conformance:{reg}:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("registry keys: %v, %v", keys, err)
	}
	if err := cl.rb.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	// Each node joins its sockets again at its next beat, one by one.
	waitFor(t, "the sockets back in the registry", func() bool {
		s, err := cl.a.m.SocketsOf(ctx, cl.a.m.ToUser("alice"))
		users, uerr := cl.a.m.Users(ctx)
		return err == nil && len(s) == 3 && uerr == nil && strings.Join(users, ",") == "alice,bob"
	})
	carol := cl.b.dial(t, "websocket", withCookie(cl.b.loginAs(t, "carol")), "")
	carol.expect(t, "welcome")
	waitFor(t, "carol online", func() bool {
		return strings.Contains(strings.Join(log.users(), " "), "+carol")
	})
	if res, err := cl.a.m.Push(ctx, cl.a.m.ToUser("bob"), "note", 1); err != nil || res != (iosessions.PushResult{Sockets: 1, Acked: 1}) {
		t.Errorf("push to bob after the loss: %+v, %v", res, err)
	}
	bob.expect(t, "note")
}

// changeAcrossNodes: a session saved over HTTP on A reaches the live
// sessions of its sockets on B within 1 s (PerConnection: through pub/sub;
// PerMessage: the next event loads it), keeping what B's socket changed
// and has not saved, and B's OnChange handler runs for them.
func changeAcrossNodes(t *testing.T, b Binding) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			cl := newCluster(t, b, clusterOptions{Mode: mode})
			changed := make(chan struct{}, 4)
			cl.b.m.OnChange(func(*iosessions.Socket) { changed <- struct{}{} })
			cookie := cl.a.loginAs(t, "alice")
			c1 := cl.b.dial(t, "websocket", withCookie(cookie), "")
			c2 := cl.b.dial(t, "websocket", withCookie(cookie), "")
			c1.expect(t, "welcome")
			c2.expect(t, "welcome")
			wantJSON(t, "incr on B", c1.call(t, "incr"), `1`) // PerConnection: not saved yet
			if code := cl.a.post(t, "/rename", cookie, url.Values{"user": {"alicia"}}); code != http.StatusOK {
				t.Fatalf("rename on A: %d", code)
			}
			for range 2 {
				select {
				case <-changed:
				case <-time.After(time.Second):
					t.Fatal("B's OnChange did not run for both sockets within 1 s")
				}
			}
			for _, c := range []*conn{c1, c2} {
				wantJSON(t, "whoami on B", c.call(t, "whoami"), `{"user":"alicia","count":1}`)
			}
		})
	}
}
