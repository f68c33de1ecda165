package googollee

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"strconv"

	"github.com/googollee/go-socket.io/engineio/frame"
	"github.com/googollee/go-socket.io/engineio/packet"
	"github.com/googollee/go-socket.io/engineio/payload"
)

// go-socket.io v1.7.0 decodes a socket.io packet on the connection's read
// goroutine, where nothing recovers a panic, and trusts what it reads:
//
//   - "51999999999999999-[…]" announces that many binary attachments, and
//     the decoder allocates room for all of them before reading any: a
//     runtime panic for a huge count, a fatal out-of-memory (which no
//     recover catches) for a count of a few billion;
//   - a placeholder {"_placeholder":true,"num":7} indexes the attachments
//     without a bounds check: an index-out-of-range panic when an event's
//     argument is (or holds) a parser.Buffer;
//   - an event whose name is null ("2[null]"), or that has no "[" ("2]"),
//     keeps the name of the connection's previous event: the client
//     replays any event it sent before, with new arguments;
//   - numbers wrap around silently: ack id 18446744073709551616 is 0.
//
// So the binding inspects every socket.io packet before the engine reads
// it (see limitedConn.NextReader and checkPayload), and ends the
// connection of a packet that would do any of this. Packets the engine's
// own encoder writes always pass.

// MaxAttachments is the most binary attachments one socket.io packet may
// announce: 10. A packet that announces more ends its connection.
const MaxAttachments = 10

// maxDepth is the deepest JSON nesting inspected: that of encoding/json,
// beyond which the engine refuses a packet anyway.
const maxDepth = 10000

// errBadPacket ends a connection that sent a packet the engine would
// crash on or misread.
var errBadPacket = errors.New("googollee: malformed packet")

// errBadPayload refuses a polling body whose framing does not decode.
var errBadPayload = errors.New("googollee: malformed polling payload")

func badPacket(why string) error { return fmt.Errorf("%w: %s", errBadPacket, why) }

// inspect checks one socket.io packet, the text of an engine.io message
// as go-socket.io v1.7.0 decodes it ("2[\"e\",1]"), and returns the number
// of attachments it announces.
func inspect(p []byte) (attachments int, err error) {
	var s packetScanner
	if err := s.write(p); err != nil {
		return 0, err
	}
	return s.end()
}

// Stages of a packet's header, in the order the engine reads it: type,
// a number (attachments if a '-' follows, else the ack id), namespace,
// ack id; then the payload.
const (
	stType = iota
	stNum
	stNsp     // the first byte of a namespace, or not
	stNspName // the namespace, up to its comma
	stID
	stBody  // the first byte of the payload
	stJSON  // the payload's JSON value
	stAfter // what follows a complete value, or a payload the engine skips
)

// packetScanner checks a packet as its bytes are written, in one pass,
// with memory bounded by the nesting depth.
type packetScanner struct {
	stage       int
	typ         byte // '0'..'6'
	digits      int  // digits of the number being read
	num         uint64
	attachments int
	json        jsonScanner
}

func (s *packetScanner) write(p []byte) error {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch s.stage {
		case stType:
			if c < '0' || c > '6' {
				return badPacket("unknown packet type")
			}
			s.typ, s.stage = c, stNum
		case stNum, stID:
			if c >= '0' && c <= '9' {
				if s.num > (math.MaxUint64-uint64(c-'0'))/10 {
					return badPacket("number out of range")
				}
				s.num, s.digits = s.num*10+uint64(c-'0'), s.digits+1
				continue
			}
			if s.stage == stNum && c == '-' {
				if s.num > MaxAttachments {
					return badPacket("too many attachments")
				}
				s.attachments, s.num, s.digits, s.stage = int(s.num), 0, 0, stNsp
				continue
			}
			if s.stage == stNum {
				s.stage = stNsp
			} else {
				s.stage = stBody
			}
			s.num, s.digits = 0, 0
			i-- // the byte belongs to the next stage
		case stNsp:
			s.stage = stID
			if c == '/' {
				s.stage = stNspName
			} else {
				i--
			}
		case stNspName:
			if c == ',' { // anything up to it, as the engine reads it
				s.stage = stID
			}
		case stBody:
			switch s.typ {
			case '0', '4': // connect, error: the engine skips the payload
				s.stage = stAfter
				continue
			case '2', '5': // event: the engine reads the name only after a '['
				if c != '[' {
					return badPacket("event without a name")
				}
				s.json.event = true
			}
			s.json.attachments = s.attachments
			s.stage = stJSON
			i--
		case stJSON:
			n, err := s.json.write(p[i:])
			if err != nil {
				return err
			}
			i += n - 1
			if s.json.done {
				s.stage = stAfter
			}
		case stAfter:
			return nil // ignored by the engine
		}
	}
	return nil
}

