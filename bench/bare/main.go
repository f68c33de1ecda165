// Command bare is the bench harness's baseline: a socket.io server of one
// engine with no library, serving the example's HTTP login and socket
// events that need no session, the way an app without iosessions would.
// POST /login sets a plain cookie with the user; a socket that connects
// gets "welcome" {"user","count":0}; "echo" acks its argument. With
// -presence GRACE it also broadcasts the example's presence events, with
// the engine's own broadcast, as an app without iosessions would: to
// every socket, {"user","online":true} when a user's first socket
// connects, {"user","online":false} when GRACE has passed with none.
//
//	go run ./bench/bare -engine v4|googollee [-presence 1s] -addr 127.0.0.1:PORT
//
// It prints "listening on http://ADDR" once it accepts connections, and
// exits on SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	socketio "github.com/googollee/go-socket.io"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
}

type profile struct {
	User  string `json:"user"`
	Count int    `json:"count"`
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	engine := flag.String("engine", "v4", "v4 (zishang520/socket.io) or googollee (go-socket.io)")
	grace := flag.Duration("presence", 0, "broadcast presence events with this grace (0: none)")
	flag.Parse()
	pr := &presence{grace: *grace, count: map[string]int{}, timers: map[string]*time.Timer{}}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		user := r.PostFormValue("user")
		http.SetCookie(w, &http.Cookie{Name: "session", Value: user, Path: "/", HttpOnly: true})
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(profile{User: user})
	})
	var closeEngine func()
	switch *engine {
	case "v4":
		opts := socket.DefaultServerOptions()
		io := socket.NewServer(nil, opts)
		pr.broadcast = func(ev presenceEvent) { io.Emit("presence", ev) }
		_ = io.On("connection", func(args ...any) {
			s := args[0].(*socket.Socket)
			user := ""
			if hc := s.Request(); hc != nil {
				if c, err := hc.Request().Cookie("session"); err == nil {
					user = c.Value
				}
			}
			_ = s.On("echo", func(args ...any) {
				if n := len(args); n > 0 {
					if ack, ok := args[n-1].(socket.Ack); ok {
						ack(args[:n-1], nil)
					}
				}
			})
			pr.join(user) // before the welcome, after which the client may close
			_ = s.On("disconnect", func(...any) { pr.leave(user) })
			_ = s.Emit("welcome", profile{User: user})
		})
		mux.Handle("/socket.io/", io.ServeHandler(opts))
		closeEngine = func() { io.Close(nil) }
	case "googollee":
		io := socketio.NewServer(nil)
		// Not inside OnConnect, where an emit to the new socket hangs it.
		pr.broadcast = func(ev presenceEvent) { go io.BroadcastToNamespace("/", "presence", ev) }
		io.OnConnect("/", func(c socketio.Conn) error {
			user := ""
			if ck, err := (&http.Request{Header: c.RemoteHeader()}).Cookie("session"); err == nil {
				user = ck.Value
			}
			c.SetContext(user)
			// go-socket.io hangs a connection that emits inside OnConnect.
			pr.join(user) // before the welcome, after which the client may close
			go c.Emit("welcome", profile{User: user})
			return nil
		})
		io.OnDisconnect("/", func(c socketio.Conn, _ string) {
			if user, ok := c.Context().(string); ok {
				pr.leave(user)
			}
		})
		io.OnEvent("/", "echo", func(_ socketio.Conn, in any) any { return in })
		go func() { _ = io.Serve() }()
		mux.Handle("/socket.io/", io)
		closeEngine = func() { _ = io.Close() }
	default:
		return fmt.Errorf("unknown -engine %q", *engine)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	closeEngine()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}

type presenceEvent struct {
	User   string `json:"user"`
	Online bool   `json:"online"`
}

// presence counts each user's sockets and broadcasts a user's first
// connect, and the end of the grace that follows its last disconnect
// (none if a socket came back within it), as the example does.
type presence struct {
	grace     time.Duration
	broadcast func(presenceEvent)

	mu     sync.Mutex
	count  map[string]int
	timers map[string]*time.Timer
}

func (p *presence) join(user string) {
	if p.grace <= 0 {
		return
	}
	p.mu.Lock()
	p.count[user]++
	first := p.count[user] == 1
	if t, ok := p.timers[user]; ok && first {
		t.Stop()
		delete(p.timers, user)
		first = false // back within the grace: still online
	}
	p.mu.Unlock()
	if first {
		p.broadcast(presenceEvent{User: user, Online: true})
	}
}

func (p *presence) leave(user string) {
	if p.grace <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count[user]--; p.count[user] > 0 {
		return
	}
	delete(p.count, user)
	var t *time.Timer
	t = time.AfterFunc(p.grace, func() {
		p.mu.Lock()
		gone := p.timers[user] == t
		if gone {
			delete(p.timers, user)
		}
		p.mu.Unlock()
		if gone {
			p.broadcast(presenceEvent{User: user, Online: false})
		}
	})
	p.timers[user] = t
}
