package conformance

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/internal/redistest"
	"github.com/iosessions/iosessions/internal/sio2"
	"github.com/iosessions/iosessions/iosredis"
)

// Fan-out of the benchmark: users, each with one session and
// socketsPerUser sockets, half on each node.
const (
	fanoutUsers    = 100
	socketsPerUser = 10
)

// PushFanout measures Manager.Push across two nodes of the binding on a
// private redis-server (no persistence): 1,000 websocket clients of 100
// users (ten sockets each, five on each node), all acking; one operation
// pushes to every user at once from node A and waits for every ack. It
// reports pushes/s and acks/s.
func PushFanout(b *testing.B, binding Binding) {
	raiseOpenFiles()
	rs := redistest.Start(b, "--appendonly", "no")
	type node struct {
		m     *iosessions.Manager
		store *iosredis.Store
		url   string
	}
	var nodes [2]node
	for i := range nodes {
		client := rs.Client()
		store, err := iosredis.NewStore(context.Background(), client, &iosredis.Options{KeyPrefix: "fanout:"})
		if err != nil {
			b.Fatal(err)
		}
		m, err := iosessions.New(store, iosessions.Config{TokenKeys: nodeKeys, User: userOf})
		if err != nil {
			b.Fatal(err)
		}
		srv, err := binding.NewServer(m)
		if err != nil {
			b.Fatal(err)
		}
		srv.Start()
		ts := httptest.NewServer(m.Middleware(srv))
		b.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = m.Shutdown(ctx)
			_ = srv.Close()
			ts.CloseClientConnections()
			ts.Close()
			_ = store.Close()
		})
		nodes[i] = node{m, store, ts.URL}
	}

	// The sessions, saved in Redis as a login would.
	cookies := make([]string, fanoutUsers)
	for u := range cookies {
		r := httptest.NewRequest(http.MethodPost, "/login", nil)
		sess, err := nodes[0].store.New(r, "session")
		if err != nil {
			b.Fatal(err)
		}
		sess.Values["user"] = fmt.Sprintf("user%d", u)
		w := httptest.NewRecorder()
		if err := sess.Save(r, w); err != nil {
			b.Fatal(err)
		}
		cookies[u] = w.Result().Cookies()[0].String()
	}

	// The clients, dialled a few at a time.
	var mu sync.Mutex
	var clients []*sio2.Client
	sem := make(chan struct{}, 20)
	var wg sync.WaitGroup
	var dialErr error
	for u := range cookies {
		for k := 0; k < socketsPerUser; k++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				c, err := sio2.Dial(ctx, nodes[k%2].url, sio2.Options{EIO: binding.EIO, AckEvents: true,
					Header: http.Header{"Cookie": {cookies[u]}}})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					dialErr = err
					return
				}
				go forward(c, nil)
				clients = append(clients, c)
			}()
		}
	}
	wg.Wait()
	b.Cleanup(func() {
		for _, c := range clients {
			_ = c.Close()
		}
	})
	if dialErr != nil {
		b.Fatal(dialErr)
	}
	// Every socket's session is opened (its rooms joined) once the
	// registry lists it.
	m := nodes[0].m
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		all, err := m.SocketsOf(ctx, m.ToUser("user0"))
		if err == nil && len(all) == socketsPerUser && len(nodes[0].m.Sockets())+len(nodes[1].m.Sockets()) == len(clients) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the sockets did not all open: %d clients", len(clients))
		}
		time.Sleep(20 * time.Millisecond)
	}

	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		var pwg sync.WaitGroup
		errs := make(chan error, fanoutUsers)
		for u := 0; u < fanoutUsers; u++ {
			pwg.Add(1)
			go func() {
				defer pwg.Done()
				pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				res, err := m.Push(pctx, m.ToUser(fmt.Sprintf("user%d", u)), "note", "hi")
				if err == nil && res != (iosessions.PushResult{Sockets: socketsPerUser, Acked: socketsPerUser}) {
					err = fmt.Errorf("push to user%d: %+v", u, res)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
		pwg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	secs := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N*fanoutUsers)/secs, "pushes/s")
	b.ReportMetric(float64(b.N*fanoutUsers*socketsPerUser)/secs, "acks/s")
}
