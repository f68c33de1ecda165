package googollee

// SetTestHookOpen sets a func that runs in the middle of each handshake,
// on the engine's goroutine, before the session is handed over to Serve.
func SetTestHookOpen(f func()) { testHookOpen = f }
