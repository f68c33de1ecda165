package iosessions

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
)

// fakeClock moves a MemoryStore's time.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func withClock(s *MemoryStore) *fakeClock {
	c := &fakeClock{t: time.Now()}
	s.now = c.Now
	return c
}

// counterApp is an HTTP app on store: /incr adds one to "n" and writes it,
// /logout deletes the session with MaxAge -1, /get writes "n".
func counterApp(store sessions.Store) http.Handler {
	// withN runs h with the request's session and its "n".
	withN := func(h func(w http.ResponseWriter, r *http.Request, sess *sessions.Session, n int)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			sess, err := store.Get(r, "session")
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			n, _ := sess.Values["n"].(int)
			h(w, r, sess, n)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/incr", withN(func(w http.ResponseWriter, r *http.Request, sess *sessions.Session, n int) {
		sess.Values["n"] = n + 1
		if err := sess.Save(r, w); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, n+1)
	}))
	mux.HandleFunc("/get", withN(func(w http.ResponseWriter, _ *http.Request, _ *sessions.Session, n int) {
		fmt.Fprint(w, n)
	}))
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		sess, _ := store.Get(r, "session")
		sess.Options.MaxAge = -1
		if err := sess.Save(r, w); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	return mux
}

// browser is an HTTP client with a cookie jar.
type browser struct {
	t   testing.TB
	srv *httptest.Server
	c   *http.Client
}

func newBrowser(t testing.TB, srv *httptest.Server) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, srv: srv, c: &http.Client{Jar: jar, Transport: srv.Client().Transport}}
}

func (b *browser) get(path string, hdr ...string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.srv.URL+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return res, string(body)
}

func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.srv.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *browser) setCookie(name, value string) {
	u, _ := url.Parse(b.srv.URL)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

func TestMemoryStoreHTTPRoundTrip(t *testing.T) {
	t.Parallel()
	mem := newMem(t)
	srv := httptest.NewServer(counterApp(mem))
	t.Cleanup(srv.Close)
	ann, bob := newBrowser(t, srv), newBrowser(t, srv)
	for i := 1; i <= 3; i++ {
		if _, body := ann.get("/incr"); body != strconv.Itoa(i) {
			t.Fatalf("ann incr #%d = %s", i, body)
		}
	}
	if _, body := bob.get("/incr"); body != "1" {
		t.Fatalf("bob incr = %s", body)
	}
	if _, body := ann.get("/get"); body != "3" {
		t.Fatalf("ann get = %s", body)
	}
	if mem.Len() != 2 {
		t.Fatalf("Len = %d, want 2", mem.Len())
	}
	// The cookie holds a signed id, not the values.
	key := ann.cookie("session")
	if key == "" {
		t.Fatal("no session cookie in the jar")
	}
	sess, err := mem.Load(context.Background(), "session", key)
	if err != nil || sess.Values["n"] != 3 || sess.IsNew || sess.ID == "" {
		t.Fatalf("Load = %+v, %v", sess, err)
	}
	if strings.Contains(key, sess.ID) {
		t.Fatal("the cookie carries the session id in clear")
	}
	// Cookie options.
	r, _ := http.NewRequest(http.MethodGet, srv.URL+"/incr", nil)
	res2, err := srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	c := cookieNamed(res2.Cookies(), "session")
	if c == nil || !c.HttpOnly || c.Path != "/" || c.SameSite != http.SameSiteLaxMode || c.MaxAge != 86400*30 {
		t.Fatalf("cookie %+v: want HttpOnly, Path /, SameSite Lax, 30 days", c)
	}
	// Logout deletes.
	ann.get("/logout")
	if _, err := mem.Load(context.Background(), "session", key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after logout Load = %v", err)
	}
	if _, body := ann.get("/get"); body != "0" {
		t.Fatalf("after logout get = %s", body)
	}
}

// An undecodable cookie means a new empty session and no error, never a
// 500.
func TestMemoryStoreBadCookieIsNewSession(t *testing.T) {
	t.Parallel()
	mem := newMem(t)
	key, id := login(t, mem, map[any]any{"n": 5})
	cases := map[string]string{
		"tampered":      tamper(key, 5),
		"truncated":     key[:len(key)-2],
		"other keys":    func() string { k, _ := login(t, newMem(t, []byte("yet another hash key, 32 bytes!!")), nil); return k }(),
		"garbage":       "not-a-cookie",
		"oversized":     strings.Repeat("A", 5000),
		"invalid utf-8": "\xff\xfe",
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/incr", nil)
			r.Header.Set("Cookie", "session="+bad)
			sess, err := mem.New(r, "session")
			if err != nil {
				t.Fatalf("New error = %v", err)
			}
			if !sess.IsNew || len(sess.Values) != 0 || sess.ID == id {
				t.Fatalf("New = %+v", sess)
			}
			// Through the real HTTP app: 200, a fresh session.
			w := httptest.NewRecorder()
			counterApp(mem).ServeHTTP(w, r)
			if w.Code != http.StatusOK || w.Body.String() != "1" {
				t.Fatalf("app: %d %q", w.Code, w.Body)
			}
		})
	}
	if v := mustStored(t, mem, key); v["n"] != 5 {
		t.Fatalf("original session changed: %v", v)
	}
}

