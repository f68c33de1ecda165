package googollee

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/googollee/go-socket.io/engineio/frame"
	"github.com/googollee/go-socket.io/engineio/packet"
	"github.com/googollee/go-socket.io/engineio/payload"
	"github.com/googollee/go-socket.io/engineio/session"
	"github.com/googollee/go-socket.io/parser"
)

// The fuzz targets' committed seeds (testdata/fuzz/<FuzzName>/) are the
// catalogues below, written by `go generate`; TestFuzzCorpusUpToDate
// fails when they are out of date. Seeds too big to commit (2 MB) are
// added with f.Add.
//
//go:generate go test -count=1 -run=^TestFuzzCorpusUpToDate$ . -args -write-fuzz-corpus
var writeCorpus = flag.Bool("write-fuzz-corpus", false, "rewrite testdata/fuzz from the catalogues")

// seed is one packet or payload of a catalogue, refused or not.
type seed struct {
	name    string
	data    string
	refused bool
}

// Seed is a catalogue packet for the live tests of the external test
// package: Packet is a socket.io packet, sent as the engine.io message
// "4" + Packet.
type Seed struct{ Name, Packet string }

// PacketCatalogue returns the socket.io packets of the catalogue,
// including the 2 MB string.
func PacketCatalogue() []Seed {
	var out []Seed
	for _, s := range append(packetSeeds(), bigSeeds()...) {
		out = append(out, Seed{s.name, s.data})
	}
	return out
}

// packetSeeds are socket.io packets (without the engine.io type byte),
// as go-socket.io v1.7.0 reads them.
func packetSeeds() []seed {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	long := strings.Repeat("n", 10<<10)
	return []seed{
		{"event", `2["echo","x"]`, false},
		{"event-ack", `213["echo",{"a":[1,2.5e3,-0,true,false,null]}]`, false},
		{"event-namespace", `2/chat,7["echo"]`, false},
		{"attachments-huge", `51999999999999999-["msg","x"]`, true},
		{"attachments-eleven", `511-["msg","x"]`, true},
		{"attachments-ten", `510-["msg","x"]`, false},
		{"attachments-wrap", `518446744073709551617-["msg","x"]`, true},
		{"attachments-disconnect", `1999999999999-`, true},
		{"placeholder-past", `51-["bin",{"_placeholder":true,"num":7}]`, true},
		{"placeholder-no-attachments", `2["bin",{"_placeholder":true,"num":0}]`, true},
		{"placeholder-no-num", `2["bin",{"_placeholder":true}]`, true},
		{"placeholder-case", `51-["bin",{"_PlaceHolder":true,"NUM":1}]`, true},
		{"placeholder-escaped-key", `51-["bin",{"_placeholder":true,"n\u0075m":7}]`, true},
		{"placeholder-nested", `52-["bin",[{"a":{"_placeholder":true,"num":2}}]]`, true},
		{"placeholder-ack", `61-[{"_placeholder":true,"num":1}]`, true},
		{"placeholder-in-range", `52-["bin",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]`, false},
		{"placeholder-false", `2["bin",{"_placeholder":false,"num":9}]`, false},
		{"placeholder-num-float", `51-["bin",{"_placeholder":true,"num":7.0}]`, false},
		{"placeholder-num-string", `51-["bin",{"_placeholder":true,"num":"7"}]`, false},
		{"placeholder-num-negative", `51-["bin",{"_placeholder":true,"num":-1}]`, false},
		{"placeholder-num-overflow", `51-["bin",{"_placeholder":true,"num":18446744073709551616}]`, false},
		{"event-dash", `5-`, true},
		{"event-empty", `2[]`, true},
		{"event-null", `2[null]`, true},
		{"event-number", `2[1]`, true},
		{"event-object", `2[{}]`, true},
		{"event-connect", `2["connect"]`, false},
		{"event-no-bracket", `2]`, true},
		{"event-no-data", `2`, true},
		{"event-name-comma", `2["a,b",1]`, false}, // the engine cuts the name at the comma and refuses it
		{"event-trailing", `2["echo",1]garbage`, false},
		{"event-truncated", `2["echo"`, true},
		{"ack-id-max", `218446744073709551615["echo",1]`, false},
		{"ack-id-2^64", `218446744073709551616["echo",1]`, true},
		{"ack-packet-id-2^64", `318446744073709551616[1]`, true},
		{"ack-empty", `3`, false},
		{"connect", `0`, false},
		{"connect-namespace-10k", "0/" + long + ",", false},
		{"event-namespace-10k", "2/" + long + `,["echo",1]`, false},
		{"connect-namespace-nul", "0/\x00,", false},
		{"event-namespace-nul", "2/a\x00b,[\"echo\",1]", false},
		{"disconnect", `1`, false},
		{"error", `4"oops"`, false},
		{"unknown-type", `7`, true},
		{"empty", ``, true},
		{"json-deep-10000", `2["echo",` + deep(9999) + `]`, false},
		{"json-deep-10001", `2["echo",` + deep(10000) + `]`, true},
		{"json-deep-objects", `2["echo",` + strings.Repeat(`{"a":`, 10000) + `1` + strings.Repeat("}", 10000) + `]`, true},
		{"json-invalid", `2["echo",{]`, true},
		{"json-control-char", "2[\"echo\",\"a\x01\"]", true},
		{"utf8-invalid-arg", "2[\"echo\",\"\xff\xfe\xc3\"]", false},
		{"utf8-invalid-name", "2[\"\xff\",1]", false},
		{"utf8-invalid-key", "2[\"echo\",{\"\xffnum\":1}]", false},
		{"utf16-escapes", `2["echo","\ud83d\ude00\u00e9"]`, false},
	}
}

