package iosessions

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkCutterToken is the default cutter on a handshake that carries
// the shim's token: no cookie, then the token decoded, verified and used
// (tokens are single-use: each iteration cuts a fresh one, minted before
// the clock starts).
func BenchmarkCutterToken(b *testing.B) {
	fx := newFixture(b, Config{}, nil)
	key := fx.key
	toks := make([]string, b.N)
	for i := range toks {
		toks[i] = mustMint(b, fx.m, key)
	}
	cut := FirstOf(CookieCutter("session"), fx.m.TokenCutter())
	benchLoop(b, func(i int) error {
		r := WithAuth(httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=4&transport=websocket", nil), map[string]any{TokenParam: toks[i]})
		if k, err := cut(r); err != nil || k != key {
			return fmt.Errorf("cut = %q, %v", k, err)
		}
		return nil
	})
}

// benchHandshake measures what a connect does to find its session: the
// default cutter on the handshake request (the session cookie, or the
// shim's token and its ledger entry) and the store's load of the key.
// Requests are made before the clock starts; tokens are single-use.
func benchHandshake(b *testing.B, token bool) {
	fx := newFixture(b, Config{}, nil)
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		r := httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=4&transport=websocket", nil)
		if token {
			r = WithAuth(r, map[string]any{TokenParam: mustMint(b, fx.m, fx.key)})
		} else {
			r.AddCookie(&http.Cookie{Name: "session", Value: fx.key})
		}
		reqs[i] = r
	}
	ctx := context.Background()
	benchLoop(b, func(i int) error {
		key, err := fx.m.cutter(reqs[i])
		if err != nil {
			return err
		}
		_, err = fx.mem.Load(ctx, "session", key)
		return err
	})
}

// BenchmarkHandshakeCookie finds a connect's session by its cookie.
func BenchmarkHandshakeCookie(b *testing.B) { benchHandshake(b, false) }

// BenchmarkHandshakeToken finds it by the shim's token.
func BenchmarkHandshakeToken(b *testing.B) { benchHandshake(b, true) }

// benchLoop reports allocations and times fn(i) for i from 0 to b.N-1,
// stopping at the first error.
func benchLoop(b *testing.B, fn func(i int) error) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := fn(i); err != nil {
			b.Fatal(err)
		}
	}
}

func benchValues() map[any]any {
	return map[any]any{"user": "ann", "role": "admin", "n": 0, "cart": []string{"a", "b", "c"}}
}

func BenchmarkMemoryStoreLoad(b *testing.B) {
	mem := newMem(b)
	key, _ := login(b, mem, benchValues())
	ctx := context.Background()
	benchLoop(b, func(int) error {
		_, err := mem.Load(ctx, "session", key)
		return err
	})
}

func BenchmarkMemoryStoreSave(b *testing.B) {
	mem := newMem(b)
	key, _ := login(b, mem, benchValues())
	sess, err := mem.Load(context.Background(), "session", key)
	if err != nil {
		b.Fatal(err)
	}
	r := withCookie(http.MethodPost, "/", key)
	benchLoop(b, func(i int) error {
		sess.Values["n"] = i
		return mem.Save(r, discard{}, sess)
	})
}

func BenchmarkMemoryStoreUpdate(b *testing.B) {
	mem := newMem(b)
	_, id := login(b, mem, benchValues())
	ctx := context.Background()
	benchLoop(b, func(i int) error {
		return mem.Update(ctx, "session", id, func(v map[any]any) { v["n"] = i })
	})
}

// benchDo measures s.Do(fn) on a socket in mode whose session holds
// benchValues.
func benchDo(b *testing.B, mode Mode, fn func(*Session) error) {
	fx := newFixture(b, Config{Mode: mode}, benchValues())
	s, _ := connect(b, fx.m, handshake(fx.key))
	ctx := context.Background()
	benchLoop(b, func(int) error { return s.Do(ctx, fn) })
}

// BenchmarkPerMessageDo is one event that changes the session: reload,
// handler, save.
func BenchmarkPerMessageDo(b *testing.B) { benchDo(b, PerMessage, incrN) }

// BenchmarkPerMessageDoUnchanged is one event that only reads: reload and
// diff, no save.
func BenchmarkPerMessageDoUnchanged(b *testing.B) {
	benchDo(b, PerMessage, func(sess *Session) error {
		_ = sess.Values["user"]
		return nil
	})
}

// BenchmarkPerConnDo is one event on the session held by the connection.
func BenchmarkPerConnDo(b *testing.B) { benchDo(b, PerConnection, incrN) }
