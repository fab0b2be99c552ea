package fetcher

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/xswtw/xsw/buildinfo"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/natstest"
)

// TestMetricsServedOnHealthAddr runs a fetcher and scrapes its health listener.
func TestMetricsServedOnHealthAddr(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	site := httptest.NewServer(http.NotFoundHandler())
	defer site.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg, err := ConfigFromEnv(config.Map(map[string]string{
		"NATS_URL": ns.URL, "BASE_URL": site.URL, "FETCHER_HEALTH_ADDR": addr, "FETCHER_ID": "metrics-test",
	}))
	if err != nil {
		t.Fatal(err)
	}
	run(t, cfg)

	var body string
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(body, `xsw_fetcher_queue_size{lane="prefetch"}`) {
		if time.Now().After(deadline) {
			t.Fatalf("no fetcher metrics on %s/metrics:\n%s", addr, body)
		}
		time.Sleep(50 * time.Millisecond)
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
	}
	for _, want := range []string{
		`xsw_fetcher_jobs_total{lane="interactive",outcome="completed"} 0`,
		`xsw_fetcher_politeness_interval_seconds{site="xsw"} 2`,
		`xsw_fetcher_circuit_state{site="xsw"} 0`,
		`xsw_fetcher_source_requests_total{site="xsw",status="2xx"} 0`,
		"xsw_fetcher_jobs_in_flight 0",
		"xsw_fetcher_dead_letters 0",
		"go_goroutines",
		buildInfo("fetcher"),
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// run runs a fetcher with cfg until the test ends, and fails the test if Run fails.
func run(t *testing.T, cfg Config) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

// buildInfo is the xsw_build_info sample of service in this test binary.
func buildInfo(service string) string {
	in := buildinfo.Get()
	return `xsw_build_info{goversion="` + in.GoVersion + `",revision="` + in.Revision + `",service="` + service + `",version="` + in.Version + `"} 1`
}
