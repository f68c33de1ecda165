package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// requestCatalogue sends the HTTP part of the bad-input catalogue to the
// engine: engine.io versions missing, 2, 5 and "abc"; unknown, duplicate
// and empty sids; JSONP; bad transports; polling bodies whose framing
// lies (lengths 0, negative, past the body, non-digits, twenty digits),
// bad base64 with b64=1, an empty body. Each gets an answer below 500
// (the engines refuse them, or 503 never), and a client that was
// connected before still gets its events answered after each one.
func requestCatalogue(t *testing.T, b Binding) {
	e := newEnv(t, b, envOptions{})
	cookie := e.loginAs(t, "alice")
	c := e.dial(t, "websocket", withCookie(cookie), "")
	c.expect(t, "welcome")

	base := e.URL + "/socket.io/?transport=polling"
	sid, other := e.primed(t), e.primed(t)
	gets := map[string]string{
		"EIO missing":   base,
		"EIO=2":         base + "&EIO=2",
		"EIO=5":         base + "&EIO=5",
		"EIO=abc":       base + "&EIO=abc",
		"EIO twice":     base + "&EIO=3&EIO=4",
		"unknown sid":   e.engineURL("polling", "nosuchsession"),
		"empty sid":     e.engineURL("polling", "") + "&sid=",
		"duplicate sid": e.engineURL("polling", sid) + "&sid=" + other,
		"JSONP":         e.engineURL("polling", "") + "&j=0",
		"transport bad": fmt.Sprintf("%s/socket.io/?EIO=%d&transport=carrier-pigeon", e.URL, b.EIO),
		"10 KB sid":     e.engineURL("polling", strings.Repeat("s", 10<<10)),
	}
	var sids []string
	for name, u := range gets {
		if s := e.bad(t, "GET "+name, http.MethodGet, u, ""); s != "" {
			sids = append(sids, s) // it made an engine session
		}
		wantJSON(t, "echo after "+name, c.call(t, "echo", name), fmt.Sprintf("%q", name))
	}

	// Polling POST bodies whose framing lies, each on a fresh engine
	// session (a bad body may end it).
	bodies := map[string]string{
		"empty":           "",
		"length 0":        "0:",
		"negative length": "-1:4",
		"past the body":   "99:42[\"echo\"]",
		"non-digits":      "ab:42",
		"twenty digits":   "99999999999999999999:42",
		"no colon":        "4242",
		"bad base64":      "b4!!!!",
		"NUL":             "\x00\x00\x00",
		"invalid UTF-8":   "\xff\xfe\xfd",
	}
	sids = append(sids, sid, other)
	for name, body := range bodies {
		s := e.openPacket(t, nil)
		sids = append(sids, s)
		e.bad(t, "POST "+name, http.MethodPost, e.engineURL("polling", s), body)
		wantJSON(t, "echo after POST "+name, c.call(t, "echo", name), fmt.Sprintf("%q", name))
	}
	// Poll each engine session once: go-socket.io v1.7.0 keeps the
	// goroutine that writes a session's connect packet waiting for a poll
	// (until its ping timeout, closed or not), which the leak check of
	// the binding's tests would count.
	// The answer does not matter (go-socket.io answers a poll of a session
	// it closed with 500 "EOF"). zishang520 needs none, and an abandoned
	// poll trips its own data race.
	if b.EIO != 3 {
		return
	}
	for _, s := range sids {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.engineURL("polling", s), nil)
		if resp, err := e.http.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		cancel()
	}
}

// bad sends a request of the catalogue: it must get an answer below 500,
// or be held open (a long poll on a live engine session), which is no
// failure: the wait is cut short after half a second. It returns the id of
// the engine session the request opened, if it did.
func (e *env) bad(t *testing.T, what, method, u, body string) (sid string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	resp, err := e.http.Do(req)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		t.Logf("%s: held open", what)
	case err != nil:
		t.Errorf("%s: %v", what, err)
	default:
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Errorf("%s: %d %.80q", what, resp.StatusCode, b)
		}
		if m := sidRE.FindSubmatch(b); resp.StatusCode == http.StatusOK && m != nil {
			return string(m[1])
		}
	}
	return ""
}

var sidRE = regexp.MustCompile(`"sid":"([^"]+)"`)

// primed opens an engine session over polling whose next poll is
// answered at once: with the socket.io connect packet, which
// go-socket.io queues by itself and socket.io 3+ sends in answer to the
// client's.
func (e *env) primed(t *testing.T) string {
	t.Helper()
	sid := e.openPacket(t, nil)
	if e.b.EIO == 4 {
		resp, body := e.raw(t, http.MethodPost, e.engineURL("polling", sid), nil, strings.NewReader("40"))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("connect: %d %s", resp.StatusCode, body)
		}
	}
	return sid
}
