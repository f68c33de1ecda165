package iosessions

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/sessions"
)

// wbHandshake is a handshake of a client whose shim applies write-backs.
func wbHandshake(key string) *http.Request {
	return withCookie(http.MethodGet, "/socket.io/?EIO=3&transport=websocket&"+WritebackParam+"=1", key)
}

// wbFixture is a Manager on a CookieStore with one logged-in session, and
// a socket of it whose client applies write-backs.
type wbFixture struct {
	cs   *sessions.CookieStore
	m    *Manager
	key  string // the session's cookie as the browser holds it
	s    *Socket
	c    *testConn
	seen int // write-backs taken from c
}

func newWBFixture(t *testing.T, mode Mode) *wbFixture {
	t.Helper()
	cs := sessions.NewCookieStore(testHashKey, testBlockKey)
	m, _ := newManager(t, cs, Config{Mode: mode})
	key, _ := login(t, cs, map[any]any{"user": "ann", "n": 0})
	s, c := connect(t, m, wbHandshake(key))
	if err := s.Err(); err != nil {
		t.Fatalf("Err() = %v", err)
	}
	return &wbFixture{cs: cs, m: m, key: key, s: s, c: c}
}

// next returns the token of the next write-back the socket received.
func (f *wbFixture) next(t *testing.T) string {
	t.Helper()
	eventually(t, "a swriteback", func() bool { return len(f.c.Named("swriteback")) > f.seen })
	ev := f.c.Named("swriteback")[f.seen]
	f.seen++
	tok, _ := ev.Args[0].(map[string]any)["token"].(string)
	if tok == "" {
		t.Fatalf("swriteback %v has no token", ev.Args)
	}
	return tok
}

// post sends a write-back as the shim does, from the page's origin, with
// the browser's cookie key.
func (f *wbFixture) post(tok, key string, edit func(r *http.Request)) *http.Response {
	r := httptest.NewRequest(http.MethodPost, f.m.WritebackPath(), strings.NewReader(url.Values{"token": {tok}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", "http://example.com")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	if key != "" {
		r.AddCookie(&http.Cookie{Name: "session", Value: key})
	}
	if edit != nil {
		edit(r)
	}
	w := httptest.NewRecorder()
	f.m.Middleware(http.NotFoundHandler()).ServeHTTP(w, r)
	return w.Result()
}

// apply posts tok with the browser's cookie, wants it applied and keeps
// the new cookie.
func (f *wbFixture) apply(t *testing.T, tok string) {
	t.Helper()
	res := f.post(tok, f.key, nil)
	c := cookieNamed(res.Cookies(), "session")
	if res.StatusCode != http.StatusNoContent || c == nil {
		t.Fatalf("write-back: %d, cookie %v", res.StatusCode, c)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q", cc)
	}
	f.key = c.Value
}

// count decodes the browser's cookie as an HTTP handler would.
func (f *wbFixture) count(t *testing.T, key string) int {
	t.Helper()
	sess, err := f.cs.New(withCookie(http.MethodGet, "/me", key), "session")
	if err != nil || sess.IsNew {
		t.Fatalf("cookie does not decode: %v", err)
	}
	return sess.Values["n"].(int)
}

// refused checks that res changed nothing: the code, and no cookie.
func refused(t *testing.T, what string, res *http.Response, code int) {
	t.Helper()
	if res.StatusCode != code || len(res.Cookies()) != 0 {
		t.Fatalf("%s: %d with cookies %v, want %d and none", what, res.StatusCode, res.Cookies(), code)
	}
}

// A socket's change to a cookie session reaches the cookie through a
// write-back, at once after the event, in both modes.
func TestWritebackApplies(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode Mode) {
		f := newWBFixture(t, mode)
		for want := 1; want <= 3; want++ {
			mustDo(t, f.s, incrN)
			f.apply(t, f.next(t))
			if got := f.count(t, f.key); got != want {
				t.Fatalf("cookie holds n=%d, want %d", got, want)
			}
		}
		// A new socket from the new cookie reads the written-back value.
		s2, _ := connect(t, f.m, wbHandshake(f.key))
		mustDo(t, s2, wantValue("n", 3))
		// An event that changes nothing writes nothing back.
		mustDo(t, f.s, wantValue("n", 3))
		if n := len(f.c.Named("swriteback")); n != 3 {
			t.Fatalf("%d write-backs after a read-only event, want 3", n)
		}
	})
}

