package iosessions

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
)

var (
	tokHashA  = []byte("token hash key A: 32 bytes long!")
	tokBlockA = []byte("token block key A 32 bytes long!")
	tokHashB  = []byte("token hash key B: 32 bytes long!")
	tokBlockB = []byte("token block key B (24 bytes)")[:24]
)

// parse returns the session key that tok was minted for.
func (t *tokens) parse(tok string) (string, error) {
	b, err := t.open(tok)
	return b.Key, err
}

func mustTokens(t testing.TB, ttl time.Duration, keys ...[]byte) *tokens {
	t.Helper()
	tk, err := newTokens(keys, ttl)
	if err != nil {
		t.Fatalf("newTokens: %v", err)
	}
	return tk
}

// forgeToken builds a token as securecookie would, with the given keys and
// timestamp, so that tests can make expired (or future) tokens without
// waiting.
func forgeToken(hashKey, blockKey []byte, ts int64, key string) string {
	body, _ := json.Marshal(tokenBody{Key: key, Nonce: fmt.Sprint("forged-", ts, "-", key)})
	return forgeSecure(tokenName, hashKey, blockKey, ts, body)
}

// forgeSecure encodes the already serialized plain as securecookie does
// for the name, with the given keys, timestamp and a fixed IV.
func forgeSecure(name string, hashKey, blockKey []byte, ts int64, plain []byte) string {
	block, _ := aes.NewCipher(blockKey)
	iv := bytes.Repeat([]byte{7}, block.BlockSize())
	ct := make([]byte, len(plain))
	cipher.NewCTR(block, iv).XORKeyStream(ct, plain)
	val := base64.URLEncoding.EncodeToString(append(iv, ct...))
	b := []byte(fmt.Sprintf("%s|%d|%s|", name, ts, val))
	h := hmac.New(sha256.New, hashKey)
	h.Write(b[:len(b)-1])
	b = append(b, h.Sum(nil)...)[len(name)+1:]
	return base64.URLEncoding.EncodeToString(b)
}

func TestTokenRoundTrip(t *testing.T) {
	t.Parallel()
	tk := mustTokens(t, time.Minute, tokHashA, tokBlockA)
	for i, key := range []string{"k", "MTcwMDAwMDAwMHxEdi1CQkFFQ180SUFBUkFCRUFBQV", strings.Repeat("z", 450), "ünïcödé", "with|pipes|"} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			tok := mintOK(t, tk, key)
			if len(key) >= 8 && strings.Contains(tok, key) {
				t.Fatal("token carries the key in clear")
			}
			got, err := tk.parse(tok)
			if err != nil || got != key {
				t.Fatalf("parse = %q, %v", got, err)
			}
		})
	}
	// A key too long for MaxTokenLen cannot be minted.
	if _, err := tk.mint(strings.Repeat("x", MaxTokenLen)); err == nil {
		t.Error("minted a token over MaxTokenLen")
	}
	// A forged token with the right keys and time is accepted: the forger
	// matches securecookie.
	if got, err := tk.parse(forgeToken(tokHashA, tokBlockA, time.Now().Unix(), "k")); err != nil || got != "k" {
		t.Fatalf("forgeToken does not match securecookie: %q %v", got, err)
	}
}

