package iosredis_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/iosredis"
)

// commandLog is a go-redis hook that records the commands a client sends,
// EVALSHA by the name of its script.
type commandLog struct {
	mu   sync.Mutex
	cmds []string
}

func (l *commandLog) DialHook(next redis.DialHook) redis.DialHook { return next }

func (l *commandLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		// A script the server does not have yet is sent again whole
		// (EVAL): count that one, and the refused EVALSHA apart.
		if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			l.mu.Lock()
			l.cmds = append(l.cmds, "noscript")
			l.mu.Unlock()
			return err
		}
		l.add(cmd)
		return err
	}
}

func (l *commandLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			l.add(c)
		}
		return next(ctx, cmds)
	}
}

func (l *commandLog) add(c redis.Cmder) {
	name := c.Name()
	switch name {
	case "evalsha":
		if sha, ok := c.Args()[1].(string); ok && iosredis.Scripts[sha] != "" {
			name = "script:" + iosredis.Scripts[sha]
		}
	case "eval": // a script's first run on a connection's server: by its body
		if body, ok := c.Args()[1].(string); ok {
			sum := sha1.Sum([]byte(body))
			if n := iosredis.Scripts[hex.EncodeToString(sum[:])]; n != "" {
				name = "script:" + n
			}
		}
	}
	l.mu.Lock()
	l.cmds = append(l.cmds, name)
	l.mu.Unlock()
}

// takeAll returns the commands since the last take, the beats included.
func (l *commandLog) takeAll() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.cmds
	l.cmds = nil
	return out
}

// take returns the commands since the last take, without the beats.
func (l *commandLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, c := range l.cmds {
		if c != "script:beat" {
			out = append(out, c)
		}
	}
	l.cmds = nil
	return out
}

func count(cmds []string, name string) int {
	n := 0
	for _, c := range cmds {
		if c == name {
			n++
		}
	}
	return n
}

