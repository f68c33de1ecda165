package zishang520_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// FuzzDecoder's committed seeds (testdata/fuzz/FuzzDecoder/) are
// packetSeeds, written by `go generate`; TestFuzzCorpusUpToDate fails
// when they are out of date. Seeds too big to commit (2 MB) are added
// with f.Add.
//
//go:generate go test -count=1 -run=^TestFuzzCorpusUpToDate$ . -args -write-fuzz-corpus
var writeCorpus = flag.Bool("write-fuzz-corpus", false, "rewrite testdata/fuzz from the catalogue")

// seed is a socket.io packet (protocol 5, without the engine.io type
// byte) and whether the engine's parser refuses it.
type seed struct {
	name    string
	data    string
	refused bool
}

// packetSeeds is the catalogue of hostile packets, as googollee's, in
// socket.io protocol 5.
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
		{"attachments-2^64", `518446744073709551617-["msg","x"]`, true},
		{"attachments-none", `5-`, true},
		{"placeholder-past", `51-["bin",{"_placeholder":true,"num":7}]`, true}, // refused with the attachment
		{"placeholder-no-attachments", `2["bin",{"_placeholder":true,"num":0}]`, false},
		{"placeholder-negative", `51-["bin",{"_placeholder":true,"num":-1}]`, false},
		{"placeholder-huge", `51-["bin",{"_placeholder":true,"num":1e300}]`, false},
		{"event-dash", `45-`, true},
		{"event-empty", `2[]`, true},
		{"event-null", `2[null]`, true},
		{"event-number", `2[1]`, false}, // socket.io 5 allows numeric event names
		{"event-connect", `2["connect"]`, true},
		{"event-no-bracket", `2]`, true},
		{"event-truncated", `2["echo"`, true},
		{"ack-id-max", `218446744073709551615["echo",1]`, true}, // the parser takes 19 digits at most
		{"ack-id-2^64", `218446744073709551616["echo",1]`, true},
		{"ack-packet-id-2^64", `318446744073709551616[1]`, true},
		{"connect", `0`, false},
		{"connect-auth", `0{"token":"x"}`, false},
		{"connect-namespace-10k", "0/" + long + ",", true},
		{"event-namespace-10k", "2/" + long + `,["echo",1]`, true},
		{"connect-namespace-nul", "0/\x00,", false},
		{"event-namespace-nul", "2/a\x00b,[\"echo\",1]", false},
		{"disconnect", `1`, false},
		{"unknown-type", `7`, true},
		{"empty", ``, true},
		{"json-deep-10000", `2["echo",` + deep(9998) + `]`, false},
		{"json-deep-10001", `2["echo",` + deep(10000) + `]`, true},
		{"json-invalid", `2["echo",{]`, true},
		{"utf8-invalid-arg", "2[\"echo\",\"\xff\xfe\xc3\"]", false},
		{"utf8-invalid-name", "2[\"\xff\",1]", false},
	}
}

// bigSeeds are too big to commit: FuzzDecoder adds them with f.Add.
func bigSeeds() []seed {
	s := strings.Repeat("s", 2<<20)
	return []seed{
		{"string-2mb", `2["echo","` + s + `"]`, false},
		{"name-2mb", `2["` + s + `"]`, false},
	}
}

// decode feeds p, then attachments (up to 10) if it announces them, to a
// new decoder of the engine, and returns the packets it decoded and its
// first error. A panic fails t.
func decode(t *testing.T, p string) (decoded []*parser.Packet, err error) {
	t.Helper()
	defer func() {
		if v := recover(); v != nil {
			t.Fatalf("the engine's decoder panicked on %.80q: %v", p, v)
		}
	}()
	d := parser.NewDecoder()
	defer d.Destroy()
	_ = d.On("decoded", func(args ...any) {
		if pkt, ok := args[0].(*parser.Packet); ok {
			decoded = append(decoded, pkt)
		}
	})
	if err := d.Add(p); err != nil {
		return decoded, err
	}
	for i := 0; i < 10 && len(decoded) == 0; i++ {
		if err := d.Add(types.NewBytesBuffer([]byte{byte(i)})); err != nil {
			return decoded, err
		}
	}
	return decoded, nil
}

func TestDecoderCatalogue(t *testing.T) {
	for _, s := range append(packetSeeds(), bigSeeds()...) {
		t.Run(s.name, func(t *testing.T) {
			pkts, err := decode(t, s.data)
			if refused := err != nil; refused != s.refused {
				t.Errorf("decode(%.60q) = %d packets, %v; want refused %v", s.data, len(pkts), err, s.refused)
			}
		})
	}
}

// FuzzDecoder: the engine's socket.io parser (zishang520 v3.0.2), which
// the binding does not guard, never panics, never holds more than 10
// attachments for a packet, and reads what its own encoder writes.
func FuzzDecoder(f *testing.F) {
	for _, s := range bigSeeds() {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, p string) {
		pkts, err := decode(t, p)
		for _, pkt := range pkts {
			if pkt.Attachments != nil && *pkt.Attachments > parser.DefaultMaxAttachments {
				t.Fatalf("decoded %.80q with %d attachments", p, *pkt.Attachments)
			}
		}
		if err != nil || len(pkts) != 1 {
			return
		}
		// Encoded again, it decodes the same. (The encoder picks the
		// binary types itself, from the data.)
		pkt := *pkts[0]
		switch pkt.Type {
		case parser.BINARY_EVENT:
			pkt.Type = parser.EVENT
		case parser.BINARY_ACK:
			pkt.Type = parser.ACK
		}
		head := parser.NewEncoder().Encode(&pkt)[0].String()
		again, err := decode(t, head)
		if err != nil {
			t.Fatalf("%.80q decoded, its encoding %.80q did not: %v", p, head, err)
		}
		if len(again) != 1 || again[0].Nsp != pkts[0].Nsp {
			t.Fatalf("%.80q: decoded %v, re-encoded and decoded %v", p, pkts[0], again)
		}
	})
}

func TestFuzzCorpusUpToDate(t *testing.T) {
	files := map[string]string{}
	for _, s := range packetSeeds() {
		files[s.name] = fmt.Sprintf("go test fuzz v1\nstring(%q)\n", s.data)
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecoder")
	for name, want := range files {
		path := filepath.Join(dir, name)
		if *writeCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != want {
			t.Errorf("%s is out of date: run go generate ./zishang520/", path)
		}
	}
}
