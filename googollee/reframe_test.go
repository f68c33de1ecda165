package googollee

import (
	"bytes"
	"testing"
)

func TestReframe(t *testing.T) {
	tests := []struct{ name, units, bytes string }{
		{"ascii", `14:42["echo","e"]`, `14:42["echo","e"]`},
		{"two-byte rune", `14:42["echo","é"]`, `15:42["echo","é"]`},
		{"three-byte rune", `14:42["echo","✓"]`, `16:42["echo","✓"]`},
		{"surrogate pair", `15:42["echo","😀"]`, `17:42["echo","😀"]`},
		{"several packets", `14:42["echo","é"]1:2`, `15:42["echo","é"]1:2`},
		{"empty packet", `0:14:42["echo","é"]`, `0:15:42["echo","é"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(unitsToBytes([]byte(tt.units))); got != tt.bytes {
				t.Errorf("unitsToBytes(%q) = %q, want %q", tt.units, got, tt.bytes)
			}
			if got := string(bytesToUnits([]byte(tt.bytes))); got != tt.units {
				t.Errorf("bytesToUnits(%q) = %q, want %q", tt.bytes, got, tt.units)
			}
		})
	}
}

// Payloads that do not parse go through unchanged, for the engine (or the
// client) to refuse.
func TestReframeMalformed(t *testing.T) {
	for _, in := range []string{
		`99:42["é"]`,             // longer than the body
		`10:42["e","😀"]`,         // splits a surrogate pair
		`42["é"]`,                // no length
		`-1:42["é"]`,             // negative
		`+1:é`,                   // signed
		`01:é`,                   // leading zero
		`1a:42["é"]`,             // not digits
		`99999999999999999999:é`, // twenty digits
		"3:\xff\xfe\xfd\u00e9",   // invalid UTF-8
		":é",                     // empty length
	} {
		for name, f := range map[string]func([]byte) []byte{"unitsToBytes": unitsToBytes, "bytesToUnits": bytesToUnits} {
			if got := f([]byte(in)); !bytes.Equal(got, []byte(in)) {
				t.Errorf("%s(%q) = %q, want it unchanged", name, in, got)
			}
		}
	}
}

func FuzzReframe(f *testing.F) {
	for _, s := range []string{`14:42["echo","é"]`, `0:`, `1:2`, "3:\xff\xfe\xfd", `15:42["echo","😀"]`, `99999999999999999999:é`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// What re-frames comes back unchanged: the rewrite is lossless.
		if mid := unitsToBytes(b); !bytes.Equal(mid, b) {
			if out := bytesToUnits(mid); !bytes.Equal(out, b) {
				t.Fatalf("round trip of %q gave %q", b, out)
			}
		}
		if mid := bytesToUnits(b); !bytes.Equal(mid, b) {
			if out := unitsToBytes(mid); !bytes.Equal(out, b) {
				t.Fatalf("round trip of %q gave %q", b, out)
			}
		}
	})
}
