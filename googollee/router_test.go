package googollee_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/mux"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/googollee"
	"github.com/iosessions/iosessions/internal/sio2"
)

// The README's quick starts, mounted on chi and on gorilla/mux: the shim
// is served through the middleware, and a socket carries the session of a
// login made through the router, over a real WebSocket upgrade.
func TestRouters(t *testing.T) {
	mount := map[string]func(m *iosessions.Manager, srv *googollee.Server, login http.HandlerFunc) http.Handler{
		"chi": func(m *iosessions.Manager, srv *googollee.Server, login http.HandlerFunc) http.Handler {
			r := chi.NewRouter()
			r.Use(m.Middleware)
			r.Handle("/socket.io/*", srv)
			r.Post("/login", login)
			return r
		},
		"gorilla/mux": func(m *iosessions.Manager, srv *googollee.Server, login http.HandlerFunc) http.Handler {
			r := mux.NewRouter()
			r.Use(m.Middleware)
			r.PathPrefix("/socket.io/").Handler(srv)
			r.HandleFunc("/login", login).Methods(http.MethodPost)
			return r
		},
		"net/http": func(m *iosessions.Manager, srv *googollee.Server, login http.HandlerFunc) http.Handler {
			r := http.NewServeMux()
			r.Handle("/socket.io/", srv)
			r.HandleFunc("POST /login", login)
			return m.Middleware(r)
		},
	}
	for name, mountFn := range mount {
		t.Run(name, func(t *testing.T) {
			store := iosessions.NewMemoryStore()
			t.Cleanup(func() { store.Close() })
			m, err := iosessions.New(store, iosessions.Config{})
			if err != nil {
				t.Fatal(err)
			}
			srv, err := googollee.NewServer(m, nil)
			if err != nil {
				t.Fatal(err)
			}
			m.OnConnection(func(s *iosessions.Socket, sess *iosessions.Session) {
				_ = s.Emit("welcome", sess.Values["user"])
			})
			go srv.Serve()
			login := func(w http.ResponseWriter, r *http.Request) {
				sess, err := m.Renew(r.Context(), w, r)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				sess.Values["user"] = "router-" + name
				if err := sess.Save(r, w); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
				}
			}
			ts := httptest.NewServer(mountFn(m, srv, login))
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = m.Shutdown(ctx)
				_ = srv.Close()
				ts.Close()
			})

			res, err := http.Post(ts.URL+"/login", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			cookie := sessionCookie(res)
			if cookie == nil {
				t.Fatalf("login set no session cookie (status %d)", res.StatusCode)
			}

			if body, _ := getShim(t, ts.Client(), ts.URL, cookie, ""); !strings.Contains(body, "connectWithSession") {
				t.Fatalf("shim through %s: %.80q", name, body)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := sio2.Dial(ctx, ts.URL, sio2.Options{Transport: sio2.WebSocket, Header: http.Header{"Cookie": {cookie.String()}}})
			if err != nil {
				t.Fatalf("websocket through %s: %v", name, err)
			}
			defer c.Close()
			ev, err := c.Expect(ctx, "welcome")
			if err != nil {
				t.Fatal(err)
			}
			var user string
			if len(ev.Args) != 1 || json.Unmarshal(ev.Args[0], &user) != nil || user != "router-"+name {
				t.Fatalf("welcome = %s, want the user of the login", ev.Args)
			}
		})
	}
}
