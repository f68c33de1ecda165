package googollee

import "testing"

func TestReframe(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"ascii untouched", `14:42["echo","e"]`, `14:42["echo","e"]`},
		{"two-byte rune", `14:42["echo","é"]`, `15:42["echo","é"]`},
		{"three-byte rune", `14:42["echo","✓"]`, `16:42["echo","✓"]`},
		{"surrogate pair", `15:42["echo","😀"]`, `17:42["echo","😀"]`},
		{"several packets", `14:42["echo","é"]1:2`, `15:42["echo","é"]1:2`},
		{"empty packet", `0:14:42["echo","é"]`, `0:15:42["echo","é"]`},
		{"length too long", `99:42["é"]`, `99:42["é"]`},
		{"length splits a pair", `10:42["e","😀"]`, `10:42["e","😀"]`},
		{"no colon", `42["é"]`, `42["é"]`},
		{"negative", `-1:42["é"]`, `-1:42["é"]`},
		{"non-digits", `1a:42["é"]`, `1a:42["é"]`},
		{"twenty digits", `99999999999999999999:é`, `99999999999999999999:é`},
		{"invalid utf-8", "3:\xff\xfe\xfd\u00e9", "3:\xff\xfe\xfd\u00e9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(reframe([]byte(tt.in))); got != tt.want {
				t.Errorf("reframe(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzReframe(f *testing.F) {
	for _, s := range []string{`14:42["echo","é"]`, `0:`, `1:2`, "3:\xff\xfe\xfd", `15:42["echo","😀"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out := reframe(b)
		if len(out) < len(b)-16 {
			t.Fatalf("reframe shrank %q to %q", b, out)
		}
	})
}
