package iosessions

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// A Cutter gets the session key from a socket.io handshake request: the
// value the store put in the session cookie. It returns ErrNoSession
// (possibly wrapped) when the request carries none, and another error when
// the request carries something unusable. A Cutter parses attacker input:
// it must not panic, and the ready ones refuse keys over MaxKeyLen.
type Cutter func(r *http.Request) (string, error)

// MaxKeyLen is the longest session key a ready Cutter accepts (8 KB).
const MaxKeyLen = 8 << 10

// CookieCutter returns a Cutter that reads the cookie called name. When a
// request repeats the cookie, the first one counts, as in net/http.
func CookieCutter(name string) Cutter {
	return func(r *http.Request) (string, error) {
		c, err := r.Cookie(name)
		if err != nil || c.Value == "" {
			return "", ErrNoSession
		}
		return checkKey(c.Value)
	}
}

// QueryCutter returns a Cutter that reads the URL query parameter param.
// Avoid "sid", "EIO", "transport" and "t": the engines use them.
func QueryCutter(param string) Cutter {
	return func(r *http.Request) (string, error) {
		if r.URL == nil {
			return "", ErrNoSession
		}
		v := r.URL.Query().Get(param)
		if v == "" {
			return "", ErrNoSession
		}
		return checkKey(v)
	}
}

// HeaderCutter returns a Cutter that reads the request header name.
func HeaderCutter(name string) Cutter {
	return func(r *http.Request) (string, error) {
		v := r.Header.Get(name)
		if v == "" {
			return "", ErrNoSession
		}
		return checkKey(v)
	}
}

// FirstOf returns a Cutter that tries cutters in order and returns the
// first answer that is not ErrNoSession. A cutter that finds something
// unusable stops the search: a tampered cookie is reported, not skipped.
func FirstOf(cutters ...Cutter) Cutter {
	return func(r *http.Request) (string, error) {
		for _, c := range cutters {
			k, err := c(r)
			if errors.Is(err, ErrNoSession) {
				continue
			}
			return k, err
		}
		return "", ErrNoSession
	}
}

func checkKey(k string) (string, error) {
	if len(k) > MaxKeyLen {
		return "", fmt.Errorf("%w: %d bytes", ErrBadKey, len(k))
	}
	return k, nil
}

type authKey struct{}

// WithAuth returns r carrying the auth payload of a socket.io 3.x/4.x
// handshake, where the token cutter finds the shim's token. Bindings call
// it; applications rarely need to.
func WithAuth(r *http.Request, auth map[string]any) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), authKey{}, auth))
}

// authValue returns the string field name of the handshake auth payload.
func authValue(r *http.Request, name string) string {
	auth, _ := r.Context().Value(authKey{}).(map[string]any)
	s, _ := auth[name].(string)
	return s
}

// TokenParam is the name of the shim token in the handshake query
// (socket.io 1.x/2.x clients) and in the handshake auth payload (3.x/4.x).
const TokenParam = "iosessions_token"

// TokenCutter returns a Cutter that reads the shim's token from the
// handshake query or auth payload and returns the session key it was minted
// for. A token is good once: the Manager's token ledger (see TokenLedger)
// records it. Every unusable token (tampered, expired, minted under other
// keys or for another purpose, used before) gives ErrBadToken, and nothing
// more specific. A request that carries two different tokens is refused.
func (m *Manager) TokenCutter() Cutter {
	return func(r *http.Request) (string, error) {
		var q string
		if r.URL != nil {
			q = r.URL.Query().Get(TokenParam)
		}
		a := authValue(r, TokenParam)
		switch {
		case q == "" && a == "":
			return "", ErrNoSession
		case q != "" && a != "" && q != a:
			return "", ErrBadToken
		case q == "":
			q = a
		}
		b, err := m.tokens.open(q)
		if err != nil {
			return "", err
		}
		if err := m.useToken(b.Nonce); err != nil {
			return "", err
		}
		return b.Key, nil
	}
}

// sessionCutter is the default Cutter: the session cookie, or the shim's
// token, or both, when they name the same session; a token beside the
// cookie of another session is refused (ErrBadToken), not ignored.
func (m *Manager) sessionCutter() Cutter {
	cookie, token := CookieCutter(m.cfg.Name), m.TokenCutter()
	return func(r *http.Request) (string, error) {
		key, err := cookie(r)
		if errors.Is(err, ErrNoSession) {
			return token(r)
		}
		if err != nil {
			return "", err
		}
		tk, err := token(r)
		switch {
		case errors.Is(err, ErrNoSession):
			return key, nil
		case err != nil:
			return "", err
		case tk != key:
			return "", ErrBadToken
		}
		return key, nil
	}
}
