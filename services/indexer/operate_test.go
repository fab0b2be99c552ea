package indexer_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xswtw/xsw/buildinfo"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/logging"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/platform/pgtest"
	"github.com/xswtw/xsw/platform/testkit"
	"github.com/xswtw/xsw/services/indexer"
	"github.com/xswtw/xsw/services/indexer/internal/notify"
)

func TestWebhookConfig(t *testing.T) {
	t.Parallel()
	cfg, err := indexer.ConfigFromEnv(config.Map(map[string]string{
		"WEBHOOK_URLS":            " https://hooks.example.org/a , http://10.0.0.1:9000/b ",
		"WEBHOOK_SECRET":          "s",
		"WEBHOOK_QUEUE_THRESHOLD": "50",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.WebhookURLs) != 2 || cfg.WebhookURLs[0] != "https://hooks.example.org/a" || cfg.WebhookURLs[1] != "http://10.0.0.1:9000/b" ||
		cfg.WebhookSecret != "s" || cfg.WebhookQueueThreshold != 50 {
		t.Errorf("config %+v", cfg)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"URL without secret", map[string]string{"WEBHOOK_URLS": "https://h.example.org/"}, "WEBHOOK_SECRET"},
		{"not a URL", map[string]string{"WEBHOOK_URLS": "hooks.example.org", "WEBHOOK_SECRET": "s"}, "WEBHOOK_URLS"},
		{"not http", map[string]string{"WEBHOOK_URLS": "ftp://h.example.org/", "WEBHOOK_SECRET": "s"}, "WEBHOOK_URLS"},
		{"threshold zero", map[string]string{"WEBHOOK_QUEUE_THRESHOLD": "0"}, "WEBHOOK_QUEUE_THRESHOLD"},
		{"threshold not a number", map[string]string{"WEBHOOK_QUEUE_THRESHOLD": "lots"}, "WEBHOOK_QUEUE_THRESHOLD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := indexer.ConfigFromEnv(config.Map(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
	// A bad URL is named by its position: the error, which is logged, shows no token.
	_, err = indexer.ConfigFromEnv(config.Map(map[string]string{
		"WEBHOOK_URLS": "https://hooks.example.org/a,ftp://user:pw@hooks.example/T0001/SECRETxyz?token=abc", "WEBHOOK_SECRET": "s",
	}))
	if err == nil || !strings.Contains(err.Error(), "URL 2 of 2") || strings.ContainsAny(err.Error(), "/?@") {
		t.Errorf("err = %v, want one naming URL 2 and showing none of it", err)
	}
}

// TestRunServesMetricsAndNotifies runs the indexer with a webhook: it serves its metrics
// next to its probes and tells the webhook of a job that failed for good.
func TestRunServesMetricsAndNotifies(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	dsn := pgtest.Schema(t)
	addr := freeAddr(t)
	var (
		mu   sync.Mutex
		hook []notify.Notification
	)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !notify.Verify([]byte("hook-secret"), body, r.Header.Get(notify.HeaderSignature)) {
			t.Errorf("unsigned delivery %s", body)
		}
		var n notify.Notification
		_ = json.Unmarshal(body, &n)
		mu.Lock()
		hook = append(hook, n)
		mu.Unlock()
	}))
	defer rcv.Close()
	cfg, err := indexer.ConfigFromEnv(config.Map(map[string]string{
		"DATABASE_URL": dsn, "NATS_URL": ns.URL, "INDEXER_HEALTH_ADDR": addr,
		"WEBHOOK_URLS": rcv.URL, "WEBHOOK_SECRET": "hook-secret",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := indexer.Migrate(t.Context(), cfg, logging.Discard()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- indexer.Run(ctx, cfg, logging.Discard()) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()

	var body string
	scrape := func() string {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	// The notifier's consumer starts at the end of the stream: publish once it exists.
	testkit.Eventually(t, 15*time.Second, "metrics served", func() bool { body = scrape(); return strings.Contains(body, "xsw_indexer_events_total") })

	at := time.Now().UTC()
	book := events.BookFetched{Header: events.Header{Version: events.Version}, JobID: "xsw.9-1", Site: "xsw", BookID: "9",
		Book: events.BookMeta{Name: "書"}, FetchedAt: at}
	failed := events.JobEvent{Header: events.Header{Version: events.Version}, Kind: events.JobFailed, JobID: "czbooks.8-1",
		Site: "czbooks", BookID: "8", Lane: events.LanePrefetch, Attempt: 1, At: at, Error: "source: not found", Permanent: true, Dead: true}
	for _, p := range []struct {
		subject string
		payload events.Payload
	}{{events.SubjectFetchedBook("xsw", "9"), &book}, {failed.Subject(), &failed}} {
		if _, err := broker.Publish(t.Context(), ns.JS, p.subject, "", p.payload); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 15*time.Second, "both events indexed", func() bool {
		body = scrape()
		return strings.Contains(body, `xsw_indexer_events_total{kind="book",site="xsw"} 1`) &&
			strings.Contains(body, `xsw_indexer_events_total{kind="job",site="czbooks"} 1`)
	})
	for _, want := range []string{"xsw_indexer_batch_duration_seconds_count", "xsw_indexer_batch_events_bucket", "xsw_indexer_poison_total 0",
		"xsw_indexer_webhook_notifications_total", "go_goroutines", buildInfo("indexer")} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	testkit.Eventually(t, 15*time.Second, "the webhook told of the failed job", func() bool {
		mu.Lock()
		defer mu.Unlock()
		if len(hook) != 1 || hook[0].Type != notify.TypeJobFailed || hook[0].ID != "job.failed:czbooks.8-1" {
			return false
		}
		data, _ := hook[0].Data.(map[string]any)
		return data["site"] == "czbooks" && data["book_id"] == "8"
	})
}

// buildInfo is the xsw_build_info sample of service in this test binary.
func buildInfo(service string) string {
	in := buildinfo.Get()
	return `xsw_build_info{goversion="` + in.GoVersion + `",revision="` + in.Revision + `",service="` + service + `",version="` + in.Version + `"} 1`
}
