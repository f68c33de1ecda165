package conformance

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/iosessions/iosessions"
)

// The cases of idle expiry (Config.IdleTimeout), with a short timeout.
const idleTimeout = 2 * time.Second

// idleExpiry, on one node (MemoryStore): a fast stream of session events
// keeps the session alive with at most one Touch per tenth of the
// timeout; events without the session (echo) do not count: "sexpiring"
// comes half the timeout after the last session event, once, with the
// time left between a half and a quarter of the timeout; an HTTP request
// then keeps it alive for another period, with one more warning; left
// idle, it ends: "sinvalid" and a close within 1 s of the deadline.
func idleExpiry(t *testing.T, b Binding) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e := newEnv(t, b, envOptions{Mode: mode, Config: func(c *iosessions.Config) { c.IdleTimeout = idleTimeout }})
			cookie := e.loginAs(t, "alice")
			c := e.dial(t, "websocket", withCookie(cookie), "")
			c.expect(t, "welcome")

			before := e.store.touches.Load()
			start := time.Now()
			n := 0
			for time.Since(start) < 1200*time.Millisecond {
				wantJSON(t, "incr", c.call(t, "incr"), strconv.Itoa(n+1))
				n++
			}
			last := time.Now()
			touches := int(e.store.touches.Load() - before)
			if most := int(time.Since(start)/(idleTimeout/10)) + 1; touches < 1 || touches > most {
				t.Errorf("%d events in %v made %d Touch calls, want 1 to %d", n, time.Since(start), touches, most)
			}
			if c.count("sexpiring") != 0 {
				t.Fatal("sexpiring while session events came all along")
			}

			// Echo does not keep it alive.
			in, at := echoUntilExpiring(t, c)
			if earliest := last.Add(idleTimeout/2 - idleTimeout/10 - 50*time.Millisecond); at.Before(earliest) {
				t.Errorf("sexpiring %v after the last session event, want %v or more", at.Sub(last), earliest.Sub(last))
			}
			// Once per period: no second warning while the watch ticks.
			for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
				wantJSON(t, "echo", c.call(t, "echo", 1), "1")
				time.Sleep(50 * time.Millisecond)
			}
			if got := c.count("sexpiring"); got != 1 {
				t.Fatalf("%d sexpiring events, want 1", got)
			}
			if left := time.Until(at.Add(in)); left < 100*time.Millisecond {
				t.Fatalf("too slow: %v left to the deadline", left)
			}

			// An HTTP request with the session keeps it alive.
			httpAt := time.Now()
			if code := e.post(t, "/rename", cookie, url.Values{"user": {"alice"}}); code != http.StatusOK {
				t.Fatalf("rename: %d", code)
			}
			in, at = expiring(t, c)
			if earliest := httpAt.Add(idleTimeout/2 - 50*time.Millisecond); at.Before(earliest) {
				t.Errorf("second sexpiring %v after the HTTP request, want %v or more", at.Sub(httpAt), earliest.Sub(httpAt))
			}
			deadline := at.Add(in)
			wantJSON(t, "sinvalid", c.expect(t, "sinvalid"), `{"reason":"session ended"}`)
			if early := time.Until(deadline); early > 100*time.Millisecond {
				t.Errorf("sinvalid %v before the deadline", early)
			}
			c.waitClosed(t, deadline.Add(time.Second))
			if got := c.count("sexpiring"); got != 2 {
				t.Errorf("%d sexpiring events, want 2 (one per period)", got)
			}
			if e.stored(t, cookie) != nil {
				t.Error("the store still holds the idle session")
			}
		})
	}
}

