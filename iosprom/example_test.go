package iosprom_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/iosprom"
)

// The metrics of a Manager on a private registry, served at /metrics.
// Until sockets connect, only the unlabelled series exist.
func Example() {
	m, err := iosessions.New(nil, iosessions.Config{})
	if err != nil {
		panic(err)
	}
	defer m.Shutdown(context.Background())

	reg := prometheus.NewRegistry()
	reg.MustRegister(iosprom.New(m)) // before serving: it is m's Observer
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// ... mount the binding and the app on mux, and serve it.

	fams, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, f := range fams {
		fmt.Println(f.GetName(), f.GetType())
	}
	// Output:
	// iosessions_panics_total COUNTER
	// iosessions_push_acks_total COUNTER
	// iosessions_push_sockets_total COUNTER
	// iosessions_pushes_total COUNTER
	// iosessions_saves_lost_total COUNTER
	// iosessions_sessions_live GAUGE
}