func TestMemoryStoreLoadErrors(t *testing.T) {
	t.Parallel()
	mem := newMem(t)
	clock := withClock(mem)
	key, _ := login(t, mem, map[any]any{"n": 1})
	gone, _ := login(t, mem, nil)
	httpDelete(t, mem, gone)
	other, _ := login(t, newMem(t, []byte("yet another hash key, 32 bytes!!")), nil)
	cases := []struct {
		name string
		sess string // cookie name to load under
		key  string
		want error
	}{
		{"ok", "session", key, nil},
		{"tampered", "session", tamper(key, 3), ErrBadKey},
		{"empty", "session", "", ErrBadKey},
		{"other keys", "session", other, ErrBadKey},
		{"other name", "other", key, ErrBadKey},
		{"deleted", "session", gone, ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sess, err := mem.Load(context.Background(), tc.sess, tc.key)
			if tc.want == nil {
				if err != nil || sess == nil || sess.IsNew || sess.Values["n"] != 1 {
					t.Fatalf("Load = %+v, %v", sess, err)
				}
				if sess.Name() != "session" || sess.Store() != sessions.Store(mem) || sess.Options == mem.Options {
					t.Fatalf("Load: name %q store %v options shared %v", sess.Name(), sess.Store(), sess.Options == mem.Options)
				}
				return
			}
			if !errors.Is(err, tc.want) || sess != nil {
				t.Fatalf("Load = %v, %v; want nil, %v", sess, err, tc.want)
			}
			for _, other := range []error{ErrBadKey, ErrNotFound} {
				if other != tc.want && errors.Is(err, other) {
					t.Fatalf("Load error %v also matches %v", err, other)
				}
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		clock.Add(30*24*time.Hour + time.Second)
		if _, err := mem.Load(context.Background(), "session", key); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Load = %v, want ErrNotFound", err)
		}
	})
}

func TestMemoryStoreValuesIsolation(t *testing.T) {
	t.Parallel()
	mem := newMem(t)
	key, _ := login(t, mem, map[any]any{"n": 1, "list": []string{"a"}})
	a, err := mem.Load(context.Background(), "session", key)
	if err != nil {
		t.Fatal(err)
	}
	a.Values["n"] = 99
	a.Values["list"].([]string)[0] = "changed"
	delete(a.Values, "list")
	a.Values["new"] = true
	a.Options.MaxAge = -1
	v := mustStored(t, mem, key)
	if v["n"] != 1 || v["new"] != nil || v["list"].([]string)[0] != "a" {
		t.Fatalf("store changed through a loaded map: %v", v)
	}
	if mem.Options.MaxAge != 86400*30 {
		t.Fatal("store options changed through a loaded session")
	}
	// Values saved are copied too.
	r := withCookie(http.MethodGet, "/", key)
	w := httptest.NewRecorder()
	sess, _ := mem.Get(r, "session")
	list := []string{"x"}
	sess.Values["list"] = list
	if err := sess.Save(r, w); err != nil {
		t.Fatal(err)
	}
	list[0] = "mutated after save"
	if got := mustStored(t, mem, key)["list"].([]string)[0]; got != "x" {
		t.Fatalf("store shares the saved slice: %q", got)
	}
}

