package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/database"
	"github.com/xswtw/xsw/platform/logging"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/platform/service"
	"github.com/xswtw/xsw/platform/service/servicetest"
	"github.com/xswtw/xsw/services/gateway/internal/testdb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fasthttp's process-wide Date header refresher: never stops, owned by the library.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		// fasthttp's idle-worker cleaner notices the stopped server only after its
		// current sleep (up to 10s): it ends by itself.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"))
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := ConfigFromEnv(config.Map(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Core: service.Core{
			Spec: service.Spec{Name: "gateway"}, NATSURL: "nats://127.0.0.1:4222", NATSReplicas: 1, RequestMaxAge: 24 * time.Hour,
			SyncDedupWindow: 5 * time.Minute, Sources: config.Sources{{ID: "xsw", URL: "", RateLimit: 2 * time.Second}},
			ShutdownTimeout: 5 * time.Second, ReplicaID: cfg.ReplicaID, LogLevel: "info", LogFormat: "text",
		},
		HTTPAddr: ":8000", DatabaseURL: database.DefaultURL, StatementTimeout: 5 * time.Second, ReadyDBGrace: time.Minute,
		CacheTTL: 900 * time.Second, ListingCacheTTL: time.Minute, CacheMaxBytes: 64 << 20, InteractiveWait: 10 * time.Second,
		ChapterWait: time.Minute, RPCTimeout: 15 * time.Second, ReadsFlush: 30 * time.Second,
		RateLimit: 120, SourceRateLimit: 10, RateWindow: time.Minute, CORSAllowOrigins: "*",
	}
	if cfg.ReplicaID == "" {
		t.Error("no replica id generated")
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults\n got %+v\nwant %+v", cfg, want)
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	cfg, err := ConfigFromEnv(config.Map(map[string]string{
		"HTTP_ADDR": "127.0.0.1:9000", "CACHE_TTL_SECONDS": "60", "LISTING_CACHE_TTL": "2m", "INTERACTIVE_WAIT": "2.5",
		"CHAPTER_WAIT": "30s", "XSW_ADMIN_TOKEN": "tok", "BG_JOB_MAX_AGE": "1h", "SYNC_DEDUP_WINDOW": "600",
		"API_RATE_LIMIT": "0", "API_RATE_WINDOW": "10s", "API_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7,::1",
		"CORS_ALLOW_ORIGINS": "https://reader.example.org, https://*.example.net",
		"SOURCES":            "czbooks, xsw", "BASE_URL": "https://czbooks.example", "SOURCE_XSW_URL": "https://m.xsw.example",
		"BG_JOB_RATE_LIMIT": "3", "SOURCE_XSW_RATE_LIMIT": "0.5", "DB_STATEMENT_TIMEOUT": "1500ms",
	}))
	if err != nil {
		t.Fatal(err)
	}
	wantSources := config.Sources{
		{ID: "czbooks", URL: "https://czbooks.example", RateLimit: 3 * time.Second},
		{ID: "xsw", URL: "https://m.xsw.example", RateLimit: 500 * time.Millisecond},
	}
	if !reflect.DeepEqual(cfg.Sources, wantSources) || cfg.Sources.Default() != "czbooks" {
		t.Errorf("sources %+v, want %+v", cfg.Sources, wantSources)
	}
	wantProxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("::1/128")}
	if cfg.RateLimit != 0 || cfg.RateWindow != 10*time.Second || !reflect.DeepEqual(cfg.TrustedProxies, wantProxies) ||
		cfg.CORSAllowOrigins != "https://reader.example.org,https://*.example.net" {
		t.Errorf("rate limit %d per %s, proxies %v, origins %q", cfg.RateLimit, cfg.RateWindow, cfg.TrustedProxies, cfg.CORSAllowOrigins)
	}
	if cfg.HTTPAddr != "127.0.0.1:9000" || cfg.CacheTTL != time.Minute || cfg.ListingCacheTTL != 2*time.Minute ||
		cfg.InteractiveWait != 2500*time.Millisecond || cfg.ChapterWait != 30*time.Second || cfg.AdminToken != "tok" ||
		cfg.RequestMaxAge != time.Hour || cfg.SyncDedupWindow != 10*time.Minute || cfg.StatementTimeout != 1500*time.Millisecond {
		t.Errorf("config = %+v", cfg)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key, value string
		also       map[string]string // other variables set
	}{
		{"HTTP_ADDR", "8000", nil},
		{"NATS_URL", "http://127.0.0.1:4222", nil},
		{"DB_STATEMENT_TIMEOUT", "0", nil},
		{"DB_STATEMENT_TIMEOUT", "50ms", nil},
		{"DB_STATEMENT_TIMEOUT", "1h", nil},
		{"DB_STATEMENT_TIMEOUT", "soon", nil},
		{"BASE_URL", "m.xsw.tw", nil},
		{"SOURCES", "1xsw", nil},
		{"SOURCES", "xsw,toy,xsw", nil},
		{"SOURCES", ",", nil},
		{"SOURCE_TOY_URL", "toy.example", map[string]string{"SOURCES": "xsw,toy"}},
		{"SOURCE_XSW_URL", "ftp://m.xsw.tw", nil},
		{"SOURCE_TOY_RATE_LIMIT", "-1", map[string]string{"SOURCES": "xsw,toy"}},
		{"SOURCE_TOY_RATE_LIMIT", "often", map[string]string{"SOURCES": "xsw,toy"}},
		{"CACHE_TTL_SECONDS", "0", nil},
		{"CACHE_TTL_SECONDS", "soon", nil},
		{"LISTING_CACHE_TTL", "-1", nil},
		{"INTERACTIVE_WAIT", "5m", nil},
		{"CHAPTER_WAIT", "2m", nil},
		{"RPC_TIMEOUT", "0", nil},
		{"SYNC_DEDUP_WINDOW", "-1s", nil},
		{"READY_DB_GRACE", "-1s", nil},
		{"READY_DB_GRACE", "2h", nil},
		{"READY_DB_GRACE", "soon", nil},
		{"BG_JOB_MAX_AGE", "-1h", nil},
		{"SHUTDOWN_TIMEOUT", "never", nil},
		{"API_RATE_LIMIT", "-1", nil},
		{"API_RATE_LIMIT", "many", nil},
		{"API_RATE_WINDOW", "0", nil},
		{"API_RATE_WINDOW", "48h", nil},
		{"API_TRUSTED_PROXIES", "10.0.0.0/33", nil},
		{"API_TRUSTED_PROXIES", "proxy.local", nil},
		{"CORS_ALLOW_ORIGINS", "reader.example.org", nil},
		{"CORS_ALLOW_ORIGINS", "https://reader.example.org/app", nil},
		{"CORS_ALLOW_ORIGINS", "https://*", nil},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			env := map[string]string{tt.key: tt.value}
			for k, v := range tt.also {
				env[k] = v
			}
			_, err := ConfigFromEnv(config.Map(env))
			if err == nil || !strings.Contains(err.Error(), tt.key) {
				t.Errorf("err = %v, want it to name %s", err, tt.key)
			}
		})
	}
}

