package conformance

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	"github.com/iosessions/iosessions"
)

// presenceLog records what the presence handler got, in order.
type presenceLog struct {
	mu  sync.Mutex
	got []iosessions.Presence
}

func (l *presenceLog) add(p iosessions.Presence) {
	l.mu.Lock()
	l.got = append(l.got, p)
	l.mu.Unlock()
}

// users returns the users' changes, as "+alice" and "-alice".
func (l *presenceLog) users() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, p := range l.got {
		if p.Session != "" {
			continue
		}
		sign := "-"
		if p.Online {
			sign = "+"
		}
		out = append(out, sign+p.User)
	}
	return out
}

func (l *presenceLog) sessions() (on, off int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.got {
		switch {
		case p.Session == "":
		case p.Online:
			on++
		default:
			off++
		}
	}
	return on, off
}

// session returns the stored session of cookie, as an HTTP handler has it.
func (e *env) session(t *testing.T, cookie *http.Cookie) *sessions.Session {
	t.Helper()
	sess, err := e.backend.(iosessions.Loader).Load(context.Background(), "session", cookie.Value)
	if err != nil {
		t.Fatal(err)
	}
	return sess
}

// twoAlicesAndBob logs alice in twice and bob once, and connects two
// sockets of alice's first session, one of her second and one of bob's
// over tr, welcomed.
func (e *env) twoAlicesAndBob(t *testing.T, tr string) (cs []*conn, a1, a2, bob *http.Cookie) {
	t.Helper()
	a1, a2, bob = e.loginAs(t, "alice"), e.loginAs(t, "alice"), e.loginAs(t, "bob")
	for _, c := range []*http.Cookie{a1, a1, a2, bob} {
		cs = append(cs, e.dial(t, tr, withCookie(c), ""))
	}
	for _, c := range cs {
		c.expect(t, "welcome")
	}
	return cs, a1, a2, bob
}

// registry: the sockets of a user and of a session, the sessions of a
// user and the users online, each socket described (id, node, transport,
// connect time); anonymous sockets count nowhere.
func registry(t *testing.T, b Binding) {
	eachModeTransport(t, b, func(t *testing.T, mode iosessions.Mode, tr string) {
		e := newEnv(t, b, envOptions{Mode: mode})
		ctx := ctxT(t)
		start := time.Now()
		_, a1, a2, bob := e.twoAlicesAndBob(t, tr)
		anon := e.dial(t, tr, nil, "")
		anon.expect(t, "sinvalid")

		alice, err := e.m.SocketsOf(ctx, e.m.ToUser("alice"))
		if err != nil {
			t.Fatal(err)
		}
		if len(alice) != 3 {
			t.Fatalf("alice's sockets: %+v, want 3", alice)
		}
		for _, si := range alice {
			if si.Node != e.m.Node() || si.User != "alice" || si.ID == "" ||
				si.ConnectedAt.Before(start) || si.ConnectedAt.After(time.Now()) ||
				!strings.HasPrefix(si.Session, "iosessions:") {
				t.Errorf("socket info %+v", si)
			}
			if want := tr; si.Transport != want {
				t.Errorf("transport %q, want %q", si.Transport, want)
			}
			for _, c := range []*http.Cookie{a1, a2, bob} {
				if strings.Contains(si.Session, c.Value) || strings.Contains(si.Session, e.session(t, c).ID) {
					t.Error("the session reference shows the session id")
				}
			}
		}
		if s1, _ := e.m.SocketsOf(ctx, e.m.ToSession(e.session(t, a1))); len(s1) != 2 {
			t.Errorf("sockets of alice's first session: %d, want 2", len(s1))
		}
		if refs, _ := e.m.SessionsOf(ctx, "alice"); len(refs) != 2 {
			t.Errorf("alice's sessions: %v, want 2", refs)
		}
		if one, _ := e.m.SocketsOf(ctx, iosessions.ToSocket(alice[0].Node, alice[0].ID)); len(one) != 1 || !reflect.DeepEqual(one[0], alice[0]) {
			t.Errorf("ToSocket: %+v", one)
		}
		users, err := e.m.Users(ctx)
		if err != nil || strings.Join(users, ",") != "alice,bob" {
			t.Errorf("Users = %v, %v; want alice,bob", users, err)
		}
		if on, _ := e.m.Online(ctx, "carol"); on {
			t.Error("carol is online")
		}
		// The answers are copies.
		alice[0].User = "mallory"
		if again, _ := e.m.SocketsOf(ctx, e.m.ToUser("alice")); again[0].User != "alice" {
			t.Error("SocketsOf returned shared state")
		}
	})
}

