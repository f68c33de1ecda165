package zishang520_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/internal/conformance"
	"github.com/iosessions/iosessions/zishang520"
)

// BenchmarkIdleConn reports the heap (B/conn) and goroutines that an idle
// websocket connection holds in the server, at 1,000 and 10,000
// connections: "bare" is the engine alone (zishang520/socket.io's own
// server, its default options); "iosessions" is the binding with a
// Manager, each connection with a session of its own (in its cookie: a
// gorilla CookieStore, so no store memory is counted); "iosessions-memory"
// is the same with the library's MemoryStore, the sessions made after the
// baseline, so that the store's memory is counted. The clients run in
// a child process (see conformance.IdleConns). Run it with
// -benchtime=1x (make bench-idle).
func BenchmarkIdleConn(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("bare/%d", n), func(b *testing.B) { conformance.IdleConns(b, 4, n, bareServer) })
		b.Run(fmt.Sprintf("iosessions/%d", n), func(b *testing.B) {
			conformance.IdleConns(b, 4, n, conformance.CookieIdle(serverOf, benchHashKey, benchBlockKey))
		})
		b.Run(fmt.Sprintf("iosessions-memory/%d", n), func(b *testing.B) {
			conformance.IdleConns(b, 4, n, conformance.MemoryIdle(serverOf))
		})
	}
}

// BenchmarkPushFanout is Manager.Push to 1,000 sockets of 100 users on
// two nodes sharing a redis-server (see conformance.PushFanout).
func BenchmarkPushFanout(b *testing.B) { conformance.PushFanout(b, suite) }

// TestIdleChild is the client process of BenchmarkIdleConn; it skips
// otherwise.
func TestIdleChild(t *testing.T) { conformance.IdleChild(t) }

// Fixed store keys of the benchmark's cookies.
var (
	benchHashKey  = []byte("0123456789abcdef0123456789abcdef")
	benchBlockKey = []byte("fedcba9876543210fedcba9876543210")
)

func bareServer(int) conformance.IdleServer {
	var connected atomic.Int64
	opts := socket.DefaultServerOptions()
	io := socket.NewServer(nil, opts)
	if err := io.On("connection", func(...any) { connected.Add(1) }); err != nil {
		panic(err)
	}
	return conformance.IdleServer{
		Handler:   io.ServeHandler(opts),
		Connected: func() int { return int(connected.Load()) },
		Close: func() {
			done := make(chan struct{})
			io.Close(func(error) { close(done) })
			<-done
		},
	}
}

// serverOf is the binding's server with a Manager of store.
func serverOf(store sessions.Store) conformance.IdleServer {
	m, err := iosessions.New(store, iosessions.Config{})
	if err != nil {
		panic(err)
	}
	srv, err := zishang520.NewServer(m, nil)
	if err != nil {
		panic(err)
	}
	var connected atomic.Int64
	m.OnConnection(func(*iosessions.Socket, *iosessions.Session) { connected.Add(1) })
	return conformance.IdleServer{
		Handler:   m.Middleware(srv),
		Connected: func() int { return int(connected.Load()) },
		Close: func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = m.Shutdown(ctx)
			_ = srv.Close()
		},
	}
}
