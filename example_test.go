package iosessions_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"

	"github.com/iosessions/iosessions"
)

// New with a nil store keeps sessions in memory; Middleware serves the
// client shim and passes everything else, the socket.io engine included,
// to the next handler untouched.
func ExampleNew() {
	m, err := iosessions.New(nil, iosessions.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Shutdown(context.Background())

	m.OnConnection(func(s *iosessions.Socket, sess *iosessions.Session) {
		// A socket with a valid session: sess.Values is the user's session.
	})
	m.OnInvalid(func(s *iosessions.Socket, err error) {
		// No usable session; errors.Is(err, iosessions.ErrNoSession) and so on.
	})

	mux := http.NewServeMux()
	mux.Handle("/socket.io/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "the engine") // a binding's server goes here
	}))
	srv := httptest.NewServer(m.Middleware(mux))
	defer srv.Close()

	res, err := http.Get(srv.URL + "/socket.io/socket.io-sessions.js")
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	fmt.Println(res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Cache-Control"))

	res, err = http.Get(srv.URL + "/socket.io/?EIO=3&transport=polling")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println(string(body))
	// Output:
	// 200 text/javascript; charset=utf-8 no-store
	// the engine
}

// FirstOf tries cutters in order: here the session cookie, then a header.
func ExampleFirstOf() {
	cut := iosessions.FirstOf(iosessions.CookieCutter("session"), iosessions.HeaderCutter("X-Session"))

	r := httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=3", nil)
	r.Header.Set("X-Session", "key-from-header")
	fmt.Println(cut(r))

	r.AddCookie(&http.Cookie{Name: "session", Value: "key-from-cookie"})
	fmt.Println(cut(r))

	_, err := cut(httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=3", nil))
	fmt.Println(errors.Is(err, iosessions.ErrNoSession))
	// Output:
	// key-from-header <nil>
	// key-from-cookie <nil>
	// true
}

// CookieCutter reads the cookie the store set; an oversized one is
// refused.
func ExampleCookieCutter() {
	cut := iosessions.CookieCutter("session")
	r := httptest.NewRequest(http.MethodGet, "/socket.io/", nil)
	r.Header.Set("Cookie", "theme=dark; session=MTcw...signed")
	fmt.Println(cut(r))

	r.Header.Set("Cookie", "session="+strings.Repeat("k", iosessions.MaxKeyLen+1))
	_, err := cut(r)
	fmt.Println(errors.Is(err, iosessions.ErrNoSession), errors.Is(err, iosessions.ErrBadKey))
	// Output:
	// MTcw...signed <nil>
	// false true
}

// NewMemoryStore is a sessions.Store: use it from HTTP handlers as any
// other. The cookie holds only the signed session id.
func ExampleNewMemoryStore() {
	store := iosessions.NewMemoryStore(
		[]byte("hash key of 32 bytes, or longer!"), // signs
		[]byte("block key of 32 bytes for AES..."), // encrypts
	)
	defer store.Close()

	visit := func(cookie *http.Cookie) *http.Cookie {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if cookie != nil {
			r.AddCookie(cookie)
		}
		w := httptest.NewRecorder()
		sess, err := store.Get(r, "session")
		if err != nil {
			log.Fatal(err)
		}
		n, _ := sess.Values["visits"].(int)
		sess.Values["visits"] = n + 1
		if err := sess.Save(r, w); err != nil {
			log.Fatal(err)
		}
		fmt.Println("visits:", n+1)
		return w.Result().Cookies()[0]
	}
	c := visit(nil)
	c = visit(c)
	visit(c)
	fmt.Println("sessions held:", store.Len())
	// Output:
	// visits: 1
	// visits: 2
	// visits: 3
	// sessions held: 1
}

// Renew at login (a new session id, against fixation) and Destroy at
// logout; both end the sockets of the old session.
func ExampleManager_Renew() {
	m, err := iosessions.New(nil, iosessions.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Shutdown(context.Background())
	store := m.Store()

	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		sess, err := m.Renew(r.Context(), w, r)
		if err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		sess.Values["user"] = r.FormValue("user")
		if err := sess.Save(r, w); err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Destroy(r.Context(), w, r); err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/me", func(w http.ResponseWriter, r *http.Request) {
		sess, _ := store.Get(r, m.Config().Name)
		fmt.Fprintf(w, "user=%v", sess.Values["user"])
	})
	srv := httptest.NewServer(m.Middleware(mux))
	defer srv.Close()

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	get := func(path string) string {
		res, err := browser.Get(srv.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return strings.TrimSpace(fmt.Sprintf("%s -> %d %s", path, res.StatusCode, b))
	}
	fmt.Println(get("/me"))
	fmt.Println(get("/login?user=ann"))
	fmt.Println(get("/me"))
	fmt.Println(get("/logout"))
	fmt.Println(get("/me"))
	// Output:
	// /me -> 200 user=<nil>
	// /login?user=ann -> 200
	// /me -> 200 user=ann
	// /logout -> 200
	// /me -> 200 user=<nil>
}

// AdminHandler serves the operators' view only to the requests its check
// accepts, here a bearer token compared in constant time.
func ExampleManager_AdminHandler() {
	m, err := iosessions.New(nil, iosessions.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Shutdown(context.Background())

	mux := http.NewServeMux()
	mux.Handle("/admin/sockets", m.AdminHandler(iosessions.BearerToken("a long random secret")))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, auth := range []string{"", "Bearer a long random secret"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/admin/sockets", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Print(resp.StatusCode, " ", string(body))
	}
	// Output:
	// 401 {"error":"unauthorized"}
	// 200 {"users":[]}
}
