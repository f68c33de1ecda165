package iosessions

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkCutterToken is the default cutter on a handshake that carries
// the shim's token: no cookie, then the token decoded.
func BenchmarkCutterToken(b *testing.B) {
	mem := newMem(b)
	m, _ := newManager(b, mem, Config{})
	key, _ := login(b, mem, nil)
	tok := mustMint(b, m, key)
	cut := FirstOf(CookieCutter("session"), m.TokenCutter())
	r := WithAuth(httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=4&transport=websocket", nil), map[string]any{TokenParam: tok})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if k, err := cut(r); err != nil || k != key {
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
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := mem.Load(ctx, "session", key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemoryStoreSave(b *testing.B) {
	mem := newMem(b)
	key, _ := login(b, mem, benchValues())
	sess, err := mem.Load(context.Background(), "session", key)
	if err != nil {
		b.Fatal(err)
	}
	r := withCookie(http.MethodPost, "/", key)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sess.Values["n"] = i
		if err := mem.Save(r, discard{}, sess); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemoryStoreUpdate(b *testing.B) {
	mem := newMem(b)
	_, id := login(b, mem, benchValues())
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := mem.Update(ctx, "session", id, func(v map[any]any) { v["n"] = i }); err != nil {
			b.Fatal(err)
		}
	}
}

func benchSocket(b *testing.B, mode Mode) *Socket {
	mem := newMem(b)
	m, _ := newManager(b, mem, Config{Mode: mode})
	key, _ := login(b, mem, benchValues())
	s, _ := connect(b, m, handshake(key))
	return s
}

// BenchmarkPerMessageDo is one event that changes the session: reload,
// handler, save.
func BenchmarkPerMessageDo(b *testing.B) {
	s := benchSocket(b, PerMessage)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Do(ctx, func(sess *Session) error {
			sess.Values["n"] = sess.Values["n"].(int) + 1
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPerMessageDoUnchanged is one event that only reads: reload and
// diff, no save.
func BenchmarkPerMessageDoUnchanged(b *testing.B) {
	s := benchSocket(b, PerMessage)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Do(ctx, func(sess *Session) error {
			_ = sess.Values["user"]
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPerConnDo is one event on the session held by the connection.
func BenchmarkPerConnDo(b *testing.B) {
	s := benchSocket(b, PerConnection)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Do(ctx, func(sess *Session) error {
			sess.Values["n"] = sess.Values["n"].(int) + 1
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}
