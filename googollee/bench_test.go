package googollee_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	socketio "github.com/googollee/go-socket.io"
	"github.com/gorilla/sessions"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/googollee"
	"github.com/iosessions/iosessions/internal/conformance"
)

// BenchmarkIdleConn reports the heap (B/conn) and goroutines that an idle
// websocket connection holds in the server, at 1,000 and 10,000
// connections: "bare" is the engine alone (go-socket.io's own server, a
// root namespace that accepts everyone); "iosessions" is the binding with
// a Manager, each connection with a session of its own (in its cookie: a
// gorilla CookieStore, so no store memory is counted); "iosessions-memory"
// is the same with the library's MemoryStore, the sessions made after the
// baseline, so that the store's memory is counted. The clients run in
// a child process (see conformance.IdleConns). Run it with
// -benchtime=1x (make bench-idle).
func BenchmarkIdleConn(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("bare/%d", n), func(b *testing.B) { conformance.IdleConns(b, 3, n, bareServer) })
		b.Run(fmt.Sprintf("iosessions/%d", n), func(b *testing.B) {
			conformance.IdleConns(b, 3, n, conformance.CookieIdle(serverOf, hashKey, blockKey))
		})
		b.Run(fmt.Sprintf("iosessions-memory/%d", n), func(b *testing.B) {
			conformance.IdleConns(b, 3, n, conformance.MemoryIdle(serverOf))
		})
	}
}

// BenchmarkPushFanout is Manager.Push to 1,000 sockets of 100 users on
// two nodes sharing a redis-server (see conformance.PushFanout).
func BenchmarkPushFanout(b *testing.B) { conformance.PushFanout(b, suite) }

// TestIdleChild is the client process of BenchmarkIdleConn; it skips
// otherwise.
func TestIdleChild(t *testing.T) { conformance.IdleChild(t) }

func bareServer(int) conformance.IdleServer {
	var connected atomic.Int64
	srv := socketio.NewServer(nil)
	srv.OnConnect("/", func(socketio.Conn) error {
		connected.Add(1)
		return nil
	})
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve() }()
	return conformance.IdleServer{
		Handler:   srv,
		Connected: func() int { return int(connected.Load()) },
		Close:     func() { _ = srv.Close(); <-served },
	}
}

// serverOf is the binding's server with a Manager of store.
func serverOf(store sessions.Store) conformance.IdleServer {
	m, err := iosessions.New(store, iosessions.Config{})
	if err != nil {
		panic(err)
	}
	srv, err := googollee.NewServer(m, nil)
	if err != nil {
		panic(err)
	}
	var connected atomic.Int64
	m.OnConnection(func(*iosessions.Socket, *iosessions.Session) { connected.Add(1) })
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve() }()
	return conformance.IdleServer{
		Handler:   m.Middleware(srv),
		Connected: func() int { return int(connected.Load()) },
		Close: func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = m.Shutdown(ctx)
			_ = srv.Close()
			<-served
		},
	}
}
