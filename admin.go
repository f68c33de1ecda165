package iosessions

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
)

// AdminHandler serves the operators' view (Inspect) as JSON, and lets an
// operator disconnect sockets, to the requests that allow accepts; the
// others get 401. It is off unless the application mounts it, and a nil
// allow refuses every request. Mount it on a path of your choosing, for
// example:
//
//	mux.Handle("/admin/sockets", m.AdminHandler(iosessions.BearerToken(secret)))
//
// GET answers a View, {"users":[{"user":NAME,"sessions":[{"ref":REF,
// "sockets":[SocketInfo...]}]}]}. POST, with one form field, disconnects
// (Manager.Disconnect) the sockets of socket=NODE/ID, session=REF or
// user=NAME and answers {"sockets":N}. Answers are never cached. The view
// holds no session id, cookie, token or request header: a session shows
// only as its opaque reference.
func (m *Manager) AdminHandler(allow func(r *http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if allow == nil || !allow(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="iosessions"`)
			adminJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			v, err := m.Inspect(r.Context())
			if err != nil {
				adminJSON(w, http.StatusServiceUnavailable, map[string]string{"error": Reason(err)})
				return
			}
			adminJSON(w, http.StatusOK, v)
		case http.MethodPost:
			to, ok := adminTarget(m, r)
			if !ok {
				adminJSON(w, http.StatusBadRequest, map[string]string{"error": "want one of socket=NODE/ID, session=REF, user=NAME"})
				return
			}
			n, err := m.Disconnect(r.Context(), to)
			if err != nil {
				adminJSON(w, http.StatusServiceUnavailable, map[string]string{"error": Reason(err)})
				return
			}
			adminJSON(w, http.StatusOK, map[string]int{"sockets": n})
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			adminJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
		}
	})
}

// adminTarget reads the one target of an admin POST.
func adminTarget(m *Manager, r *http.Request) (Target, bool) {
	r.Body = http.MaxBytesReader(nil, r.Body, 4096)
	if r.ParseForm() != nil {
		return Target{}, false
	}
	var to Target
	n := 0
	if v := r.PostForm.Get("socket"); v != "" {
		node, id, ok := strings.Cut(v, "/")
		if !ok || node == "" || id == "" {
			return Target{}, false
		}
		to, n = ToSocket(node, id), n+1
	}
	if v := r.PostForm.Get("session"); v != "" {
		to, n = ToSessionRef(v), n+1
		if to.room == "" {
			return Target{}, false
		}
	}
	if v := r.PostForm.Get("user"); v != "" {
		to, n = m.ToUser(v), n+1
	}
	return to, n == 1
}

func adminJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// BearerToken returns a check for AdminHandler that accepts a request
// whose Authorization header is "Bearer " followed by token, compared in
// constant time over the whole token. An empty token accepts nothing.
func BearerToken(token string) func(r *http.Request) bool {
	want := sha256.Sum256([]byte(token))
	return func(r *http.Request) bool {
		if token == "" {
			return false
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return false
		}
		sum := sha256.Sum256([]byte(got))
		return subtle.ConstantTimeCompare(sum[:], want[:]) == 1
	}
}
