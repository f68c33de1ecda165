package main_test

import (
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// TestMeWhileRedisDown: with Redis down, GET /me and POST /push answer
// 503 (the store failed), not 401 (no session); once Redis is back, 200.
func TestMeWhileRedisDown(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		missing(t, "redis-server is not installed")
	}
	rs := redistest.Start(t)
	srv := startExample(t, buildExample(t, "v4"), repoRoot(t), "-store", "redis", "-redis", rs.URL())
	res, err := http.PostForm(srv.url+"/login", url.Values{"user": {"alice"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	cookie := res.Cookies()[0]
	get := func(method, path string) int {
		t.Helper()
		req, _ := http.NewRequest(method, srv.url+path, nil)
		req.AddCookie(cookie)
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Body = io.NopCloser(strings.NewReader("to=session&text=hi"))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(http.MethodGet, "/me"); code != http.StatusOK {
		t.Fatalf("GET /me: %d", code)
	}
	rs.Stop()
	if code := get(http.MethodGet, "/me"); code != http.StatusServiceUnavailable {
		t.Errorf("GET /me with Redis down: %d, want 503", code)
	}
	if code := get(http.MethodPost, "/push"); code != http.StatusServiceUnavailable {
		t.Errorf("POST /push with Redis down: %d, want 503", code)
	}
	rs.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for get(http.MethodGet, "/me") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("GET /me not 200 within 10 s of Redis's restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.stop(t)
}
