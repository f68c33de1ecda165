package iosessions

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestCutters(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("k", MaxKeyLen+1)
	max := strings.Repeat("k", MaxKeyLen)
	cases := []struct {
		name    string
		cutter  Cutter
		req     func() *http.Request
		want    string
		wantErr error
	}{
		{"cookie found", CookieCutter("sid"), getReq("/", "Cookie", "a=1; sid=abc; b=2"), "abc", nil},
		{"cookie missing", CookieCutter("sid"), getReq("/", "Cookie", "a=1"), "", ErrNoSession},
		{"cookie no header", CookieCutter("sid"), getReq("/"), "", ErrNoSession},
		{"cookie empty", CookieCutter("sid"), getReq("/", "Cookie", "sid="), "", ErrNoSession},
		{"cookie duplicated: first counts", CookieCutter("sid"), getReq("/", "Cookie", "sid=first; sid=second", "Cookie", "sid=third"), "first", nil},
		{"cookie quoted", CookieCutter("sid"), getReq("/", "Cookie", `sid="abc"`), "abc", nil},
		{"cookie name is case sensitive", CookieCutter("sid"), getReq("/", "Cookie", "SID=abc"), "", ErrNoSession},
		{"cookie at MaxKeyLen", CookieCutter("sid"), getReq("/", "Cookie", "sid="+max), max, nil},
		{"cookie oversized", CookieCutter("sid"), getReq("/", "Cookie", "sid="+long), "", ErrBadKey},
		{"query found", QueryCutter("s"), getReq("/socket.io/?EIO=3&s=abc%2Bdef&transport=polling"), "abc+def", nil},
		{"query duplicated: first counts", QueryCutter("s"), getReq("/?s=one&s=two"), "one", nil},
		{"query missing", QueryCutter("s"), getReq("/?EIO=3"), "", ErrNoSession},
		{"query empty", QueryCutter("s"), getReq("/?s="), "", ErrNoSession},
		{"query nil URL", QueryCutter("s"), func() *http.Request {
			return &http.Request{Header: http.Header{}}
		}, "", ErrNoSession},
		{"query oversized", QueryCutter("s"), getReq("/?s=" + long), "", ErrBadKey},
		{"header found", HeaderCutter("X-Session"), getReq("/", "x-session", "abc"), "abc", nil},
		{"header missing", HeaderCutter("X-Session"), getReq("/"), "", ErrNoSession},
		{"header oversized", HeaderCutter("X-Session"), getReq("/", "X-Session", long), "", ErrBadKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cutter(tc.req())
			checkCut(t, got, err, tc.want, tc.wantErr)
		})
	}
}

// getReq returns a builder of GET requests to target with the header
// name/value pairs added in order.
func getReq(target string, header ...string) func() *http.Request {
	return func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Add(header[i], header[i+1])
		}
		return r
	}
}

func checkCut(t *testing.T, got string, err error, want string, wantErr error) {
	t.Helper()
	if wantErr == nil {
		if err != nil || got != want {
			t.Fatalf("cut = %.40q, %v; want %.40q", got, err, want)
		}
		return
	}
	if !errors.Is(err, wantErr) {
		t.Fatalf("cut error = %v, want %v", err, wantErr)
	}
	if got != "" {
		t.Fatalf("cut returned %.40q with error %v", got, err)
	}
}

func TestFirstOf(t *testing.T) {
	t.Parallel()
	var calls []string
	fixed := func(name, key string, err error) Cutter {
		return func(*http.Request) (string, error) {
			calls = append(calls, name)
			return key, err
		}
	}
	wrappedNone := errors.Join(errors.New("nothing here"), ErrNoSession)
	cases := []struct {
		name      string
		cutters   []Cutter
		want      string
		wantErr   error
		wantCalls string
	}{
		{"none", nil, "", ErrNoSession, ""},
		{"first wins", []Cutter{fixed("a", "A", nil), fixed("b", "B", nil)}, "A", nil, "a"},
		{"skips no session", []Cutter{fixed("a", "", ErrNoSession), fixed("b", "B", nil)}, "B", nil, "a,b"},
		{"skips wrapped no session", []Cutter{fixed("a", "", wrappedNone), fixed("b", "B", nil)}, "B", nil, "a,b"},
		{"bad key stops", []Cutter{fixed("a", "", ErrBadKey), fixed("b", "B", nil)}, "", ErrBadKey, "a"},
		{"bad token stops", []Cutter{fixed("a", "", ErrNoSession), fixed("b", "", ErrBadToken), fixed("c", "C", nil)}, "", ErrBadToken, "a,b"},
		{"all empty", []Cutter{fixed("a", "", ErrNoSession), fixed("b", "", ErrNoSession)}, "", ErrNoSession, "a,b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			calls = nil
			got, err := FirstOf(tc.cutters...)(httptest.NewRequest(http.MethodGet, "/", nil))
			checkCut(t, got, err, tc.want, tc.wantErr)
			if s := strings.Join(calls, ","); s != tc.wantCalls {
				t.Errorf("cutters called: %q, want %q", s, tc.wantCalls)
			}
		})
	}
}

