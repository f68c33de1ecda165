package iosredis

// Scripts names the registry's scripts by their SHA1, for tests that count
// Redis commands.
var Scripts = map[string]string{
	joinScript.Hash():    "join",
	leaveScript.Hash():   "leave",
	beatScript.Hash():    "beat",
	partScript.Hash():    "part",
	socketsScript.Hash(): "sockets",
	liveScript.Hash():    "live",
	touchScript.Hash():   "touch",
}

// SaveUnlockSHA is the SHA1 of the script that saves under a lock.
var SaveUnlockSHA = saveUnlockScript.Hash()

// SetAutoPipeline turns the hot path's autopipeliner on or off for the
// Stores made after it, to measure what it does.
func SetAutoPipeline(on bool) { autoPipeline = on }
