// Package metrics builds the Prometheus registry each service instance registers its
// metrics in, and serves it. There is no global registry: every instance gets its own
// (the all-in-one shares one between its three parts), so several instances in one
// process never collide.
package metrics

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/xswtw/xsw/buildinfo"
)

// Path is where every service serves its metrics.
const Path = "/metrics"

// NewRegistry returns a registry holding the Go runtime and process collectors.
func NewRegistry() (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register runtime metrics: %w", err)
		}
	}
	return reg, nil
}

// Register registers every collector with reg, stopping at the first failure.
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}

// Handler serves what g gathers in Prometheus's text format (or OpenMetrics, when the
// scraper asks for it).
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// BuildInfoName is the metric BuildInfo exports.
const BuildInfoName = "xsw_build_info"

// BuildInfo returns the gauge xsw_build_info{version,revision,goversion,service} 1 for
// service ("gateway", "fetcher", "indexer"), labelled with this binary's build
// (buildinfo.Get). The parts of the all-in-one each register theirs in the registry they
// share: the service label tells them apart.
func BuildInfo(service string) prometheus.Collector {
	in := buildinfo.Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: BuildInfoName,
		Help: "The build of this service: always 1, its labels say which build it is.",
		ConstLabels: prometheus.Labels{
			"version": in.Version, "revision": in.Revision, "goversion": in.GoVersion, "service": service,
		},
	})
	g.Set(1)
	return g
}
