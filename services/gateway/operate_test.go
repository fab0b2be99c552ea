package gateway

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/xswtw/xsw/buildinfo"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/logging"
	"github.com/xswtw/xsw/platform/pgtest"
	"github.com/xswtw/xsw/platform/testkit"
)

// TestRunServesMetricsAndDashboard checks what operators get from a running gateway:
// /metrics by route pattern, the dashboard page and its authenticated event stream, and
// a prompt shutdown while a stream is open.
func TestRunServesMetricsAndDashboard(t *testing.T) {
	addr, errc, cancel := startRun(t)

	base := "http://" + addr
	get := func(path, token string) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return http.DefaultClient.Do(req)
	}
	read := func(path string) (int, string) {
		t.Helper()
		resp, err := get(path, "")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(15 * time.Second)
	for code, _ := read("/readyz"); code != http.StatusOK; code, _ = read("/readyz") {
		if time.Now().After(deadline) {
			t.Fatal("gateway never ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	read("/xsw/api/books/x.1")
	read("/xsw/api/books/12")
	read("/no/such/route/7")

	code, body := read("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		`xsw_gateway_http_requests_total{method="GET",route="/xsw/api/books/:book_id",status="400"} 1`,
		`xsw_gateway_http_requests_total{method="GET",route="/readyz",status="200"}`,
		`xsw_gateway_http_requests_total{method="GET",route="unrouted",status="404"} 1`,
		`xsw_gateway_http_request_duration_seconds_bucket{method="GET",route="/xsw/api/books/:book_id"`,
		"go_goroutines",
		buildInfo("gateway"),
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "/no/such/route") || strings.Contains(body, `route="/xsw/api/books/12"`) {
		t.Error("a raw path became a label")
	}

	if code, body := read("/xsw/admin/"); code != http.StatusOK || !strings.Contains(body, `<form id="login"`) {
		t.Errorf("/xsw/admin/ = %d %.200s", code, body)
	}
	if resp, err := get("/xsw/admin/events", "wrong"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("events with a wrong token: %v %v", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
	stream, err := get("/xsw/admin/events", "tok")
	if err != nil || stream.StatusCode != http.StatusOK {
		t.Fatalf("events: %v %v", stream, err)
	}
	defer stream.Body.Close()
	sc := bufio.NewScanner(stream.Body)
	for sc.Scan() && sc.Text() != "event: recent" {
	}
	if sc.Text() != "event: recent" {
		t.Fatalf("no recent event: %v", sc.Err())
	}

	// Stopping with a stream open: the stream ends and Run returns within the timeout.
	began := time.Now()
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return with a stream open")
	}
	if took := time.Since(began); took > 3*time.Second { // SHUTDOWN_TIMEOUT of startRun
		t.Errorf("shutdown took %v with a stream open, over SHUTDOWN_TIMEOUT", took)
	}
}

// buildInfo is the xsw_build_info sample of service in this test binary.
func buildInfo(service string) string {
	in := buildinfo.Get()
	return `xsw_build_info{goversion="` + in.GoVersion + `",revision="` + in.Revision + `",service="` + service + `",version="` + in.Version + `"} 1`
}

// TestRunReadyThroughDatabaseOutage runs the gateway with READY_DB_GRACE=2s on a
// database behind a proxy, then cuts the proxy: the gateway stays ready for the grace,
// then is not, and is ready again once Postgres is back.
func TestRunReadyThroughDatabaseOutage(t *testing.T) {
	var proxy *pgtest.Proxy
	addr, _, _ := startRunWith(t, func(vars map[string]string) {
		proxy, vars["DATABASE_URL"] = pgtest.ProxyURL(t, vars["DATABASE_URL"])
		vars["READY_DB_GRACE"] = "2s"
	}, logging.Discard())
	readyz := func() int {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	testkit.Eventually(t, 15*time.Second, "the gateway ready", func() bool { return readyz() == http.StatusOK })

	proxy.Cut()
	cutAt := time.Now()
	if code := readyz(); code != http.StatusOK {
		t.Errorf("/readyz at the start of the outage: %d, want 200 for READY_DB_GRACE", code)
	}
	testkit.Eventually(t, 15*time.Second, "/readyz 503 past READY_DB_GRACE", func() bool { return readyz() == http.StatusServiceUnavailable })
	if down := time.Since(cutAt); down < 2*time.Second {
		t.Errorf("not ready %v into the outage, within READY_DB_GRACE", down)
	}
	proxy.Restore(t)
	testkit.Eventually(t, 15*time.Second, "/readyz 200 with Postgres back", func() bool { return readyz() == http.StatusOK })
}

// TestReadyDBGraceDefault: READY_DB_GRACE is a minute unless set, and 0 turns it off.
func TestReadyDBGraceDefault(t *testing.T) {
	t.Parallel()
	for env, want := range map[string]time.Duration{"": time.Minute, "0": 0, "90s": 90 * time.Second} {
		cfg, err := ConfigFromEnv(config.Map(map[string]string{"READY_DB_GRACE": env}))
		if err != nil || cfg.ReadyDBGrace != want {
			t.Errorf("READY_DB_GRACE=%q: %v, %v; want %v", env, cfg.ReadyDBGrace, err, want)
		}
	}
}
