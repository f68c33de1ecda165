package main

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/iosessions/iosessions"
)

// sessionsRoom is the engine room of every socket with a session, which
// hears presence changes.
const sessionsRoom = "iosessions-example:sessions"

// presence is the presence handler: it runs once per change of a user,
// on one node of the cluster, which tells every socket with a session on
// every node (Manager.Broadcast relays through Redis).
func (a *app) presence(p iosessions.Presence) {
	if p.User == "" {
		return // a session's change: the page shows users
	}
	if err := a.m.Broadcast(sessionsRoom, "presence", map[string]any{"user": p.User, "online": p.Online}); err != nil {
		slog.Warn("presence broadcast", "err", err)
	}
}

// online answers GET /presence: the users online on any node.
func (a *app) online(w http.ResponseWriter, r *http.Request) {
	users, err := a.m.Users(r.Context())
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "session store unavailable"})
		return
	}
	if users == nil {
		users = []string{}
	}
	writeJSON(w, http.StatusOK, map[string][]string{"online": users})
}

// push answers POST /push: a note from the caller to the sockets of a
// user (to=user:NAME) or of the caller's own session (to=session), on
// every node, answered once every socket acked it or after 2 s.
func (a *app) push(w http.ResponseWriter, r *http.Request) {
	sess := a.session(w, r)
	if sess == nil {
		return
	}
	to, text := r.PostFormValue("to"), r.PostFormValue("text")
	var target iosessions.Target
	if to == "session" {
		target = a.m.ToSession(sess)
	} else if name, ok := strings.CutPrefix(to, "user:"); ok && validUser.MatchString(name) {
		target = a.m.ToUser(name)
	} else {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `to must be "session" or "user:" and a user name`})
		return
	}
	if n := utf8.RuneCountInString(text); n == 0 || n > 1000 || !utf8.ValidString(text) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "text must be 1 to 1000 characters"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	res, err := a.m.Push(ctx, target, "note", map[string]string{"from": userOf(sess.Values), "text": text})
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "push failed"})
		return
	}
	writeJSON(w, http.StatusOK, res)
}
