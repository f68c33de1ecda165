package iosessions

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
)

// Cookie write-back. A session whose data lives in the cookie
// (sessions.CookieStore, or any store that gives sessions no id) cannot be
// saved by a socket: only an HTTP response sets a cookie. So, at once
// after an event that changed such a session, the Manager encodes the
// session's new cookie with the store's own Save, and sends the socket's
// client a "swriteback" event with a write-back: the Set-Cookie, signed
// and encrypted with TokenKeys, valid for WritebackTTL and once. The shim
// POSTs it to the write-back endpoint (Middleware serves it beside the
// shim), same origin, with credentials and no-store; the endpoint answers
// with the Set-Cookie, after checking that the browser's cookie holds the
// same session at an older version. Every cookie made this way carries a
// marker value (WritebackKey): its session line (a keyed hash of the first
// cookie of the session) and its version (increasing, in microseconds), so
// a write-back older than the cookie never overwrites it.

// WritebackKey is the session value in which the Manager marks the cookies
// it makes for write-backs: "LINE.VERSION". Handlers should leave it alone.
const WritebackKey = "iosessions.writeback"

// WritebackParam is the handshake field (query for socket.io 1.x/2.x
// clients, auth payload for 3.x/4.x) with which the shim says that it
// applies write-backs. Sockets without it get none.
const WritebackParam = "iosessions_writeback"

// WritebackTTL is how long a write-back stays valid.
const WritebackTTL = 10 * time.Second

// MaxCookieLen is the largest cookie, name and value, that browsers keep:
// a write-back over it fails the event with ErrCookieTooLarge.
const MaxCookieLen = 4096

// maxWritebackLen bounds a write-back token (a 4 KB cookie, encrypted and
// encoded twice) and the endpoint's request body.
const maxWritebackLen = 16 << 10

// writebackName binds write-back tokens to their purpose (see tokenName).
const writebackName = "iosessions.writeback"

// writebacks is the Manager's write-back state.
type writebacks struct {
	codecs []securecookie.Codec
	line   []byte           // keys the line of a cookie without a marker
	now    func() time.Time // the clock of expiries; tests move it
	latest sync.Map         // session ref -> the newest cookie made here (PerMessage)
}

// writebackBody is what a write-back token holds.
type writebackBody struct {
	Cookies []string `json:"c"` // Set-Cookie header values
	Line    string   `json:"l"`
	Version int64    `json:"v"`
	Expires int64    `json:"e"` // Unix milliseconds
	Nonce   string   `json:"n"`
}

func (w *writebacks) init(keyPairs [][]byte) {
	w.codecs = securecookie.CodecsFromPairs(keyPairs...)
	for _, c := range w.codecs {
		sc := c.(*securecookie.SecureCookie)
		// Expires in the body is the precise bound; this is a backstop.
		sc.MaxAge(int(2 * WritebackTTL / time.Second))
		sc.MaxLength(maxWritebackLen)
		sc.SetSerializer(securecookie.JSONEncoder{})
	}
	w.line = deriveKey(keyPairs[0], "iosessions writeback line")
	w.now = time.Now
}

// clientSide reports whether sess lives in its cookie, so that only a
// write-back saves it.
func (m *Manager) clientSide(sess *sessions.Session) bool {
	_, ok := m.store.(*sessions.CookieStore)
	return ok || sess.ID == ""
}

// writesBack reports whether the socket's client applies write-backs.
func (s *Socket) writesBack() bool {
	r := s.conn.Request()
	if r == nil {
		return false
	}
	if r.URL != nil && r.URL.Query().Get(WritebackParam) != "" {
		return true
	}
	return authValue(r, WritebackParam) != ""
}

// writebackTarget returns the socket that gets the write-back of session
// ref: by if its client applies them, else another such socket of the
// session on this node (their browser shares the cookie), else nil.
func (m *Manager) writebackTarget(ref string, by *Socket) *Socket {
	if by != nil && by.writesBack() {
		return by
	}
	for _, s := range m.reg.session(ref) {
		if s.active() && s.writesBack() {
			return s
		}
	}
	return nil
}

