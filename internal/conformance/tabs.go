package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/iosessions/iosessions"
)

// twoTabs: two sockets of one session on one node, each sending 100 incr
// at once, lose nothing in either mode: per connection they share the
// session's live copy, per message its lock. Each socket's acks increase,
// and the session holds 200 once both left.
func twoTabs(t *testing.T, b Binding) {
	eachModeTransport(t, b, func(t *testing.T, mode iosessions.Mode, tr string) {
		e := newEnv(t, b, envOptions{Mode: mode})
		cookie := e.loginAs(t, "alice")
		tabs := []*conn{e.dial(t, tr, withCookie(cookie), ""), e.dial(t, tr, withCookie(cookie), "")}
		for _, c := range tabs {
			c.expect(t, "welcome")
		}
		const n = 100
		type result struct {
			vals []int
			err  error
		}
		out := make(chan result, len(tabs))
		for _, c := range tabs {
			go func() {
				vals, err := incrBurst(ctxT(t), c, n)
				out <- result{vals, err}
			}()
		}
		seen := map[int]bool{}
		for range tabs {
			r := <-out
			if r.err != nil {
				t.Fatal(r.err)
			}
			last := 0
			for _, v := range r.vals {
				if v <= last || seen[v] {
					t.Fatalf("ack %d after %d, or acked twice", v, last)
				}
				seen[v], last = true, v
			}
		}
		if len(seen) != 2*n {
			t.Fatalf("%d distinct counts acked, want %d", len(seen), 2*n)
		}
		wantJSON(t, "whoami", tabs[0].call(t, "whoami"), fmt.Sprintf(`{"user":"alice","count":%d}`, 2*n))
		for _, c := range tabs {
			_ = c.Close()
		}
		waitFor(t, "count 200 in the store", func() bool { return e.stored(t, cookie)["count"] == 2*n })
	})
}

// incrBurst sends n incr on c without waiting, then collects the acked
// counts in order.
func incrBurst(ctx context.Context, c *conn, n int) ([]int, error) {
	var chans []<-chan Ack
	for range n {
		ch, err := c.Send(ctx, "incr")
		if err != nil {
			return nil, err
		}
		chans = append(chans, ch)
	}
	var vals []int
	for _, ch := range chans {
		select {
		case a := <-ch:
			var v int
			if len(a.Args) != 1 || json.Unmarshal(a.Args[0], &v) != nil {
				return vals, errors.New("ack " + fmt.Sprint(a.Args) + " is not a count")
			}
			vals = append(vals, v)
		case <-ctx.Done():
			return vals, ctx.Err()
		}
	}
	return vals, nil
}

// keysMergedAcrossNodes: per connection, each node's live copy saves only
// the keys its sockets changed, so changes of different keys on two nodes
// are all kept (the documented rule; the same key: the last save wins).
func keysMergedAcrossNodes(t *testing.T, b Binding) {
	cl := newCluster(t, b, clusterOptions{Mode: iosessions.PerConnection})
	cookie := cl.a.loginAs(t, "alice")
	onA := cl.a.dial(t, "websocket", withCookie(cookie), "")
	onB := cl.b.dial(t, "websocket", withCookie(cookie), "")
	onA.expect(t, "welcome")
	onB.expect(t, "welcome")
	wantJSON(t, "set on A", onA.call(t, "set", SetArg{Key: "a", Value: 1}), `{"key":"a","value":1}`)
	wantJSON(t, "set on B", onB.call(t, "set", SetArg{Key: "b", Value: 2}), `{"key":"b","value":2}`)
	_ = onA.Close()
	_ = onB.Close()
	waitFor(t, "both keys in the store", func() bool {
		v := cl.a.stored(t, cookie)
		return fmt.Sprint(v["a"]) == "1" && fmt.Sprint(v["b"]) == "2"
	})
}
