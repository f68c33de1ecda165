package zishang520_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/internal/sio2"
	"github.com/iosessions/iosessions/zishang520"
)

// A zishang520/socket.io server whose handlers see the HTTP session: the
// login handler writes it, the socket's "incr" event reads and changes it.
func ExampleNewServer() {
	m, err := iosessions.New(nil, iosessions.Config{Mode: iosessions.PerMessage})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := zishang520.NewServer(m, nil)
	if err != nil {
		log.Fatal(err)
	}

	m.OnConnection(func(s *iosessions.Socket, sess *iosessions.Session) {
		_ = s.Emit("welcome", sess.Values["user"])
	})
	zishang520.OnMessage(srv, "incr", func(_ *iosessions.Socket, sess *iosessions.Session, by int) (int, error) {
		n, _ := sess.Values["count"].(int)
		sess.Values["count"] = n + by
		return n + by, nil // the ack, sent after the session is saved
	})

	mux := http.NewServeMux()
	mux.Handle("/socket.io/", m.Middleware(srv))
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		sess, err := m.Renew(r.Context(), w, r) // a fresh session id
		if err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		sess.Values["user"] = r.PostFormValue("user")
		_ = sess.Save(r, w)
	})
	ts := httptest.NewServer(mux)
	defer func() {
		_ = m.Shutdown(context.Background()) // saves what live sockets changed
		_ = srv.Close()
		ts.CloseClientConnections()
		ts.Close()
	}()

	// A client (the suite's wire-protocol client, speaking what
	// socket.io-client 4.x speaks): log in over HTTP, then connect with
	// the cookie.
	res, err := http.PostForm(ts.URL+"/login", url.Values{"user": {"alice"}})
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := sio2.Options{EIO: 4, Header: http.Header{"Cookie": {res.Cookies()[0].String()}}}
	c, err := sio2.Dial(ctx, ts.URL, opts)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	welcome, err := c.Expect(ctx, "welcome")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("welcome", string(welcome.Args[0]))
	for range 2 {
		ack, err := c.Call(ctx, "incr", 5)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("incr acked", string(ack[0]))
	}
	// Output:
	// welcome "alice"
	// incr acked 5
	// incr acked 10
}

// OnEvent handles an event that needs no session; its ack is what the
// handler returns.
func ExampleOnEvent() {
	m, _ := iosessions.New(nil, iosessions.Config{})
	srv, _ := zishang520.NewServer(m, nil)
	defer srv.Close()
	zishang520.OnEvent(srv, "time", func(_ *iosessions.Socket, _ json.RawMessage) (string, error) {
		return time.Now().UTC().Format(time.RFC3339), nil
	})
}
