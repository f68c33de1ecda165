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

// Push reaches people, not sockets: a user's every socket, with the ack
// the client sends. OnPresence hears a user come online once, and go
// offline once Config.Grace passed with no socket anywhere.
func Example_pushAndPresence() {
	m, err := iosessions.New(nil, iosessions.Config{
		User:  func(v map[any]any) string { u, _ := v["user"].(string); return u },
		Grace: 100 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := zishang520.NewServer(m, nil)
	if err != nil {
		log.Fatal(err)
	}
	changes := make(chan iosessions.Presence, 8)
	m.OnPresence(func(p iosessions.Presence) {
		if p.Session == "" { // a user's change, not a session's
			changes <- p
		}
	})

	mux := http.NewServeMux()
	mux.Handle("/socket.io/", m.Middleware(srv))
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		sess, _ := m.Renew(r.Context(), w, r)
		sess.Values["user"] = r.PostFormValue("user")
		_ = sess.Save(r, w)
	})
	mux.HandleFunc("POST /notify", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		res, err := m.Push(ctx, m.ToUser(r.PostFormValue("user")), "note", r.PostFormValue("text"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(res)
	})
	ts := httptest.NewServer(mux)
	defer func() {
		_ = m.Shutdown(context.Background())
		_ = srv.Close()
		ts.CloseClientConnections()
		ts.Close()
	}()

	res, err := http.PostForm(ts.URL+"/login", url.Values{"user": {"alice"}})
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A client that acks the server's events, as a socket.io-client
	// handler that calls its callback does.
	opts := sio2.Options{EIO: 4, AckEvents: true, Header: http.Header{"Cookie": {res.Cookies()[0].String()}}}
	c, err := sio2.Dial(ctx, ts.URL, opts)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%+v\n", <-changes)

	res, err = http.PostForm(ts.URL+"/notify", url.Values{"user": {"alice"}, "text": {"hi"}})
	if err != nil {
		log.Fatal(err)
	}
	var pushed iosessions.PushResult
	_ = json.NewDecoder(res.Body).Decode(&pushed)
	res.Body.Close()
	note, err := c.Expect(ctx, "note")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("note", string(note.Args[0]), "reached", pushed.Sockets, "acked", pushed.Acked)

	c.Close()
	fmt.Printf("%+v\n", <-changes)
	// Output:
	// {User:alice Session: Online:true}
	// note "hi" reached 1 acked 1
	// {User:alice Session: Online:false}
}
