package sio2

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Engine.io packet types, the first character of a packet, the same in
// protocols 3 and 4.
const (
	engineOpen    = '0'
	engineClose   = '1'
	enginePing    = '2'
	enginePong    = '3'
	engineMessage = '4'
)

// errPayload reports a polling payload that does not parse.
var errPayload = errors.New("sio2: malformed polling payload")

// EncodeText frames engine.io packets for a polling POST as engine.io-parser
// 2.x does without binary data: "<len>:<packet>" for each packet, where len
// counts UTF-16 code units, as JavaScript's String.length does. (The Go
// engine counts bytes; the two agree on ASCII.)
func EncodeText(packets ...string) []byte {
	var b strings.Builder
	for _, p := range packets {
		b.WriteString(strconv.Itoa(utf16Len(p)))
		b.WriteByte(':')
		b.WriteString(p)
	}
	return []byte(b.String())
}

// DecodePayload splits the body of a polling response into its engine.io
// packets: binary framing (a 0 or 1 byte, the length as one byte per
// decimal digit, 0xff, the packet) when binary is true, as servers answer
// clients that did not ask for b64; text framing ("<len>:<packet>")
// otherwise. Binary packets are skipped: this client has no use for them.
func DecodePayload(body []byte, binary bool) ([]string, error) {
	if binary {
		return decodeBinary(body)
	}
	return decodeText(string(body))
}

func decodeBinary(b []byte) ([]string, error) {
	var out []string
	for len(b) > 0 {
		isBinary := b[0] == 1
		if b[0] > 1 {
			return nil, errPayload
		}
		n, i := 0, 1
		for ; i < len(b) && b[i] != 0xff; i++ {
			if b[i] > 9 || n > 1<<30 {
				return nil, errPayload
			}
			n = n*10 + int(b[i])
		}
		if i == len(b) || len(b) < i+1+n {
			return nil, errPayload
		}
		if !isBinary {
			out = append(out, string(b[i+1:i+1+n]))
		}
		b = b[i+1+n:]
	}
	return out, nil
}

func decodeText(s string) ([]string, error) {
	var out []string
	for len(s) > 0 {
		colon := strings.IndexByte(s, ':')
		if colon < 1 {
			return nil, errPayload
		}
		n, err := strconv.Atoi(s[:colon])
		if err != nil || n < 0 {
			return nil, errPayload
		}
		s = s[colon+1:]
		end := utf16Offset(s, n)
		if end < 0 {
			return nil, errPayload
		}
		if p := s[:end]; !strings.HasPrefix(p, "b") {
			out = append(out, p)
		}
		s = s[end:]
	}
	return out, nil
}

// recordSeparator separates the packets of an EIO=4 polling payload.
const recordSeparator = "\x1e"

// EncodeText4 frames engine.io packets for an EIO=4 polling POST as
// engine.io-parser 4.x and later do: the packets, separated by the record
// separator \x1e, without lengths.
func EncodeText4(packets ...string) []byte {
	return []byte(strings.Join(packets, recordSeparator))
}

// DecodePayload4 splits the body of an EIO=4 polling response into its
// engine.io packets. Binary packets ("b" and base64) are skipped, as are
// empty ones: this client has no use for them. Any body splits.
func DecodePayload4(body []byte) []string {
	var out []string
	for p := range strings.SplitSeq(string(body), recordSeparator) {
		if p != "" && !strings.HasPrefix(p, "b") {
			out = append(out, p)
		}
	}
	return out
}

// utf16Len is the length of s in UTF-16 code units.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// utf16Offset returns the byte offset in s after n UTF-16 code units, or
// -1 when s is shorter.
func utf16Offset(s string, n int) int {
	i := 0
	for n > 0 {
		if i >= len(s) {
			return -1
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		n -= utf16.RuneLen(r)
		i += size
	}
	if n < 0 {
		return -1
	}
	return i
}

// packet is a decoded socket.io packet (the part after the engine.io
// message type).
type packet struct {
	typ  byte   // '0' connect … '6' binary ack
	nsp  string // "" for the root namespace
	id   int    // -1 without an ack id
	data string // JSON, possibly empty
}

// parsePacket parses a socket.io v2 packet:
// <type>[<attachments>-][<namespace>,][<ack id>][JSON].
func parsePacket(s string) (packet, error) {
	if s == "" || s[0] < '0' || s[0] > '6' {
		return packet{}, errors.New("sio2: bad socket.io packet type")
	}
	p := packet{typ: s[0], id: -1}
	s = s[1:]
	if i := strings.IndexByte(s, '-'); i > 0 && isDigits(s[:i]) {
		s = s[i+1:] // binary attachment count: not supported, dropped
	}
	if strings.HasPrefix(s, "/") {
		if i := strings.IndexByte(s, ','); i >= 0 {
			p.nsp, s = s[:i], s[i+1:]
		} else {
			p.nsp, s = s, ""
		}
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i > 0 {
		id, err := strconv.Atoi(s[:i])
		if err != nil {
			return packet{}, err
		}
		p.id, s = id, s[i:]
	}
	p.data = strings.TrimSpace(s)
	return p, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