func TestMemoryStoreExpiry(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		maxAge int
		life   time.Duration
	}{
		{"MaxAge 60", 60, time.Minute},
		{"MaxAge 0 means DefaultMaxAge", 0, DefaultMaxAge},
		{"default options", 86400 * 30, 30 * 24 * time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mem := newMem(t)
			clock := withClock(mem)
			var mu sync.Mutex
			var ended []string
			mem.NotifyEnd(func(id string) { mu.Lock(); ended = append(ended, id); mu.Unlock() })
			key, id := saveWithMaxAge(t, mem, tc.maxAge, map[any]any{"n": 1})
			saveWithMaxAge(t, mem, 86400*60, nil) // outlives every case
			clock.Add(tc.life - time.Second)
			if _, err := stored(t, mem, key); err != nil {
				t.Fatalf("before expiry: %v", err)
			}
			mem.reclaim()
			if mem.Len() != 2 {
				t.Fatalf("reclaimed early: Len %d", mem.Len())
			}
			clock.Add(time.Second)
			if _, err := stored(t, mem, key); !errors.Is(err, ErrNotFound) {
				t.Fatalf("at expiry: %v, want ErrNotFound", err)
			}
			// Update neither finds nor revives it.
			if err := mem.Update(context.Background(), "session", id, func(map[any]any) { t.Error("fn called") }); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Update = %v", err)
			}
			mem.reclaim()
			mu.Lock()
			got := append([]string(nil), ended...)
			mu.Unlock()
			if len(got) != 1 || got[0] != id {
				t.Fatalf("NotifyEnd got %v, want [%s]", got, id)
			}
			if mem.Len() != 1 {
				t.Fatalf("Len after reclaim = %d, want 1", mem.Len())
			}
		})
	}
}

// saveWithMaxAge saves a new session with the given cookie MaxAge.
func saveWithMaxAge(t testing.TB, mem *MemoryStore, maxAge int, values map[any]any) (key, id string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	sess, _ := mem.Get(r, "session")
	sess.Options.MaxAge = maxAge
	for k, v := range values {
		sess.Values[k] = v
	}
	if err := sess.Save(r, w); err != nil {
		t.Fatal(err)
	}
	return w.Result().Cookies()[0].Value, sess.ID
}

// Saving over HTTP extends the life; Update does not.
func TestMemoryStoreLifetime(t *testing.T) {
	t.Parallel()
	mem := newMem(t)
	clock := withClock(mem)
	key, id := saveWithMaxAge(t, mem, 60, nil)
	clock.Add(50 * time.Second)
	if err := mem.Update(context.Background(), "session", id, func(v map[any]any) { v["u"] = 1 }); err != nil {
		t.Fatal(err)
	}
	clock.Add(20 * time.Second) // 70 s after the save
	if _, err := stored(t, mem, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Update extended the life: %v", err)
	}
}