// TestSharedVariablesRefused: the gateway refuses a bad value of a variable every
// service reads with the same error as the others, the core's.
func TestSharedVariablesRefused(t *testing.T) {
	t.Parallel()
	servicetest.Refusals(t, func(getenv func(string) string) (service.Core, error) {
		cfg, err := ConfigFromEnv(getenv)
		return cfg.Core, err
	})
}

func TestDatabaseLabelHidesPasswords(t *testing.T) {
	t.Parallel()
	tests := []struct{ dsn, want string }{
		{"postgres://xsw:hunter2@db.example:5433/xsw?sslmode=disable", "postgres://xsw@db.example:5433/xsw"},
		{"postgres://xsw@db.example/xsw?password=hunter2&sslmode=disable", "postgres://xsw@db.example:5432/xsw"},
		{"host=db.example user=xsw password=hunter2 dbname=xsw", "postgres://xsw@db.example:5432/xsw"},
		{"postgres://xsw:hunter2@/xsw?host=/run/postgresql", "postgres://xsw@/xsw?host=%2Frun%2Fpostgresql"},
		{"::not a dsn::", "(unparsable DATABASE_URL)"},
	}
	for _, tt := range tests {
		got := databaseLabel(tt.dsn)
		if got != tt.want || strings.Contains(got, "hunter2") {
			t.Errorf("databaseLabel(%q) = %q, want %q", tt.dsn, got, tt.want)
		}
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	t.Parallel()
	err := Run(t.Context(), Config{HTTPAddr: "nowhere"}, logging.Discard())
	if err == nil || !strings.Contains(err.Error(), "HTTP_ADDR") {
		t.Errorf("Run = %v, want a config error naming HTTP_ADDR", err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestRun starts the gateway on a real listener against real NATS and Postgres, checks it
// serves, then stops it through its context.
func TestRun(t *testing.T) {
	t.Parallel()
	addr, errc, cancel := startRun(t)

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) (int, []byte, error) {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, body, err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if code, _, err := get("/healthz"); err == nil && code == http.StatusOK {
			break
		}
		select {
		case err := <-errc:
			t.Fatalf("Run returned before serving: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("gateway never answered /healthz")
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, body, err := get("/xsw/api/health")
	if err != nil || code != http.StatusOK {
		t.Fatalf("health: %d %s %v", code, body, err)
	}
	var h map[string]any
	if err := json.Unmarshal(body, &h); err != nil || h["status"] != "ok" {
		t.Errorf("health = %s", body)
	}
	if code, body, _ := get("/xsw/api/books/x.1"); code != http.StatusBadRequest || !strings.Contains(string(body), `"detail"`) {
		t.Errorf("bad book id: %d %s", code, body)
	}
	// No fetcher ran: the site is configured, not described.
	want := `[{"id":"xsw","name":"xsw","base_url":"","default":true,"state":"unknown","rate_interval_seconds":2}]`
	if code, body, _ := get("/xsw/api/sites"); code != http.StatusOK || string(body) != want {
		t.Errorf("sites: %d %s, want %s", code, body, want)
	}
	if code, body, _ := get("/xsw/api/books/1721851"); code != http.StatusServiceUnavailable || !strings.Contains(string(body), "no fetcher has described site xsw") {
		t.Errorf("a book not stored of an undescribed site: %d %s, want 503", code, body)
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Run = %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, _, err := get("/healthz"); err == nil {
		t.Error("gateway still serves after Run returned")
	}
}

// startRun runs the gateway against a fresh embedded NATS and database schema on a free
// port (admin token "tok"), and returns its address, where Run's result arrives, and
// the function that stops it (also called when the test ends).
func startRun(t *testing.T) (addr string, errc <-chan error, cancel context.CancelFunc) {
	t.Helper()
	return startRunWith(t, nil, logging.Discard())
}

// startRunWith is startRun with the variables tuned by tune (when not nil), logging to
// logger.
func startRunWith(t *testing.T, tune func(vars map[string]string), logger *slog.Logger) (addr string, errc <-chan error, cancel context.CancelFunc) {
	t.Helper()
	ns := natstest.Start(t)
	_, dsn := testdb.Pool(t)
	addr = freeAddr(t)
	vars := map[string]string{
		"HTTP_ADDR": addr, "DATABASE_URL": dsn, "NATS_URL": ns.URL, "XSW_ADMIN_TOKEN": "tok", "SHUTDOWN_TIMEOUT": "3",
	}
	if tune != nil {
		tune(vars)
	}
	cfg, err := ConfigFromEnv(config.Map(vars))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := make(chan error, 1)
	go func() { ch <- Run(ctx, cfg, logger) }()
	return addr, ch, cancel
}
