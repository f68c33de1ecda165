package googollee

import (
	"bytes"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Text polling payloads of engine.io protocol 3 are "<length>:<packet>"
// repeated. JavaScript clients count the length in UTF-16 code units;
// go-socket.io v1.7.0 counts bytes, in both directions. Without re-framing,
// any non-ASCII text over polling kills the connection: a POST gets 400
// "invalid payload", a b64=1 poll gets a client "parser error".

// unitsToBytes re-frames a payload a client sent for the engine to read.
func unitsToBytes(body []byte) []byte { return reframe(body, true) }

// bytesToUnits re-frames a payload the engine wrote for a client to read.
func bytesToUnits(body []byte) []byte { return reframe(body, false) }

// reframe rewrites the length prefixes of body, from UTF-16 code units to
// bytes (fromUnits) or back. A payload that does not parse is returned
// unchanged, for the other side to refuse.
func reframe(body []byte, fromUnits bool) []byte {
	if !bytes.ContainsFunc(body, func(r rune) bool { return r >= utf8.RuneSelf }) {
		return body // ASCII: units and bytes agree
	}
	out := make([]byte, 0, len(body)+8)
	for rest := body; len(rest) > 0; {
		colon := bytes.IndexByte(rest, ':')
		if colon <= 0 || colon > 10 || !canonicalLength(rest[:colon]) {
			return body
		}
		length, _ := strconv.Atoi(string(rest[:colon]))
		rest = rest[colon+1:]
		n, units := 0, 0 // the packet's bytes and UTF-16 units
		for (fromUnits && units < length) || (!fromUnits && n < length) {
			if n >= len(rest) {
				return body
			}
			r, size := utf8.DecodeRune(rest[n:])
			if r == utf8.RuneError && size <= 1 {
				return body
			}
			n += size
			units += utf16.RuneLen(r) // 2 for a surrogate pair
		}
		if (fromUnits && units != length) || (!fromUnits && n != length) {
			return body // the length splits a character
		}
		if fromUnits {
			out = strconv.AppendInt(out, int64(n), 10)
		} else {
			out = strconv.AppendInt(out, int64(units), 10)
		}
		out = append(out, ':')
		out = append(out, rest[:n]...)
		rest = rest[n:]
	}
	return out
}

// canonicalLength reports whether b is a length as clients write it:
// decimal digits, no sign, no leading zero.
func canonicalLength(b []byte) bool {
	if len(b) > 1 && b[0] == '0' {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
