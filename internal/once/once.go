// Package once provides Event, something that happens once: a channel
// closed once, made only for a waiter that comes before it happens.
package once

import (
	"sync"
	"sync/atomic"
)

// Event happens once, like a channel closed once, but it makes its
// channel only for a waiter that comes before it happens: a connection
// keeps a few, and most are never waited for. The zero Event has not
// happened. It must not be copied after first use.
type Event struct {
	mu sync.Mutex
	ok atomic.Bool
	ch chan struct{} // made by Done before Fire
}

// closed is the channel of every Event that happened before anyone waited.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Fire makes the event happen; later calls do nothing.
func (e *Event) Fire() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ok.Swap(true) {
		return
	}
	if e.ch != nil {
		close(e.ch)
	}
}

// Fired reports whether the event happened.
func (e *Event) Fired() bool { return e.ok.Load() }

// Done returns a channel closed once the event happened.
func (e *Event) Done() <-chan struct{} {
	if e.ok.Load() {
		return closed
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ok.Load() {
		return closed
	}
	if e.ch == nil {
		e.ch = make(chan struct{})
	}
	return e.ch
}
