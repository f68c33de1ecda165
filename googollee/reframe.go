package googollee

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// reframe rewrites a text polling payload of engine.io protocol 3 from the
// framing that JavaScript clients write, "<length>:<packet>" with the
// length in UTF-16 code units, to the one go-socket.io v1.7.0 reads, with
// the length in bytes. Without it any non-ASCII text a polling client sends
// kills its connection (400 "invalid payload"). A payload that does not
// parse is returned unchanged, for the engine to refuse.
func reframe(body []byte) []byte {
	if ascii := !bytes.ContainsFunc(body, func(r rune) bool { return r >= utf8.RuneSelf }); ascii {
		return body // ASCII: units and bytes agree
	}
	out := make([]byte, 0, len(body)+8)
	for rest := body; len(rest) > 0; {
		colon := bytes.IndexByte(rest, ':')
		if colon <= 0 || colon > 10 {
			return body
		}
		units, err := strconv.Atoi(string(rest[:colon]))
		if err != nil || units < 0 {
			return body
		}
		rest = rest[colon+1:]
		n := 0 // bytes of the packet
		for units > 0 {
			if n >= len(rest) {
				return body
			}
			r, size := utf8.DecodeRune(rest[n:])
			if r == utf8.RuneError && size <= 1 {
				return body
			}
			n += size
			if r >= 0x10000 {
				units -= 2 // a surrogate pair in UTF-16
			} else {
				units--
			}
		}
		if units < 0 {
			return body
		}
		out = strconv.AppendInt(out, int64(n), 10)
		out = append(out, ':')
		out = append(out, rest[:n]...)
		rest = rest[n:]
	}
	return out
}
