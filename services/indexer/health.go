package indexer

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	platformmetrics "github.com/xswtw/xsw/platform/metrics"
)

// serveHealth answers /healthz (the process runs), /readyz (Postgres and NATS answer)
// and /metrics on ln until ctx ends.
func serveHealth(ctx context.Context, ln net.Listener, ready func(context.Context) error, metricsHandler http.Handler, logger *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("GET "+platformmetrics.Path, metricsHandler)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			logger.Warn("not ready", "err", err)
			http.Error(w, "not ready", http.StatusServiceUnavailable) // the reason is logged
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx) // a probe still answering after 2s is cut off
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
