//go:build !unix

package conformance

func raiseOpenFiles() {}