// writeBack saves t's changes into a new cookie of the session (loaded
// from key, of reference ref) and sends it to to, if not nil. On success
// t's values carry the new marker and are its base; on failure (the
// cookie is too large, the store cannot encode it) t's values are put
// back as they were, so nothing changes.
func (m *Manager) writeBack(ctx context.Context, t *Session, key, ref string, to *Socket) error {
	c, err := t.diff()
	if err != nil || c.empty() {
		return err
	}
	line, v := m.marker(t.Values, key)
	if now := m.wb.now().UnixMicro(); now > v {
		v = now
	} else {
		v++
	}
	values, err := cloneValues(t.Values)
	if err != nil {
		return m.undo(t, err)
	}
	values[WritebackKey] = line + "." + strconv.FormatInt(v, 10)
	cookies, value, err := m.encodeCookie(ctx, t.Session, values, key)
	if err != nil {
		return m.undo(t, err)
	}
	t.Values[WritebackKey] = values[WritebackKey]
	if err := t.rebase(); err != nil {
		return err
	}
	if m.cfg.Mode == PerMessage {
		m.wb.latest.Store(ref, value)
	}
	if to == nil {
		return nil
	}
	tok, err := securecookie.EncodeMulti(writebackName, writebackBody{Cookies: cookies, Line: line, Version: v,
		Expires: m.wb.now().Add(WritebackTTL).UnixMilli(), Nonce: newID()}, m.wb.codecs...)
	if err != nil {
		return fmt.Errorf("iosessions: write-back: %w", err)
	}
	_ = to.conn.Emit("swriteback", map[string]any{"token": tok, "v": v})
	return nil
}

// saveNow is Session.Save in PerMessage mode: a session in the cookie
// that no client here can take a write-back for is ErrClientSideStore, as
// in PerConnection mode; at the end of an event it is kept as the latest
// cookie here instead (commit).
func (s *Socket) saveNow(held context.Context, t *Session) error {
	if s.m.clientSide(t.Session) && s.m.writebackTarget(s.sid().ref, s) == nil {
		return ErrClientSideStore
	}
	return s.commit(held, t)
}

// undo puts t's values back as they were last loaded or saved, and
// returns err.
func (m *Manager) undo(t *Session, err error) error {
	if base, cerr := t.base.thaw(); cerr == nil {
		t.Values = base
	}
	return err
}

// encodeCookie returns the Set-Cookie values that the store's Save gives
// for values, and the session cookie's value among them.
func (m *Manager) encodeCookie(ctx context.Context, sess *sessions.Session, values map[any]any, key string) ([]string, string, error) {
	out := sessions.NewSession(m.store, m.cfg.Name)
	out.Values = values
	out.Options = sess.Options
	out.IsNew = false
	rec := headerRecorder{http.Header{}}
	if err := m.store.Save(m.request(ctx, key), rec, out); err != nil {
		if strings.Contains(err.Error(), "too long") { // securecookie's length limit
			return nil, "", fmt.Errorf("%w: %w", ErrCookieTooLarge, err)
		}
		return nil, "", fmt.Errorf("iosessions: write-back: encode cookie: %w", err)
	}
	cookies := rec.h.Values("Set-Cookie")
	var value string
	for _, line := range cookies {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			return nil, "", fmt.Errorf("iosessions: write-back: the store set a bad cookie: %w", err)
		}
		if n := len(c.Name) + len(c.Value); n > MaxCookieLen {
			return nil, "", fmt.Errorf("%w: %d bytes", ErrCookieTooLarge, n)
		}
		if c.Name == m.cfg.Name {
			value = c.Value
		}
	}
	if value == "" {
		return nil, "", errors.New("iosessions: write-back: the store set no session cookie")
	}
	return cookies, value, nil
}

// marker returns the session line and version of values, loaded from the
// cookie key: the marker's, or for a cookie without one, a keyed hash of
// key and version 0.
func (m *Manager) marker(values map[any]any, key string) (line string, v int64) {
	if s, ok := values[WritebackKey].(string); ok {
		if i := strings.LastIndexByte(s, '.'); i > 0 {
			if v, err := strconv.ParseInt(s[i+1:], 10, 64); err == nil {
				return s[:i], v
			}
		}
	}
	h := hmac.New(sha256.New, m.wb.line)
	h.Write([]byte(key))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18]), 0
}

