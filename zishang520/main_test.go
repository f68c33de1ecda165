package zishang520_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when goroutines leak, except what the engine's
// Go client (clients v3.0.1, used by TestGoClient and the example) leaves:
// its package-level network monitor (started at init, so ignored as
// current) and the task queue of every client Manager, which nothing ever
// stops. The server's task queues run the same function, so a leak of
// theirs goes unnoticed here: TestLeak, with sio2 clients only, checks
// them. Timers of the engine and client (utils.SetTimeout: the
// namespace-connect timeout of an engine session whose connect never came,
// the client's connect timeout) end when they fire, except the few that
// the engine stops before their goroutine started (see TestLeak); the same
// holds for the upgrade's check interval (utils.SetInterval), which
// TestConnectRaces's upgrades leave now and then (about 1 in 600).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/zishang520/socket.io/v3/pkg/queue.(*Queue).loop"),
		goleak.IgnoreTopFunction("github.com/zishang520/socket.io/v3/pkg/utils.SetTimeout.func1"),
		goleak.IgnoreTopFunction("github.com/zishang520/socket.io/v3/pkg/utils.SetInterval.func1"))
}
