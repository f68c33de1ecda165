package sio2

import (
	"fmt"
	"os"
	"time"

	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
	epacket "github.com/zishang520/socket.io/parsers/engine/v3/packet"
)

var _ = socket.NewServer

func hookEngine(io *socket.Server) {
	_ = io.Engine().On("connection", func(args ...any) {
		sk := args[0].(engine.Socket)
		id := sk.Id()
		log := func(f string, a ...any) {
			fmt.Fprintf(os.Stderr, "%s %s SRV %s\n", time.Now().Format("05.000"), id, fmt.Sprintf(f, a...))
		}
		_ = sk.On("packetCreate", func(a ...any) { log("create %v", a[0].(*epacket.Packet).Type) })
		_ = sk.On("heartbeat", func(a ...any) { log("heartbeat") })
		_ = sk.On("close", func(a ...any) { log("close %v", a) })
		_ = sk.On("flush", func(a ...any) { log("flush %d", len(a[0].([]*epacket.Packet))) })
		_ = types.EventName("")
	})
}
