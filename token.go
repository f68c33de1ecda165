package iosessions

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gorilla/securecookie"
)

// MaxTokenLen is the longest shim token accepted (over it: ErrBadToken
// before any decoding). It leaves room for a key of a server-side store.
const MaxTokenLen = 1 << 10

// tokenName binds a token to its purpose: securecookie authenticates the
// name with the value, so a cookie or value minted for anything else does
// not decode as a token.
const tokenName = "iosessions.shim-token"

// tokens mints and parses the shim's tokens: the session key, signed and
// encrypted with securecookie, valid for ttl.
type tokens struct {
	codecs  []securecookie.Codec
	ttl     time.Duration
	roomKey []byte // names session rooms; derived from the first hash key
	keys    [][]byte
}

type tokenBody struct {
	Key   string `json:"k"`
	Nonce string `json:"n"` // makes it single-use: see ledger.go
}

// A token's payload, inside securecookie's signature and encryption, is
// tokenV1, its nonce (newID: nonceLen base32 bytes) and then the key, raw
// bytes: no JSON to encode and decode at each connect. The version byte
// and the nonce's alphabet are checked: a payload decrypted with another
// block key (the signature is over the ciphertext) is noise, refused as
// the JSON of earlier versions was. A payload that starts with "{" is the
// JSON tokenBody of earlier versions, which a node still opens for the
// few minutes its tokens live (a rolling deploy).
const (
	tokenV1  = '1'
	nonceLen = 32
)

func newTokens(keyPairs [][]byte, ttl time.Duration) (*tokens, error) {
	if len(keyPairs) == 0 {
		keyPairs = [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)}
	}
	if len(keyPairs)%2 != 0 {
		return nil, fmt.Errorf("%w: TokenKeys needs pairs of (hash, block) keys", ErrConfig)
	}
	for i := 1; i < len(keyPairs); i += 2 {
		if n := len(keyPairs[i]); n != 16 && n != 24 && n != 32 {
			return nil, fmt.Errorf("%w: TokenKeys block key %d has %d bytes, want 16, 24 or 32", ErrConfig, i/2, n)
		}
		if len(keyPairs[i-1]) < 32 {
			return nil, fmt.Errorf("%w: TokenKeys hash key %d is shorter than 32 bytes", ErrConfig, i/2)
		}
	}
	own := make([][]byte, len(keyPairs)) // the caller may reuse its slices
	for i, k := range keyPairs {
		own[i] = append([]byte(nil), k...)
	}
	codecs := securecookie.CodecsFromPairs(own...)
	secs := int64(ttl / time.Second)
	if secs < 1 {
		secs = 1
	}
	for _, c := range codecs {
		sc := c.(*securecookie.SecureCookie)
		sc.MaxAge(int(secs))
		sc.MaxLength(MaxTokenLen)
		sc.SetSerializer(securecookie.NopEncoder{})
	}
	return &tokens{codecs: codecs, ttl: ttl, roomKey: deriveKey(own[0], "iosessions session room"), keys: own}, nil
}

// mint returns a token for key, signed with the first key pair.
func (t *tokens) mint(key string) (string, error) {
	return securecookie.EncodeMulti(tokenName, []byte(string(tokenV1)+newID()+key), t.codecs...)
}

// open returns what tok holds, if it is a token of ours and unexpired.
func (t *tokens) open(tok string) (tokenBody, error) {
	if len(tok) > MaxTokenLen || !canonical(tok) {
		return tokenBody{}, ErrBadToken
	}
	var raw []byte
	if err := securecookie.DecodeMulti(tokenName, tok, &raw, t.codecs...); err != nil {
		return tokenBody{}, ErrBadToken
	}
	var b tokenBody
	if len(raw) > 0 && raw[0] == '{' { // an earlier version's
		if json.Unmarshal(raw, &b) != nil {
			return tokenBody{}, ErrBadToken
		}
	} else if len(raw) > 1+nonceLen && raw[0] == tokenV1 && isBase32(raw[1:1+nonceLen]) {
		b = tokenBody{Nonce: string(raw[1 : 1+nonceLen]), Key: string(raw[1+nonceLen:])}
	}
	if b.Key == "" || b.Nonce == "" {
		return tokenBody{}, ErrBadToken
	}
	return b, nil
}

// canonical: base64 decoding ignores CR, LF and unused bits; one spelling only.
func canonical(tok string) bool {
	b, err := base64.URLEncoding.DecodeString(tok)
	return err == nil && base64.URLEncoding.EncodeToString(b) == tok
}

// isBase32 reports whether b is spelled in idEncoding's alphabet.
func isBase32(b []byte) bool {
	for _, c := range b {
		if (c < 'A' || c > 'Z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}
