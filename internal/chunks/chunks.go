// Package chunks reads a capped message without allocating for more than
// it holds: the bindings read websocket messages and polling bodies
// through it, so that a message cut off at the cap costs the cap and one
// chunk, not what its sender claimed.
package chunks

import (
	"bytes"
	"io"
)

// Max is the largest chunk Read allocates.
const Max = 64 << 10

// Read reads r to its end in chunks that grow from 512 bytes to Max.
func Read(r io.Reader) ([][]byte, error) {
	var chunks [][]byte
	size := 512
	for {
		b := make([]byte, size)
		n, err := io.ReadFull(r, b)
		if n > 0 {
			chunks = append(chunks, b[:n])
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return chunks, nil
		default:
			return nil, err
		}
		size = min(2*size, Max)
	}
}

// ReadAll is Read, the chunks joined (without a copy when there is one).
func ReadAll(r io.Reader) ([]byte, error) {
	chunks, err := Read(r)
	if err != nil || len(chunks) > 1 {
		return bytes.Join(chunks, nil), err
	}
	if len(chunks) == 1 {
		return chunks[0], nil
	}
	return nil, nil
}
