package conformance

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/internal/redistest"
	"github.com/iosessions/iosessions/iosredis"
)

// NodesOnCluster runs the core of the many-nodes cases on Redis Cluster:
// two servers of the binding, in PerMessage mode, each with its own
// cluster client (redis.NewClusterClient) of a private three-master
// cluster (redistest.StartCluster). A session made on node A is the
// session of a socket on node B, whose events, locked and saved on the
// cluster, A then serves; A's shim token is good on B, once; a logout on
// A ends the session's socket on B through pub/sub on the cluster.
func NodesOnCluster(t *testing.T, b Binding) {
	rc := redistest.StartCluster(t)
	node := func() *env {
		store, err := iosredis.NewStore(context.Background(), rc.Client(), &iosredis.Options{KeyPrefix: "conformance:"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		return newEnv(t, b, envOptions{Mode: iosessions.PerMessage, Store: store, Config: func(c *iosessions.Config) {
			c.TokenKeys = nodeKeys
			c.StoreTimeout = time.Second
			c.CheckInterval = time.Hour // logout must come through pub/sub
		}})
	}
	a, bn := node(), node()

	cookie := a.loginAs(t, "alice")
	c := bn.dial(t, "websocket", withCookie(cookie), "")
	wantJSON(t, "welcome", c.expect(t, "welcome"), `"alice"`)
	for i := 1; i <= 3; i++ {
		wantJSON(t, "incr", c.call(t, "incr"), strconv.Itoa(i))
	}
	waitFor(t, "count 3 on node A", func() bool { return a.stored(t, cookie)["count"] == 3 })

	tok := a.token(t, cookie)
	c2 := bn.dial(t, "websocket", nil, tok)
	wantJSON(t, "welcome by token", c2.expect(t, "welcome"), `"alice"`)
	c3 := a.dial(t, "websocket", nil, tok)
	wantJSON(t, "replayed token", c3.expect(t, "sinvalid"), `{"reason":"invalid token"}`)

	if code := a.post(t, "/logout", cookie, nil); code != http.StatusNoContent {
		t.Fatalf("logout on A: %d", code)
	}
	loggedOut := time.Now()
	for _, c := range []*conn{c, c2} {
		wantJSON(t, "sinvalid", c.expect(t, "sinvalid"), `{"reason":"session ended"}`)
		c.waitClosed(t, loggedOut.Add(time.Second))
	}
}
