package iosessions

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/gorilla/securecookie"
)

// MaxTokenLen is the longest shim token accepted (over it: ErrBadToken
// before any decoding). It leaves room for a key of a server-side store.
const MaxTokenLen = 1 << 10

// tokenName binds a token to its purpose: the seal authenticates it with
// the payload (as securecookie did for earlier versions' tokens), so a
// cookie or value minted for anything else does not open as a token.
const tokenName = "iosessions.shim-token"

// tokens mints and parses the shim's tokens: the session key, sealed
// with AES-GCM, valid for ttl.
type tokens struct {
	aeads   []cipher.AEAD        // one per key pair; the first seals
	legacy  []securecookie.Codec // opens the securecookie tokens of earlier versions
	ttl     time.Duration
	now     func() time.Time
	roomKey []byte // names session rooms; derived from the first hash key
	keys    [][]byte
}

// tokenBody is what a token holds. Earlier versions' tokens hold it as
// JSON in a securecookie.
type tokenBody struct {
	Key   string `json:"k"`
	Nonce string `json:"n"` // makes it single-use: see ledger.go
}

// A token is tokenV2 and then, in unpadded base64url, a random GCM nonce
// and the sealed payload: its expiry (Unix nanoseconds, 8 bytes big
// endian) and the session key, authenticated with tokenName. The GCM
// nonce, in base32, is the token's nonce for the ledger. One AES-GCM open
// costs a microsecond or two, where securecookie's HMAC, AES-CTR, two
// base64 decodings and JSON cost some 20 µs (a connect's session by token
// took 20 µs against 10 µs by cookie since: BenchmarkHandshakeToken and
// BenchmarkHandshakeCookie). Earlier versions' tokens (securecookie,
// JSON) start with "M", the base64 of their timestamp's first digit; a
// node still opens them for the few minutes they live (a rolling deploy).
const tokenV2 = '2'

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
	t := &tokens{ttl: ttl, now: time.Now, roomKey: deriveKey(own[0], "iosessions session room"), keys: own}
	for i := 0; i < len(own); i += 2 {
		// The pair's two keys make one AES-256 key: a change of either
		// is another key.
		secret := append(append([]byte(nil), own[i]...), own[i+1]...)
		block, err := aes.NewCipher(deriveKey(secret, "iosessions shim token v2"))
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		t.aeads = append(t.aeads, aead)
	}
	secs := max(int64(ttl/time.Second), 1)
	t.legacy = securecookie.CodecsFromPairs(own...)
	for _, c := range t.legacy {
		sc := c.(*securecookie.SecureCookie)
		sc.MaxAge(int(secs))
		sc.MaxLength(MaxTokenLen)
		sc.SetSerializer(securecookie.JSONEncoder{})
	}
	return t, nil
}

// mint returns a token for key, sealed with the first key pair.
func (t *tokens) mint(key string) (string, error) {
	return t.mintAt(key, t.now().Add(t.ttl))
}

// mintAt returns a token for key that expires at exp.
func (t *tokens) mintAt(key string, exp time.Time) (string, error) {
	aead := t.aeads[0]
	ns := aead.NonceSize()
	b := make([]byte, ns, ns+8+len(key)+aead.Overhead())
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	plain := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(key)), uint64(exp.UnixNano()))
	plain = append(plain, key...)
	b = aead.Seal(b, b[:ns], plain, []byte(tokenName))
	if 1+base64.RawURLEncoding.EncodedLen(len(b)) > MaxTokenLen {
		return "", fmt.Errorf("iosessions: a session key of %d bytes makes a token over MaxTokenLen", len(key))
	}
	out := make([]byte, 1+base64.RawURLEncoding.EncodedLen(len(b)))
	out[0] = tokenV2
	base64.RawURLEncoding.Encode(out[1:], b)
	return string(out), nil
}

// open returns what tok holds, if it is a token of ours and unexpired.
func (t *tokens) open(tok string) (tokenBody, error) {
	if len(tok) > MaxTokenLen || len(tok) < 2 {
		return tokenBody{}, ErrBadToken
	}
	if tok[0] != tokenV2 {
		return t.openLegacy(tok)
	}
	// Strict: no unused bits set. CR and LF, which decoding skips, are
	// not in the alphabet checked first: one spelling only.
	for i := 1; i < len(tok); i++ {
		if c := tok[i]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return tokenBody{}, ErrBadToken
		}
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(tok[1:])
	if err != nil {
		return tokenBody{}, ErrBadToken
	}
	for _, aead := range t.aeads {
		ns := aead.NonceSize()
		if len(b) < ns+aead.Overhead()+8+1 {
			return tokenBody{}, ErrBadToken
		}
		plain, err := aead.Open(nil, b[:ns], b[ns:], []byte(tokenName))
		if err != nil {
			continue
		}
		// Expired, or living longer than this node's ttl allows: the
		// ledger keeps a used nonce for ttl and a second only, so a token
		// must not outlive that.
		exp, now := int64(binary.BigEndian.Uint64(plain)), t.now().UnixNano()
		if now > exp || exp-now > int64(t.ttl+time.Second) {
			return tokenBody{}, ErrBadToken
		}
		return tokenBody{Key: string(plain[8:]), Nonce: idEncoding.EncodeToString(b[:ns])}, nil
	}
	return tokenBody{}, ErrBadToken
}

// openLegacy opens an earlier version's token: a securecookie holding a
// tokenBody in JSON.
func (t *tokens) openLegacy(tok string) (tokenBody, error) {
	if !canonical(tok) {
		return tokenBody{}, ErrBadToken
	}
	var b tokenBody
	if err := securecookie.DecodeMulti(tokenName, tok, &b, t.legacy...); err != nil || b.Key == "" || b.Nonce == "" {
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
