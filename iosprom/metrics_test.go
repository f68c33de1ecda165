package iosprom_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/googollee"
	"github.com/iosessions/iosessions/internal/sio2"
	"github.com/iosessions/iosessions/iosprom"
	"github.com/iosessions/iosessions/zishang520"
)

// TestMain fails the run when goroutines leak, but for the zishang520
// engine's task queues and timers, which nothing stops (see
// zishang520/main_test.go).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/zishang520/socket.io/v3/pkg/queue.(*Queue).loop"),
		goleak.IgnoreTopFunction("github.com/zishang520/socket.io/v3/pkg/utils.SetTimeout.func1"),
		goleak.IgnoreTopFunction("github.com/zishang520/socket.io/v3/pkg/utils.SetInterval.func1"))
}

const waitLimit = 10 * time.Second

// flaky is a server-side store (Loader and Updater over a MemoryStore)
// that fails every load and update while down is set.
type flaky struct {
	*iosessions.MemoryStore
	down atomic.Bool
}

var errDown = errors.New("store down")

func (f *flaky) Load(ctx context.Context, name, key string) (*sessions.Session, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.MemoryStore.Load(ctx, name, key)
}

func (f *flaky) Update(ctx context.Context, name, id string, fn func(map[any]any)) error {
	if f.down.Load() {
		return errDown
	}
	return f.MemoryStore.Update(ctx, name, id, fn)
}

// binding serves a Manager's sockets with one engine binding.
type binding struct {
	name string
	eio  int // the engine.io protocol of its clients
	// serve makes the binding's server for m, with the test's events
	// registered; stop closes it.
	serve func(t *testing.T, m *iosessions.Manager, h handlers) (srv http.Handler, stop func())
}

// handlers are the test's socket events.
type handlers struct {
	incr, fail, boom func(*iosessions.Socket, *iosessions.Session, json.RawMessage) (int, error)
}

var bindings = []binding{
	{"zishang520", 4, func(t *testing.T, m *iosessions.Manager, h handlers) (http.Handler, func()) {
		srv, err := zishang520.NewServer(m, nil)
		if err != nil {
			t.Fatal(err)
		}
		zishang520.OnMessage(srv, "incr", h.incr)
		zishang520.OnMessage(srv, "fail", h.fail)
		zishang520.OnMessage(srv, "boom", h.boom)
		return srv, func() { _ = srv.Close() }
	}},
	{"googollee", 3, func(t *testing.T, m *iosessions.Manager, h handlers) (http.Handler, func()) {
		srv, err := googollee.NewServer(m, nil)
		if err != nil {
			t.Fatal(err)
		}
		googollee.OnMessage(srv, "incr", h.incr)
		googollee.OnMessage(srv, "fail", h.fail)
		googollee.OnMessage(srv, "boom", h.boom)
		served := make(chan struct{})
		go func() { defer close(served); _ = srv.Serve() }()
		return srv, func() { _ = srv.Close(); <-served }
	}},
}

// TestScrape runs a scripted scenario through a real binding with real
// socket.io clients (internal/sio2, speaking each binding's wire
// protocol), scrapes /metrics over HTTP and checks every value.
func TestScrape(t *testing.T) {
	for _, b := range bindings {
		for _, mode := range []iosessions.Mode{iosessions.PerConnection, iosessions.PerMessage} {
			t.Run(b.name+"/"+mode.String(), func(t *testing.T) { scrapeScenario(t, b, mode) })
		}
	}
}

