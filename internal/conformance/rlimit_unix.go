//go:build unix

package conformance

import "syscall"

// raiseOpenFiles raises the soft limit of open files to the hard one:
// IdleConns holds 10,000 connections on each side.
func raiseOpenFiles() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