// Changing any one byte of a token makes it unusable.
func TestTokenTamperEveryByte(t *testing.T) {
	t.Parallel()
	tk := mustTokens(t, time.Minute, tokHashA, tokBlockA)
	var toks []string
	for _, key := range []string{"session-key-of-ann", "session-key-of-ann+", "session-key-of-ann++"} {
		for i := 0; i < 4; i++ { // fresh IVs: the last letters vary
			toks = append(toks, mintOK(t, tk, key))
		}
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	changes := []struct {
		name string
		f    func(c byte) byte
	}{
		{"xor 0x01", func(c byte) byte { return c ^ 0x01 }},
		{"xor 0x20", func(c byte) byte { return c ^ 0x20 }},
		{"xor 0x80", func(c byte) byte { return c ^ 0x80 }},
		{"next letter", func(c byte) byte {
			i := strings.IndexByte(alphabet, c)
			return alphabet[(i+1)%len(alphabet)]
		}},
	}
	for _, ch := range changes {
		t.Run(ch.name, func(t *testing.T) {
			for _, tok := range toks {
				var accepted []int
				for i := 0; i < len(tok); i++ {
					b := []byte(tok)
					b[i] = ch.f(b[i])
					if string(b) == tok {
						continue
					}
					if _, err := tk.parse(string(b)); err != ErrBadToken {
						accepted = append(accepted, i)
					}
				}
				if len(accepted) > 0 {
					t.Errorf("token of %d bytes: changed byte(s) at %v still accepted", len(tok), accepted)
				}
			}
		})
	}
}

// Tokens must be exactly what was minted: characters that base64 decoding
// ignores must not give a second valid spelling.
func TestTokenNotMalleable(t *testing.T) {
	t.Parallel()
	tk := mustTokens(t, time.Minute, tokHashA, tokBlockA)
	tok := mintOK(t, tk, "session-key-of-ann")
	cases := map[string]string{
		"newline inside": tok[:10] + "\n" + tok[10:],
		"CR at end":      tok + "\r",
		"CRLF at start":  "\r\n" + tok,
		"truncated":      tok[:len(tok)-1],
		"padded":         tok + "=",
		"space":          tok + " ",
		"NUL":            tok + "\x00",
		"doubled":        tok + tok,
		"quoted":         `"` + tok + `"`,
	}
	checkRefused(t, tk, cases)
}

// checkRefused runs a subtest a case: tk must refuse the token with
// exactly ErrBadToken.
func checkRefused(t *testing.T, tk *tokens, cases map[string]string) {
	t.Helper()
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			if key, err := tk.parse(s); err != ErrBadToken {
				t.Fatalf("parse = %q, %v; want exactly ErrBadToken", key, err)
			}
		})
	}
}

func TestTokenRefused(t *testing.T) {
	t.Parallel()
	a := mustTokens(t, time.Minute, tokHashA, tokBlockA)
	b := mustTokens(t, time.Minute, tokHashB, tokBlockB)
	tokB := mintOK(t, b, "k")
	store := newMem(t, tokHashA, tokBlockA) // the same keys as the tokens
	cookie, _ := login(t, store, nil)
	now := time.Now().Unix()
	cases := map[string]string{
		"empty":                  "",
		"other keys":             tokB,
		"session cookie":         cookie,
		"expired":                forgeToken(tokHashA, tokBlockA, now-61, "k"),
		"long expired":           forgeToken(tokHashA, tokBlockA, now-86400*365, "k"),
		"other hash key":         forgeToken(tokHashB, tokBlockA, now, "k"),
		"other block key":        forgeToken(tokHashA, tokBlockB, now, "k"),
		"empty session key":      forgeToken(tokHashA, tokBlockA, now, ""),
		"10 KB":                  strings.Repeat("A", 10<<10),
		"just over MaxTokenLen":  strings.Repeat("A", MaxTokenLen+1),
		"not base64":             "!!!!",
		"base64 of nothing":      base64.URLEncoding.EncodeToString([]byte("a|b|c")),
		"unicode":                "tökén",
		"invalid utf-8":          "\xff\xfe\xfd",
		"pipes":                  "|||",
		"base64 of raw key pair": base64.URLEncoding.EncodeToString(tokHashA),
	}
	checkRefused(t, a, cases)
}

func TestTokenExpires(t *testing.T) {
	t.Parallel()
	tk := mustTokens(t, time.Second, tokHashA, tokBlockA)
	tok := mintOK(t, tk, "k")
	if _, err := tk.parse(tok); err != nil {
		t.Fatalf("fresh token refused: %v", err)
	}
	time.Sleep(2100 * time.Millisecond)
	if key, err := tk.parse(tok); err != ErrBadToken {
		t.Fatalf("expired token: parse = %q, %v", key, err)
	}
}

