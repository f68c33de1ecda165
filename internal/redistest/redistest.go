// Package redistest runs a private redis-server for tests, which they may
// stop and start again to test faults, and a private three-master Redis
// Cluster (StartCluster). scripts/deps.sh installs redis-server and
// redis-cli.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server process on 127.0.0.1. It writes every change
// to an append-only file (fsync always), so that what it acknowledged
// survives Stop and Restart, as with a production Redis that restarts.
type Server struct {
	t    testing.TB
	Addr string
	dir  string
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	waited chan error // cmd's Wait, once it exited
}

// quiet keeps go-redis's pool from logging every refused dial of the
// tests that stop the server.
var quiet sync.Once

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}

// Start starts a redis-server on a free port; t's cleanup stops it. It
// fails t when redis-server is not installed. args are more redis-server
// options, which override the defaults ("--appendonly", "no" for a
// benchmark).
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	quiet.Do(func() { redis.SetLogger(discardLogger{}) })
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed: run scripts/deps.sh (make test does)")
	}
	s := &Server{t: t, dir: t.TempDir(), args: args}
	// The port is free when picked, but a client's connection of another
	// test may take it as its local port before redis-server binds it:
	// then redis-server exits, and another port is tried.
	for try := 1; ; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.Addr = ln.Addr().String()
		ln.Close()
		err = s.start()
		if err == nil {
			break
		}
		if !errors.Is(err, errExited) || try == 5 {
			t.Fatal(err)
		}
	}
	t.Cleanup(s.Stop)
	return s
}

// URL returns the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// The short timeouts and retries of the clients of Server and Cluster.
const (
	clientTimeout    = 300 * time.Millisecond
	clientRetries    = 2
	clientMinBackoff = 10 * time.Millisecond
	clientMaxBackoff = 50 * time.Millisecond
)

// clientOptions are the options of the clients of addrs, with the short
// timeouts and retries above.
func clientOptions(addrs ...string) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs:           addrs,
		DialTimeout:     clientTimeout,
		ReadTimeout:     clientTimeout,
		WriteTimeout:    clientTimeout,
		MaxRetries:      clientRetries,
		MinRetryBackoff: clientMinBackoff,
		MaxRetryBackoff: clientMaxBackoff,
	}
}

// Client returns a go-redis client of the server, closed by t's cleanup.
// Its timeouts and retry backoffs are short, so that tests of a stopped
// server are quick; it retries twice, as a production client would, so a
// connection left broken by a restart costs a retry, not an error.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(clientOptions(s.Addr).Simple())
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Stop kills the server, if it runs, and waits for it to exit.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.waited
	s.cmd = nil
}

// Restart starts the server again on the same port, with the data it
// had, if it is not running, and waits until it answers.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

// errExited is start's error when redis-server exited before it answered
// (its port was taken).
var errExited = errors.New("redis-server exited")

// start starts the server, if it is not running, and waits until it
// answers.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	if _, err := strconv.Atoi(port); err != nil {
		return err
	}
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1",
		"--dir", s.dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always",
		"--daemonize", "no", "--loglevel", "warning")
	cmd.Args = append(cmd.Args, s.args...)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait(); close(exited) }()
	s.cmd = cmd
	s.waited = waited
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("%w on %s before it answered: %v", errExited, s.Addr, <-waited)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s did not answer: %w", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
