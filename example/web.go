package main

import (
	_ "embed"
	"net/http"
	"os"
	"path/filepath"
)

//go:embed web/index.html
var index []byte

func serveIndex(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(index)
}

// clients maps an engine to the socket.io client build that speaks its
// protocol, inside the npm packages that `make run` installs in
// example/web/node_modules (never committed).
var clients = map[string]string{
	"googollee": "socket.io-client-v2/dist/socket.io.js",
	"v4":        "socket.io-client/dist/socket.io.min.js",
}

// serveClient serves the page's socket.io client from node_modules. The
// places to look are found once; the file is looked for at each request,
// so that installing it needs no restart.
func serveClient(engine string) http.HandlerFunc {
	var paths []string
	for _, dir := range webDirs() {
		paths = append(paths, filepath.Join(dir, "node_modules", clients[engine]))
	}
	return func(w http.ResponseWriter, r *http.Request) {
		for _, p := range paths {
			if _, err := os.Stat(p); err == nil {
				w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
				http.ServeFile(w, r, p)
				return
			}
		}
		http.Error(w, "socket.io client not installed: run `make run` (or scripts/deps.sh)", http.StatusNotFound)
	}
}

// webDirs are where example/web may be: from the repository root (go run
// ./example), from example/, or beside the binary.
func webDirs() []string {
	dirs := []string{"example/web", "web"}
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Join(filepath.Dir(exe), "web"))
	}
	if d := os.Getenv("IOSESSIONS_WEB"); d != "" {
		dirs = append([]string{d}, dirs...)
	}
	return dirs
}