// Through the Manager: TokenTTL 1 s.
func TestManagerTokenExpires(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, Config{TokenTTL: time.Second}, nil)
	m := fx.m
	tok, _, ok := m.shimToken(withCookie("GET", "/socket.io/socket.io-sessions.js", fx.key))
	if !ok {
		t.Fatal("no token for a valid session")
	}
	time.Sleep(2100 * time.Millisecond)
	r := WithAuth(handshake(""), map[string]any{TokenParam: tok})
	if _, err := m.TokenCutter()(r); err != ErrBadToken {
		t.Fatalf("expired token: %v", err)
	}
	invalid := make(chan error, 1)
	m.OnInvalid(func(_ *Socket, err error) { invalid <- err })
	connect(t, m, r)
	if err := recv(t, invalid, "sinvalid"); !errors.Is(err, ErrBadToken) {
		t.Fatalf("socket with expired token: %v", err)
	}
}

// Keys rotate by prepending a pair: B = [new, old] accepts A's tokens
// (A = [old]); A does not accept B's.
func TestTokenKeyRotation(t *testing.T) {
	t.Parallel()
	mem := newMem(t)
	a, _ := newManager(t, mem, Config{TokenKeys: [][]byte{tokHashA, tokBlockA}})
	b, _ := newManager(t, mem, Config{TokenKeys: [][]byte{tokHashB, tokBlockB, tokHashA, tokBlockA}})
	other, _ := newManager(t, mem, Config{}) // random keys
	key, _ := login(t, mem, nil)
	tokA := mustMint(t, a, key)
	tokB := mustMint(t, b, key)
	cases := []struct {
		name string
		m    *Manager
		tok  string
		ok   bool
	}{
		{"B accepts A's", b, tokA, true},
		{"B accepts its own", b, tokB, true},
		{"A refuses B's", a, tokB, false},
		{"other refuses A's", other, tokA, false},
		{"A refuses other's", a, mustMint(t, other, key), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := WithAuth(handshake(""), map[string]any{TokenParam: tc.tok})
			got, err := tc.m.TokenCutter()(r)
			if tc.ok && (err != nil || got != key) {
				t.Fatalf("refused: %q %v", got, err)
			}
			if !tc.ok && err != ErrBadToken {
				t.Fatalf("accepted: %q %v", got, err)
			}
		})
	}
}

// mustMint mints a token of m for the session key.
func mustMint(t testing.TB, m *Manager, key string) string {
	t.Helper()
	return mintOK(t, m.tokens, key)
}

// mintOK mints a token of tk for the session key.
func mintOK(t testing.TB, tk *tokens, key string) string {
	t.Helper()
	tok, err := tk.mint(key)
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	return tok
}

func TestNewTokensKeys(t *testing.T) {
	t.Parallel()
	h32 := bytes.Repeat([]byte{1}, 32)
	h64 := bytes.Repeat([]byte{1}, 64)
	cases := []struct {
		name string
		keys [][]byte
		ok   bool
	}{
		{"none: random", nil, true},
		{"32+16", [][]byte{h32, make([]byte, 16)}, true},
		{"64+24", [][]byte{h64, make([]byte, 24)}, true},
		{"two pairs", [][]byte{h32, make([]byte, 32), h64, make([]byte, 16)}, true},
		{"odd", [][]byte{h32}, false},
		{"hash 31", [][]byte{h32[:31], make([]byte, 16)}, false},
		{"block 8", [][]byte{h32, make([]byte, 8)}, false},
		{"block 33", [][]byte{h32, make([]byte, 33)}, false},
		{"block nil", [][]byte{h32, nil}, false},
		{"second pair short", [][]byte{h32, make([]byte, 16), h32[:5], make([]byte, 16)}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newTokens(tc.keys, time.Minute)
			if tc.ok && err != nil {
				t.Fatalf("newTokens: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrConfig) {
				t.Fatalf("newTokens = %v, want ErrConfig", err)
			}
			m, err := New(newMem(t), Config{TokenKeys: tc.keys, Logger: quietLogger})
			if m != nil {
				_ = m.Shutdown(context.Background())
			}
			if tc.ok && (err != nil || m == nil) {
				t.Fatalf("New = %v, %v; want a Manager", m, err)
			}
			if !tc.ok && !errors.Is(err, ErrConfig) {
				t.Fatalf("New = %v, want ErrConfig", err)
			}
		})
	}
}

