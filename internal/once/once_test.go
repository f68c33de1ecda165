package once

import (
	"testing"
	"time"
)

func TestEvent(t *testing.T) {
	var e Event
	if e.Fired() {
		t.Fatal("a zero Event has fired")
	}
	early := e.Done()
	select {
	case <-early:
		t.Fatal("Done closed before Fire")
	default:
	}
	waited := make(chan struct{})
	go func() { <-e.Done(); close(waited) }()
	e.Fire()
	e.Fire() // a second Fire does nothing
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("a waiter from before Fire was not woken")
	}
	<-early
	<-e.Done() // after Fire: closed at once
	if !e.Fired() {
		t.Fatal("Fired is false after Fire")
	}
}
