package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/iosprom"
)

// metricsHandler serves GET /metrics, without auth: the library's
// metrics (iosessions_…) with the Go runtime's and the process's, on a
// private registry, in the Prometheus text format. It makes m's Observer,
// so it is called before serving.
func metricsHandler(m *iosessions.Manager) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		iosprom.New(m),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
