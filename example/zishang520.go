package main

import "github.com/iosessions/iosessions/zishang520"

// newZishang520 serves the example's events with zishang520/socket.io v3
// (socket.io 3.x/4.x clients).
func newZishang520(a *app) (engineServer, error) {
	srv, err := zishang520.NewServer(a.m, nil)
	if err != nil {
		return nil, err
	}
	zishang520.OnMessage(srv, "incr", a.incr)
	zishang520.OnMessage(srv, "whoami", a.whoami)
	zishang520.OnEvent(srv, "echo", echo)
	return srv, nil
}
