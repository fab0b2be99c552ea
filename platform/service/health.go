package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xswtw/xsw/platform/metrics"
)

// Bounds of the health listener: a readiness check, reading a probe's request, and the
// wait for probes in flight at shutdown.
const (
	readyTimeout      = 2 * time.Second
	readHeaderTimeout = 5 * time.Second
	healthShutdown    = 2 * time.Second
)

// ListenHealth opens the health listener on HealthAddr. Its error names the variable.
func (c Core) ListenHealth() (net.Listener, error) {
	ln, err := net.Listen("tcp", c.HealthAddr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Spec.HealthVar, err)
	}
	return ln, nil
}

// ServeHealth answers on ln until ctx ends, then closes it:
//
//   - GET /healthz: 200 while the process serves;
//   - GET /readyz: 200 when ready returns nil within 2 seconds, else 503 "not ready"
//     (the reason is logged, not answered: it may name a host);
//   - GET /metrics: what g gathers, in Prometheus's text format or OpenMetrics.
func ServeHealth(ctx context.Context, ln net.Listener, ready func(context.Context) error, g prometheus.Gatherer, logger *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("GET "+metrics.Path, metrics.Handler(g))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := ready(ctx); err != nil {
			logger.Warn("not ready", "err", err)
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("health listener %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), healthShutdown)
	defer cancel()
	_ = srv.Shutdown(sctx) // a probe still answering after healthShutdown is cut off
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("health listener %s: %w", ln.Addr(), err)
	}
	return nil
}

// NATSReady is the readiness check of a NATS connection: connected, and the server
// answers a round trip.
func NATSReady(nc *nats.Conn) func(context.Context) error {
	return func(ctx context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("nats: %s", nc.Status())
		}
		if err := nc.FlushWithContext(ctx); err != nil {
			return fmt.Errorf("nats: %w", err)
		}
		return nil
	}
}