// end reports the packet complete.
func (s *packetScanner) end() (attachments int, err error) {
	switch {
	case s.stage == stType:
		return 0, badPacket("empty packet")
	case s.stage < stJSON:
		if s.typ == '2' || s.typ == '5' {
			return 0, badPacket("event without a name")
		}
	case s.stage == stJSON:
		if err := s.json.end(); err != nil {
			return 0, err
		}
	}
	return s.attachments, nil
}

// jsonScanner checks one JSON value as encoding/json reads it, without
// recursion, and refuses placeholders that point past the packet's
// attachments: an object with "_placeholder": true whose "num" (0 when
// absent) is an unsigned integer of at least attachments. Keys match as
// encoding/json matches struct fields, case-insensitively: the engine
// decodes a parser.Buffer through parser.BufferData. It errs on the safe
// side: any "_placeholder": true counts, and every "num".
type jsonScanner struct {
	attachments int
	event       bool // the top value is an event: an array whose first element is a string
	done        bool // the value is complete

	stack []container
	lex   lexState
	lit   string // the rest of a literal being read
	esc   int    // string: hex digits left in a \u escape
	hex   rune   // the \u escape's character so far
	num   numState
	// The value being read.
	field    int // fieldOther, fieldPlaceholder or fieldNum: the key it is under
	isKey    bool
	key      [len("_placeholder")]byte
	keyLen   int // -1: cannot match
	literal  byte
	numValue uint64
	numPlain bool // digits only, in range
	started  bool // a value has begun
}

type lexState uint8

const (
	lexNone    lexState = iota // between tokens
	lexString                  // inside a string
	lexEscape                  // after a backslash
	lexLiteral                 // true, false, null
	lexNumber
)

type numState uint8

const (
	numMinus numState = iota // after '-'
	numZero                  // after a leading 0
	numInt                   // in the integer digits
	numDot                   // after '.'
	numFrac                  // in the fraction digits
	numE                     // after 'e'
	numESign                 // after the exponent's sign
	numExp                   // in the exponent digits
)

const (
	fieldOther = iota
	fieldPlaceholder
	fieldNum
)

// What a container expects next.
const (
	wantFirst = iota // a value (array) or key (object), or the end
	wantValue        // a value
	wantKey          // a key
	wantColon
	wantComma // a comma or the end
)

// container is an open array or object.
type container struct {
	object bool
	want   uint8
	field  uint8 // object: the key of the value being read
	elems  int   // values read
	// An object that encoding/json would decode into a parser.Buffer:
	placeholder bool   // some "_placeholder" is true
	fails       bool   // a field of the wrong type: decoding it fails
	hasNum      bool   // some "num" is an unsigned integer
	numMax      uint64 // the largest of them
}

