package conformance

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/iosessions/iosessions"
)

// The operators' view (Manager.Inspect, AdminHandler) and Disconnect.

// inspect: the view groups the sockets by user and session, each with its
// rooms and remote address; the admin handler serves it only to the right
// bearer token, and nothing it returns holds a cookie, session id or shim
// token; an operator's disconnect of one socket, and of a user, tells the
// clients and closes them, and the sessions go on.
func inspect(t *testing.T, b Binding) {
	eachModeTransport(t, b, func(t *testing.T, mode iosessions.Mode, tr string) {
		e := newEnv(t, b, envOptions{Mode: mode})
		cs, a1, a2, bob := e.twoAlicesAndBob(t, tr)
		carol := e.loginAs(t, "carol")
		tok := e.token(t, carol)
		byToken := e.dial(t, tr, nil, tok)
		byToken.expect(t, "welcome")
		anon := e.dial(t, tr, nil, "")
		anon.expect(t, "sinvalid")
		ctx := ctxT(t)

		v, err := e.m.Inspect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, u := range v.Users {
			names = append(names, u.User)
		}
		if strings.Join(names, ",") != "alice,bob,carol" || len(v.Partial) != 0 {
			t.Fatalf("users %v, partial %v", names, v.Partial)
		}
		if n := len(v.Users[0].Sessions); n != 2 {
			t.Fatalf("alice has %d sessions, want 2", n)
		}
		sizes := map[int]int{}
		userRooms := map[string]string{} // user room -> user
		for _, u := range v.Users {
			for _, s := range u.Sessions {
				sizes[len(s.Sockets)]++
				for _, si := range s.Sockets {
					if si.User != u.User || si.Session != s.Ref || si.Node != e.m.Node() || si.Transport != tr {
						t.Errorf("socket %+v in %s/%s", si, u.User, s.Ref)
					}
					if host, _, _ := strings.Cut(si.Addr, ":"); host != "127.0.0.1" {
						t.Errorf("remote address %q", si.Addr)
					}
					ur := userRoom(si.Rooms)
					if !contains(si.Rooms, s.Ref) || ur == "" {
						t.Errorf("rooms %v lack the session's or the user's", si.Rooms)
					}
					if other, ok := userRooms[ur]; ok && other != u.User {
						t.Errorf("%s and %s share the user room", u.User, other)
					}
					userRooms[ur] = u.User
				}
			}
		}
		if len(userRooms) != 3 {
			t.Errorf("user rooms %v, want one per user", userRooms)
		}
		if sizes[2] != 1 || sizes[1] != 3 {
			t.Errorf("sockets per session: %v, want one of 2 and three of 1", sizes)
		}

		// The handler: no token, a wrong one, a prefix of the right one,
		// then the right one.
		const secret = "operator-secret-0123456789"
		ts := httptest.NewServer(e.m.AdminHandler(iosessions.BearerToken(secret)))
		defer ts.Close()
		get := func(auth string) (int, string) {
			req, _ := http.NewRequest(http.MethodGet, ts.URL, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
			}
			return resp.StatusCode, string(body)
		}
		for _, auth := range []string{"", "Bearer wrong", "Bearer " + secret[:10], secret, "Basic " + secret} {
			if code, _ := get(auth); code != http.StatusUnauthorized {
				t.Errorf("Authorization %q: %d, want 401", auth, code)
			}
		}
		code, body := get("Bearer " + secret)
		if code != http.StatusOK {
			t.Fatalf("right token: %d %s", code, body)
		}
		var got iosessions.View
		if err := json.Unmarshal([]byte(body), &got); err != nil || len(got.Users) != 3 {
			t.Fatalf("view %s: %v", body, err)
		}
		secrets := []string{tok}
		for _, c := range []*http.Cookie{a1, a2, bob, carol} {
			secrets = append(secrets, c.Value, e.session(t, c).ID)
		}
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("the admin view holds a secret of the scenario: %q", s)
			}
		}

		// Disconnect one socket (bob's), through the handler.
		post := func(form url.Values) (int, string) {
			req, _ := http.NewRequest(http.MethodPost, ts.URL, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", "Bearer "+secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		bobs, _ := e.m.SocketsOf(ctx, e.m.ToUser("bob"))
		if len(bobs) != 1 {
			t.Fatalf("bob's sockets %v", bobs)
		}
		if code, body := post(url.Values{"socket": {bobs[0].Node + "/" + bobs[0].ID}}); code != http.StatusOK || !jsonEq(body, `{"sockets":1}`) {
			t.Fatalf("disconnect bob's socket: %d %s", code, body)
		}
		wantJSON(t, "bob's sinvalid", cs[3].expect(t, "sinvalid"), `{"reason":"disconnected by the server"}`)
		cs[3].waitClosed(t, time.Now().Add(5*time.Second))
		if code, _ := post(url.Values{"user": {"alice"}, "session": {v.Users[0].Sessions[0].Ref}}); code != http.StatusBadRequest {
			t.Errorf("two targets: %d, want 400", code)
		}
		// Then alice, by the API: her three sockets, not carol's.
		if n, err := e.m.Disconnect(ctx, e.m.ToUser("alice")); err != nil || n != 3 {
			t.Fatalf("Disconnect(alice) = %d, %v; want 3", n, err)
		}
		for _, c := range cs[:3] {
			wantJSON(t, "alice's sinvalid", c.expect(t, "sinvalid"), `{"reason":"disconnected by the server"}`)
			c.waitClosed(t, time.Now().Add(5*time.Second))
		}
		wantJSON(t, "carol's whoami", byToken.call(t, "whoami"), `{"user":"carol","count":0}`)
		// The sessions go on: alice comes back with her cookie.
		again := e.dial(t, tr, withCookie(a1), "")
		again.expect(t, "welcome")
		if n, err := e.m.Disconnect(ctx, iosessions.ToSessionRef("not a ref")); err != nil || n != 0 {
			t.Errorf("Disconnect(bad ref) = %d, %v", n, err)
		}
	})
}

