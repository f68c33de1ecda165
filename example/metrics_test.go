package main_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/iosessions/iosessions/internal/sio2"
)

// checkMetrics checks GET /metrics of the example at base, after a
// scenario ran on it: it connects one more socket with a session, pushes
// to it (acked), then scrapes, parses the text format and checks that the
// contract's metrics are there with plausible values.
func checkMetrics(t *testing.T, base, engine, mode string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	user := "metrics" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	res, err := http.PostForm(base+"/login", url.Values{"user": {user}})
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
	if res.StatusCode != http.StatusOK || cookie == nil {
		t.Fatalf("POST /login: %s, cookies %v", res.Status, res.Cookies())
	}
	eio, binding := 4, "zishang520"
	if engine == "googollee" {
		eio, binding = 3, "googollee"
	}
	c, err := sio2.Dial(ctx, base, sio2.Options{EIO: eio, AckEvents: true,
		Header: http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if _, err := c.Expect(ctx, "welcome"); err != nil {
		t.Fatalf("no welcome: %v", err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/push",
		strings.NewReader(url.Values{"to": {"session"}, "text": {"hi"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(cookie)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var pushed struct{ Sockets, Acked int }
	err = json.NewDecoder(res.Body).Decode(&pushed)
	res.Body.Close()
	if err != nil || pushed.Sockets != 1 || pushed.Acked != 1 {
		t.Fatalf("POST /push = %+v (%v), want 1 socket, 1 acked", pushed, err)
	}

	res, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s (%v)", res.Status, err)
	}
	if strings.Contains(string(body), cookie.Value) || strings.Contains(string(body), user) {
		t.Error("GET /metrics shows a session cookie or a user")
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("GET /metrics does not parse: %v", err)
	}
	for _, name := range []string{"iosessions_sockets", "iosessions_sessions_live", "iosessions_handshakes_total",
		"iosessions_events_total", "iosessions_store_calls_total", "iosessions_store_call_duration_seconds",
		"iosessions_pushes_total", "iosessions_push_sockets_total", "iosessions_push_acks_total",
		"iosessions_saves_lost_total", "iosessions_panics_total"} {
		if fams[name] == nil {
			t.Errorf("GET /metrics has no %s", name)
		}
	}
	// sum adds the values of name's series that have every label of want.
	sum := func(name string, want map[string]string) float64 {
		total := 0.0
		f := fams[name]
	series:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				total += m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				total += m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				total += float64(m.GetHistogram().GetSampleCount())
			}
		}
		return total
	}
	atLeast := func(what string, got, min float64) {
		if got < min {
			t.Errorf("%s = %v, want at least %v", what, got, min)
		}
	}
	atLeast("sockets of "+binding, sum("iosessions_sockets", map[string]string{"binding": binding}), 1)
	atLeast("sessions live", sum("iosessions_sessions_live", nil), 1)
	atLeast("handshakes ok", sum("iosessions_handshakes_total", map[string]string{"binding": binding, "outcome": "ok"}), 2)
	atLeast("events ok", sum("iosessions_events_total", map[string]string{"mode": mode, "outcome": "ok"}), 1)
	if all, ours := sum("iosessions_events_total", nil), sum("iosessions_events_total", map[string]string{"mode": mode}); all != ours {
		t.Errorf("events of another mode than %s: %v of %v", mode, all-ours, all)
	}
	loads := sum("iosessions_store_calls_total", map[string]string{"op": "load"})
	atLeast("store loads", loads, 1)
	if timed := sum("iosessions_store_call_duration_seconds", map[string]string{"op": "load"}); timed != loads {
		t.Errorf("store load latencies %v, want one per load (%v)", timed, loads)
	}
	atLeast("pushes", sum("iosessions_pushes_total", nil), 1)
	atLeast("push sockets", sum("iosessions_push_sockets_total", nil), 1)
	atLeast("push acks", sum("iosessions_push_acks_total", nil), 1)
	if n := sum("iosessions_panics_total", nil); n != 0 {
		t.Errorf("panics recovered: %v, want 0", n)
	}
}
