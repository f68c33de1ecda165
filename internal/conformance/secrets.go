package conformance

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iosessions/iosessions"
)

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// noSecretsLogged runs a full scenario with every log line captured at
// debug level (and errors going to the log, not to a hook): login, the
// shim, sockets by cookie and by token, a replayed token, a tampered
// cookie, events, a store outage with failed saves, logout. No session
// id, cookie value or token may appear in any log line, in the shim's
// URL or response headers, and no id or cookie in the shim's body.
func noSecretsLogged(t *testing.T, b Binding) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			var logs logBuffer
			e := newEnv(t, b, envOptions{Mode: mode, Config: func(c *iosessions.Config) {
				c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
				c.ErrorHandler = nil // the default: log it
				c.SaveRetry = 200 * time.Millisecond
			}})
			var secrets []string
			cookie := e.loginAs(t, "alice")
			sess, err := e.mem.Load(context.Background(), "session", cookie.Value)
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, cookie.Value, sess.ID)

			req, _ := http.NewRequest(http.MethodGet, e.URL+"/socket.io/socket.io-sessions.js", nil)
			req.AddCookie(cookie)
			resp, body := e.do(t, req)
			if strings.Contains(resp.Request.URL.String(), "token") {
				t.Error("the shim's URL carries a token")
			}
			tok := e.token(t, cookie)
			secrets = append(secrets, tok)
			for _, s := range []string{cookie.Value, sess.ID} {
				if strings.Contains(string(body), s) {
					t.Error("the shim's body holds the session id or cookie")
				}
			}
			checkHeaders(t, "shim", resp.Header, secrets)

			c := e.dial(t, "websocket", withCookie(cookie), "")
			c.expect(t, "welcome")
			wantJSON(t, "incr", c.call(t, "incr"), `1`)
			bt := e.dial(t, "polling", nil, tok)
			bt.expect(t, "welcome")
			replay := e.dial(t, "websocket", nil, tok)
			replay.expect(t, "sinvalid")
			bad := e.dial(t, "websocket", withCookie(&http.Cookie{Name: "session", Value: tamper(cookie.Value)}), "")
			bad.expect(t, "sinvalid")

			// A store outage: a socket refused, an event failing, a save at
			// disconnect lost after its retries.
			e.store.down.Store(true)
			down := e.dial(t, "websocket", withCookie(cookie), "")
			down.expect(t, "sinvalid")
			wantJSON(t, "incr while down", c.call(t, "incr"), map[iosessions.Mode]string{
				iosessions.PerConnection: `2`, iosessions.PerMessage: `{"error":"session store unavailable"}`,
			}[mode])
			// The session's last socket here leaves: its save is lost.
			_ = c.Close()
			_ = bt.Close()
			if mode == iosessions.PerConnection {
				waitFor(t, "the lost save logged", func() bool { return strings.Contains(logs.String(), "changes not saved") })
			}
			e.store.down.Store(false)

			after := e.dial(t, "websocket", withCookie(cookie), "")
			after.expect(t, "welcome")
			if code := e.post(t, "/logout", cookie, nil); code != http.StatusNoContent {
				t.Fatalf("logout: %d", code)
			}
			after.expect(t, "sinvalid")
			time.Sleep(100 * time.Millisecond) // the handlers and saves of the end

			out := logs.String()
			if mode == iosessions.PerConnection && out == "" {
				t.Fatal("nothing was logged: the case checked nothing")
			}
			for i, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("secret %d (cookie, id, token) is in the logs:\n%s", i, out)
				}
			}
		})
	}
}

// checkHeaders fails if any response header holds one of secrets.
func checkHeaders(t *testing.T, what string, h http.Header, secrets []string) {
	t.Helper()
	for name, vs := range h {
		for _, v := range vs {
			for _, s := range secrets {
				if strings.Contains(v, s) {
					t.Errorf("%s: header %s holds a secret", what, name)
				}
			}
		}
	}
}
