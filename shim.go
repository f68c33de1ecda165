package iosessions

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/iosessions/iosessions/client"
)

// shimState is what the shim gets inlined, and what it fetches to refresh.
type shimState struct {
	Token   string `json:"token"`           // empty without a valid session
	Expires int64  `json:"expires"`         // Unix milliseconds
	URL     string `json:"url,omitempty"`   // where to refresh
	Param   string `json:"param,omitempty"` // the handshake field
	// Where write-backs are fetched, and the handshake field that asks
	// for them (see writeback.go).
	Writeback string `json:"writeback,omitempty"`
	WBParam   string `json:"wbparam,omitempty"`
}

// ShimHandler returns the handler of the client shim,
// socket.io-sessions.js, with a token for the request's session inlined
// (the session of the cookie called Config.Name). The token is signed,
// encrypted and valid for Config.TokenTTL; it never contains the session
// id in clear, and the body never contains the cookie. With
// "Accept: application/json" it answers {"token":…,"expires":…} instead,
// which is how the shim refreshes. Responses are never cached. A request
// that a browser marks cross-site (Sec-Fetch-Site) gets no token, so
// another site cannot include the script to read it.
func (m *Manager) ShimHandler() http.Handler {
	return http.HandlerFunc(m.serveShim)
}

func (m *Manager) serveShim(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	st := shimState{Param: TokenParam}
	if tok, exp, ok := m.shimToken(r); ok {
		st.Token, st.Expires = tok, exp.UnixMilli()
	}
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		h.Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(shimState{Token: st.Token, Expires: st.Expires})
		return
	}
	st.URL = m.cfg.ShimPath
	st.Writeback, st.WBParam = m.WritebackPath(), WritebackParam
	b, err := json.Marshal(st) // escapes <, > and &: safe inside a script
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	_, _ = w.Write([]byte(strings.Replace(client.Shim, client.Placeholder, string(b), 1)))
}

// shimToken mints a token for the valid session r carries, if any.
func (m *Manager) shimToken(r *http.Request) (string, time.Time, bool) {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return "", time.Time{}, false
	}
	key, err := CookieCutter(m.cfg.Name)(r)
	if err != nil {
		return "", time.Time{}, false
	}
	if _, err := m.load(r.Context(), key); err != nil {
		return "", time.Time{}, false
	}
	tok, err := m.tokens.mint(key)
	if err != nil {
		return "", time.Time{}, false
	}
	// securecookie counts whole seconds: promise one second less.
	return tok, time.Now().Add(m.cfg.TokenTTL - time.Second), true
}
