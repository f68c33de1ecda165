package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of three masters (no replicas) on 127.0.0.1,
// each a redis-server of its own, made one cluster by redis-cli --cluster
// create. Its data lives in memory only.
type Cluster struct {
	t     testing.TB
	Addrs []string // the masters, host:port
	cmds  []*exec.Cmd
}

// StartCluster starts a three-master cluster on free ports and waits until
// every master reports cluster_state:ok; t's cleanup stops it. When
// redis-server or redis-cli is missing it skips t, or fails it when
// IOSESSIONS_E2E=1 (as scripts/test.sh sets), so the test command never
// skips it.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	quiet.Do(func() { redis.SetLogger(discardLogger{}) })
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			msg := bin + " is not installed: run scripts/deps.sh (make test does)"
			if os.Getenv("IOSESSIONS_E2E") == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	c := &Cluster{t: t}
	t.Cleanup(c.stop)
	dir := t.TempDir()
	for i := range 3 {
		port, bus := freePort(t), freePort(t)
		node := filepath.Join(dir, strconv.Itoa(i))
		if err := os.Mkdir(node, 0o700); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--cluster-port", strconv.Itoa(bus),
			"--bind", "127.0.0.1", "--dir", node, "--save", "", "--appendonly", "no",
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000",
			"--daemonize", "no", "--loglevel", "warning")
		var log bytes.Buffer
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c.cmds = append(c.cmds, cmd)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		c.Addrs = append(c.Addrs, addr)
		if err := waitPing(addr); err != nil {
			t.Fatalf("redis-server on %s: %v (log: %s)", addr, err, log.String())
		}
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, addr := range c.Addrs {
		for !c.ready(addr) {
			if time.Now().After(deadline) {
				t.Fatalf("the cluster is not ok on %s after 15 s", addr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return c
}

// ready reports whether the master at addr says cluster_state:ok and
// knows the three masters.
func (c *Cluster) ready(addr string) bool {
	cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	info, err := cl.ClusterInfo(ctx).Result()
	if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:3") {
		return false
	}
	slots, err := cl.ClusterSlots(ctx).Result()
	return err == nil && len(slots) == 3
}

// Client returns a go-redis cluster client of the cluster, closed by t's
// cleanup, with the short timeouts of Server.Client.
func (c *Cluster) Client() *redis.ClusterClient {
	cl := redis.NewClusterClient(clientOptions(c.Addrs...).Cluster())
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// stop kills the masters and waits for them to exit.
func (c *Cluster) stop() {
	for _, cmd := range c.cmds {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	c.cmds = nil
}

// freePort returns a port of 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitPing waits up to 10 s for addr to answer PING.
func waitPing(addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
