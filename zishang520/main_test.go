package zishang520_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when goroutines leak.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
