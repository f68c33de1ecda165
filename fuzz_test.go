package iosessions

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The fuzz targets use fixed keys so that the committed seed corpora
// (testdata/fuzz/<FuzzName>/) can hold cookies and tokens made with them.
// `go generate` rewrites those seeds: the test binary, given
// -write-fuzz-corpus, runs writeFuzzCorpus from TestMain instead of the
// tests.
//
//go:generate go test -count=1 -run=^$ . -args -write-fuzz-corpus
var (
	fuzzHashKey   = []byte("fuzz hash key: 32 bytes long....")
	fuzzBlockKey  = []byte("fuzz block key: 32 bytes long...")
	fuzzOtherHash = []byte("fuzz other hash: 32 bytes long..")
)

// fuzzSessionKey is the session key the token seeds are minted for.
const fuzzSessionKey = "fuzz-session-key"

// canonicalToken reports whether s is exactly how securecookie spells the
// bytes it carries: the only spelling of a minted token.
func canonicalToken(s string) bool {
	if strings.HasPrefix(s, string(tokenV2)) {
		b, err := base64.RawURLEncoding.Strict().DecodeString(s[1:])
		return err == nil && string(tokenV2)+base64.RawURLEncoding.EncodeToString(b) == s
	}
	b, err := base64.URLEncoding.DecodeString(s)
	return err == nil && base64.URLEncoding.EncodeToString(b) == s
}

// splitLines makes one header value per line, so that the fuzzer can
// repeat a header.
func splitLines(s string) []string { return strings.Split(s, "\n") }

func FuzzCookieCutter(f *testing.F) {
	for _, s := range []string{"session=abc", "a=1; session=x; session=y", "session=\"q\"", ""} {
		f.Add(s)
	}
	cut := CookieCutter("session")
	f.Fuzz(func(t *testing.T, header string) {
		r := &http.Request{Header: http.Header{"Cookie": splitLines(header)}}
		key, err := cut(r)
		var want string // the cookie as net/http reads it
		if c, cerr := r.Cookie("session"); cerr == nil {
			want = c.Value
		}
		checkCutAgainst(t, key, err, want, "the cookie")
		// Through FirstOf the answer is the same.
		k2, err2 := FirstOf(QueryCutter("none"), cut)(r)
		if k2 != key || !sameSentinel(err, err2) {
			t.Fatalf("FirstOf: %q %v vs %q %v", k2, err2, key, err)
		}
	})
}

func sameSentinel(a, b error) bool {
	for _, s := range []error{ErrNoSession, ErrBadKey, ErrBadToken} {
		if errors.Is(a, s) != errors.Is(b, s) {
			return false
		}
	}
	return (a == nil) == (b == nil)
}

func FuzzQueryCutter(f *testing.F) {
	for _, s := range []string{"sid=abc", "EIO=3&sid=a&sid=b", "sid=%ZZ", "sid=a;b", ""} {
		f.Add(s)
	}
	cut := QueryCutter("sid")
	f.Fuzz(func(t *testing.T, rawQuery string) {
		r := &http.Request{URL: &url.URL{Path: "/socket.io/", RawQuery: rawQuery}, Header: http.Header{}}
		key, err := cut(r)
		checkCutAgainst(t, key, err, r.URL.Query().Get("sid"), "the query")
	})
}

func FuzzHeaderCutter(f *testing.F) {
	for _, s := range []string{"abc", "a\nb", "", " "} {
		f.Add(s)
	}
	cut := HeaderCutter("X-Session")
	f.Fuzz(func(t *testing.T, value string) {
		r := &http.Request{Header: http.Header{"X-Session": splitLines(value)}}
		key, err := cut(r)
		checkCutAgainst(t, key, err, r.Header.Get("X-Session"), "the header")
	})
}

// checkCutAgainst checks a key cutter's answer (key, err) against want,
// the value that where holds as net/http reads it: that value when it is
// set and at most MaxKeyLen long, else ErrNoSession or ErrBadKey.
func checkCutAgainst(t *testing.T, key string, err error, want, where string) {
	t.Helper()
	switch {
	case err == nil:
		if key != want || key == "" || len(key) > MaxKeyLen {
			t.Fatalf("key %.40q; %s has %.40q", key, where, want)
		}
	case errors.Is(err, ErrNoSession):
		if key != "" || want != "" {
			t.Fatalf("ErrNoSession, but %s has %.40q", where, want)
		}
	case errors.Is(err, ErrBadKey):
		if key != "" || len(want) <= MaxKeyLen {
			t.Fatalf("ErrBadKey for %s of %d bytes", where, len(want))
		}
	default:
		t.Fatalf("unexpected error %v", err)
	}
}