var errBadJSON = badPacket("malformed JSON")

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// write scans p until the value is complete, and returns how many bytes
// it used.
func (j *jsonScanner) write(p []byte) (int, error) {
	for i := 0; i < len(p); i++ {
		if j.done {
			return i, nil
		}
		c := p[i]
		switch j.lex {
		case lexString:
			switch {
			case c == '"':
				j.lex = lexNone
				if err := j.endString(); err != nil {
					return i, err
				}
			case c == '\\':
				j.lex = lexEscape
			case c < 0x20:
				return i, errBadJSON
			default:
				j.keyByte(c)
			}
			continue
		case lexEscape:
			if j.esc > 0 {
				h, ok := hexValue(c)
				if !ok {
					return i, errBadJSON
				}
				j.hex = j.hex<<4 | h
				j.esc--
				if j.esc == 0 {
					// encoding/json decodes the escape before it matches the
					// key: "n\u0075m" is "num". (The characters that fold
					// into the ASCII letters of the keys, U+017F and U+212A,
					// are for 's' and 'k', which they do not have.)
					if j.hex < 0x80 {
						j.keyByte(byte(j.hex))
					} else {
						j.keyByte(0)
					}
					j.lex = lexString
				}
				continue
			}
			switch c {
			case '"', '\\', '/':
				j.keyByte(c)
			case 'b', 'f', 'n', 'r', 't':
				j.keyByte(0) // no key of interest holds a control character
			case 'u':
				j.esc, j.hex = 4, 0
				continue
			default:
				return i, errBadJSON
			}
			j.lex = lexString
			continue
		case lexLiteral:
			if c != j.lit[0] {
				return i, errBadJSON
			}
			j.lit = j.lit[1:]
			if j.lit == "" {
				j.lex = lexNone
				if err := j.endValue(); err != nil {
					return i, err
				}
			}
			continue
		case lexNumber:
			if j.numByte(c) {
				continue
			}
			if err := j.endNumber(); err != nil {
				return i, err
			}
			i-- // the byte ends the number: read it again
			continue
		}
		// Between tokens.
		if isSpace(c) {
			continue
		}
		if err := j.structural(c); err != nil {
			return i, err
		}
	}
	return len(p), nil
}

// end reports the input complete.
func (j *jsonScanner) end() error {
	if j.lex == lexNumber && len(j.stack) == 0 {
		if err := j.endNumber(); err != nil {
			return err
		}
	}
	if j.started && !j.done {
		return badPacket("truncated JSON")
	}
	return nil
}

func hexValue(c byte) (rune, bool) {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0'), true
	case c >= 'a' && c <= 'f':
		return rune(c-'a') + 10, true
	case c >= 'A' && c <= 'F':
		return rune(c-'A') + 10, true
	}
	return 0, false
}

// top returns the innermost open container, or nil.
func (j *jsonScanner) top() *container {
	if len(j.stack) == 0 {
		return nil
	}
	return &j.stack[len(j.stack)-1]
}

// structural handles a byte between tokens.
func (j *jsonScanner) structural(c byte) error {
	t := j.top()
	if t == nil && j.started {
		return errBadJSON // unreachable: done stops the scan
	}
	if t != nil {
		switch t.want {
		case wantColon:
			if c != ':' {
				return errBadJSON
			}
			t.want = wantValue
			return nil
		case wantComma:
			switch {
			case c == ',' && t.object:
				t.want = wantKey
			case c == ',':
				t.want = wantValue
			case c == '}' && t.object, c == ']' && !t.object:
				return j.close()
			default:
				return errBadJSON
			}
			return nil
		case wantFirst:
			if c == '}' && t.object || c == ']' && !t.object {
				return j.close()
			}
		}
		if t.object && (t.want == wantFirst || t.want == wantKey) {
			if c != '"' {
				return errBadJSON
			}
			j.startString(true)
			return nil
		}
	}
	// A value.
	j.started = true
	j.field = fieldOther
	if t != nil {
		if t.object {
			j.field = int(t.field)
		}
		if j.event && len(j.stack) == 1 && t.elems == 0 && c != '"' {
			return badPacket("event name not a string")
		}
	}
	switch c {
	case '{', '[':
		if t != nil {
			j.fieldKind(false)
		}
		if len(j.stack) >= maxDepth {
			return badPacket("JSON nested too deep")
		}
		j.stack = append(j.stack, container{object: c == '{'})
	case '"':
		j.startString(false)
	case 't':
		j.startLiteral("rue", 't')
	case 'f':
		j.startLiteral("alse", 'f')
	case 'n':
		j.startLiteral("ull", 'n')
	case '-':
		j.lex, j.num, j.numPlain = lexNumber, numMinus, false
	default:
		if c < '0' || c > '9' {
			return errBadJSON
		}
		j.lex, j.numPlain, j.numValue = lexNumber, true, uint64(c-'0')
		j.num = numInt
		if c == '0' {
			j.num = numZero
		}
	}
	return nil
}