func scrapeScenario(t *testing.T, b binding, mode iosessions.Mode) {
	store := &flaky{MemoryStore: iosessions.NewMemoryStore()}
	t.Cleanup(func() { store.Close() })
	m, err := iosessions.New(store, iosessions.Config{
		Mode:         mode,
		SaveRetry:    time.Millisecond, // a failed save at disconnect is lost at once
		User:         func(v map[any]any) string { u, _ := v["user"].(string); return u },
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		ErrorHandler: func(error) {}, // the panic and the lost save are expected
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(iosprom.New(m))

	m.OnConnection(func(s *iosessions.Socket, sess *iosessions.Session) { _ = s.Emit("welcome", sess.Values["user"]) })
	disconnected := make(chan struct{}, 8)
	m.OnDisconnect(func(*iosessions.Socket, string) { disconnected <- struct{}{} })
	engine, stopEngine := b.serve(t, m, handlers{
		incr: func(_ *iosessions.Socket, sess *iosessions.Session, _ json.RawMessage) (int, error) {
			n, _ := sess.Values["count"].(int)
			sess.Values["count"] = n + 1
			return n + 1, nil
		},
		fail: func(*iosessions.Socket, *iosessions.Session, json.RawMessage) (int, error) {
			return 0, errors.New("nope")
		},
		boom: func(*iosessions.Socket, *iosessions.Session, json.RawMessage) (int, error) { panic("boom") },
	})
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", engine)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	var sessionID atomic.Pointer[string]
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		sess, err := m.Renew(r.Context(), w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		sess.Values["user"] = "user-q7zx"
		sess.Values["count"] = 0
		if err := sess.Save(r, w); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		sessionID.Store(&sess.ID)
	})
	ts := httptest.NewServer(m.Middleware(mux))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		_ = m.Shutdown(ctx)
		stopEngine()
		ts.CloseClientConnections()
		ts.Close()
	})

	ctx, cancel := context.WithTimeout(context.Background(), 4*waitLimit)
	defer cancel()
	res, err := http.Post(ts.URL+"/login", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "session" {
			cookie = c
		}
	}
	if res.StatusCode != http.StatusOK || cookie == nil || sessionID.Load() == nil {
		t.Fatalf("login: %s, cookies %v", res.Status, res.Cookies())
	}

	// dial connects a client with the given Cookie header ("" for none)
	// and waits for its first event, which must be want.
	dial := func(cookieHeader, want string) *sio2.Client {
		t.Helper()
		h := http.Header{}
		if cookieHeader != "" {
			h.Set("Cookie", cookieHeader)
		}
		c, err := sio2.Dial(ctx, ts.URL, sio2.Options{EIO: b.eio, Header: h, AckEvents: true})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { _ = c.Close() })
		ev, err := c.Next(ctx)
		if err != nil || ev.Name != want {
			t.Fatalf("first event %s %s (%v), want %s", ev.Name, ev.Args, err, want)
		}
		return c
	}
	call := func(c *sio2.Client, event, want string) {
		t.Helper()
		args, err := c.Call(ctx, event)
		if err != nil || len(args) != 1 || string(args[0]) != want {
			t.Fatalf("%s acked %s (%v), want %s", event, args, err, want)
		}
	}

	// Two sockets with the session, two without (none, a bad key).
	a := dial(cookie.String(), "welcome")
	a2 := dial(cookie.String(), "welcome")
	anon := dial("", "sinvalid")
	dial("session=garbage", "sinvalid")
	for i := 1; i <= 3; i++ {
		call(a, "incr", fmt.Sprint(i))
	}
	call(anon, "incr", `{"error":"no session"}`)
	call(a, "fail", `{"error":"nope"}`)
	call(a, "boom", `{"error":"internal error"}`)
	pushed, err := m.Push(ctx, m.ToUser("user-q7zx"), "note", "hi")
	if err != nil || pushed != (iosessions.PushResult{Sockets: 2, Acked: 2}) {
		t.Fatalf("Push = %+v, %v; want 2 sockets, 2 acked", pushed, err)
	}

	// The store goes down: a new socket has no session, a session event
	// fails per message (per connection it needs no store), and the save
	// of the session, whose two sockets leave, is lost per connection.
	store.down.Store(true)
	dial(cookie.String(), "sinvalid")
	if mode == iosessions.PerMessage {
		call(a, "incr", `{"error":"session store unavailable"}`)
	} else {
		call(a, "incr", "4")
	}
	_ = a.Close()
	_ = a2.Close()
	for range 2 {
		select {
		case <-disconnected:
		case <-ctx.Done():
			t.Fatal("no disconnect")
		}
	}
	store.down.Store(false)

	body := scrape(t, ts.URL+"/metrics")
	for _, secret := range []string{cookie.Value, *sessionID.Load(), "user-q7zx"} {
		if strings.Contains(body, secret) {
			t.Errorf("the scrape holds a session cookie, id or user %q", secret)
		}
	}
	fams := parse(t, body)
	checkLabels(t, fams)

	bl := "binding=" + b.name
	md := "mode=" + mode.String()
	want := map[string]float64{
		// The session's two sockets left; the anonymous one, the bad
		// key's and the one that met the store down remain.
		"iosessions_sockets{" + bl + "}": 3,
		"iosessions_sessions_live":       0,

		"iosessions_handshakes_total{" + bl + ",outcome=ok}":                2,
		"iosessions_handshakes_total{" + bl + ",outcome=no_session}":        1,
		"iosessions_handshakes_total{" + bl + ",outcome=bad_key}":           1,
		"iosessions_handshakes_total{" + bl + ",outcome=store_unavailable}": 1,
		"iosessions_disconnects_total{" + bl + "}":                          2,

		"iosessions_events_total{" + md + ",outcome=error}":      1,
		"iosessions_events_total{" + md + ",outcome=panic}":      1,
		"iosessions_events_total{" + md + ",outcome=no_session}": 1,
		"iosessions_event_duration_seconds_count{" + md + "}":    7,

		"iosessions_pushes_total":       1,
		"iosessions_push_sockets_total": 2,
		"iosessions_push_acks_total":    2,
		"iosessions_panics_total":       1,
	}
	if mode == iosessions.PerMessage {
		// A load for each handshake with a key and each event with a
		// session, an update for each incr that succeeded.
		want["iosessions_events_total{"+md+",outcome=ok}"] = 3
		want["iosessions_events_total{"+md+",outcome=store_unavailable}"] = 1
		want["iosessions_store_calls_total{op=load,result=ok}"] = 2 + 5
		want["iosessions_store_calls_total{op=load,result=not_found}"] = 1
		want["iosessions_store_calls_total{op=load,result=error}"] = 2
		want["iosessions_store_calls_total{op=update,result=ok}"] = 3
		want["iosessions_store_call_duration_seconds_count{op=load}"] = 10
		want["iosessions_store_call_duration_seconds_count{op=update}"] = 3
		want["iosessions_saves_lost_total"] = 0
	} else {
		// A load for each handshake with a key, and A's save at
		// disconnect, which failed.
		want["iosessions_events_total{"+md+",outcome=ok}"] = 4
		want["iosessions_store_calls_total{op=load,result=ok}"] = 2
		want["iosessions_store_calls_total{op=load,result=not_found}"] = 1
		want["iosessions_store_calls_total{op=load,result=error}"] = 1
		want["iosessions_store_calls_total{op=update,result=error}"] = 1
		want["iosessions_store_call_duration_seconds_count{op=load}"] = 4
		want["iosessions_store_call_duration_seconds_count{op=update}"] = 1
		want["iosessions_saves_lost_total"] = 1
	}
	got := flatten(fams)
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	// Nothing else counted: every counter series is in want.
	for k, v := range got {
		if _, ok := want[k]; !ok && strings.Contains(k, "_total") && v != 0 {
			t.Errorf("unexpected %s = %v", k, v)
		}
	}
}