// A token is good once: the second handshake with it is refused with
// exactly ErrBadToken, like a tampered one, and a socket that presents it
// gets sinvalid "invalid token".
func TestTokenSingleUse(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, Config{}, map[any]any{"user": "ann"})
	m := fx.m
	tok := shimJSONToken(t, m, withCookie(http.MethodGet, m.Config().ShimPath, fx.key))
	r := func() *http.Request { return WithAuth(handshake(""), map[string]any{TokenParam: tok}) }
	if k, err := m.cutter(r()); err != nil || k != fx.key {
		t.Fatalf("first use: %q, %v", k, err)
	}
	for _, req := range []*http.Request{r(), httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=3&"+TokenParam+"="+url.QueryEscape(tok), nil)} {
		if k, err := m.cutter(req); err != ErrBadToken || k != "" {
			t.Fatalf("replay: %q, %v; want exactly ErrBadToken", k, err)
		}
	}
	invalid := make(chan error, 1)
	m.OnInvalid(func(_ *Socket, err error) { invalid <- err })
	connect(t, m, r())
	if err := recv(t, invalid, "sinvalid"); !errors.Is(err, ErrBadToken) || Reason(err) != "invalid token" {
		t.Fatalf("socket with a used token: %v", err)
	}
}

// Several Managers sharing a TokenLedger (as nodes share Redis) accept a
// token once between them; a ledger that fails refuses the token as a
// store failure, not as a bad token.
func TestTokenLedgerShared(t *testing.T) {
	t.Parallel()
	keys := [][]byte{tokHashA, tokBlockA}
	mem := newMem(t)
	key, _ := login(t, mem, map[any]any{"user": "ann"})
	ledger := &failingLedger{memLedger: newMemLedger()}
	store := ledgerStore{mem, ledger}
	a, err := New(store, Config{TokenKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(store, Config{TokenKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	tok := mustMint(t, a, key)
	r := func() *http.Request { return WithAuth(handshake(""), map[string]any{TokenParam: tok}) }
	if k, err := b.cutter(r()); err != nil || k != key {
		t.Fatalf("first use on b: %q, %v", k, err)
	}
	if _, err := a.cutter(r()); err != ErrBadToken {
		t.Fatalf("replay on a: %v, want ErrBadToken", err)
	}
	ledger.fail.Store(true)
	tok = mustMint(t, a, key)
	if _, err := a.cutter(r()); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("ledger down: %v, want ErrStoreUnavailable", err)
	}
}

type ledgerStore struct {
	*MemoryStore
	TokenLedger
}

type failingLedger struct {
	*memLedger
	fail atomic.Bool
}

func (l *failingLedger) Use(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	if l.fail.Load() {
		return false, errors.New("ledger down")
	}
	return l.memLedger.Use(ctx, id, ttl)
}

// The memory ledger forgets nonces once their token would have expired.
func TestMemLedgerSweeps(t *testing.T) {
	t.Parallel()
	l := newMemLedger()
	now := time.Now()
	l.now = func() time.Time { return now }
	ctx := context.Background()
	if first, _ := l.Use(ctx, "x", time.Minute); !first {
		t.Fatal("first use refused")
	}
	if first, _ := l.Use(ctx, "x", time.Minute); first {
		t.Fatal("second use accepted")
	}
	now = now.Add(2 * time.Minute)
	if first, _ := l.Use(ctx, "x", time.Minute); !first {
		t.Fatal("a nonce is remembered past its token's life")
	}
	for i := range 2000 {
		l.Use(ctx, fmt.Sprint(i), time.Minute)
	}
	now = now.Add(2 * time.Minute)
	for i := range 1100 {
		l.Use(ctx, fmt.Sprint("late", i), time.Minute)
	}
	if n := l.len(); n != 1100 {
		t.Fatalf("%d nonces held, want the 1100 live ones: expired ones are not dropped", n)
	}
	if len(l.queue)-l.head != 1100 || cap(l.queue) > 4096 {
		t.Fatalf("queue of %d (cap %d) from %d", len(l.queue), cap(l.queue), l.head)
	}
	for i := range 1100 { // the live ones are still refused
		if first, _ := l.Use(ctx, fmt.Sprint("late", i), time.Minute); first {
			t.Fatalf("live nonce late%d accepted twice", i)
		}
	}
}

// A token minted by an earlier version (its payload JSON) still opens, for
// a rolling deploy; one whose payload is neither spelling does not.
func TestTokenEarlierVersion(t *testing.T) {
	t.Parallel()
	tk := mustTokens(t, time.Minute, tokHashA, tokBlockA)
	old := securecookie.New(tokHashA, tokBlockA)
	old.SetSerializer(securecookie.JSONEncoder{})
	tok, err := old.Encode(tokenName, tokenBody{Key: "session-key-of-ann", Nonce: newID()})
	if err != nil {
		t.Fatal(err)
	}
	if key, err := tk.parse(tok); err != nil || key != "session-key-of-ann" {
		t.Fatalf("earlier version's token: parse = %q, %v", key, err)
	}
	raw := securecookie.New(tokHashA, tokBlockA)
	raw.SetSerializer(securecookie.NopEncoder{})
	for name, payload := range map[string]string{
		"broken JSON":    `{"k":"session-key-of-ann"`,
		"JSON, no nonce": `{"k":"session-key-of-ann"}`,
		"not JSON":       newID() + "session-key-of-ann",
	} {
		tok, err := raw.Encode(tokenName, []byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		if key, err := tk.parse(tok); err != ErrBadToken {
			t.Errorf("%s: parse = %q, %v; want exactly ErrBadToken", name, key, err)
		}
	}
}

// Tokens of this version: expired ones, ones that would outlive the
// ledger's memory of them, and ones sealed with other keys are refused.
func TestTokenV2Refused(t *testing.T) {
	t.Parallel()
	a := mustTokens(t, time.Minute, tokHashA, tokBlockA)
	now := time.Now()
	mint := func(tk *tokens, key string, exp time.Time) string {
		tok, err := tk.mintAt(key, exp)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if key, err := a.parse(mint(a, "k", now.Add(time.Minute))); err != nil || key != "k" {
		t.Fatalf("a token of a minute: parse = %q, %v", key, err)
	}
	cases := map[string]string{
		"expired":            mint(a, "k", now.Add(-time.Millisecond)),
		"long expired":       mint(a, "k", now.Add(-365*24*time.Hour)),
		"outlives the ttl":   mint(a, "k", now.Add(time.Minute+2*time.Second)),
		"other hash key":     mint(mustTokens(t, time.Minute, tokHashB, tokBlockA), "k", now.Add(time.Minute)),
		"other block key":    mint(mustTokens(t, time.Minute, tokHashA, tokBlockB), "k", now.Add(time.Minute)),
		"empty session key":  mint(a, "", now.Add(time.Minute)),
		"version only":       "2",
		"short":              "2AAAA",
		"unused bits set":    func() string { tok := mint(a, "k", now.Add(time.Minute)); return tok[:len(tok)-1] + "_" }(),
		"legacy version tag": "M" + mint(a, "k", now.Add(time.Minute))[1:],
	}
	checkRefused(t, a, cases)
}