// TestPresenceCost counts what presence costs in Redis: one script at
// connect (join) and one at disconnect (leave), run off the connect's
// path, and nothing on an ordinary event in either mode.
func TestPresenceCost(t *testing.T) {
	for _, mode := range []iosessions.Mode{iosessions.PerConnection, iosessions.PerMessage} {
		t.Run(mode.String(), func(t *testing.T) {
			s, c, _ := newStore(t, nil)
			var log commandLog
			c.AddHook(&log)
			m, err := iosessions.New(s, iosessions.Config{Mode: mode, User: func(v map[any]any) string {
				u, _ := v["user"].(string)
				return u
			}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
			cookie := login(t, s, map[any]any{"user": "ann", "n": 0}, 0)
			ctx := context.Background()
			log.take()

			sock := m.Accept(newBenchConn(cookie))
			sock.Open()
			if err := sock.Err(); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "ann online", func() bool { on, _ := m.Online(ctx, "ann"); return on })
			connect := log.take()
			if n := count(connect, "script:join"); n != 1 {
				t.Errorf("connect: %d joins, want 1 (%v)", n, connect)
			}
			t.Logf("connect: %d commands: %s (Online: 1 script:live)", len(connect), strings.Join(connect, " "))

			for i := 0; i < 100; i++ {
				if err := sock.Do(ctx, func(sess *iosessions.Session) error {
					sess.Values["n"] = sess.Values["n"].(int) + 1
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			events := log.take()
			for _, cmd := range events {
				if strings.HasPrefix(cmd, "script:") && cmd != "script:beat" {
					t.Errorf("an event ran the registry's %s", cmd)
					break
				}
			}
			t.Logf("100 events: %d commands (%d per event), none of the registry's", len(events), len(events)/100)

			sock.Closed("bye")
			waitUntil(t, "ann's socket gone", func() bool {
				socks, err := m.SocketsOf(ctx, m.ToUser("ann"))
				log.mu.Lock()
				leaves := count(log.cmds, "script:leave")
				log.mu.Unlock()
				return err == nil && len(socks) == 0 && leaves == 1
			})
			disconnect := log.take()
			if n := count(disconnect, "script:leave"); n != 1 {
				t.Errorf("disconnect: %d leaves, want 1 (%v)", n, disconnect)
			}
			t.Logf("disconnect: %s", strings.Join(disconnect, " "))
		})
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkRegistryJoinLeave is one socket joining and leaving the
// registry (a user and a session): the Redis work presence adds to a
// connect and a disconnect, on a private redis-server over loopback.
func BenchmarkRegistryJoinLeave(b *testing.B) {
	s, _, _ := newStore(b, nil, "--appendonly", "no")
	ctx := context.Background()
	si := iosessions.SocketInfo{Node: "bench", Transport: "websocket", ConnectedAt: time.Now(), User: "ann", Session: "iosessions:room"}
	subjects := []string{"u:ann", "s:iosessions:room"}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		si.ID = fmt.Sprint(i)
		if _, _, err := s.Join(ctx, si, subjects, 15*time.Second); err != nil {
			b.Fatal(err)
		}
		if err := s.Leave(ctx, si, subjects, 5*time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

// TestTwoCommandsPerEvent: in PerMessage mode an event costs Redis two
// commands, changed or not: one script takes the session's lock and
// loads the session, one saves it and releases the lock (or, unchanged,
// releases it). The client sends two commands an event (a hook counts
// them, presence beats left out), and INFO commandstats shows them: two
// EVALSHA an event, no WATCH, MULTI or EXEC.
func TestTwoCommandsPerEvent(t *testing.T) {
	s, c, _ := newStore(t, nil)
	var log commandLog
	c.AddHook(&log)
	m, err := iosessions.New(s, iosessions.Config{Mode: iosessions.PerMessage})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	cookie := login(t, s, map[any]any{"n": 0}, 0)
	sock := m.Accept(newBenchConn(cookie))
	sock.Open()
	ctx := context.Background()
	incr := func(sess *iosessions.Session) error {
		sess.Values["n"] = sess.Values["n"].(int) + 1
		return nil
	}
	read := func(*iosessions.Session) error { return nil }
	for _, ev := range []struct {
		name string
		fn   func(*iosessions.Session) error
	}{{"changed", incr}, {"unchanged", read}} {
		for i := 0; i < 5; i++ { // warm: connections dialled, scripts loaded
			if err := sock.Do(ctx, ev.fn); err != nil {
				t.Fatal(err)
			}
		}
		// The log is read around the server's counts, so that what ran
		// beside the events in between is in the log.
		log.takeAll()
		before := commandStats(t, c)
		const n = 100
		for i := 0; i < n; i++ {
			if err := sock.Do(ctx, ev.fn); err != nil {
				t.Fatal(err)
			}
		}
		after := commandStats(t, c)
		sent := log.takeAll()
		// Left out: what runs beside the events (the presence beats, the
		// periodic existence check) and a new connection's handshake
		// (go-redis dials one when its pool has none free).
		beats := count(sent, "script:beat") + count(sent, "script:live") + count(sent, "noscript")
		background := beats + count(sent, "exists") + count(sent, "hello") + count(sent, "client") + count(sent, "info")
		top := len(sent) - background
		evalsha := after["evalsha"] - before["evalsha"] - int64(beats)
		t.Logf("%s: %d events, %d commands sent (%d beside them left out); Redis counted %d EVALSHA, %d WATCH, %d MULTI, %d EXEC, %d GET, %d SET",
			ev.name, n, top, background, evalsha, after["watch"]-before["watch"], after["multi"]-before["multi"],
			after["exec"]-before["exec"], after["get"]-before["get"], after["set"]-before["set"])
		// go-redis sends a command whose reply timed out again, on a new
		// connection (a handshake in the log): the server counts it twice.
		if top > 2*n || evalsha > int64(2*n+count(sent, "hello")) {
			t.Errorf("%s events: %d commands sent and %d scripts run for %d events, want at most 2 each: %v", ev.name, top, evalsha, n, tally(sent))
		}
		for _, tx := range []string{"watch", "multi", "exec"} {
			if d := after[tx] - before[tx]; d != 0 {
				t.Errorf("%s events ran %s %d times", ev.name, strings.ToUpper(tx), d)
			}
		}
	}
	sess, err := s.Load(ctx, "session", cookie.Value)
	if err != nil || sess.Values["n"] != 105 {
		t.Fatalf("n = %v, %v; want 105", sess.Values["n"], err)
	}
}

// commandStats returns INFO commandstats: command -> calls (a script's
// own commands counted under their names too).
func commandStats(t *testing.T, c *redis.Client) map[string]int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	return parseStats(info)
}

// parseStats parses INFO commandstats.
func parseStats(info string) map[string]int64 {
	out := make(map[string]int64)
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		var n int64
		fmt.Sscanf(rest, "%d", &n)
		out[name] = n
	}
	return out
}

// tally counts the commands of a log by name.
func tally(cmds []string) map[string]int {
	out := make(map[string]int)
	for _, c := range cmds {
		out[c]++
	}
	return out
}

// TestRegistry runs the registry's scripts on one redis-server (see
// testRegistry; TestCluster runs them on a cluster).
func TestRegistry(t *testing.T) {
	_, c, _ := newStore(t, nil)
	testRegistry(t, c)
}

// testRegistry: sockets join and leave; Sockets lists those of live
// nodes; a node that stops beating is reaped by one beat of another node
// (two scripts: the first finds it dead, the second reaps it with its
// keys), its subjects reported absent exactly once even when two nodes
// beat at once, its keys deleted; Part takes a node out.
func testRegistry(t *testing.T, c redis.UniversalClient) {
	ctx := context.Background()
	var log commandLog
	c.AddHook(&log)
	stores := make([]*iosredis.Store, 2)
	for i := range stores {
		s, err := iosredis.NewStore(ctx, c, &iosredis.Options{KeyPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	a, b := stores[0], stores[1]
	join := func(s *iosredis.Store, node, id, user string, ttl time.Duration) {
		t.Helper()
		si := iosessions.SocketInfo{Node: node, ID: id, User: user, Transport: "websocket"}
		fresh, present, err := s.Join(ctx, si, []string{"u:" + user}, ttl)
		if err != nil || !fresh || len(present) != 1 || present[0] != "u:"+user {
			t.Fatalf("Join %s on %s: fresh %v, present %v, %v; want a fresh node and u:%s present", id, node, fresh, present, err, user)
		}
	}
	join(a, "dies", "s1", "ann", 300*time.Millisecond)
	join(b, "lives", "s2", "bob", 10*time.Second)
	socketIDs := func(s *iosredis.Store) []string {
		t.Helper()
		socks, err := s.Sockets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, si := range socks {
			ids = append(ids, si.Node+"/"+si.ID)
		}
		slices.Sort(ids)
		return ids
	}
	if got := socketIDs(a); !slices.Equal(got, []string{"dies/s1", "lives/s2"}) {
		t.Fatalf("Sockets = %v, want dies/s1 lives/s2", got)
	}
	log.take()
	if got := socketIDs(a); len(got) != 2 {
		t.Fatalf("Sockets again = %v", got)
	}
	log.mu.Lock()
	if n := len(log.cmds); n != 1 {
		t.Errorf("Sockets with the live nodes known: %d commands %v, want one script", n, log.cmds)
	}
	log.cmds = nil
	log.mu.Unlock()

	waitUntil(t, "node dies to miss its beat", func() bool {
		nodes, err := a.Nodes(ctx)
		return err == nil && !slices.Contains(nodes, "dies")
	})
	if got := socketIDs(b); !slices.Equal(got, []string{"lives/s2"}) {
		t.Fatalf("Sockets after node dies missed its beat = %v, want lives/s2", got)
	}

	// Two nodes beat at once: ann goes absent once, in one of them.
	var wg sync.WaitGroup
	absent := make([][]string, 2)
	errs := make([]error, 2)
	for i, node := range []string{"lives", "other"} {
		wg.Go(func() { _, absent[i], errs[i] = stores[i].Beat(ctx, node, 10*time.Second, 0) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if all := append(absent[0], absent[1]...); !slices.Equal(all, []string{"u:ann"}) {
		t.Fatalf("beats reported absent %v and %v, want u:ann once", absent[0], absent[1])
	}
	for _, k := range []string{"sockets:dies", "nodecount:dies"} {
		if n := c.Exists(ctx, prefix+"{reg}:"+k).Val(); n != 0 {
			t.Errorf("%s left after the reap", k)
		}
	}
	if present, err := a.Present(ctx); err != nil || !slices.Equal(present, []string{"u:bob"}) {
		t.Fatalf("Present = %v, %v; want u:bob", present, err)
	}
	log.mu.Lock()
	log.cmds = nil
	log.mu.Unlock()
	if _, absent, err := b.Beat(ctx, "lives", 10*time.Second, 0); err != nil || len(absent) != 0 {
		t.Fatalf("Beat = %v, %v", absent, err)
	}
	log.mu.Lock()
	if n := count(log.cmds, "script:beat"); n != 1 || len(log.cmds) != 1 {
		t.Errorf("a beat with no dead node: %v, want one script", log.cmds)
	}
	log.mu.Unlock()

	si := iosessions.SocketInfo{Node: "lives", ID: "s2"}
	if err := b.Leave(ctx, si, []string{"u:bob"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := socketIDs(b); len(got) != 0 {
		t.Fatalf("Sockets after Leave = %v", got)
	}
	for _, node := range []string{"lives", "other"} {
		if err := b.Part(ctx, node, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if nodes, err := a.Nodes(ctx); err != nil || len(nodes) != 0 {
		t.Fatalf("Nodes after Part = %v, %v", nodes, err)
	}
	if present, err := a.Present(ctx); err != nil || !slices.Equal(present, []string{"u:bob"}) {
		t.Fatalf("Present within bob's grace = %v, %v; want u:bob", present, err)
	}
}