// fuzzTokens is the token codec of the fuzz targets (TTL 2 minutes).
func fuzzTokens(tb testing.TB) *tokens {
	return mustTokens(tb, 2*time.Minute, fuzzHashKey, fuzzBlockKey)
}

// FuzzTokenCutter feeds the token cutter a query token and an auth token.
// It must never panic; a string the Manager did not mint is refused with
// exactly ErrBadToken.
func FuzzTokenCutter(f *testing.F) {
	tk := fuzzTokens(f)
	fresh := mintOK(f, tk, fuzzSessionKey)
	f.Add(fresh, "")
	f.Add("", fresh)
	f.Add(fresh, fresh)
	f.Add(fresh+"\n", "")
	// Tokens are single-use: a seed is accepted the first time only, which
	// the property below allows (a refusal is exactly ErrBadToken).
	m := &Manager{tokens: tk, ledger: newMemLedger(), cfg: Config{StoreTimeout: time.Second, TokenTTL: 2 * time.Minute}}
	cut := m.TokenCutter()
	f.Fuzz(func(t *testing.T, query, auth string) {
		r := &http.Request{
			URL:    &url.URL{Path: "/socket.io/", RawQuery: "EIO=4&" + TokenParam + "=" + url.QueryEscape(query)},
			Header: http.Header{},
		}
		r = WithAuth(r, map[string]any{TokenParam: auth})
		key, err := cut(r)
		switch {
		case query == "" && auth == "":
			if err != ErrNoSession || key != "" {
				t.Fatalf("no token: %q %v, want ErrNoSession", key, err)
			}
			return
		case query != "" && auth != "" && query != auth:
			if err != ErrBadToken || key != "" {
				t.Fatalf("two tokens: %q %v, want ErrBadToken", key, err)
			}
			return
		}
		tok := query
		if tok == "" {
			tok = auth
		}
		if err != nil {
			if err != ErrBadToken || key != "" {
				t.Fatalf("parse = %q, %v; want exactly ErrBadToken", key, err)
			}
			return
		}
		// Accepted: it must be a token minted by the Manager, spelled as
		// minted, for the key it was minted for.
		if key != fuzzSessionKey {
			t.Fatalf("accepted a token for %q", key)
		}
		if !canonicalToken(tok) || len(tok) > MaxTokenLen {
			t.Fatalf("accepted %q, which is not how the Manager spells a token", tok)
		}
	})
}

// fuzzStore is the MemoryStore of the fuzz targets, with one session.
func fuzzStore(f *testing.F) (mem *MemoryStore, key, id string) {
	mem = NewMemoryStore(fuzzHashKey, fuzzBlockKey)
	f.Cleanup(func() { mem.Close() })
	key, id = login(f, mem, map[any]any{"user": "fuzz"})
	return mem, key, id
}

// FuzzMemoryStoreLoad loads arbitrary keys: never a panic, and either the
// one stored session, or ErrBadKey / ErrNotFound (exactly one of them).
func FuzzMemoryStoreLoad(f *testing.F) {
	mem, key, id := fuzzStore(f)
	f.Add(key)
	f.Add(key[:len(key)-1])
	f.Add(key + "=")
	f.Fuzz(func(t *testing.T, k string) {
		sess, err := mem.Load(context.Background(), "session", k)
		if err == nil {
			if sess == nil || sess.ID != id || sess.Values["user"] != "fuzz" || sess.IsNew {
				t.Fatalf("Load gave %+v", sess)
			}
			return
		}
		if sess != nil {
			t.Fatal("a session with an error")
		}
		bad, missing := errors.Is(err, ErrBadKey), errors.Is(err, ErrNotFound)
		if bad == missing {
			t.Fatalf("Load error %v: want exactly one of ErrBadKey, ErrNotFound", err)
		}
		// New, the sessions.Store way, never fails.
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Cookie"] = []string{"session=" + k}
		s, err := mem.New(r, "session")
		if err != nil || s == nil {
			t.Fatalf("New = %v, %v", s, err)
		}
	})
}