// The real cutters through FirstOf: an unusable cookie is reported, not
// skipped for the query.
func TestFirstOfRealCutters(t *testing.T) {
	t.Parallel()
	c := FirstOf(CookieCutter("sid"), QueryCutter("sid"), HeaderCutter("X-Sid"))
	cases := []struct {
		name    string
		cookie  string
		query   string
		header  string
		want    string
		wantErr error
	}{
		{"cookie first", "c", "q", "h", "c", nil},
		{"query next", "", "q", "h", "q", nil},
		{"header last", "", "", "h", "h", nil},
		{"nothing", "", "", "", "", ErrNoSession},
		{"oversized cookie stops", strings.Repeat("c", MaxKeyLen+1), "q", "h", "", ErrBadKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			target := "/"
			if tc.query != "" {
				target += "?sid=" + url.QueryEscape(tc.query)
			}
			r := httptest.NewRequest(http.MethodGet, target, nil)
			if tc.cookie != "" {
				r.Header.Set("Cookie", "sid="+tc.cookie)
			}
			if tc.header != "" {
				r.Header.Set("X-Sid", tc.header)
			}
			got, err := c(r)
			checkCut(t, got, err, tc.want, tc.wantErr)
		})
	}
}

func TestTokenCutter(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, Config{}, nil)
	m, key := fx.m, fx.key
	tok := mustMint(t, m, key)
	tok2 := mustMint(t, m, key) // same key, another token (fresh IV)
	if tok == tok2 {
		t.Fatal("two mints gave the same token")
	}
	cases := []struct {
		name    string
		query   string
		auth    map[string]any
		want    string
		wantErr error
	}{
		{"none", "", nil, "", ErrNoSession},
		{"query", "TOK", nil, key, nil},
		{"auth", "", map[string]any{TokenParam: "TOK"}, key, nil},
		{"both equal", "TOK", map[string]any{TokenParam: "TOK"}, key, nil},
		{"both differ", tok, map[string]any{TokenParam: tok2}, "", ErrBadToken},
		{"query bad auth good", "garbage", map[string]any{TokenParam: "TOK"}, "", ErrBadToken},

		{"query garbage", "garbage", nil, "", ErrBadToken},
		{"auth garbage", "", map[string]any{TokenParam: "garbage"}, "", ErrBadToken},
		{"auth not a string", "", map[string]any{TokenParam: 42}, "", ErrNoSession},
		{"auth other field", "", map[string]any{"token": tok}, "", ErrNoSession},
		{"auth empty string", "", map[string]any{TokenParam: ""}, "", ErrNoSession},
		{"query oversized", strings.Repeat("A", MaxTokenLen+1), nil, "", ErrBadToken},
		{"session cookie as token", key, nil, "", ErrBadToken},
	}
	// "TOK" is a fresh token per case: tokens are single-use.
	used := mustMint(t, m, key)
	if _, err := m.TokenCutter()(WithAuth(handshake(""), map[string]any{TokenParam: used})); err != nil {
		t.Fatal(err)
	}
	cases = append(cases, struct {
		name    string
		query   string
		auth    map[string]any
		want    string
		wantErr error
	}{"used before", used, nil, "", ErrBadToken})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fresh := mustMint(t, m, key)
			if tc.query == "TOK" {
				tc.query = fresh
			}
			if tc.auth[TokenParam] == "TOK" {
				tc.auth = map[string]any{TokenParam: fresh}
			}
			target := "/socket.io/?EIO=4&transport=websocket"
			if tc.query != "" {
				target += "&" + TokenParam + "=" + url.QueryEscape(tc.query)
			}
			r := httptest.NewRequest(http.MethodGet, target, nil)
			if tc.auth != nil {
				r = WithAuth(r, tc.auth)
			}
			got, err := m.TokenCutter()(r)
			checkCut(t, got, err, tc.want, tc.wantErr)
			if tc.wantErr == ErrBadToken && err != ErrBadToken {
				t.Errorf("error %v is not exactly ErrBadToken", err)
			}
		})
	}
}

// WithAuth keeps the request's own context values and deadline.
func TestWithAuthKeepsContext(t *testing.T) {
	t.Parallel()
	type k struct{}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), k{}, "v"))
	r := WithAuth(httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx), map[string]any{TokenParam: "x"})
	if r.Context().Value(k{}) != "v" {
		t.Error("WithAuth dropped a context value")
	}
	cancel()
	if r.Context().Err() == nil {
		t.Error("WithAuth detached the request from its context")
	}
	if authValue(r, TokenParam) != "x" {
		t.Error("auth value not found")
	}
	if authValue(httptest.NewRequest(http.MethodGet, "/", nil), TokenParam) != "" {
		t.Error("auth value found on a plain request")
	}
}

// The default cutter of a Manager reads the cookie, then the token.
func TestDefaultCutter(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, Config{}, nil)
	m, key := fx.m, fx.key
	tok := mustMint(t, m, key)
	cases := []struct {
		name    string
		cookie  string
		token   string
		want    string
		wantErr error
	}{
		{"cookie", key, "", key, nil},
		{"token", "", "TOK", key, nil},
		{"cookie and its token", key, "TOK", key, nil},
		{"cookie and a bad token", key, "garbage", "", ErrBadToken},
		{"cookie and another session's token", key, "OTHER", "", ErrBadToken},
		{"bad token", "", "garbage", "", ErrBadToken},
		{"oversized cookie", strings.Repeat("x", MaxKeyLen+1), tok, "", ErrBadKey},
		{"nothing", "", "", "", ErrNoSession},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			switch tc.token { // tokens are single-use: a fresh one per case
			case "TOK":
				tc.token = mustMint(t, m, key)
			case "OTHER":
				tc.token = mustMint(t, m, "another session's key")
			}
			r := handshake(tc.cookie)
			if tc.token != "" {
				r = WithAuth(r, map[string]any{TokenParam: tc.token})
			}
			got, err := m.cutter(r)
			checkCut(t, got, err, tc.want, tc.wantErr)
		})
	}
}
