//go:build race

package zishang520_test

// raceEnabled reports whether the tests run under the race detector.
const raceEnabled = true
