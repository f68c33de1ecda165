package main_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestAdminUI runs test/e2e/adminui.js: the official socket.io Admin UI
// page, served by the example with -engine v4 -admin-token, in headless
// Chromium, logs in and sees the connected sockets with their users, and
// neither its text nor its frames show a cookie value or a shim token.
// Without -admin-token, and with -engine googollee, the page is not
// served and namespace /admin refuses.
func TestAdminUI(t *testing.T) {
	node := needTools(t, true)
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "example/web/node_modules/@socket.io/admin-ui/ui/dist/index.html")); err != nil {
		missing(t, "the Admin UI page (npm @socket.io/admin-ui) is missing")
	}
	// Longer than bcrypt's 72 bytes, which the login must not truncate.
	token := strings.Repeat("t", 70) + "-admin-token-tail"

	t.Run("v4", func(t *testing.T) {
		srv := startExample(t, buildExample(t, "v4"), root, "-engine", "v4", "-admin-token", token)
		runNode(t, node, filepath.Join(root, "test", "e2e"), browserLimit,
			"adminui.js", "--url", srv.url, "--token", token)
		srv.stop(t)
	})
	off := func(t *testing.T, args ...string) {
		srv := startExample(t, buildExample(t, args[1]), root, args...)
		res, err := http.Get(srv.url + "/admin-ui/")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET /admin-ui/ = %d, want 404", res.StatusCode)
		}
		if args[1] == "v4" {
			// The namespace does not exist: the engine refuses its connect.
			ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.url, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
			if err != nil {
				t.Fatal(err)
			}
			_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, _, _ = ws.ReadMessage() // open
			_ = ws.WriteMessage(websocket.TextMessage, []byte(`40/admin,{"username":"admin","password":""}`))
			for {
				_, p, err := ws.ReadMessage()
				if err != nil {
					t.Fatalf("no answer to the /admin connect: %v", err)
				}
				if s := string(p); s != "2" {
					if !strings.HasPrefix(s, "44/admin,") {
						t.Errorf("/admin connect answered %s, want a refusal", s)
					}
					break
				}
			}
			ws.Close()
		}
		srv.stop(t)
	}
	t.Run("off", func(t *testing.T) { off(t, "-engine", "v4") })
	t.Run("googollee", func(t *testing.T) { off(t, "-engine", "googollee", "-admin-token", token) })
}
