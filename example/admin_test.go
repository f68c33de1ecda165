package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// adminView is the contract's GET /admin/sockets answer.
type adminView struct {
	Users []struct {
		User     string `json:"user"`
		Sessions []struct {
			Ref     string `json:"ref"`
			Sockets []struct {
				ID          string `json:"id"`
				Node        string `json:"node"`
				Transport   string `json:"transport"`
				ConnectedAt string `json:"connected_at"`
			} `json:"sockets"`
		} `json:"sessions"`
	} `json:"users"`
}

// TestAdminSockets drives the "Operators" rows: GET /admin/sockets is 404
// without -admin-token, 401 without the right bearer token, and with it
// lists the connected users, their sessions by opaque reference and their
// sockets; no cookie value or shim token of the scenario is in it.
func TestAdminSockets(t *testing.T) {
	node := needTools(t, false)
	root := repoRoot(t)
	const token = "admin-secret-for-the-test-0123456789"
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			bin := buildExample(t, e.name)
			off := startExample(t, bin, root, "-engine", e.name)
			if code, _ := adminGet(t, off.url, "Bearer "+token); code != http.StatusNotFound {
				t.Errorf("admin off: %d, want 404", code)
			}
			off.stop(t)

			srv := startExample(t, bin, root, "-engine", e.name, "-admin-token", token)
			alice := holdSocket(t, node, root, srv.url, e.name, "alice")
			bob := holdSocket(t, node, root, srv.url, e.name, "bob")
			for _, auth := range []string{"", "Bearer wrong", "Bearer " + token[:20], token} {
				if code, _ := adminGet(t, srv.url, auth); code != http.StatusUnauthorized {
					t.Errorf("Authorization %q: %d, want 401", auth, code)
				}
			}
			code, body := adminGet(t, srv.url, "Bearer "+token)
			if code != http.StatusOK {
				t.Fatalf("right token: %d %s", code, body)
			}
			var v adminView
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if len(v.Users) != 2 || v.Users[0].User != "alice" || v.Users[1].User != "bob" {
				t.Fatalf("users: %s", body)
			}
			for _, u := range v.Users {
				if len(u.Sessions) != 1 || len(u.Sessions[0].Sockets) != 1 || u.Sessions[0].Ref == "" {
					t.Fatalf("%s: %+v", u.User, u.Sessions)
				}
				s := u.Sessions[0].Sockets[0]
				at, err := time.Parse(time.RFC3339, s.ConnectedAt)
				if s.ID == "" || s.Node == "" || s.Transport != "websocket" || err != nil || time.Since(at) > time.Minute {
					t.Errorf("%s's socket %+v (%v)", u.User, s, err)
				}
			}
			secrets := []string{}
			for _, h := range []*held{alice, bob} {
				_, value, _ := strings.Cut(h.cookie, "=")
				secrets = append(secrets, value, shimToken(t, srv.url, h.cookie))
			}
			for _, s := range secrets {
				if s == "" || strings.Contains(body, s) {
					t.Errorf("the admin view holds a cookie value or a shim token (or the scenario has none: %q)", s)
				}
			}
			srv.stop(t)
		})
	}
}

func adminGet(t *testing.T, base, auth string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/admin/sockets", nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var tokenInShim = regexp.MustCompile(`"token":"([^"]+)"`)

// shimToken returns the token that the shim inlines for cookie.
func shimToken(t *testing.T, base, cookie string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/socket.io/socket.io-sessions.js", nil)
	req.Header.Set("Cookie", cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := tokenInShim.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no token in the shim: %.200s", b)
	}
	return string(m[1])
}
