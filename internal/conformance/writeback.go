package conformance

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gorilla/sessions"

	"github.com/iosessions/iosessions"
)

// writeback: with a CookieStore, a socket whose client applies write-backs
// gets "swriteback" after an event that changed the session; POSTing it,
// as the shim does, sets the new cookie, which a new socket then carries;
// a replayed or tampered write-back is refused; a change that would make
// the cookie too large fails the event and changes nothing.
func writeback(t *testing.T, b Binding) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e := newEnv(t, b, envOptions{Mode: mode, Store: sessions.NewCookieStore(hashKey, blockKey), Setup: func(e *env) {
				// grow makes the session larger than a browser keeps.
				e.srv.Message("grow", func(_ *iosessions.Socket, sess *iosessions.Session, _ json.RawMessage) (any, error) {
					sess.Values["big"] = strings.Repeat("x", 5000)
					return true, nil
				})
			}})
			c0 := e.loginAs(t, "alice")
			c, err := e.dialWith(t, DialOptions{Transport: "websocket", Header: withCookie(c0), Writeback: true})
			if err != nil {
				t.Fatal(err)
			}
			c.expect(t, "welcome")
			wantJSON(t, "incr", c.call(t, "incr"), `1`)
			var wb struct {
				Token string `json:"token"`
			}
			if err := json.Unmarshal([]byte(c.expect(t, "swriteback")), &wb); err != nil || wb.Token == "" {
				t.Fatalf("swriteback without a token: %v", err)
			}
			if strings.Contains(wb.Token, c0.Value) {
				t.Error("the write-back token holds the cookie")
			}
			post := func(tok string, cookie *http.Cookie) *http.Response {
				t.Helper()
				req, _ := http.NewRequest(http.MethodPost, e.URL+e.m.WritebackPath(), strings.NewReader(url.Values{"token": {tok}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Origin", e.URL)
				req.AddCookie(cookie)
				resp, err := e.http.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp
			}
			if resp := post(tamper(wb.Token), c0); resp.StatusCode != http.StatusBadRequest || sessionCookie(resp) != nil {
				t.Errorf("tampered write-back: %s", resp.Status)
			}
			resp := post(wb.Token, c0)
			c1 := sessionCookie(resp)
			if resp.StatusCode != http.StatusNoContent || c1 == nil || resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("write-back: %s, cookie %v", resp.Status, c1 != nil)
			}
			if resp := post(wb.Token, c1); resp.StatusCode < 400 || sessionCookie(resp) != nil {
				t.Errorf("replayed write-back: %s", resp.Status)
			}
			if resp := post(wb.Token, c0); resp.StatusCode < 400 || sessionCookie(resp) != nil {
				t.Errorf("replayed write-back on the old cookie: %s", resp.Status)
			}
			fresh := e.dial(t, "websocket", withCookie(c1), "")
			fresh.expect(t, "welcome")
			wantJSON(t, "whoami with the written-back cookie", fresh.call(t, "whoami"), `{"user":"alice","count":1}`)

			if ack := c.call(t, "grow"); !strings.Contains(ack, "error") {
				t.Errorf("an oversized cookie write acked %.80s", ack)
			}
			wantJSON(t, "whoami after the refused write", c.call(t, "whoami"), `{"user":"alice","count":1}`)
			if n := c.count("swriteback"); n != 1 {
				t.Errorf("%d write-backs, want 1 (none for the refused write)", n)
			}
		})
	}
}
