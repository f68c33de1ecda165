package iosredis_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/iosredis"
)

// benchConn is a connection that carries a handshake and drops what is
// emitted: enough for the Manager to open a socket.
type benchConn struct {
	id  string
	req *http.Request
}

var connIDs atomic.Int64

func (c *benchConn) ID() string                { return c.id }
func (c *benchConn) Request() *http.Request    { return c.req }
func (c *benchConn) Emit(string, ...any) error { return nil }
func (c *benchConn) Close() error              { return nil }
func (c *benchConn) EmitAck(string, []any, time.Duration, func([]json.RawMessage)) error {
	return nil
}
func (c *benchConn) Join(string) error  { return nil }
func (c *benchConn) Leave(string) error { return nil }
func newBenchConn(c *http.Cookie) *benchConn {
	r := httptest.NewRequest(http.MethodGet, "/socket.io/", nil)
	r.AddCookie(c)
	return &benchConn{id: strconv.FormatInt(connIDs.Add(1), 10), req: r}
}

// unlocked hides the Store's Locker, to measure what the lock costs.
type unlocked struct {
	sessions.Store
	iosessions.Loader
	iosessions.Updater
}

// benchEvent measures one PerMessage event that changes the session, on
// a socket whose session is in Redis (a private redis-server on this
// machine, over loopback): lock (if lock), load, handler, WATCH/MULTI
// update, unlock.
func benchEvent(b *testing.B, lock bool) {
	s, _, _ := newStore(b, nil, "--appendonly", "no") // no fsync per write
	var store sessions.Store = s
	if !lock {
		store = unlocked{s, s, s}
	}
	m, err := iosessions.New(store, iosessions.Config{Mode: iosessions.PerMessage})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	cookie := login(b, s, map[any]any{"user": "ann", "n": 0}, 0)
	sock := m.Accept(newBenchConn(cookie))
	sock.Open()
	if err := sock.Err(); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	incr := func(sess *iosessions.Session) error {
		sess.Values["n"] = sess.Values["n"].(int) + 1
		return nil
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := sock.Do(ctx, incr); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPerMessageEvent is one event with the session's Redis lock:
// what PerMessage costs on many nodes.
func BenchmarkPerMessageEvent(b *testing.B) { benchEvent(b, true) }

// BenchmarkPerMessageEventNoLock is the same event without the lock: safe
// on one node only; the difference is the lock's price.
func BenchmarkPerMessageEventNoLock(b *testing.B) { benchEvent(b, false) }

// benchParallel measures PerMessage events that change their sessions,
// with the Redis lock, 50 sessions at a time (one socket each), as a
// server under load runs them: with the autopipeliner (ap) or without.
func benchParallel(b *testing.B, ap bool) {
	iosredis.SetAutoPipeline(ap)
	defer iosredis.SetAutoPipeline(true)
	s, _, _ := newStore(b, nil, "--appendonly", "no")
	m, err := iosessions.New(s, iosessions.Config{Mode: iosessions.PerMessage})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	const conc = 50
	socks := make(chan *iosessions.Socket, conc)
	for i := range conc {
		cookie := login(b, s, map[any]any{"user": "u" + strconv.Itoa(i), "n": 0}, 0)
		sock := m.Accept(newBenchConn(cookie))
		sock.Open()
		if err := sock.Err(); err != nil {
			b.Fatal(err)
		}
		socks <- sock
	}
	incr := func(sess *iosessions.Session) error {
		sess.Values["n"] = sess.Values["n"].(int) + 1
		return nil
	}
	b.SetParallelism((conc + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		sock := <-socks
		defer func() { socks <- sock }()
		for pb.Next() {
			if err := sock.Do(context.Background(), incr); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPerMessageEventParallel is 50 sessions' events at a time,
// through the autopipeliner.
func BenchmarkPerMessageEventParallel(b *testing.B) { benchParallel(b, true) }

// BenchmarkPerMessageEventParallelNoAutoPipeline is the same without it:
// one write and one read per script.
func BenchmarkPerMessageEventParallelNoAutoPipeline(b *testing.B) { benchParallel(b, false) }

var _ iosessions.Conn = (*benchConn)(nil)
