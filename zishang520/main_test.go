package zishang520_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when goroutines leak, except two kinds that the
// engine's Go client (clients v3.0.1, used as a test client) leaves on
// purpose or by mistake: its package-level network monitor (started at
// init, so ignored as current), and the task queue of every client
// Manager, which nothing ever stops. The server's own task queues are the
// same function. Timers of the engine and client (utils.SetTimeout: the
// server's 45 s namespace-connect timeout of an engine session whose
// connect never came, the client's connect timeout) end when they fire.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/zishang520/socket.io/v3/pkg/queue.(*Queue).loop"),
		goleak.IgnoreTopFunction("github.com/zishang520/socket.io/v3/pkg/utils.SetTimeout.func1"))
}
