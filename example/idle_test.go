package main_test

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// exampleIdle is the examples' -idle in TestIdle: short, so the cases
// that wait it out are quick.
const exampleIdle = 2 * time.Second

// TestIdle runs test/e2e/idle.js against one example per engine
// (-store memory, -idle 2s): sexpiring in its window, then sinvalid and
// a disconnect; an incr after sexpiring keeps the session alive.
func TestIdle(t *testing.T) {
	node := needTools(t, false)
	root := repoRoot(t)
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			srv := startExample(t, buildExample(t, e.name), root, "-engine", e.name, "-idle", exampleIdle.String())
			runNode(t, node, filepath.Join(root, "test", "e2e"), 60*time.Second,
				"idle.js", "--url", srv.url, "--engine", e.name, "--idle", strconv.Itoa(int(exampleIdle.Milliseconds())))
			srv.stop(t)
		})
	}
}