func (j *jsonScanner) startString(key bool) {
	j.lex, j.isKey, j.keyLen = lexString, key, 0
	if !key {
		j.keyLen = -1
	}
}

// keyByte adds c to the key being read, if it can still match.
func (j *jsonScanner) keyByte(c byte) {
	if j.keyLen < 0 {
		return
	}
	if j.keyLen == len(j.key) || c >= 0x80 || c == 0 {
		j.keyLen = -1
		return
	}
	if 'A' <= c && c <= 'Z' {
		c += 'a' - 'A' // ASCII folding is all there is for these keys
	}
	j.key[j.keyLen] = c
	j.keyLen++
}

func (j *jsonScanner) endString() error {
	if j.isKey {
		t := j.top()
		t.field = fieldOther
		if j.keyLen > 0 {
			switch string(j.key[:j.keyLen]) {
			case "_placeholder":
				t.field = fieldPlaceholder
			case "num":
				t.field = fieldNum
			}
		}
		t.want = wantColon
		j.isKey = false
		return nil
	}
	j.fieldKind(false)
	return j.endValue()
}

func (j *jsonScanner) startLiteral(rest string, c byte) {
	j.lex, j.lit, j.literal = lexLiteral, rest, c
	if c != 'n' { // null leaves a field as it was
		j.fieldKind(c == 't')
	}
}

// fieldKind records, for a value under "_placeholder" or "num", what
// decoding it into parser.BufferData does: true sets the placeholder; a
// value of the wrong type makes the decode fail.
func (j *jsonScanner) fieldKind(isTrue bool) {
	t := j.top()
	if t == nil || !t.object || j.field == fieldOther {
		return
	}
	switch {
	case j.field == fieldPlaceholder && isTrue:
		t.placeholder = true
	case j.field == fieldPlaceholder && j.literal == 'f' && j.lex == lexLiteral:
		// false: no placeholder from this one
	default:
		t.fails = true
	}
}

// numByte reports whether c continues the number being read.
func (j *jsonScanner) numByte(c byte) bool {
	digit := c >= '0' && c <= '9'
	switch j.num {
	case numMinus:
		if !digit {
			return false
		}
		j.num = numInt
		if c == '0' {
			j.num = numZero
		}
		return true
	case numZero, numInt:
		switch {
		case digit && j.num == numInt:
			if j.numPlain {
				if j.numValue > (math.MaxUint64-uint64(c-'0'))/10 {
					j.numPlain = false // ParseUint fails: so does the decode
				} else {
					j.numValue = j.numValue*10 + uint64(c-'0')
				}
			}
			return true
		case c == '.':
			j.num, j.numPlain = numDot, false
			return true
		case c == 'e' || c == 'E':
			j.num, j.numPlain = numE, false
			return true
		}
		return false
	case numDot:
		if digit {
			j.num = numFrac
		}
		return digit
	case numFrac:
		if digit {
			return true
		}
		if c == 'e' || c == 'E' {
			j.num = numE
			return true
		}
		return false
	case numE:
		if c == '+' || c == '-' {
			j.num = numESign
			return true
		}
		if digit {
			j.num = numExp
		}
		return digit
	case numESign:
		if digit {
			j.num = numExp
		}
		return digit
	case numExp:
		return digit
	}
	return false
}

