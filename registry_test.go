package iosessions

import (
	"slices"
	"testing"
)

// TestSockIndex: a key's sockets stay in the order they were added
// whichever leaves, adding twice adds once, and a key without sockets
// leaves no entry behind.
func TestSockIndex(t *testing.T) {
	var x sockIndex
	x.init()
	a, b, c := new(Socket), new(Socket), new(Socket)
	for _, s := range []*Socket{a, b, a, c, b} {
		x.add("k", s)
	}
	if got := x.members("k"); !slices.Equal(got, []*Socket{a, b, c}) {
		t.Fatalf("members = %p, want a, b, c", got)
	}
	x.remove("k", a)
	if got := x.members("k"); !slices.Equal(got, []*Socket{b, c}) {
		t.Fatalf("after removing a: %p, want b, c", got)
	}
	x.add("k", a)
	x.remove("k", c)
	x.remove("k", c) // not there: nothing
	if got := x.members("k"); !slices.Equal(got, []*Socket{b, a}) {
		t.Fatalf("after adding a and removing c: %p, want b, a", got)
	}
	x.remove("other", a)
	x.remove("k", b)
	x.remove("k", a)
	if got := x.members("k"); got != nil {
		t.Fatalf("emptied key: members = %p", got)
	}
	if len(x.one) != 0 || len(x.more) != 0 {
		t.Fatalf("emptied index holds %d and %d entries", len(x.one), len(x.more))
	}
}
