package iosessions

import (
	"encoding/gob"
	"testing"
	"time"

	"github.com/gorilla/sessions"
)

type customValue struct{ A, B int }

func init() { gob.Register(customValue{}) }

// TestCloneAndCompare: a clone shares nothing with the original, equals
// it, and tells every change apart from a value set to what it was.
func TestCloneAndCompare(t *testing.T) {
	now := time.Now() // with a monotonic reading
	values := func() map[any]any {
		return map[any]any{
			"b": true, "i": 1, "i64": int64(2), "u8": uint8(3), "f": 1.5, "s": "x",
			"bytes": []byte("ab"), "nilbytes": []byte(nil), "t": now,
			"strs": []string{"a"}, "ints": []int{1, 2},
			"list": []any{"a", 1, map[string]any{"k": []any{now}}},
			"obj":  map[string]any{"n": 1, "tags": []string{"x"}},
			"anym": map[any]any{1: "one", "two": 2.0},
			"ss":   map[string]string{"a": "b"}, "custom": customValue{1, 2},
			3: "an int key",
		}
	}
	orig := values()
	base, err := cloneValues(orig)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range values() {
		if !sameValue(base[k], v) {
			t.Errorf("%v: a fresh equal value reads as changed", k)
		}
	}
	// Changing the original in place leaves the clone alone.
	orig["bytes"].([]byte)[0] = 'z'
	orig["list"].([]any)[2].(map[string]any)["k"] = "v"
	orig["obj"].(map[string]any)["n"] = 2
	orig["anym"].(map[any]any)[1] = "uno"
	orig["ss"].(map[string]string)["a"] = "c"
	for _, k := range []any{"bytes", "list", "obj", "anym", "ss"} {
		if sameValue(base[k], orig[k]) {
			t.Errorf("%v: changed in place, reads as unchanged", k)
		}
	}

	changed := map[any]any{
		"i":        int64(1), // another type
		"f":        2.5,
		"nilbytes": []byte{}, // empty is not nil
		"t":        now.Add(time.Nanosecond),
		"strs":     []string{"a", "b"},
		"custom":   customValue{1, 3},
		"obj":      map[string]any{"n": 1, "tags": []string{"y"}},
		"list":     []any{"a", 1},
	}
	for k, v := range changed {
		if sameValue(base[k], v) {
			t.Errorf("%v: changed to %v, reads as unchanged", k, v)
		}
	}
	if !sameValue(base["t"], now.Round(0)) {
		t.Error("a time without its monotonic reading reads as changed")
	}

	type unregistered struct{ C chan int }
	if _, err := cloneValues(map[any]any{"c": unregistered{}}); err == nil {
		t.Error("a value gob cannot encode was cloned")
	}
}

// TestTrackedDiff: the session diff through clones.
func TestTrackedDiff(t *testing.T) {
	sess := sessions.NewSession(nil, "session")
	sess.Values = map[any]any{"a": 1, "m": map[string]any{"x": 1}, "gone": true}
	tr, err := track(sess, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr.Values["a"] = 1                       // set to what it was
	tr.Values["m"].(map[string]any)["x"] = 2 // changed in place
	delete(tr.Values, "gone")                // deleted
	tr.Values["new"] = []byte("n")           // added
	c, err := tr.diff()
	if err != nil {
		t.Fatal(err)
	}
	set := map[any]any{}
	for _, e := range c.set {
		set[e.k] = e.v
	}
	if len(c.set) != 2 || set["m"] == nil || set["new"] == nil || len(c.del) != 1 || c.del[0] != "gone" {
		t.Errorf("diff = %+v", c)
	}
	if err := tr.rebase(); err != nil {
		t.Fatal(err)
	}
	if c, _ := tr.diff(); !c.empty() {
		t.Errorf("diff after rebase = %+v", c)
	}
}