// bigSeeds are too big to commit: the fuzz targets add them with f.Add.
func bigSeeds() []seed {
	s := strings.Repeat("s", 2<<20)
	return []seed{
		{"string-2mb", `2["echo","` + s + `"]`, false},
		{"name-2mb", `2["` + s + `"]`, false},
	}
}

// payloadSeeds are polling POST bodies in text framing
// ("<length>:<packet>", as the engine counts it: bytes), the binary flag
// false; and binary framing (the flag true).
type payloadSeed struct {
	name    string
	body    string
	binary  bool
	refused bool // by checkPayload, framing errors included
}

func payloadSeeds() []payloadSeed {
	return []payloadSeed{
		{"text", `14:42["echo","x"]`, false, false},
		{"text-two", `14:42["echo","x"]1:2`, false, false},
		{"text-bad-second", `14:42["echo","x"]32:451999999999999999-["msg","x"]`, false, true},
		{"len-0", `0:`, false, true},
		// The engine reads "0:" and then the next byte as a packet type: here
		// a close packet, then "4:42[" (an event cut short).
		{"len-0-then-packet", `0:14:42["echo","x"]`, false, true},
		{"len-negative", `-1:42["echo",1]`, false, true},
		{"len-longer", `99:42["echo",1]`, false, true},
		{"len-non-digits", `1a:42["echo",1]`, false, true},
		{"len-twenty-digits", `99999999999999999999:42["echo",1]`, false, false},
		{"len-empty", `:42`, false, true}, // an empty socket.io packet
		{"b64-bad", `10:b4!!!!****`, false, true},
		{"b64-good", `6:b4AQID`, false, false},
		{"b64-attachment", `41:451-["bin",{"_placeholder":true,"num":0}]6:b4AQID`, false, false},
		{"b64-placeholder-past", `43:451-["bin",{"_placeholder":true,"num":7}]6:b4AQID`, false, true},
		{"binary", "\x00\x01\x04\xff42[\"echo\",1]", false, true}, // binary framing sent as text
		{"binary-framing", "\x00\x01\x04\xff42[\"echo\",1]", true, false},
		{"binary-framing-huge-count", "\x00\x03\x00\xff451999999999999999-[\"msg\",\"x\"]", true, true},
		{"binary-framing-bad-length", "\x00\x0a\xff4", true, true},
		{"binary-framing-bad-type", "\x07\x01\xff4", true, true},
		{"binary-framing-attachment", "\x01\x03\xff\x04\x01\x02", true, false},
	}
}

func TestInspect(t *testing.T) {
	for _, s := range append(packetSeeds(), bigSeeds()...) {
		t.Run(s.name, func(t *testing.T) {
			n, err := inspect([]byte(s.data))
			if refused := err != nil; refused != s.refused {
				t.Fatalf("inspect(%.60q) = %d, %v; want refused %v", s.data, n, err, s.refused)
			}
			if err != nil && !errors.Is(err, errBadPacket) {
				t.Errorf("error %v is not errBadPacket", err)
			}
			checkAccepted(t, []byte(s.data), n, err)
		})
	}
}

func TestCheckPayload(t *testing.T) {
	for _, s := range payloadSeeds() {
		t.Run(s.name, func(t *testing.T) {
			err := checkPayloadT(t, []byte(s.body), s.binary)
			if refused := err != nil; refused != s.refused {
				t.Fatalf("checkPayload(%q) = %v; want refused %v", s.body, err, s.refused)
			}
		})
	}
}

