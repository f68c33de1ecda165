package iosredis_test

import (
	"bytes"
	"context"

	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/internal/redistest"
	"github.com/iosessions/iosessions/iosredis"
)

// dropProxy forwards TCP to a redis-server. Armed, it lets through the
// first request that contains marker, then drops Redis's reply to it and
// breaks the connection: the write is applied, its reply lost.
type dropProxy struct {
	ln      net.Listener
	target  string
	marker  []byte
	armed   atomic.Bool
	dropped atomic.Int32
	wg      sync.WaitGroup
}

func startDropProxy(t *testing.T, target string, marker []byte) *dropProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{ln: ln, target: target, marker: marker}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *dropProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		var drop atomic.Bool
		p.wg.Add(2)
		go func() { // client -> Redis
			defer p.wg.Done()
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if p.armed.Load() && bytes.Contains(buf[:n], p.marker) {
						p.armed.Store(false)
						drop.Store(true) // before Redis can answer
					}
					if _, werr := s.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			s.Close()
			c.Close()
		}()
		go func() { // Redis -> client
			defer p.wg.Done()
			buf := make([]byte, 64<<10)
			for {
				n, err := s.Read(buf)
				if n > 0 && drop.Load() {
					p.dropped.Add(1)
					break // the reply is lost with the connection
				}
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			s.Close()
			c.Close()
		}()
	}
}

// TestAmbiguousSave: the reply to a per-message save is lost after Redis
// applied it (a TCP proxy drops it and breaks the connection). The event
// is acked with the number that landed, counted once: the save is run
// again, finds itself done, and says so.
func TestAmbiguousSave(t *testing.T) {
	rs := redistest.Start(t)
	proxy := startDropProxy(t, rs.Addr, []byte(iosredis.SaveUnlockSHA))
	client := redis.NewClient(&redis.Options{Addr: proxy.ln.Addr().String(), MaxRetries: -1,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second})
	t.Cleanup(func() { client.Close() })
	s, err := iosredis.NewStore(context.Background(), client, &iosredis.Options{KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	m, err := iosessions.New(s, iosessions.Config{Mode: iosessions.PerMessage, StoreTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	cookie := login(t, s, map[any]any{"n": 0}, 0)
	sock := m.Accept(newBenchConn(cookie))
	sock.Open()
	ctx := context.Background()
	incr := func() (int, error) {
		var n int
		err := sock.Do(ctx, func(sess *iosessions.Session) error {
			n = sess.Values["n"].(int) + 1
			sess.Values["n"] = n
			return nil
		})
		return n, err
	}
	for want := 1; want <= 3; want++ {
		if n, err := incr(); err != nil || n != want {
			t.Fatalf("incr = %d, %v; want %d", n, err, want)
		}
	}
	proxy.armed.Store(true)
	n, err := incr()
	if proxy.dropped.Load() != 1 {
		t.Fatalf("the proxy dropped %d replies, want 1", proxy.dropped.Load())
	}
	if err != nil || n != 4 {
		t.Fatalf("incr whose reply was lost = %d, %v; want 4 (it landed)", n, err)
	}
	if n, err := incr(); err != nil || n != 5 {
		t.Fatalf("next incr = %d, %v; want 5", n, err)
	}
	sess, err := s.Load(ctx, "session", cookie.Value)
	if err != nil || sess.Values["n"] != 5 {
		t.Fatalf("stored n = %v, %v; want 5 (each incr counted once)", sess.Values["n"], err)
	}
}
