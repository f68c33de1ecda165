package iosprom

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iosessions/iosessions"
)

// Metrics is the Prometheus collector of one Manager: it counts the
// Manager's observations and reads its gauges at scrape time. Make it
// with New and register it on a prometheus.Registerer. It is safe for
// concurrent use.
type Metrics struct {
	m *iosessions.Manager

	sockets  *prometheus.Desc
	sessions *prometheus.Desc
	bindings sync.Map // binding label -> struct{}: reported at 0 once seen

	handshakes  *prometheus.CounterVec
	disconnects *prometheus.CounterVec
	events      *prometheus.CounterVec
	eventTime   *prometheus.HistogramVec
	storeCalls  *prometheus.CounterVec
	storeTime   *prometheus.HistogramVec
	savesLost   prometheus.Counter
	pushes      prometheus.Counter
	pushSockets prometheus.Counter
	pushAcks    prometheus.Counter
	panics      prometheus.Counter

	// The children of the vectors above, by label values, once used:
	// the values come from small fixed sets, and a lookup here costs a
	// fraction of WithLabelValues, which hashes and validates them.
	children sync.Map // labels -> prometheus.Counter or prometheus.Observer
}

// labels names one child of a vector: the vector and its label values.
type labels struct {
	vec  any
	a, b string
}

// child returns the child of vec with label values a (and b), made by
// with on first use.
func child[T any](x *Metrics, vec any, a, b string, with func() T) T {
	k := labels{vec, a, b}
	if c, ok := x.children.Load(k); ok {
		return c.(T)
	}
	c := with()
	x.children.Store(k, c)
	return c
}

var (
	_ prometheus.Collector = (*Metrics)(nil)
	_ iosessions.Observer  = (*Metrics)(nil)
)

// Buckets are the upper bounds, in seconds, of the duration histograms:
// from 100 µs (an in-memory store) to 10 s (past the default
// Config.StoreTimeout of 5 s).
var Buckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// unknownBinding is the binding label of a socket whose Conn does not say
// (iosessions.Binder).
const unknownBinding = "unknown"

// New returns the metrics of m and makes them m's Observer
// (Manager.Observe), replacing any other: call it before serving, once
// per Manager. Register the result, for example with
// prometheus.MustRegister or a Registry's MustRegister.
func New(m *iosessions.Manager) *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iosessions_" + name, Help: help}, labels)
	}
	histogram := func(name, help string, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "iosessions_" + name, Help: help, Buckets: Buckets}, labels)
	}
	single := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "iosessions_" + name, Help: help})
	}
	x := &Metrics{
		m: m,
		sockets: prometheus.NewDesc("iosessions_sockets",
			"Sockets connected to this process, by engine binding.", []string{"binding"}, nil),
		sessions: prometheus.NewDesc("iosessions_sessions_live",
			"Sessions with at least one socket connected to this process.", nil, nil),
		handshakes: counter("handshakes_total",
			"Socket handshakes, by binding and outcome: ok (the socket has a session) or the sinvalid reason.", "binding", "outcome"),
		disconnects: counter("disconnects_total",
			"Sockets that disconnected, by binding.", "binding"),
		events: counter("events_total",
			"Session events handled (Socket.Do), by mode and outcome.", "mode", "outcome"),
		eventTime: histogram("event_duration_seconds",
			"How long session events took to handle, before their ack, store calls and lock wait included, by mode.", "mode"),
		storeCalls: counter("store_calls_total",
			"Calls of the session store, by operation and result (ok, not_found, timeout, error).", "op", "result"),
		storeTime: histogram("store_call_duration_seconds",
			"Latency of the session store's calls, by operation.", "op"),
		savesLost: single("saves_lost_total",
			"Disconnected sockets whose session changes could not be saved, retries included (ErrUnsaved)."),
		pushes: single("pushes_total",
			"Pushes made by Manager.Push in this process."),
		pushSockets: single("push_sockets_total",
			"Sockets reached by those pushes, on every node."),
		pushAcks: single("push_acks_total",
			"Sockets that acked those pushes before Push returned."),
		panics: single("panics_total",
			"Panics of handlers, hooks and the engine, recovered and reported as *iosessions.PanicError."),
	}
	m.Observe(x)
	return x
}