// latestKey returns the newest cookie this node made for session ref, or
// key if it made none.
func (m *Manager) latestKey(ref, key string) string {
	if v, ok := m.wb.latest.Load(ref); ok {
		return v.(string)
	}
	return key
}

// forgetLatest drops the newest cookie of ref once no socket of it is left
// on this node.
func (m *Manager) forgetLatest(ref string) {
	if len(m.reg.session(ref)) == 0 {
		m.wb.latest.Delete(ref)
	}
}

// WritebackPath returns where Middleware serves write-backs: ShimPath
// without ".js", then "/writeback".
func (m *Manager) WritebackPath() string {
	return strings.TrimSuffix(m.cfg.ShimPath, ".js") + "/writeback"
}

// Write-back answers. Every refusal changes nothing.
const (
	wbApplied  = http.StatusNoContent
	wbBad      = http.StatusBadRequest // forged, expired, replayed, malformed
	wbForbid   = http.StatusForbidden  // cross-origin, or the cookie is another session's
	wbConflict = http.StatusConflict   // the cookie is newer
)

// serveWriteback answers a write-back POST (form field "token") with its
// Set-Cookie, if the browser's cookie holds the same session at an older
// version and the token is good, unused and unexpired.
func (m *Manager) serveWriteback(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodPost {
		h.Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// Same origin: a browser's POST always carries Origin.
	if r.Header.Get("Origin") == "" || r.Header.Get("Sec-Fetch-Site") == "cross-site" || m.CheckOrigin(r) != nil {
		http.Error(w, "origin not allowed", wbForbid)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxWritebackLen+64)
	tok := r.PostFormValue("token")
	var b writebackBody
	if tok == "" || len(tok) > maxWritebackLen ||
		securecookie.DecodeMulti(writebackName, tok, &b, m.wb.codecs...) != nil ||
		b.Nonce == "" || b.Line == "" || len(b.Cookies) == 0 || m.wb.now().UnixMilli() >= b.Expires {
		http.Error(w, "invalid write-back", wbBad)
		return
	}
	c, err := r.Cookie(m.cfg.Name)
	if err != nil {
		http.Error(w, "no session", wbForbid)
		return
	}
	cur, err := m.store.New(m.request(r.Context(), c.Value), m.cfg.Name)
	if err != nil || cur.IsNew {
		http.Error(w, "no session", wbForbid)
		return
	}
	line, v := m.marker(cur.Values, c.Value)
	if !hmac.Equal([]byte(line), []byte(b.Line)) {
		http.Error(w, "another session", wbForbid)
		return
	}
	if v >= b.Version {
		http.Error(w, "the cookie is newer", wbConflict)
		return
	}
	if err := m.useWriteback(b.Nonce); err != nil {
		code := wbBad
		if !errors.Is(err, ErrBadToken) {
			code = http.StatusServiceUnavailable
		}
		http.Error(w, "invalid write-back", code)
		return
	}
	for _, sc := range b.Cookies {
		h.Add("Set-Cookie", sc)
	}
	w.WriteHeader(wbApplied)
}

// useWriteback records the nonce of a write-back being applied, within
// StoreTimeout, in the ledger of shim tokens: ErrBadToken if it was used.
func (m *Manager) useWriteback(nonce string) error {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StoreTimeout)
	defer cancel()
	// Past the securecookie bound (2 WritebackTTL) no copy decodes.
	first, err := m.ledger.Use(ctx, "wb:"+nonce, 2*WritebackTTL+time.Second)
	if err != nil {
		return m.storeErr(ctx, fmt.Errorf("token ledger: %w", err))
	}
	if !first {
		return ErrBadToken
	}
	return nil
}

// headerRecorder is a ResponseWriter that keeps only the headers a
// store's Save sets (a write-back's or a rotated session's cookie).
type headerRecorder struct{ h http.Header }

func (r headerRecorder) Header() http.Header         { return r.h }
func (r headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r headerRecorder) WriteHeader(int)             {}