// push: Push reaches the sockets of a user, of a session, or one socket,
// counts the acks, reaches nobody without an error, and refuses a push
// over Config.MaxPush, sending nothing.
func push(t *testing.T, b Binding) {
	eachModeTransport(t, b, func(t *testing.T, mode iosessions.Mode, tr string) {
		e := newEnv(t, b, envOptions{Mode: mode, Config: func(c *iosessions.Config) { c.MaxPush = 64 << 10 }})
		cs, a1, _, bob := e.twoAlicesAndBob(t, tr)
		ctx := ctxT(t)
		check := func(what string, to iosessions.Target, want iosessions.PushResult, got ...*conn) {
			t.Helper()
			res, err := e.m.Push(ctx, to, "note", map[string]string{"text": what})
			if err != nil || res != want {
				t.Fatalf("push %s: %+v, %v; want %+v", what, res, err, want)
			}
			for _, c := range got {
				wantJSON(t, "note", c.expect(t, "note"), `{"text":"`+what+`"}`)
			}
		}
		check("to alice", e.m.ToUser("alice"), iosessions.PushResult{Sockets: 3, Acked: 3}, cs[:3]...)
		check("to a1", e.m.ToSession(e.session(t, a1)), iosessions.PushResult{Sockets: 2, Acked: 2}, cs[:2]...)
		infos, err := e.m.SocketsOf(ctx, e.m.ToSession(e.session(t, bob)))
		if err != nil || len(infos) != 1 {
			t.Fatalf("bob's sockets: %v, %v", infos, err)
		}
		check("to bob's socket", iosessions.ToSocket(infos[0].Node, infos[0].ID), iosessions.PushResult{Sockets: 1, Acked: 1}, cs[3])
		check("to nobody", e.m.ToUser("carol"), iosessions.PushResult{})
		for i, c := range cs {
			if n, want := c.count("note"), []int{2, 2, 1, 1}[i]; n != want {
				t.Errorf("socket %d got %d notes, want %d", i, n, want)
			}
		}

		if _, err := e.m.Push(ctx, e.m.ToUser("alice"), "note", strings.Repeat("x", 64<<10)); !errors.Is(err, iosessions.ErrPushTooLarge) {
			t.Errorf("huge push: %v, want ErrPushTooLarge", err)
		}
		if _, err := e.m.Push(ctx, e.m.ToUser("alice"), "disconnect", nil); err == nil {
			t.Error("a push of a reserved event was sent")
		}
		// Nothing of the refused pushes arrived: the next note is the next event.
		check("after", e.m.ToUser("bob"), iosessions.PushResult{Sockets: 1, Acked: 1}, cs[3])
		if n := cs[0].count("note") + cs[0].count("disconnect"); n != 2 {
			t.Errorf("alice's socket got %d events after the refused pushes", n)
		}

		// A client that does not ack is reached, not acked, and the push
		// returns when the caller's deadline ends.
		silent, err := e.dialWith(t, DialOptions{Transport: tr, Header: withCookie(e.loginAs(t, "dave")), NoAck: true})
		if err != nil {
			t.Fatal(err)
		}
		silent.expect(t, "welcome")
		dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		res, err := e.m.Push(dctx, e.m.ToUser("dave"), "note", "hi")
		if err != nil || res != (iosessions.PushResult{Sockets: 1}) {
			t.Errorf("push to a silent client: %+v, %v", res, err)
		}
		silent.expect(t, "note")
	})
}

// presence: a user is online from the first socket, stays online through
// a reconnect within the grace, and goes offline once the grace passed
// with no socket; the handler hears each change once, in order, and
// Online and Users agree with it.
//
// Presence does not depend on the mode: it runs per transport. The grace
// is long enough for a reconnect under a loaded scheduler (-race, CPU
// hogs) to land within it.
func presence(t *testing.T, b Binding) {
	for _, tr := range b.Transports {
		t.Run(tr, func(t *testing.T) { presenceOn(t, b, tr, iosessions.PerConnection) })
	}
}

func presenceOn(t *testing.T, b Binding, tr string, mode iosessions.Mode) {
	const grace = time.Second
	var log presenceLog
	e := newEnv(t, b, envOptions{Mode: mode,
		Config: func(c *iosessions.Config) { c.Grace = grace },
		Setup:  func(e *env) { e.m.OnPresence(log.add) },
	})
	ctx := ctxT(t)
	alice := e.loginAs(t, "alice")
	c1 := e.dial(t, tr, withCookie(alice), "")
	c1.expect(t, "welcome")
	waitFor(t, "alice online", func() bool { return len(log.users()) == 1 })
	c2 := e.dial(t, tr, withCookie(alice), "")
	c2.expect(t, "welcome")
	_ = c1.Close()
	_ = c2.Close()
	waitFor(t, "the sockets gone", func() bool {
		s, _ := e.m.SocketsOf(ctx, e.m.ToUser("alice"))
		return len(s) == 0
	})
	left := time.Now()
	if on, _ := e.m.Online(ctx, "alice"); !on {
		t.Error("alice is offline within the grace")
	}
	// A reload: a new socket within the grace changes nothing.
	c3 := e.dial(t, tr, withCookie(alice), "")
	c3.expect(t, "welcome")
	_ = c3.Close()
	waitFor(t, "alice offline", func() bool { return len(log.users()) == 2 })
	if since := time.Since(left); since < grace {
		t.Errorf("offline %v after the last socket left, grace %v", since, grace)
	}
	if got := strings.Join(log.users(), " "); got != "+alice -alice" {
		t.Errorf("presence changes: %s, want +alice -alice", got)
	}
	if on, _ := e.m.Online(ctx, "alice"); on {
		t.Error("alice is online after the grace")
	}
	if users, _ := e.m.Users(ctx); len(users) != 0 {
		t.Errorf("Users = %v after everyone left", users)
	}
	waitFor(t, "the session offline", func() bool { _, off := log.sessions(); return off == 1 })
	if on, off := log.sessions(); on != 1 || off != 1 {
		t.Errorf("session changes: %d online, %d offline; want 1, 1", on, off)
	}
}