// Forged, replayed, expired, older, cross-origin and other-session
// write-backs are refused and change nothing.
func TestWritebackRefused(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode Mode) {
		f := newWBFixture(t, mode)
		first := f.key
		mustDo(t, f.s, incrN)
		tok1 := f.next(t)
		mustDo(t, f.s, incrN)
		tok2 := f.next(t)

		refused(t, "tampered", f.post(tamper(tok1, len(tok1)/2), f.key, nil), http.StatusBadRequest)
		refused(t, "empty", f.post("", f.key, nil), http.StatusBadRequest)
		other := newWBFixture(t, mode) // another Manager: other TokenKeys
		mustDo(t, other.s, incrN)
		refused(t, "minted by another server", f.post(other.next(t), f.key, nil), http.StatusBadRequest)
		refused(t, "no Origin", f.post(tok1, f.key, func(r *http.Request) { r.Header.Del("Origin") }), http.StatusForbidden)
		refused(t, "cross-origin", f.post(tok1, f.key, func(r *http.Request) { r.Header.Set("Origin", "http://evil.test") }), http.StatusForbidden)
		refused(t, "cross-site", f.post(tok1, f.key, func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }), http.StatusForbidden)
		refused(t, "no cookie", f.post(tok1, "", nil), http.StatusForbidden)
		otherKey, _ := login(t, f.cs, map[any]any{"user": "bob", "n": 0})
		refused(t, "another session's cookie", f.post(tok1, otherKey, nil), http.StatusForbidden)
		get := httptest.NewRequest(http.MethodGet, f.m.WritebackPath()+"?token="+url.QueryEscape(tok1), nil)
		w := httptest.NewRecorder()
		f.m.Middleware(http.NotFoundHandler()).ServeHTTP(w, get)
		refused(t, "GET", w.Result(), http.StatusMethodNotAllowed)

		f.apply(t, tok2) // the newer one first
		refused(t, "older than the cookie", f.post(tok1, f.key, nil), http.StatusConflict)
		refused(t, "replayed on the same cookie", f.post(tok2, f.key, nil), http.StatusConflict)
		// A replay on the cookie it was made from: the version check passes,
		// the ledger refuses it.
		refused(t, "replayed", f.post(tok2, first, nil), http.StatusBadRequest)
		if got := f.count(t, f.key); got != 2 {
			t.Fatalf("cookie holds n=%d, want 2", got)
		}

		mustDo(t, f.s, incrN)
		tok3 := f.next(t)
		f.m.wb.now = func() time.Time { return time.Now().Add(WritebackTTL + time.Second) }
		refused(t, "expired", f.post(tok3, f.key, nil), http.StatusBadRequest)
		f.m.wb.now = time.Now
		f.apply(t, tok3) // the expired one was not used up: nothing changed
		if got := f.count(t, f.key); got != 3 {
			t.Fatalf("cookie holds n=%d, want 3", got)
		}
	})
}

// A change that makes the cookie larger than browsers keep fails its event
// with ErrCookieTooLarge and changes nothing.
func TestWritebackTooLarge(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode Mode) {
		f := newWBFixture(t, mode)
		big := make([]byte, 3500) // incompressible: over 4096 once encoded
		_, _ = rand.Read(big)
		err := do(f.s, func(sess *Session) error {
			sess.Values["n"] = 1
			sess.Values["big"] = base64.StdEncoding.EncodeToString(big)
			return nil
		})
		if !errors.Is(err, ErrCookieTooLarge) {
			t.Fatalf("oversized change: %v, want ErrCookieTooLarge", err)
		}
		if ack := ErrorAck(err)["error"]; !strings.Contains(ack, "too large") {
			t.Fatalf("ack %q does not say why", ack)
		}
		mustDo(t, f.s, func(sess *Session) error {
			if _, ok := sess.Values["big"]; ok || sess.Values["n"] != 0 {
				t.Errorf("values after a failed write-back: %v", sess.Values)
			}
			return nil
		})
		if n := len(f.c.Named("swriteback")); n != 0 {
			t.Fatalf("%d write-backs for a failed event", n)
		}
		mustDo(t, f.s, incrN) // and the session goes on
		f.apply(t, f.next(t))
		if got := f.count(t, f.key); got != 1 {
			t.Fatalf("cookie holds n=%d, want 1", got)
		}
	})
}

// Events read the newest cookie the server made, even before the browser
// applied it; a client without the shim gets no write-back, its events
// succeed, and Session.Save says ErrClientSideStore.
func TestWritebackLatestAndNoShim(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode Mode) {
		f := newWBFixture(t, mode)
		mustDo(t, f.s, incrN)
		mustDo(t, f.s, incrN) // nothing applied: still reads n=1 made here
		mustDo(t, f.s, wantValue("n", 2))

		cs := sessions.NewCookieStore(testHashKey, testBlockKey)
		m, sink := newManager(t, cs, Config{Mode: mode})
		key, _ := login(t, cs, map[any]any{"n": 0})
		s, c := connect(t, m, handshake(key))
		mustDo(t, s, incrN)
		mustDo(t, s, wantValue("n", 1))
		if len(c.Named("swriteback")) != 0 {
			t.Fatal("a client without the shim got a write-back")
		}
		err := do(s, func(sess *Session) error {
			sess.Values["n"] = 5
			return sess.Save(t.Context())
		})
		if !errors.Is(err, ErrClientSideStore) {
			t.Fatalf("Save without the shim: %v, want ErrClientSideStore", err)
		}
		if mode == PerConnection { // the unsaved changes are reported at the last disconnect
			s.Closed("test")
			eventually(t, "ErrUnsaved", func() bool {
				for _, err := range sink.all() {
					if errors.Is(err, ErrUnsaved) && errors.Is(err, ErrClientSideStore) {
						return true
					}
				}
				return false
			})
		}
	})
}

// FuzzWriteback: whatever a client POSTs, with or without a valid cookie,
// nothing but a token the server made sets a cookie, and nothing panics.
func FuzzWriteback(f *testing.F) {
	cs := sessions.NewCookieStore(testHashKey, testBlockKey)
	m, err := New(cs, Config{Logger: quietLogger})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	key, _, err := saveSession(cs, map[any]any{"n": 0})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{"", "x", "MTIzNDU2Nzg5MA==", strings.Repeat("A", maxWritebackLen+1), "token=1&token=2"} {
		f.Add(seed)
	}
	h := m.Middleware(http.NotFoundHandler())
	f.Fuzz(func(t *testing.T, tok string) {
		r := httptest.NewRequest(http.MethodPost, m.WritebackPath(), strings.NewReader(url.Values{"token": {tok}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", "http://example.com")
		r.AddCookie(&http.Cookie{Name: "session", Value: key})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code == http.StatusNoContent || len(w.Result().Cookies()) != 0 {
			t.Fatalf("a made-up write-back was applied: %d", w.Code)
		}
	})
}