// userRoom is the user room among rooms, or "".
func userRoom(rooms []string) string {
	for _, r := range rooms {
		if strings.HasPrefix(r, "iosessions:u:") {
			return r
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// inspectAcrossNodes: each node's Inspect shows the sockets of both, with
// the other node's rooms (asked live over the relay), and a Disconnect on
// A reaches the sockets on B.
func inspectAcrossNodes(t *testing.T, b Binding) {
	cl := newCluster(t, b, clusterOptions{Mode: iosessions.PerConnection})
	onA, onB, bob, _ := aliceAndBob(t, cl)
	ctx := ctxT(t)
	for _, e := range []*env{cl.a, cl.b} {
		var v iosessions.View
		waitFor(t, "the other node in the view", func() bool {
			var err error
			v, err = e.m.Inspect(ctx)
			return err == nil && len(v.Partial) == 0 && len(v.Users) == 2 && len(v.Users[0].Sessions) == 2
		})
		nodes := map[string]int{}
		for _, u := range v.Users {
			for _, s := range u.Sessions {
				for _, si := range s.Sockets {
					nodes[si.Node]++
					if !contains(si.Rooms, s.Ref) || si.Addr == "" {
						t.Errorf("socket %+v: rooms or address missing", si)
					}
				}
			}
		}
		if nodes[cl.a.m.Node()] != 1 || nodes[cl.b.m.Node()] != 3 {
			t.Errorf("sockets per node: %v", nodes)
		}
	}
	if n, err := cl.a.m.Disconnect(ctx, cl.a.m.ToUser("alice")); err != nil || n != 3 {
		t.Fatalf("Disconnect(alice) from A = %d, %v; want 3", n, err)
	}
	for _, c := range append(onB, onA) {
		wantJSON(t, "sinvalid", c.expect(t, "sinvalid"), `{"reason":"disconnected by the server"}`)
		c.waitClosed(t, time.Now().Add(5*time.Second))
	}
	wantJSON(t, "bob's echo", bob.call(t, "echo", "still here"), `"still here"`)
}