// idleAcrossNodes, on two nodes sharing Redis: session events on node B
// keep the session alive on node A too, with at most one Redis write of
// the deadline per tenth of the timeout; left idle, both nodes' sockets
// get "sexpiring" once, then "sinvalid" and a close within 1 s of the
// deadline. The lifetime still bounds it: with MaxAge 3 s and events all
// along, the session ends at 3 s, with no warning.
func idleAcrossNodes(t *testing.T, b Binding) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			cl := newCluster(t, b, clusterOptions{Mode: mode, IdleTimeout: idleTimeout})
			cookie := cl.a.loginAs(t, "alice")
			ca := cl.a.dial(t, "websocket", withCookie(cookie), "")
			cb := cl.b.dial(t, "websocket", withCookie(cookie), "")
			ca.expect(t, "welcome")
			cb.expect(t, "welcome")

			rc := cl.redis.Client()
			before := redisCalls(t, rc, "pexpireat")
			start := time.Now()
			n := 0
			for time.Since(start) < 1500*time.Millisecond {
				wantJSON(t, "whoami", cb.call(t, "whoami"), `{"user":"alice","count":0}`)
				n++
			}
			last := time.Now()
			if w, most := redisCalls(t, rc, "pexpireat")-before, int64(time.Since(start)/(idleTimeout/10))+1; w < 1 || w > most {
				t.Errorf("%d events in %v: Redis wrote the deadline %d times, want 1 to %d", n, time.Since(start), w, most)
			}
			for _, c := range []*conn{ca, cb} {
				if c.count("sexpiring") != 0 {
					t.Fatal("sexpiring while session events came on node B all along")
				}
			}
			var deadline time.Time
			for _, c := range []*conn{ca, cb} {
				in, at := expiring(t, c)
				if earliest := last.Add(idleTimeout/2 - idleTimeout/10 - 50*time.Millisecond); at.Before(earliest) {
					t.Errorf("sexpiring %v after the last session event, want %v or more", at.Sub(last), earliest.Sub(last))
				}
				if d := at.Add(in); d.After(deadline) {
					deadline = d
				}
			}
			for _, c := range []*conn{ca, cb} {
				wantJSON(t, "sinvalid", c.expect(t, "sinvalid"), `{"reason":"session ended"}`)
				c.waitClosed(t, deadline.Add(time.Second))
				if got := c.count("sexpiring"); got != 1 {
					t.Errorf("%d sexpiring events, want 1", got)
				}
			}
			if n, _ := rc.Exists(context.Background(), redisKey(cookie)).Result(); n != 0 {
				t.Error("Redis still holds the idle session")
			}

			if mode != iosessions.PerConnection {
				return // the lifetime is the store's: one mode is enough
			}
			cookie = cl.a.loginAs(t, "bob", "maxage", "3")
			loggedIn := time.Now()
			c := cl.a.dial(t, "websocket", withCookie(cookie), "")
			c.expect(t, "welcome")
			for tryCall(t, c, "incr") {
				if time.Since(loggedIn) > 5*time.Second {
					t.Fatal("the session outlived its MaxAge of 3 s by 2 s")
				}
				time.Sleep(50 * time.Millisecond)
			}
			if early := 3*time.Second - time.Since(loggedIn); early > 200*time.Millisecond {
				t.Errorf("the session ended %v before its MaxAge, while active", early)
			}
			if got := c.count("sexpiring"); got != 0 {
				t.Errorf("%d sexpiring events before the end of the lifetime, want none (activity cannot extend it)", got)
			}
		})
	}
}

// expiring waits for "sexpiring" and checks its time left, between a
// quarter and half of the timeout; it returns that and when it came.
func expiring(t *testing.T, c *conn) (time.Duration, time.Time) {
	t.Helper()
	raw := c.expect(t, "sexpiring")
	return checkExpiring(t, raw), time.Now()
}

func checkExpiring(t *testing.T, raw string) time.Duration {
	t.Helper()
	var p struct {
		In *int64 `json:"in_ms"`
	}
	if err := json.Unmarshal([]byte(raw), &p); err != nil || p.In == nil {
		t.Fatalf("sexpiring %s, want {\"in_ms\":N}", raw)
	}
	in := time.Duration(*p.In) * time.Millisecond
	if in < idleTimeout/4-50*time.Millisecond || in > idleTimeout/2 {
		t.Errorf("sexpiring in %v, want between %v and %v", in, idleTimeout/4, idleTimeout/2)
	}
	return in
}

// echoUntilExpiring sends echo every 50 ms until "sexpiring" comes.
func echoUntilExpiring(t *testing.T, c *conn) (time.Duration, time.Time) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.count("sexpiring") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no sexpiring within 10 s")
		}
		wantJSON(t, "echo", c.call(t, "echo", 1), "1")
		time.Sleep(50 * time.Millisecond)
	}
	return expiring(t, c)
}

// tryCall sends event and reports whether it was acked without an error:
// false once the session ended or the connection closed.
func tryCall(t *testing.T, c *conn, event string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch, err := c.Send(ctx, event)
	if err != nil {
		return false
	}
	select {
	case a := <-ch:
		return len(a.Args) == 1 && !strings.Contains(string(a.Args[0]), `"error"`)
	case <-c.Done():
		return false
	case <-ctx.Done():
		t.Fatalf("%s: no ack within 5 s", event)
		return false
	}
}

// redisCalls returns how many times Redis ran command (INFO commandstats,
// commands of scripts included).
func redisCalls(t *testing.T, rc *redis.Client, command string) int64 {
	t.Helper()
	info, err := rc.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_"+command+":calls="); ok {
			n, _ := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
			return n
		}
	}
	return 0
}
