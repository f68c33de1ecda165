package iosredis_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/iosessions/iosessions"
)

// TestIdleTouch: with an idle timeout, a new session's key expires at its
// idle deadline, 6/5 of the timeout ahead; a Touch, or a load over HTTP, within a tenth of the
// timeout writes nothing (Redis runs no PEXPIREAT), a later one moves the
// deadline; Expiry tells the idle deadline; a session left idle is gone
// after the timeout; and the lifetime still bounds it: touched all along,
// it ends at MaxAge, and Expiry then says so (not idle).
func TestIdleTouch(t *testing.T) {
	s, c, _ := newStore(t, nil)
	s.SetIdleTimeout(2 * time.Second)
	ctx := context.Background()
	cookie := login(t, s, map[any]any{"n": 1}, 60)
	id := cookie.Value
	if ttl := c.PTTL(ctx, prefix+id).Val(); ttl <= 2*time.Second || ttl > 2400*time.Millisecond {
		t.Fatalf("TTL after login %v, want 6/5 of the idle timeout (2.4 s)", ttl)
	}
	writes := func() int64 { return commandStats(t, c)["pexpireat"] }

	w0 := writes()
	e, err := s.Touch(ctx, "session", id)
	if err != nil || !e.Idle || time.Until(e.At) > 2400*time.Millisecond {
		t.Fatalf("Touch: %+v, %v", e, err)
	}
	if _, err := s.Get(request(cookie), "session"); err != nil {
		t.Fatal(err)
	}
	if d := writes() - w0; d != 0 {
		t.Fatalf("a Touch and a load within a tenth of the timeout wrote %d times, want 0", d)
	}

	// A tenth later, an HTTP load moves the deadline: one write.
	at0 := c.PExpireTime(ctx, prefix+id).Val()
	time.Sleep(250 * time.Millisecond)
	sess, err := s.Get(request(cookie), "session")
	if err != nil || sess.IsNew || sess.Values["n"] != 1 {
		t.Fatalf("Get: %v, %v", sess, err)
	}
	if d := writes() - w0; d != 1 {
		t.Fatalf("a load a tenth of the timeout later wrote %d times, want 1", d)
	}
	if at := c.PExpireTime(ctx, prefix+id).Val(); at-at0 < 200*time.Millisecond {
		t.Fatalf("the load moved the expiry by %v, want 250 ms or so", at-at0)
	}
	exp, err := s.Expiry(ctx, "session", []string{id, "{" + strings.Repeat("A", 103) + "}"})
	if err != nil || !exp[0].Idle || exp[0].At.IsZero() || !exp[1].At.IsZero() {
		t.Fatalf("Expiry: %+v, %v; want the first idle, the second gone", exp, err)
	}

	// Left idle: gone after 6/5 of the timeout.
	waitGone(t, s, id, 2900*time.Millisecond)
	if _, err := s.Touch(ctx, "session", id); !errors.Is(err, iosessions.ErrNotFound) {
		t.Fatalf("Touch of an idle-expired session: %v, want ErrNotFound", err)
	}

	// Touched all along, it still ends at MaxAge (2 s here).
	cookie = login(t, s, map[any]any{"n": 1}, 2)
	id = cookie.Value
	start := time.Now()
	sawLife := false
	for time.Since(start) < 1900*time.Millisecond {
		e, err := s.Touch(ctx, "session", id)
		if err != nil {
			t.Fatalf("Touch %v after login: %v", time.Since(start), err)
		}
		if !e.Idle {
			sawLife = true // the deadline is the lifetime's end now
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !sawLife {
		t.Error("Touch never reported the end of the lifetime as the deadline")
	}
	waitGone(t, s, id, 2300*time.Millisecond-time.Since(start))
}

// waitGone fails unless the session id is gone within d.
func waitGone(t *testing.T, s interface {
	Expiry(context.Context, string, []string) ([]iosessions.Expiry, error)
}, id string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		exp, err := s.Expiry(context.Background(), "session", []string{id})
		if err == nil && exp[0].At.IsZero() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session still lives: %+v, %v", exp, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIdleTouchPerTenth: in PerMessage mode with an idle timeout, a fast
// stream of events still costs Redis two commands an event; the touches
// are apart, at most one per tenth of the timeout (a Touch script sent
// from the Manager, off the event's path).
func TestIdleTouchPerTenth(t *testing.T) {
	s, c, _ := newStore(t, nil)
	var log commandLog
	c.AddHook(&log)
	const idle = 2 * time.Second
	m, err := iosessions.New(s, iosessions.Config{Mode: iosessions.PerMessage, IdleTimeout: idle})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	cookie := login(t, s, map[any]any{"n": 0}, 0)
	sock := m.Accept(newBenchConn(cookie))
	sock.Open()
	ctx := context.Background()
	incr := func(sess *iosessions.Session) error {
		sess.Values["n"] = sess.Values["n"].(int) + 1
		return nil
	}
	for i := 0; i < 5; i++ { // warm: connections dialled, scripts loaded
		if err := sock.Do(ctx, incr); err != nil {
			t.Fatal(err)
		}
	}
	log.takeAll()
	before := commandStats(t, c)
	start := time.Now()
	n := 0
	for time.Since(start) < time.Second {
		if err := sock.Do(ctx, incr); err != nil {
			t.Fatal(err)
		}
		n++
	}
	elapsed := time.Since(start)
	after := commandStats(t, c)
	sent := log.takeAll()
	touches := count(sent, "script:touch")
	// The watch's Expiry pipeline (PTTL), the presence beats and
	// connection handshakes run beside the events.
	background := touches + count(sent, "pttl") + count(sent, "script:beat") + count(sent, "script:live") + count(sent, "hello") + count(sent, "client") + count(sent, "info") + count(sent, "noscript")
	maxTouches := int(elapsed/(idle/10)) + 1
	t.Logf("%d events in %v: %d commands for them, %d touches (at most %d), %d PEXPIREAT in Redis",
		n, elapsed, len(sent)-background, touches, maxTouches, after["pexpireat"]-before["pexpireat"])
	if n < 20 {
		t.Fatalf("only %d events in a second", n)
	}
	if top := len(sent) - background; top > 2*n {
		t.Errorf("%d commands for %d events, want at most 2 each: %v", top, n, tally(sent))
	}
	if touches < 1 || touches > maxTouches {
		t.Errorf("%d touches in %v, want 1 to %d (one per tenth of %v)", touches, elapsed, maxTouches, idle)
	}
	if w := after["pexpireat"] - before["pexpireat"]; w > int64(maxTouches) {
		t.Errorf("%d writes of the deadline in %v, want at most %d", w, elapsed, maxTouches)
	}
}
