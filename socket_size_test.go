package iosessions

import (
	"testing"
	"unsafe"
)

// TestSocketSize keeps a Socket, which every connection holds, within the
// 176-byte size class: a field more puts it in the next, 16 bytes more a
// connection (see sockFlags).
func TestSocketSize(t *testing.T) {
	if n := unsafe.Sizeof(Socket{}); n > 176 {
		t.Errorf("a Socket is %d bytes, over the 176-byte size class", n)
	}
}