// checkPayloadT runs checkPayload, failing t if it does not return.
func checkPayloadT(t *testing.T, body []byte, binary bool) error {
	t.Helper()
	ct := "text/plain;charset=UTF-8"
	if binary {
		ct = "application/octet-stream"
	}
	done := make(chan error, 1)
	go func() { done <- checkPayload(body, ct) }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("checkPayload(%q) did not return", body)
		return nil
	}
}

// handlerTypes are the argument types of the event handlers the engine
// decodes accepted packets for: placeholders matter only where an
// argument is, or holds, a parser.Buffer.
var handlerTypes = func() [][]reflect.Type {
	rep := func(v any) []reflect.Type {
		t := reflect.TypeOf(v)
		return []reflect.Type{t, t, t}
	}
	type nested struct {
		B parser.Buffer
		L []parser.Buffer
		M map[string]*parser.Buffer
		A any
	}
	return [][]reflect.Type{
		nil, // no handler for the event
		rep(parser.Buffer{}),
		rep(&parser.Buffer{}),
		rep([]parser.Buffer{}),
		rep(map[string]parser.Buffer{}),
		rep([][]parser.Buffer{}),
		rep(nested{}),
		rep([]nested{}),
		{reflect.TypeOf((*any)(nil)).Elem()},
		{reflect.TypeOf("")}, // a disconnect packet's
	}
}()

// checkAccepted fails t if p, accepted by inspect with n attachments,
// makes the engine's decoder panic, or replays a stale event name.
func checkAccepted(t *testing.T, p []byte, n int, err error) {
	t.Helper()
	if err != nil {
		return
	}
	if n < 0 || n > MaxAttachments {
		t.Fatalf("accepted %d attachments", n)
	}
	for _, types := range handlerTypes {
		if msg := engineDecode(p, n, types); msg != "" {
			t.Fatalf("accepted %.80q, but the engine %s (handler types %v)", p, msg, types)
		}
	}
}

const staleEvent = "\x00stale"

// engineDecode decodes p, with n one-byte attachments, as go-socket.io
// v1.7.0 does for a handler of types, and says what went wrong: a panic,
// or an event that kept the name of the one before.
func engineDecode(p []byte, n int, types []reflect.Type) (msg string) {
	defer func() {
		if v := recover(); v != nil {
			msg = fmt.Sprintf("panicked: %v", v)
		}
	}()
	fr := &frames{text: p, attachments: n}
	d := parser.NewDecoder(fr)
	var h parser.Header
	event := staleEvent
	if err := d.DecodeHeader(&h, &event); err != nil {
		return ""
	}
	if h.Type == parser.Event && event == staleEvent {
		return "kept the previous event's name"
	}
	if h.Type == parser.Event || h.Type == parser.Ack || h.Type == parser.Disconnect {
		_, _ = d.DecodeArgs(types)
	}
	_ = d.Close()
	return ""
}

// frames is a connection that holds one text message and then binary
// attachments.
type frames struct {
	text        []byte
	sent        bool
	attachments int
}

func (f *frames) NextReader() (session.FrameType, io.ReadCloser, error) {
	if !f.sent {
		f.sent = true
		return session.TEXT, io.NopCloser(bytes.NewReader(f.text)), nil
	}
	if f.attachments == 0 {
		return 0, nil, io.EOF
	}
	f.attachments--
	return session.BINARY, io.NopCloser(strings.NewReader("a")), nil
}

func FuzzInspect(f *testing.F) {
	for _, s := range bigSeeds() {
		f.Add([]byte(s.data))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		n, err := inspect(p)
		// Fed in pieces, as it arrives, the verdict is the same.
		var s packetScanner
		var werr error
		for i := 0; i < len(p) && werr == nil; i += 7 {
			werr = s.write(p[i:min(i+7, len(p))])
		}
		n2, err2 := n, werr
		if werr == nil {
			n2, err2 = s.end()
		}
		if n2 != n || (err == nil) != (err2 == nil) {
			t.Fatalf("in pieces: %d, %v; whole: %d, %v", n2, err2, n, err)
		}
		checkAccepted(t, p, n, err)
	})
}