// endNumber ends the number being read.
func (j *jsonScanner) endNumber() error {
	switch j.num {
	case numMinus, numDot, numE, numESign:
		return errBadJSON
	}
	j.lex = lexNone
	if t := j.top(); t != nil && t.object {
		switch {
		case j.field == fieldNum && j.numPlain:
			t.hasNum = true
			t.numMax = max(t.numMax, j.numValue)
		case j.field != fieldOther:
			t.fails = true
		}
	}
	return j.endValue()
}

// endValue ends a scalar value.
func (j *jsonScanner) endValue() error {
	t := j.top()
	if t == nil {
		j.done = true
		return nil
	}
	t.elems++
	t.want = wantComma
	return nil
}

// close ends the innermost container, checking it as a placeholder.
func (j *jsonScanner) close() error {
	t := j.top()
	if t.object && t.placeholder && !t.fails {
		n := uint64(0) // "num" absent: the engine reads index 0
		if t.hasNum {
			n = t.numMax
		}
		if n >= uint64(j.attachments) {
			return badPacket("placeholder past the attachments")
		}
	}
	if j.event && len(j.stack) == 1 && t.elems == 0 {
		return badPacket("event without a name")
	}
	j.stack = j.stack[:len(j.stack)-1]
	return j.endValue()
}

// checkPayload inspects the packets of a polling POST body, framed as
// the engine's payload decoder frames them (binary framing for
// application/octet-stream, text otherwise), before the engine reads it:
// the engine answers a POST only once its packets are read, so a packet
// refused while the engine reads it would hold the POST until the read
// deadline. A body whose framing does not decode is refused too: the
// engine would hold the POST and fail the session's next poll with a 500.
func checkPayload(body []byte, contentType string) (err error) {
	typ, _, err := mime.ParseMediaType(contentType)
	if err != nil || typ != "application/octet-stream" && typ != "text/plain" {
		return nil // the engine refuses it
	}
	binary := typ == "application/octet-stream"
	if !binary && !framesFit(body) {
		// The engine would wait for the missing bytes, holding the POST
		// and the session's writer until its ping timeout.
		return fmt.Errorf("%w: a length runs past the body", errBadPayload)
	}
	p := payload.New(binary)
	fed := make(chan struct{})
	var feedErr error
	go func() {
		defer close(fed)
		feedErr = p.FeedIn(bytes.NewReader(body), binary)
		_ = p.Close() // ends NextReader below
	}()
	defer func() {
		<-fed
		if err == nil && feedErr != nil {
			err = fmt.Errorf("%w: %v", errBadPayload, feedErr)
		}
	}()
	// Every frame is read to the end: FeedIn returns only once the last
	// one is, or a frame fails (Close reports it to FeedIn), whatever
	// Close does meanwhile.
	var refused error
	for {
		ft, pt, r, err := p.NextReader()
		if err != nil {
			return refused // the end, or a framing error (the engine's)
		}
		if refused == nil && pt == packet.MESSAGE && ft == frame.String {
			if msg, err := io.ReadAll(r); err == nil {
				_, refused = inspect(msg)
			}
		}
		if err := r.Close(); err != nil {
			return refused
		}
	}
}

// framesFit reports whether every "<length>:" of a text payload (lengths
// in bytes, as the engine reads them) ends within body. What else is
// wrong with the framing is the engine's decoder's to find.
func framesFit(body []byte) bool {
	for rest := body; len(rest) > 0; {
		colon := bytes.IndexByte(rest, ':')
		if colon <= 0 || colon > 10 {
			return true // not a length: the decoder refuses it
		}
		n, err := strconv.Atoi(string(rest[:colon]))
		if err != nil || n < 0 {
			return true
		}
		rest = rest[colon+1:]
		if n > len(rest) {
			return false
		}
		rest = rest[n:]
	}
	return true
}
