package main

import (
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
)

// adminUIPath is where the example serves the socket.io Admin UI page
// (with -engine v4 and -admin-token): its ui/dist, from the npm package
// that `make run` installs in example/web/node_modules.
const adminUIPath = "/admin-ui/"

// adminUIDist is the page's folder inside node_modules.
const adminUIDist = "@socket.io/admin-ui/ui/dist"

// serveAdminUI serves the Admin UI page's files under adminUIPath. The
// folder is looked for at each request, so that installing it needs no
// restart; its absence is a 404 that says how to install it.
func serveAdminUI() http.Handler {
	var dirs []string
	for _, dir := range webDirs() {
		dirs = append(dirs, filepath.Join(dir, "node_modules", adminUIDist))
	}
	return http.StripPrefix(adminUIPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, d := range dirs {
			if _, err := os.Stat(filepath.Join(d, "index.html")); err == nil {
				w.Header().Set("Cache-Control", "no-store")
				http.FileServer(http.Dir(d)).ServeHTTP(w, r)
				return
			}
		}
		http.Error(w, "socket.io Admin UI not installed: run `make run` (or scripts/deps.sh)", http.StatusNotFound)
	}))
}

// adminUIUnsupported logs why -admin-token does not bring the Admin UI
// with -engine googollee.
func adminUIUnsupported() {
	slog.Warn("the socket.io Admin UI is v4-only: its page's socket.io client speaks Engine.IO 4, go-socket.io v1.7.0 (-engine googollee) Engine.IO 3 only; use -engine v4 for it")
}
