package main_test

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/iosessions/iosessions/internal/redistest"
)

// TestNodes runs the example as two nodes, for each engine and mode: two
// processes with -store redis on one private redis-server (its own, so
// that the nodes' shared token keys and channels meet no other test's),
// on different ports, websocket only. test/e2e/nodes.js drives them with
// the engine's real socket.io client: a session made on one node serves
// sockets on the other (by cookie, and by the other's shim token, which
// is then refused on the node that issued it: single use), a
// logout on one node ends the session's sockets on the other within 1 s,
// and in permessage mode 200 incr from a socket on each node at once
// count to exactly 400.
func TestNodes(t *testing.T) {
	node := needTools(t, false)
	if _, err := exec.LookPath("redis-server"); err != nil {
		missing(t, "redis-server is not installed")
	}
	root := repoRoot(t)
	rs := redistest.Start(t)
	for _, e := range engines {
		bin := buildExample(t, e.name)
		for _, mode := range []string{"perconn", "permessage"} {
			t.Run(e.name+"/"+mode, func(t *testing.T) {
				args := []string{"-engine", e.name, "-mode", mode, "-store", "redis", "-redis", rs.URL()}
				a := startExample(t, bin, root, args...)
				b := startExample(t, bin, root, args...)
				runNode(t, node, filepath.Join(root, "test", "e2e"), 60*time.Second,
					"nodes.js", "--a", a.url, "--b", b.url, "--engine", e.name, "--mode", mode)
				a.stop(t)
				b.stop(t)
			})
		}
	}
}