// scrape GETs url and returns the body, checking the text format.
func scrape(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %s %q\n%s", res.Status, res.Header.Get("Content-Type"), body)
	}
	return string(body)
}

// parse parses the text exposition format.
func parse(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	return fams
}

// flatten maps `name{k=v,…}` (labels in order of the family) to values:
// a counter's or a gauge's, a histogram's count as name_count.
func flatten(fams map[string]*dto.MetricFamily) map[string]float64 {
	out := make(map[string]float64)
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := name
			if f.GetType() == dto.MetricType_HISTOGRAM {
				key += "_count"
			}
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// allowed are the values each label may take.
var allowed = map[string][]string{
	"binding": {"googollee", "zishang520", "unknown"},
	"outcome": {"ok", "no_session", "bad_key", "bad_token", "not_found", "ended", "store_unavailable",
		"store_timeout", "origin", "shutdown", "panic", "canceled", "error"},
	"mode": {"perconn", "permessage"},
	"op": {"load", "update", "save", "delete", "lock", "unlock", "check", "token", "relay",
		"dir_join", "dir_leave", "dir_beat", "dir_part", "dir_nodes", "dir_sockets", "dir_present"},
	"result": {"ok", "not_found", "timeout", "error"},
	"le":     nil, // histogram buckets: numbers
}

// checkLabels checks that every family is ours and every label is from
// its bounded set.
func checkLabels(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	if len(fams) == 0 {
		t.Fatal("no metrics")
	}
	for name, f := range fams {
		if !strings.HasPrefix(name, "iosessions_") {
			t.Errorf("metric %s is not prefixed iosessions_", name)
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				vals, ok := allowed[l.GetName()]
				if !ok {
					t.Errorf("%s: unexpected label %s", name, l.GetName())
					continue
				}
				if vals != nil && !contains(vals, l.GetValue()) {
					t.Errorf("%s: label %s=%q is not one of %q", name, l.GetName(), l.GetValue(), vals)
				}
			}
		}
	}
}

func contains(vals []string, v string) bool {
	for _, x := range vals {
		if x == v {
			return true
		}
	}
	return false
}
