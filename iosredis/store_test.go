package iosredis_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"github.com/redis/go-redis/v9"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/internal/redistest"
	"github.com/iosessions/iosessions/iosredis"
)

const prefix = "test:"

func newStore(t testing.TB, o *iosredis.Options, args ...string) (*iosredis.Store, *redis.Client, *redistest.Server) {
	t.Helper()
	rs := redistest.Start(t, args...)
	c := rs.Client()
	if o == nil {
		o = &iosredis.Options{}
	}
	o.KeyPrefix = prefix
	s, err := iosredis.NewStore(context.Background(), c, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, c, rs
}

// login saves a new session with values and returns its cookie.
func login(t testing.TB, s *iosredis.Store, values map[any]any, maxAge int) *http.Cookie {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/login", nil)
	sess, err := s.New(r, "session")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range values {
		sess.Values[k] = v
	}
	if maxAge != 0 {
		sess.Options.MaxAge = maxAge
	}
	w := httptest.NewRecorder()
	if err := sess.Save(r, w); err != nil {
		t.Fatal(err)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == "session" && c.Value != "" {
			return c
		}
	}
	t.Fatal("no session cookie")
	return nil
}

func request(c *http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if c != nil {
		r.AddCookie(c)
	}
	return r
}

// TestFixation: a cookie naming a session that does not exist, well
// spelled or not, gives a new session whose saved id is the store's own;
// the client's id is never written (redisstore would adopt it).
func TestFixation(t *testing.T) {
	s, c, _ := newStore(t, nil)
	for _, chosen := range []string{"{" + strings.Repeat("A", 103) + "}", strings.Repeat("A", 103), "attacker-chosen", ""} {
		r := request(&http.Cookie{Name: "session", Value: chosen})
		sess, err := s.New(r, "session")
		if err != nil {
			t.Fatal(err)
		}
		if !sess.IsNew || sess.ID != "" {
			t.Fatalf("cookie %q: IsNew %v, ID %q: want a new session without an id", chosen, sess.IsNew, sess.ID)
		}
		sess.Values["user"] = "victim"
		w := httptest.NewRecorder()
		if err := sess.Save(r, w); err != nil {
			t.Fatal(err)
		}
		if sess.ID == chosen {
			t.Fatalf("the store adopted the client's id %q", chosen)
		}
		if n := c.Exists(context.Background(), prefix+chosen).Val(); n != 0 {
			t.Fatalf("Redis has a key for the client's id %q", chosen)
		}
		if got := w.Result().Cookies()[0]; got.Value != sess.ID || !got.HttpOnly || got.SameSite != http.SameSiteLaxMode {
			t.Fatalf("cookie %+v: want the new id, HttpOnly, SameSite Lax", got)
		}
	}
}

// TestAbsoluteLifetime: saving a session again, over HTTP or from a
// socket, never extends it; it ends MaxAge after its first save.
func TestAbsoluteLifetime(t *testing.T) {
	s, c, _ := newStore(t, nil)
	cookie := login(t, s, map[any]any{"n": 0}, 3)
	ctx := context.Background()
	time.Sleep(1100 * time.Millisecond)

	sess, err := s.Get(request(cookie), "session")
	if err != nil || sess.IsNew {
		t.Fatalf("Get: %v, IsNew %v", err, sess.IsNew)
	}
	sess.Values["n"] = 1
	if err := sess.Save(request(cookie), httptest.NewRecorder()); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, "session", cookie.Value, func(v map[any]any) { v["n"] = 2 }); err != nil {
		t.Fatal(err)
	}
	ttl := c.PTTL(ctx, prefix+cookie.Value).Val()
	if ttl <= 0 || ttl > 2*time.Second {
		t.Fatalf("TTL %v after saves 1.1 s into a 3 s life: want at most 1.9 s (saves must not extend it)", ttl)
	}
	deadline := time.Now().Add(3 * time.Second)
	for c.Exists(ctx, prefix+cookie.Value).Val() == 1 {
		if time.Now().After(deadline) {
			t.Fatal("the session outlived its MaxAge")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := s.Load(ctx, "session", cookie.Value); !errors.Is(err, iosessions.ErrNotFound) {
		t.Fatalf("Load of the expired session: %v, want ErrNotFound", err)
	}
}

// TestEndedNotRecreated: a save, over HTTP or from a socket, of a
// session deleted meanwhile fails with ErrNotFound and writes nothing.
func TestEndedNotRecreated(t *testing.T) {
	s, c, _ := newStore(t, nil)
	cookie := login(t, s, map[any]any{"user": "alice"}, 0)
	sess, err := s.New(request(cookie), "session")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c.Del(ctx, prefix+cookie.Value)
	if err := sess.Save(request(cookie), httptest.NewRecorder()); !errors.Is(err, iosessions.ErrNotFound) {
		t.Errorf("Save after delete: %v, want ErrNotFound", err)
	}
	called := false
	if err := s.Update(ctx, "session", cookie.Value, func(map[any]any) { called = true }); !errors.Is(err, iosessions.ErrNotFound) || called {
		t.Errorf("Update after delete: %v, fn called %v: want ErrNotFound and no call", err, called)
	}
	if c.Exists(ctx, prefix+cookie.Value).Val() != 0 {
		t.Error("the deleted session is back")
	}
}

// TestUpdateConcurrent: 4 writers x 100 Update increments lose nothing.
func TestUpdateConcurrent(t *testing.T) {
	s, _, _ := newStore(t, nil)
	cookie := login(t, s, map[any]any{"n": 0}, 0)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				if err := s.Update(context.Background(), "session", cookie.Value, func(v map[any]any) { v["n"] = v["n"].(int) + 1 }); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	sess, err := s.Load(context.Background(), "session", cookie.Value)
	if err != nil {
		t.Fatal(err)
	}
	if got := sess.Values["n"]; got != 400 {
		t.Fatalf("n = %v, want 400", got)
	}
}

// TestLock: one holder at a time; a holder whose lock expired cannot
// write (ErrLockLost) and the next holder's write stands.
func TestLock(t *testing.T) {
	s, c, _ := newStore(t, &iosredis.Options{LockTTL: 200 * time.Millisecond})
	cookie := login(t, s, map[any]any{"n": 0}, 0)
	id := cookie.Value
	ctx := context.Background()

	held1, unlock1, err := s.Lock(ctx, "session", id)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, _, err := s.Lock(short, "session", id); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Lock while held: %v, want the context's deadline", err)
	}
	time.Sleep(300 * time.Millisecond) // the first lock expires
	held2, unlock2, err := s.Lock(ctx, "session", id)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(held1, "session", id, func(v map[any]any) { v["n"] = 1 }); !errors.Is(err, iosredis.ErrLockLost) {
		t.Fatalf("write under an expired lock: %v, want ErrLockLost", err)
	}
	unlock1() // must not release the second holder's lock
	if c.Exists(ctx, prefix+"lock:"+id).Val() != 1 {
		t.Fatal("the expired holder's unlock released the current lock")
	}
	if err := s.Update(held2, "session", id, func(v map[any]any) { v["n"] = 2 }); err != nil {
		t.Fatal(err)
	}
	// The save releases the lock with the write (one round trip).
	if c.Exists(ctx, prefix+"lock:"+id).Val() != 0 {
		t.Fatal("the save under the lock left the lock")
	}
	unlock2() // then does nothing
	// Without a save, unlock releases it.
	_, unlock3, err := s.Lock(ctx, "session", id)
	if err != nil {
		t.Fatal(err)
	}
	unlock3()
	if c.Exists(ctx, prefix+"lock:"+id).Val() != 0 {
		t.Fatal("unlock left the lock")
	}
	sess, _ := s.Load(ctx, "session", id)
	if got := sess.Values["n"]; got != 2 {
		t.Fatalf("n = %v, want the current holder's 2", got)
	}
}

// TestNotifyAndExist: a delete through one Store reaches NotifyEnd of
// another on the same Redis; Exist says which sessions are left.
func TestNotifyAndExist(t *testing.T) {
	s, c, _ := newStore(t, nil)
	other, err := iosredis.NewStore(context.Background(), c, &iosredis.Options{KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ended := make(chan string, 1)
	other.NotifyEnd(func(id string) { ended <- id })
	waitSubscribed(t, c, prefix+"ended")

	a := login(t, s, map[any]any{"u": "a"}, 0)
	b := login(t, s, map[any]any{"u": "b"}, 0)
	sess, _ := s.Get(request(a), "session")
	sess.Options.MaxAge = -1
	w := httptest.NewRecorder()
	if err := sess.Save(request(a), w); err != nil {
		t.Fatal(err)
	}
	if got := w.Result().Cookies()[0]; got.MaxAge >= 0 {
		t.Errorf("delete left the cookie %+v", got)
	}
	select {
	case id := <-ended:
		if id != a.Value {
			t.Fatal("NotifyEnd got another id")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no end notified to the other store")
	}
	alive, err := other.Exist(context.Background(), "session", []string{a.Value, b.Value})
	if err != nil || alive[0] || !alive[1] {
		t.Fatalf("Exist = %v, %v: want [false true]", alive, err)
	}
}

// TestRedisDown: with Redis stopped, Load and Update fail (with Redis's
// error, which the Manager reports as store unavailable), New fails
// rather than hand out a new session, and all work again once it is back.
func TestRedisDown(t *testing.T) {
	s, _, rs := newStore(t, nil)
	cookie := login(t, s, map[any]any{"n": 0}, 0)
	rs.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := s.Load(ctx, "session", cookie.Value); err == nil || errors.Is(err, iosessions.ErrNotFound) {
		t.Errorf("Load with Redis down: %v, want Redis's error", err)
	}
	if err := s.Update(ctx, "session", cookie.Value, func(map[any]any) {}); err == nil {
		t.Error("Update with Redis down: no error")
	}
	if _, err := s.New(request(cookie), "session"); err == nil {
		t.Error("New with Redis down: no error")
	}
	rs.Restart()
	if err := s.Update(context.Background(), "session", cookie.Value, func(v map[any]any) { v["n"] = 1 }); err != nil {
		t.Fatalf("Update with Redis back: %v", err)
	}
}

func TestNewStoreOptions(t *testing.T) {
	rs := redistest.Start(t)
	for _, o := range []*iosredis.Options{
		{Session: &sessions.Options{MaxAge: 0}},
		{LockTTL: -1},
		{KeyPrefix: "app{x}:"}, // would take the keys' hash tag
	} {
		if _, err := iosredis.NewStore(context.Background(), rs.Client(), o); err == nil {
			t.Errorf("NewStore(%+v): no error", o)
		}
	}
}

func waitSubscribed(t *testing.T, c *redis.Client, channel string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.PubSubNumSub(context.Background(), channel).Val()[channel] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("not subscribed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTokenLedger: a nonce is new once across stores on one Redis, and
// forgotten after its ttl.
func TestTokenLedger(t *testing.T) {
	s, c, _ := newStore(t, nil)
	other, err := iosredis.NewStore(context.Background(), c, &iosredis.Options{KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if first, err := s.Use(ctx, "n1", 300*time.Millisecond); !first || err != nil {
		t.Fatalf("first use: %v %v", first, err)
	}
	if first, err := other.Use(ctx, "n1", 300*time.Millisecond); first || err != nil {
		t.Fatalf("replay on another node: %v %v, want refused", first, err)
	}
	time.Sleep(400 * time.Millisecond)
	if c.Exists(ctx, prefix+"token:n1").Val() != 0 {
		t.Fatal("the nonce outlived its ttl")
	}
}

// TestLockReleasedAfterOutage: a lock whose release met Redis down is
// released once Redis is back, not left to block its session for the
// rest of LockTTL.
func TestLockReleasedAfterOutage(t *testing.T) {
	s, c, rs := newStore(t, &iosredis.Options{LockTTL: 10 * time.Second})
	cookie := login(t, s, map[any]any{"n": 0}, 0)
	ctx := context.Background()
	_, unlock, err := s.Lock(ctx, "session", cookie.Value)
	if err != nil {
		t.Fatal(err)
	}
	rs.Stop()
	unlock() // fails: Redis is down
	rs.Restart()
	back := time.Now()
	for c.Exists(ctx, prefix+"lock:"+cookie.Value).Val() != 0 {
		if time.Since(back) > 3*time.Second {
			t.Fatal("the lock is still held 3 s after Redis came back (LockTTL 10 s)")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("lock released %v after Redis came back", time.Since(back).Round(time.Millisecond))
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, unlock2, err := s.Lock(short, "session", cookie.Value)
	if err != nil {
		t.Fatalf("Lock after the outage: %v", err)
	}
	unlock2()
}

// The decode cache hands out copies: a caller that changes the values it
// loaded changes neither the store nor the next load.
func TestDecodedCopies(t *testing.T) {
	st, _, _ := newStore(t, nil)
	id := login(t, st, map[any]any{"list": []any{"a"}, "n": 1}, 60).Value
	ctx := context.Background()
	a, err := st.Load(ctx, "session", id)
	if err != nil {
		t.Fatal(err)
	}
	a.Values["list"].([]any)[0] = "changed"
	a.Values["n"] = 2
	b, err := st.Load(ctx, "session", id)
	if err != nil {
		t.Fatal(err)
	}
	if b.Values["list"].([]any)[0] != "a" || b.Values["n"] != 1 {
		t.Fatalf("a second load sees the first one's changes: %v", b.Values)
	}
}
