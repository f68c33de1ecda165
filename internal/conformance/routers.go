package conformance

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/mux"

	"github.com/iosessions/iosessions"
)

// routers: the README's quick starts, mounted on chi, gorilla/mux and
// net/http: the shim is served through the middleware, and a socket
// carries the session of a login made through the router, over a real
// WebSocket upgrade through Manager.Middleware.
func routers(t *testing.T, b Binding) {
	mount := map[string]func(m *iosessions.Manager, srv http.Handler, login http.HandlerFunc) http.Handler{
		"chi": func(m *iosessions.Manager, srv http.Handler, login http.HandlerFunc) http.Handler {
			r := chi.NewRouter()
			r.Use(m.Middleware)
			r.Handle("/socket.io/*", srv)
			r.Post("/login", login)
			return r
		},
		"gorilla-mux": func(m *iosessions.Manager, srv http.Handler, login http.HandlerFunc) http.Handler {
			r := mux.NewRouter()
			r.Use(m.Middleware)
			r.PathPrefix("/socket.io/").Handler(srv)
			r.HandleFunc("/login", login).Methods(http.MethodPost)
			return r
		},
		"net-http": func(m *iosessions.Manager, srv http.Handler, login http.HandlerFunc) http.Handler {
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
			srv, err := b.NewServer(m)
			if err != nil {
				t.Fatal(err)
			}
			m.OnConnection(func(s *iosessions.Socket, sess *iosessions.Session) {
				_ = s.Emit("welcome", sess.Values["user"])
			})
			srv.Start()
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
				ts.CloseClientConnections()
				ts.Close()
			})
			e := &env{b: b, URL: ts.URL, http: ts.Client()}

			res, err := http.Post(ts.URL+"/login", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			cookie := sessionCookie(res)
			if cookie == nil {
				t.Fatalf("login set no session cookie (status %d)", res.StatusCode)
			}
			if body, _ := e.shim(t, cookie, ""); !strings.Contains(body, "connectWithSession") {
				t.Fatalf("shim through %s: %.80q", name, body)
			}
			c := e.dial(t, "websocket", withCookie(cookie), "")
			wantJSON(t, "welcome", c.expect(t, "welcome"), `"router-`+name+`"`)
		})
	}
}
