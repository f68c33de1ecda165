package conformance

import (
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// childEnv names the test that a child process of the test binary runs.
const childEnv = "IOSESSIONS_CRASH_CHILD"

// InChild runs f in a child process of the test binary, for a test whose
// failure is a crash of the process (an engine's goroutines recover
// nothing). A crash fails t with the panic and ends only the child; a
// child that ran no test fails t too, since it would prove nothing.
func InChild(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		f(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err == nil && !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("the child process did not run %s:\n%s", t.Name(), out)
	}
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		for i, l := range lines {
			if strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "fatal error:") {
				lines = lines[i:min(i+8, len(lines))]
				break
			}
		}
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		t.Fatalf("the child process failed (%v):\n%s", err, strings.Join(lines, "\n"))
	}
}

// RepeatReader returns a reader of n bytes b, for huge bodies that are
// never held in memory.
func RepeatReader(b byte, n int) io.Reader { return &repeatReader{b, n} }

type repeatReader struct {
	b byte
	n int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	p = p[:min(len(p), r.n)]
	for i := range p {
		p[i] = r.b
	}
	r.n -= len(p)
	return len(p), nil
}

// MeasureAlloc runs f and fails t if the process allocated limit bytes or
// more meanwhile.
func MeasureAlloc(t *testing.T, limit uint64, f func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KB (limit %d KB); live heap %+d KB", alloc>>10, limit>>10, (int64(after.HeapAlloc)-int64(before.HeapAlloc))>>10)
	if alloc >= limit {
		t.Errorf("allocated %d bytes, want under %d", alloc, limit)
	}
}