// FuzzShimHandler serves the shim for arbitrary requests: never a panic,
// always Cache-Control no-store, never the cookie value or session id in
// the body. mode picks the cookie: 0 the fuzzed Cookie header, 1 the valid
// session, 2 the valid session followed by the fuzzed text.
func FuzzShimHandler(f *testing.F) {
	mem, key, id := fuzzStore(f)
	m, err := New(mem, Config{Logger: quietLogger, TokenKeys: [][]byte{fuzzHashKey, fuzzBlockKey}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	path := m.Config().ShimPath
	h := m.Middleware(http.NotFoundHandler())
	f.Add("GET", "", "", "", 1)
	f.Add("GET", "application/json", "", "", 1)
	f.Add("GET", "application/json", "cross-site", "", 1)
	f.Add("POST", "", "", "", 1)
	f.Add("GET", "", "", "; session=x", 2)
	f.Fuzz(func(t *testing.T, method, accept, secFetchSite, cookie string, mode int) {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Method = method
		r.Header["Accept"] = splitLines(accept)
		r.Header["Sec-Fetch-Site"] = splitLines(secFetchSite)
		switch uint(mode) % 3 {
		case 0:
			r.Header["Cookie"] = splitLines(cookie)
		case 1:
			r.Header["Cookie"] = []string{"session=" + key}
		case 2:
			r.Header["Cookie"] = []string{"session=" + key + cookie}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
			t.Fatalf("Cache-Control %q", cc)
		}
		body := w.Body.String()
		if strings.Contains(body, id) {
			t.Fatal("body carries the session id")
		}
		if strings.Contains(body, key) {
			t.Fatal("body carries the session cookie")
		}
		for _, c := range r.Cookies() {
			if len(c.Value) >= 16 && strings.Contains(body, c.Value) && !strings.Contains(shimTemplate, c.Value) {
				t.Fatalf("body carries the cookie value %q", c.Value)
			}
		}
		if method != http.MethodGet && method != http.MethodHead {
			if w.Code != http.StatusMethodNotAllowed {
				t.Fatalf("%q: status %d", method, w.Code)
			}
			return
		}
		if w.Code != http.StatusOK {
			t.Fatalf("status %d", w.Code)
		}
	})
}

// shimTemplate is the shim's text without its state, for telling text of
// the script from leaked values.
var shimTemplate = func() string {
	m := &Manager{cfg: Config{ShimPath: "/socket.io/socket.io-sessions.js"}}
	w := httptest.NewRecorder()
	m.serveShim(w, httptest.NewRequest(http.MethodGet, "/", nil))
	return w.Body.String()
}()

// ---- seed corpus -----------------------------------------------------------------

// fuzzCorpusDir holds the committed seed corpora, one folder a target.
var fuzzCorpusDir = filepath.Join("testdata", "fuzz")

// writeFuzzCorpusFlag makes TestMain write the seed corpora into
// fuzzCorpusDir and exit without running the tests (see go:generate above).
var writeFuzzCorpusFlag = flag.Bool("write-fuzz-corpus", false, "rewrite the seed corpora in testdata/fuzz and run no test")

type seed struct {
	name string
	args []any
}

// writeCorpus replaces dir/fuzzName with one file a seed, in the format of
// go test's fuzz corpus.
func writeCorpus(dir, fuzzName string, seeds []seed) error {
	dir = filepath.Join(dir, fuzzName)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, s := range seeds {
		var b strings.Builder
		b.WriteString("go test fuzz v1\n")
		for _, a := range s.args {
			switch v := a.(type) {
			case string:
				fmt.Fprintf(&b, "string(%q)\n", v)
			case int:
				fmt.Fprintf(&b, "int(%d)\n", v)
			default:
				return fmt.Errorf("%s seed %s: type %T", fuzzName, s.name, a)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, s.name), []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// The committed corpora hold the seeds writeFuzzCorpus makes, no more, no
// fewer: a seed added to (or dropped from) the generator without running
// go generate fails here. The values differ (cookies and tokens carry
// random ids and IVs), so only the names are compared.
func TestFuzzCorpusUpToDate(t *testing.T) {
	t.Parallel()
	fresh := t.TempDir()
	if err := writeFuzzCorpus(fresh); err != nil {
		t.Fatal(err)
	}
	names := func(dir string) map[string]bool {
		out := map[string]bool{}
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(dir, path)
				out[filepath.ToSlash(rel)] = true
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want, have := names(fresh), names(fuzzCorpusDir)
	if len(want) == 0 {
		t.Fatal("writeFuzzCorpus wrote nothing")
	}
	for n := range want {
		if !have[n] {
			t.Errorf("%s/%s is missing: run go generate", fuzzCorpusDir, n)
		}
	}
	for n := range have {
		if !want[n] {
			t.Errorf("%s/%s is not made by writeFuzzCorpus: add it there or delete it", fuzzCorpusDir, n)
		}
	}
}

// writeFuzzCorpus writes the seed corpora of every fuzz target into dir.
func writeFuzzCorpus(dir string) error {
	mem := NewMemoryStore(fuzzHashKey, fuzzBlockKey)
	defer mem.Close()
	cookie, _, err := saveSession(mem, nil) // valid signature, not stored at fuzz time
	if err != nil {
		return err
	}
	otherMem := NewMemoryStore(fuzzOtherHash, fuzzBlockKey)
	defer otherMem.Close()
	otherCookie, _, err := saveSession(otherMem, nil)
	if err != nil {
		return err
	}
	over8k := strings.Repeat("a", MaxKeyLen+1)
	tk, err := newTokens([][]byte{fuzzHashKey, fuzzBlockKey}, 2*time.Minute)
	if err != nil {
		return err
	}
	minted, err := tk.mint(fuzzSessionKey) // expires two minutes after writing
	if err != nil {
		return err
	}
	now := time.Now().Unix()
	// A token dated 2100 never expires, so that the seeds made from it
	// keep testing tampering rather than expiry.
	tok := forgeToken(fuzzHashKey, fuzzBlockKey, 4102444800, fuzzSessionKey)
	expired := forgeToken(fuzzHashKey, fuzzBlockKey, now-3600, fuzzSessionKey)
	otherTok := forgeToken(fuzzOtherHash, fuzzBlockKey, now, fuzzSessionKey)
	flip := func(s string, i int) string { b := []byte(s); b[i] ^= 0x01; return string(b) }

	// Values that go in cookies, queries and headers.
	values := []seed{
		{"empty", []any{""}},
		{"valid-cookie", []any{cookie}},
		{"other-keys", []any{otherCookie}},
		{"over-8k", []any{over8k}},
		{"exactly-8k", []any{over8k[1:]}},
		{"truncated-base64", []any{cookie[:len(cookie)-3]}},
		{"padded-base64", []any{cookie + "=="}},
		{"tampered", []any{flip(cookie, len(cookie)/2)}},
		{"quotes", []any{`"` + cookie + `"`}},
		{"inner-quote", []any{`ab"cd`}},
		{"spaces", []any{" a b "}},
		{"unicode", []any{"sessión-ключ-🔑"}},
		{"nul", []any{"abc\x00def"}},
		{"invalid-utf8", []any{"\xff\xfe\xc3\x28"}},
		{"semicolons", []any{"a;b;c"}},
		{"percent", []any{"%00%ff%zz"}},
		{"crlf", []any{"a\r\nb"}},
	}
	var cookies []seed
	for _, v := range values {
		cookies = append(cookies, seed{v.name, []any{"session=" + v.args[0].(string)}})
	}
	cookies = append(cookies,
		seed{"header-empty", []any{""}},
		seed{"duplicated-by-name", []any{"session=first; session=" + cookie}},
		seed{"duplicated-headers", []any{"session=" + cookie + "\nsession=second"}},
		seed{"duplicated-first-empty", []any{"session=; session=" + cookie}},
		seed{"other-names", []any{"a=1; b=2; Session=x; session_=y"}},
		seed{"no-equals", []any{"session; session"}},
		seed{"whitespace", []any{"  session =  x  ;  "}},
		seed{"over-8k-then-valid", []any{"session=" + over8k + "; session=" + cookie}},
		seed{"quoted-with-space", []any{`session="a b"`}},
	)
	if err := writeCorpus(dir, "FuzzCookieCutter", cookies); err != nil {
		return err
	}

	var queries []seed
	for _, v := range values {
		queries = append(queries, seed{v.name, []any{"EIO=3&sid=" + url.QueryEscape(v.args[0].(string))}})
	}
	queries = append(queries,
		seed{"raw-empty", []any{""}},
		seed{"raw-unescaped", []any{"sid=" + cookie}},
		seed{"duplicated", []any{"sid=a&sid=" + cookie}},
		seed{"bad-escape", []any{"sid=%zz&sid=b"}},
		seed{"semicolon", []any{"sid=a;sid=b"}},
		seed{"raw-invalid-utf8", []any{"sid=\xff"}},
		seed{"raw-over-8k", []any{"sid=" + over8k}},
	)
	if err := writeCorpus(dir, "FuzzQueryCutter", queries); err != nil {
		return err
	}

	headers := append([]seed(nil), values...)
	headers = append(headers, seed{"duplicated", []any{"first\n" + cookie}}, seed{"duplicated-first-empty", []any{"\n" + cookie}})
	if err := writeCorpus(dir, "FuzzHeaderCutter", headers); err != nil {
		return err
	}

	toks := []seed{
		{"empty", []any{"", ""}},
		{"minted-at-generation", []any{minted, ""}},
		{"valid-until-2100", []any{tok, ""}},
		{"minted-in-auth", []any{"", tok}},
		{"minted-both", []any{tok, tok}},
		{"expired", []any{expired, ""}},
		{"expired-auth", []any{"", expired}},
		{"other-keys", []any{otherTok, ""}},
		{"different-tokens", []any{tok, expired}},
		{"tampered-first", []any{flip(tok, 0), ""}},
		{"tampered-middle", []any{flip(tok, len(tok)/2), ""}},
		{"tampered-last", []any{flip(tok, len(tok)-1), ""}},
		{"tampered-before-padding", []any{flip(tok, len(strings.TrimRight(tok, "="))-1), ""}},
		{"newline-inside", []any{tok[:20] + "\n" + tok[20:], ""}},
		{"crlf-around", []any{"", "\r\n" + tok + "\r\n"}},
		{"truncated", []any{tok[:len(tok)-2], ""}},
		{"padded", []any{tok + "==", ""}},
		{"10kb", []any{strings.Repeat("A", 10<<10), ""}},
		{"10kb-auth", []any{"", strings.Repeat("A", 10<<10)}},
		{"session-cookie", []any{cookie, ""}},
		{"quotes", []any{`"` + tok + `"`, ""}},
		{"spaces", []any{" " + tok + " ", ""}},
		{"unicode", []any{"tökén-🔑", ""}},
		{"nul", []any{tok + "\x00", ""}},
		{"invalid-utf8", []any{"\xff\xfe", "\xc3\x28"}},
		{"pipes", []any{base64.URLEncoding.EncodeToString([]byte("1|2|3")), ""}},
		{"empty-session-key", []any{forgeToken(fuzzHashKey, fuzzBlockKey, now, ""), ""}},
	}
	if err := writeCorpus(dir, "FuzzTokenCutter", toks); err != nil {
		return err
	}

	loads := append(append([]seed(nil), values...), seed{"token-as-cookie", []any{tok}})
	if err := writeCorpus(dir, "FuzzMemoryStoreLoad", loads); err != nil {
		return err
	}

	shims := []seed{
		{"empty", []any{"", "", "", "", 0}},
		{"valid", []any{"GET", "", "", "", 1}},
		{"valid-json", []any{"GET", "application/json", "", "", 1}},
		{"valid-head", []any{"HEAD", "*/*", "", "", 1}},
		{"cross-site", []any{"GET", "application/json", "cross-site", "", 1}},
		{"post", []any{"POST", "", "", "", 1}},
		{"lowercase-get", []any{"get", "", "", "", 1}},
		{"weird-method", []any{"G E\x00T", "", "", "", 0}},
		{"duplicated-cookie", []any{"GET", "", "", "session=" + cookie + "; session=x", 0}},
		{"valid-then-duplicate", []any{"GET", "application/json", "", "; session=" + cookie, 2}},
		{"tampered-suffix", []any{"GET", "", "", "A", 2}},
		{"over-8k", []any{"GET", "", "", "session=" + over8k, 0}},
		{"over-8k-suffix", []any{"GET", "", "", over8k, 2}},
		{"quotes", []any{"GET", `"application/json"`, `"same-origin"`, `session="` + cookie + `"`, 0}},
		{"spaces", []any{"GET", " application/json ", " cross-site ", "session = x", 0}},
		{"unicode", []any{"GET", "application/jsön", "crôss-site", "session=ключ", 0}},
		{"nul", []any{"GET", "application/json\x00", "\x00", "session=\x00", 0}},
		{"invalid-utf8", []any{"\xff", "\xff", "\xfe", "session=\xff\xfe", 0}},
		{"truncated-base64", []any{"GET", "", "", "session=" + cookie[:len(cookie)-3], 0}},
		{"padded-base64", []any{"GET", "", "", "==", 2}},
		{"negative-mode", []any{"GET", "", "", "", -1}},
	}
	return writeCorpus(dir, "FuzzShimHandler", shims)
}