// FuzzInspectEncoded: what the engine's own encoder writes passes.
func FuzzInspectEncoded(f *testing.F) {
	f.Add("", "echo", "x", uint64(0), false, uint8(0))
	f.Add("/chat", "a,b]", "\xff", uint64(1<<63), false, uint8(10))
	f.Add("/", "", "", uint64(18446744073709551615), true, uint8(3))
	f.Fuzz(func(t *testing.T, nsp, event, arg string, id uint64, ack bool, buffers uint8) {
		h := parser.Header{Type: parser.Event, ID: id, NeedAck: id != 0}
		if nsp != "" {
			// A namespace as clients name them: the engine's encoder
			// writes it as it is.
			h.Namespace = "/" + strings.ReplaceAll(nsp, ",", "")
		}
		var data []any
		if ack {
			h.Type = parser.Ack
		} else {
			data = append(data, event)
		}
		data = append(data, arg, map[string]any{"num": id, "_placeholder": false})
		nbuf := int(buffers) % (MaxAttachments + 1)
		for i := range nbuf {
			data = append(data, map[string]any{"b": &parser.Buffer{Data: []byte{byte(i)}}})
		}
		var w frameWriter
		if err := parser.NewEncoder(&w).Encode(h, data); err != nil {
			t.Skip(err) // not encodable
		}
		n, err := inspect(w.frames[0])
		if err != nil || n != nbuf {
			t.Fatalf("the engine's encoder wrote %.80q: inspect = %d, %v; want %d attachments", w.frames[0], n, err, nbuf)
		}
		checkAccepted(t, w.frames[0], n, err)
	})
}

// frameWriter keeps what the engine's encoder writes.
type frameWriter struct{ frames [][]byte }

func (w *frameWriter) NextWriter(session.FrameType) (io.WriteCloser, error) {
	w.frames = append(w.frames, nil)
	return frameBuf{w, len(w.frames) - 1}, nil
}

type frameBuf struct {
	w *frameWriter
	i int
}

func (b frameBuf) Write(p []byte) (int, error) {
	b.w.frames[b.i] = append(b.w.frames[b.i], p...)
	return len(p), nil
}

func (frameBuf) Close() error { return nil }

// FuzzCheckPayload: checkPayload returns for any POST body; a body it
// passes holds only packets that inspect passes.
//
// Its seeds are payloadSeeds only: mutating a 2 MB body costs tens of
// milliseconds an execution, and FuzzInspect has the 2 MB packets.
func FuzzCheckPayload(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte, binary bool) {
		if err := checkPayloadT(t, body, binary); err != nil {
			return
		}
		for _, p := range enginePackets(t, body, binary) {
			n, err := inspect(p)
			if err != nil {
				t.Fatalf("checkPayload passed %q, holding %q: %v", body, p, err)
			}
			checkAccepted(t, p, n, err)
		}
	})
}

// enginePackets returns the socket.io packets of a POST body as the
// engine's polling connection hands them to the session, through
// limitedConn.
func enginePackets(t *testing.T, body []byte, binary bool) [][]byte {
	t.Helper()
	var out [][]byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		out = decodePayload(body, binary)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("decoding %q did not end", body)
	}
	return out
}

// decodePayload returns the socket.io packets in body, decoded by the
// engine's payload decoder.
func decodePayload(body []byte, binary bool) [][]byte {
	p := payload.New(binary)
	go func() {
		_ = p.FeedIn(bytes.NewReader(body), binary)
		_ = p.Close()
	}()
	var out [][]byte
	for {
		ft, pt, r, err := p.NextReader()
		if err != nil {
			return out
		}
		if pt == packet.MESSAGE && ft == frame.String {
			if b, err := io.ReadAll(r); err == nil {
				out = append(out, b)
			}
		}
		if r.Close() != nil {
			return out
		}
	}
}

func TestFuzzCorpusUpToDate(t *testing.T) {
	files := map[string]string{} // path under testdata/fuzz: content
	for _, s := range packetSeeds() {
		files[filepath.Join("FuzzInspect", s.name)] = fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s.data)
	}
	for _, s := range payloadSeeds() {
		files[filepath.Join("FuzzCheckPayload", s.name)] = fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nbool(%v)\n", s.body, s.binary)
	}
	for path, want := range files {
		path = filepath.Join("testdata", "fuzz", path)
		if *writeCorpus {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("%s is out of date: run go generate ./googollee/", path)
		}
	}
	for _, dir := range []string{"FuzzInspect", "FuzzCheckPayload"} {
		entries, _ := os.ReadDir(filepath.Join("testdata", "fuzz", dir))
		for _, e := range entries {
			if _, ok := files[filepath.Join(dir, e.Name())]; !ok {
				t.Logf("testdata/fuzz/%s/%s is not in the catalogue (a failure the fuzzer found?)", dir, e.Name())
			}
		}
	}
}