func TestMemoryStoreDelete(t *testing.T) {
	t.Parallel()
	mem := newMem(t)
	var mu sync.Mutex
	var ended []string
	for i := 0; i < 2; i++ { // every subscriber hears it
		mem.NotifyEnd(func(id string) { mu.Lock(); ended = append(ended, id); mu.Unlock() })
	}
	key, id := login(t, mem, map[any]any{"n": 1})
	r := withCookie(http.MethodPost, "/logout", key)
	w := httptest.NewRecorder()
	sess, _ := mem.Get(r, "session")
	sess.Options.MaxAge = -1
	if err := sess.Save(r, w); err != nil {
		t.Fatal(err)
	}
	if c := cookieNamed(w.Result().Cookies(), "session"); c == nil || c.MaxAge >= 0 || c.Value != "" {
		t.Fatalf("cookie not expired: %+v", c)
	}
	if _, err := stored(t, mem, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load after delete = %v", err)
	}
	if mem.Len() != 0 {
		t.Fatalf("Len = %d", mem.Len())
	}
	mu.Lock()
	if len(ended) != 2 || ended[0] != id || ended[1] != id {
		t.Fatalf("NotifyEnd got %v", ended)
	}
	ended = nil
	mu.Unlock()
	// Deleting a new (never saved) session notifies nobody.
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	sess, _ = mem.Get(r, "session")
	sess.Options.MaxAge = -1
	if err := sess.Save(r, httptest.NewRecorder()); err != nil {
		t.Fatal(err)
	}
	// Nor deleting twice.
	r = withCookie(http.MethodPost, "/logout", key)
	sess, _ = mem.New(r, "session")
	sess.ID = id
	sess.Options.MaxAge = -1
	_ = mem.Save(r, httptest.NewRecorder(), sess)
	mu.Lock()
	defer mu.Unlock()
	if len(ended) != 0 {
		t.Fatalf("NotifyEnd for nothing: %v", ended)
	}
}

func TestMemoryStoreUpdate(t *testing.T) {
	t.Parallel()
	mem := newMem(t)
	key, id := login(t, mem, map[any]any{"keep": "me", "drop": 1})
	err := mem.Update(context.Background(), "session", id, func(v map[any]any) {
		if v["keep"] != "me" {
			t.Errorf("fn got %v", v)
		}
		v["new"] = 2
		delete(v, "drop")
	})
	if err != nil {
		t.Fatal(err)
	}
	v := mustStored(t, mem, key)
	if v["keep"] != "me" || v["new"] != 2 || v["drop"] != nil || len(v) != 2 {
		t.Fatalf("stored %v", v)
	}
	t.Run("missing", func(t *testing.T) {
		called := false
		err := mem.Update(context.Background(), "session", "no-such-id", func(map[any]any) { called = true })
		if !errors.Is(err, ErrNotFound) || called {
			t.Fatalf("Update = %v, called %v", err, called)
		}
		if mem.Len() != 1 {
			t.Fatalf("Update created a session: Len %d", mem.Len())
		}
	})
	t.Run("deleted", func(t *testing.T) {
		k, id := login(t, mem, nil)
		httpDelete(t, mem, k)
		called := false
		err := mem.Update(context.Background(), "session", id, func(map[any]any) { called = true })
		if !errors.Is(err, ErrNotFound) || called {
			t.Fatalf("Update = %v, called %v", err, called)
		}
		if _, err := stored(t, mem, k); !errors.Is(err, ErrNotFound) {
			t.Fatal("Update brought back a deleted session")
		}
	})
	t.Run("unencodable", func(t *testing.T) {
		err := mem.Update(context.Background(), "session", id, func(v map[any]any) { v["f"] = func() {} })
		if err == nil {
			t.Fatal("Update stored a func")
		}
		if v := mustStored(t, mem, key); v["f"] != nil {
			t.Fatalf("stored %v", v)
		}
	})
}

