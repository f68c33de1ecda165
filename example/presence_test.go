package main_test

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/iosessions/iosessions/internal/redistest"
)

// presenceGrace is the examples' -grace in these tests: short, so the
// cases that wait it out are quick, and long enough for a reconnect under
// a loaded scheduler (a race build beside CPU hogs) to land within it.
const presenceGrace = 2 * time.Second

// TestPresence runs test/e2e/presence.js against one example per engine
// (-store memory): presence with its grace, POST /push with acks, bad
// input.
func TestPresence(t *testing.T) {
	node := needTools(t, false)
	root := repoRoot(t)
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			srv := startExample(t, buildExample(t, e.name), root, "-engine", e.name, "-grace", presenceGrace.String())
			runNode(t, node, filepath.Join(root, "test", "e2e"), 90*time.Second,
				"presence.js", "--a", srv.url, "--engine", e.name, "--grace", strconv.Itoa(int(presenceGrace.Milliseconds())))
			srv.stop(t)
		})
	}
}

// TestPresenceNodes runs test/e2e/presence.js against two examples per
// engine on one private redis-server (-store redis): presence and push
// across the nodes, PUBLISH on iosessions-example:push, and last, node A
// killed with SIGKILL, whose user goes offline on node B within 15 s plus
// the grace.
func TestPresenceNodes(t *testing.T) {
	node := needTools(t, false)
	if _, err := exec.LookPath("redis-server"); err != nil {
		missing(t, "redis-server is not installed")
	}
	root := repoRoot(t)
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			rs := redistest.Start(t)
			bin := buildExample(t, e.name)
			args := []string{"-engine", e.name, "-store", "redis", "-redis", rs.URL(), "-grace", presenceGrace.String()}
			a := startExample(t, bin, root, args...)
			b := startExample(t, bin, root, args...)
			runNode(t, node, filepath.Join(root, "test", "e2e"), 120*time.Second,
				"presence.js", "--a", a.url, "--b", b.url, "--engine", e.name,
				"--grace", strconv.Itoa(int(presenceGrace.Milliseconds())),
				"--redis", rs.URL(), "--kill-pid", strconv.Itoa(a.cmd.Process.Pid))
			select {
			case <-a.done:
			case <-time.After(5 * time.Second):
				t.Error("node A outlived its SIGKILL")
			}
			b.stop(t)
		})
	}
}
