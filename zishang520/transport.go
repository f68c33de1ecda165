package zishang520

import (
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
)

// closeTransports works around a leak of the engine (servers/engine/v3
// v3.0.2). A websocket transport that its client closes (a close frame,
// or the end of the stream) marks itself closed before the engine socket
// closes it, so that Close returns at once and never runs the
// transport's DoClose: its write queue (one goroutine) is never stopped,
// and the connection is left to the garbage collector. That is one
// goroutine for every websocket a client closed, for the life of the
// server. The binding closes the websocket transport itself when the
// engine socket closes, on a goroutine of its own that ends with it
// (closing it twice is harmless: the queue's close is idempotent and the
// connection's second close fails quietly).
func (s *Server) closeTransports() error {
	return s.io.Engine().On("connection", func(args ...any) {
		_ = s.guard("engine connection", func() error {
			es, ok := first[engine.Socket](args)
			if !ok {
				return nil
			}
			return es.Once("close", func(...any) {
				t := es.Transport()
				if t == nil || t.Name() != transports.WEBSOCKET {
					return
				}
				// Not on this goroutine: the transport's "close"
				// listener may be running on it, and DoClose emits
				// "close" again (a sync.Once inside the engine's
				// emitter would wait for itself).
				go func() {
					_ = s.guard("engine close", func() error {
						t.DoClose(nil)
						return nil
					})
				}()
			})
		})
	})
}
