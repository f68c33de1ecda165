package googollee_test

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/googollee"
	"github.com/iosessions/iosessions/internal/conformance"
	"github.com/iosessions/iosessions/internal/sio2"
)

// TestConformance runs the behaviour suite that every binding passes,
// with the real socket.io v2 wire protocol (internal/sio2) over websocket
// and long-polling.
func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Binding{
		Name:       "googollee",
		EIO:        3,
		Transports: []string{"websocket", "polling"},
		NewServer: func(m *iosessions.Manager) (conformance.Server, error) {
			srv, err := googollee.NewServer(m, nil)
			if err != nil {
				return nil, err
			}
			return &suiteServer{Server: srv, served: make(chan struct{})}, nil
		},
		Dial: dialSuite,
	})
}

// suiteServer is the binding's Server as the suite drives it.
type suiteServer struct {
	*googollee.Server
	served chan struct{}
}

func (s *suiteServer) Message(event string, h func(*iosessions.Socket, *iosessions.Session, json.RawMessage) (any, error)) {
	googollee.OnMessage(s.Server, event, h)
}

func (s *suiteServer) Event(event string, h func(*iosessions.Socket, json.RawMessage) (any, error)) {
	googollee.OnEvent(s.Server, event, h)
}

func (s *suiteServer) Typed(h conformance.TypedHandlers) {
	googollee.OnMessage(s.Server, "set", h.Set)
	googollee.OnEvent(s.Server, "shout", h.Shout)
}

func (s *suiteServer) Start() {
	go func() { defer close(s.served); _ = s.Serve() }()
}

func (s *suiteServer) Close() error {
	err := s.Server.Close()
	<-s.served
	return err
}

// dialSuite connects an sio2 client; the shim token goes in the query, as
// socket.io 2.x clients send it.
func dialSuite(ctx context.Context, base string, o conformance.DialOptions) (conformance.Client, error) {
	var q url.Values
	if o.Token != "" {
		q = url.Values{iosessions.TokenParam: {o.Token}}
	}
	c, err := sio2.Dial(ctx, base, sio2.Options{Transport: sio2.Transport(o.Transport), Header: o.Header, Query: q})
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			select {
			case ev := <-c.Events():
				o.OnEvent(ev.Name, ev.Args)
			case <-c.Done():
				return
			}
		}
	}()
	return suiteClient{c}, nil
}

type suiteClient struct{ c *sio2.Client }

func (s suiteClient) Send(ctx context.Context, event string, args ...any) (<-chan conformance.Ack, error) {
	ch, err := s.c.EmitAck(ctx, event, args...)
	if err != nil {
		return nil, err
	}
	out := make(chan conformance.Ack, 1)
	go func() {
		select {
		case a := <-ch:
			out <- conformance.Ack{Args: a.Args, Seq: a.Seq}
		case <-ctx.Done():
		case <-s.c.Done():
		}
	}()
	return out, nil
}

func (s suiteClient) Done() <-chan struct{} { return s.c.Done() }
func (s suiteClient) Close() error          { return s.c.Close() }
