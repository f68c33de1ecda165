package main

import "github.com/iosessions/iosessions/googollee"

// newGoogollee serves the example's events with go-socket.io (socket.io
// 1.x/2.x clients).
func newGoogollee(a *app) (engineServer, error) {
	srv, err := googollee.NewServer(a.m, nil)
	if err != nil {
		return nil, err
	}
	googollee.OnMessage(srv, "incr", a.incr)
	googollee.OnMessage(srv, "whoami", a.whoami)
	googollee.OnEvent(srv, "echo", echo)
	go func() { _ = srv.Serve() }() // until Close
	return srv, nil
}