// N goroutines increment one key through Update: none is lost.
func TestMemoryStoreUpdateConcurrent(t *testing.T) {
	t.Parallel()
	mem := newMem(t)
	key, id := login(t, mem, map[any]any{"n": 0})
	const workers, each = 16, 25
	var calls atomic.Int64
	// increment starts the workers on the session id; wait waits for them.
	increment := func(id string) (wait func()) {
		var wg sync.WaitGroup
		for i := 0; i < workers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < each; j++ {
					if err := mem.Update(context.Background(), "session", id, func(v map[any]any) {
						calls.Add(1)
						v["n"] = v["n"].(int) + 1
					}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		return wg.Wait
	}
	wait := increment(id)
	// HTTP saves of other keys meanwhile: Update retries on them.
	for i := 0; i < 20; i++ {
		httpEdit(t, mem, key, func(v map[any]any) { v["http"] = i })
	}
	wait()
	// The HTTP saves wrote back whatever n they loaded, so the exact total
	// is checked below, with no HTTP writer.
	if v := mustStored(t, mem, key); v["http"] != 19 {
		t.Fatalf("an HTTP save was lost: %v", v)
	}
	if n := calls.Load(); n < workers*each {
		t.Fatalf("fn ran %d times for %d Updates", n, workers*each)
	}
	key2, id2 := login(t, mem, map[any]any{"n": 0})
	increment(id2)()
	if got := mustStored(t, mem, key2)["n"]; got != workers*each {
		t.Fatalf("n = %v, want %d", got, workers*each)
	}
}

// A cookie made with the old key pair still loads once the store has
// [new, old]; a cookie made with [new, old] does not load with [old].
func TestMemoryStoreKeyRotation(t *testing.T) {
	t.Parallel()
	oldHash, oldBlock := []byte("old hash key: 32 bytes long....."), []byte("old block key, 16")[:16]
	newHash, newBlock := []byte("new hash key: 32 bytes long....."), []byte("new block key, 32 bytes long...!")
	old := newMem(t, oldHash, oldBlock)
	key, id := login(t, old, map[any]any{"n": 1})

	rotated := newMem(t, newHash, newBlock, oldHash, oldBlock)
	// Carry the data over (same process, new store): the id is what matters.
	e, _ := old.get(id)
	rotated.put(id, &memEntry{values: e.values, expires: nanoOf(time.Now().Add(time.Hour))})
	sess, err := rotated.Load(context.Background(), "session", key)
	if err != nil || sess.ID != id || sess.Values["n"] != 1 {
		t.Fatalf("rotated store: Load = %+v, %v", sess, err)
	}
	// New cookies are signed with the new pair.
	r := withCookie(http.MethodGet, "/", key)
	w := httptest.NewRecorder()
	s2, _ := rotated.Get(r, "session")
	if err := s2.Save(r, w); err != nil {
		t.Fatal(err)
	}
	newKey := w.Result().Cookies()[0].Value
	if _, err := old.Load(context.Background(), "session", newKey); !errors.Is(err, ErrBadKey) {
		t.Fatalf("old store decodes a new-key cookie: %v", err)
	}
	if s, err := newMem(t, newHash, newBlock).Load(context.Background(), "session", newKey); !errors.Is(err, ErrNotFound) {
		t.Fatalf("new-only store: %v %v, want ErrNotFound (decodes, not here)", s, err)
	}
	// Dropping the old pair: the old cookie is now a bad key.
	if _, err := newMem(t, newHash, newBlock).Load(context.Background(), "session", key); !errors.Is(err, ErrBadKey) {
		t.Fatalf("dropped key: %v", err)
	}
}

func TestMemoryStoreClose(t *testing.T) {
	t.Parallel()
	mem := NewMemoryStore()
	key, _ := login(t, mem, map[any]any{"n": 1})
	for i := 0; i < 3; i++ {
		if err := mem.Close(); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-mem.done:
	default:
		t.Fatal("janitor still running after Close")
	}
	// Still works.
	if v := mustStored(t, mem, key); v["n"] != 1 {
		t.Fatalf("after Close: %v", v)
	}
	// Concurrent Close calls are fine: each returns nil, and the janitor
	// is stopped once they are done.
	mem2 := NewMemoryStore()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := mem2.Close(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	select {
	case <-mem2.done:
	default:
		t.Fatal("janitor still running after concurrent Closes")
	}
}

// The janitor reclaims on its own; run it fast here.
func TestMemoryStoreJanitor(t *testing.T) {
	t.Parallel()
	mem := &MemoryStore{
		Options: &sessions.Options{Path: "/", MaxAge: 60},
		codecs:  securecookie.CodecsFromPairs(testHashKey, testBlockKey),
		seed:    maphash.MakeSeed(),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	for i := range mem.shards {
		mem.shards[i].m = make(map[string]*memEntry)
	}
	clock := withClock(mem)
	ended := make(chan string, 1)
	mem.NotifyEnd(func(id string) { ended <- id })
	_, id := login(t, mem, nil)
	go mem.janitor(time.Millisecond)
	t.Cleanup(func() { mem.Close() })
	clock.Add(time.Hour)
	if got := recv(t, ended, "the janitor to reclaim"); got != id {
		t.Fatalf("ended %q, want %q", got, id)
	}
	eventually(t, "Len 0", func() bool { return mem.Len() == 0 })
}

// Close says that, without the janitor, expired sessions are reclaimed
// when they are looked up: their memory must go (and Len say so).
func TestMemoryStoreClosedReclaimsOnLookup(t *testing.T) {
	t.Parallel()
	mem := newMem(t)
	clock := withClock(mem)
	key, _ := login(t, mem, nil)
	mem.Close()
	clock.Add(31 * 24 * time.Hour)
	if _, err := stored(t, mem, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load = %v", err)
	}
	if n := mem.Len(); n != 0 {
		t.Fatalf("an expired session looked up after Close is still held: Len = %d", n)
	}
}

func TestMemoryStoreConcurrentUse(t *testing.T) {
	t.Parallel()
	mem := newMem(t)
	srv := httptest.NewServer(counterApp(mem))
	t.Cleanup(srv.Close)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := newBrowser(t, srv)
			for j := 1; j <= 10; j++ {
				req, _ := http.NewRequest(http.MethodGet, srv.URL+"/incr", nil)
				res, err := b.c.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if string(body) != strconv.Itoa(j) {
					t.Errorf("incr #%d = %s", j, body)
					return
				}
			}
		}()
	}
	for i := 0; i < 100; i++ {
		mem.reclaim()
		mem.Len()
	}
	wg.Wait()
}

// forgeCookie builds a MemoryStore cookie for id as securecookie would,
// dated ts, so that tests can make old cookies without waiting.
func forgeCookie(name string, hashKey, blockKey []byte, ts int64, id string) string {
	return forgeSecure(name, hashKey, blockKey, ts, []byte(id))
}

// A cookie that verifies but does not hold an id (decrypted with another
// block key, or an earlier version's gob-encoded id) is a bad key, not a
// missing session.
func TestMemoryStoreCookieNotAnID(t *testing.T) {
	t.Parallel()
	mem := newMem(t)
	_, id := saveWithMaxAge(t, mem, 3600, map[any]any{"n": 1})
	var gobbed bytes.Buffer
	_ = gob.NewEncoder(&gobbed).Encode(id)
	otherBlock := []byte("another block key, 32 bytes long")
	now := time.Now().Unix()
	for name, c := range map[string]string{
		"gob-encoded id":  forgeSecure("session", testHashKey, testBlockKey, now, gobbed.Bytes()),
		"other block key": forgeCookie("session", testHashKey, otherBlock, now, id),
		"id and a byte":   forgeCookie("session", testHashKey, testBlockKey, now, id+"A"),
		"lowercase id":    forgeCookie("session", testHashKey, testBlockKey, now, strings.ToLower(id)),
	} {
		if _, err := mem.Load(context.Background(), "session", c); !errors.Is(err, ErrBadKey) {
			t.Errorf("%s: Load = %v, want ErrBadKey", name, err)
		}
	}
	if _, err := mem.Load(context.Background(), "session", forgeCookie("session", testHashKey, testBlockKey, now, id)); err != nil {
		t.Fatalf("the forged cookie of the id itself: %v", err)
	}
}

// A session saved with MaxAge over 30 days lives that long: its cookie,
// 31 days old, must still load it.
func TestMemoryStoreLongMaxAge(t *testing.T) {
	t.Parallel()
	mem := newMem(t)
	_, id := saveWithMaxAge(t, mem, 86400*90, map[any]any{"n": 1})
	fresh := forgeCookie("session", testHashKey, testBlockKey, time.Now().Unix(), id)
	if v, err := stored(t, mem, fresh); err != nil || v["n"] != 1 {
		t.Fatalf("forgeCookie does not match securecookie: %v %v", v, err)
	}
	old := forgeCookie("session", testHashKey, testBlockKey, time.Now().Add(-31*24*time.Hour).Unix(), id)
	if _, err := stored(t, mem, old); err != nil {
		t.Fatalf("a 31-day-old cookie of a session with MaxAge 90 days: Load = %v", err)
	}
}
