package googollee_test

import (
	"encoding/json"
	"testing"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/googollee"
	"github.com/iosessions/iosessions/internal/conformance"
)

// TestConformance runs the behaviour suite that every binding passes,
// with the real socket.io v2 wire protocol (internal/sio2) over websocket
// and long-polling.
func TestConformance(t *testing.T) { conformance.Run(t, suite) }

var suite = conformance.Binding{
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
	Dial: conformance.DialSIO2(3),
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