// collectors are the metrics that Metrics keeps itself.
func (x *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{x.handshakes, x.disconnects, x.events, x.eventTime,
		x.storeCalls, x.storeTime, x.savesLost, x.pushes, x.pushSockets, x.pushAcks, x.panics}
}

// Describe implements prometheus.Collector.
func (x *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- x.sockets
	ch <- x.sessions
	for _, c := range x.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector. The gauges are read from the
// Manager now (Manager.Sockets, Manager.Stats).
func (x *Metrics) Collect(ch chan<- prometheus.Metric) {
	counts := make(map[string]int)
	x.bindings.Range(func(b, _ any) bool {
		counts[b.(string)] = 0
		return true
	})
	for _, s := range x.m.Sockets() {
		b := binding(s.Conn())
		if _, ok := counts[b]; !ok {
			x.bindings.Store(b, struct{}{})
		}
		counts[b]++
	}
	for b, n := range counts {
		ch <- prometheus.MustNewConstMetric(x.sockets, prometheus.GaugeValue, float64(n), b)
	}
	ch <- prometheus.MustNewConstMetric(x.sessions, prometheus.GaugeValue, float64(x.m.Stats().Sessions))
	for _, c := range x.collectors() {
		c.Collect(ch)
	}
}

// Observe implements iosessions.Observer; New registers it with the
// Manager. It ignores the kinds of observation it does not know.
func (x *Metrics) Observe(o iosessions.Observation) {
	switch o.Kind {
	case iosessions.KindHandshake:
		b := label(o.Binding)
		x.seen(b)
		child(x, x.handshakes, b, o.Outcome, func() prometheus.Counter { return x.handshakes.WithLabelValues(b, o.Outcome) }).Inc()
	case iosessions.KindClose:
		b := label(o.Binding)
		child(x, x.disconnects, b, "", func() prometheus.Counter { return x.disconnects.WithLabelValues(b) }).Inc()
	case iosessions.KindEvent:
		mode := o.Mode.String()
		child(x, x.events, mode, o.Outcome, func() prometheus.Counter { return x.events.WithLabelValues(mode, o.Outcome) }).Inc()
		child(x, x.eventTime, mode, "", func() prometheus.Observer { return x.eventTime.WithLabelValues(mode) }).Observe(o.Duration.Seconds())
	case iosessions.KindStoreCall:
		child(x, x.storeCalls, o.Op, o.Outcome, func() prometheus.Counter { return x.storeCalls.WithLabelValues(o.Op, o.Outcome) }).Inc()
		child(x, x.storeTime, o.Op, "", func() prometheus.Observer { return x.storeTime.WithLabelValues(o.Op) }).Observe(o.Duration.Seconds())
	case iosessions.KindSaveLost:
		x.savesLost.Inc()
	case iosessions.KindPush:
		x.pushes.Inc()
		x.pushSockets.Add(float64(o.Sockets))
		x.pushAcks.Add(float64(o.Acked))
	case iosessions.KindPanic:
		x.panics.Inc()
	}
}

// seen records a binding, so that its socket gauge reads 0, rather than
// vanishing, once its last socket left.
func (x *Metrics) seen(b string) {
	if _, ok := x.bindings.Load(b); !ok {
		x.bindings.Store(b, struct{}{})
	}
}

// binding is the binding label of c.
func binding(c iosessions.Conn) string {
	if b, ok := c.(iosessions.Binder); ok {
		return label(b.Binding())
	}
	return unknownBinding
}

func label(binding string) string {
	if binding == "" {
		return unknownBinding
	}
	return binding
}
