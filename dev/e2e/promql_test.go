package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/xswtw/xsw/dev/sitesim"
	"github.com/xswtw/xsw/platform/testkit"
)

// hitRateQuery is the pre-cache hit rate over the whole cluster, as docs/operations.md
// gives it.
const hitRateQuery = `sum(rate(xsw_gateway_book_reads_total{served_from=~"memory|database"}[5m])) / sum(rate(xsw_gateway_book_reads_total[5m]))`

// prom is what a Prometheus server does with a target, in this process: it scrapes the
// target's /metrics into a TSDB and evaluates PromQL over what it stored.
type prom struct {
	db     *tsdb.DB
	engine *promql.Engine
}

func newProm(t *testing.T) *prom {
	t.Helper()
	opts := tsdb.DefaultOptions()
	opts.MinBlockDuration = (24 * time.Hour).Milliseconds() // a test's samples stay in the head
	opts.MaxBlockDuration = opts.MinBlockDuration
	db, err := tsdb.Open(t.TempDir(), slog.New(slog.DiscardHandler), nil, opts, tsdb.NewDBStats())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return &prom{db: db, engine: promql.NewEngine(promql.EngineOpts{
		Logger: slog.New(slog.DiscardHandler), MaxSamples: 10_000_000, Timeout: time.Minute,
		NoStepSubqueryIntervalFn: func(int64) int64 { return time.Minute.Milliseconds() },
		EnableAtModifier:         true, EnableNegativeOffset: true,
	})}
}

// scrape reads target's /metrics in Prometheus' text format and stores every sample at
// the time of the scrape, with the target labels Prometheus adds (job, instance). It
// returns the time of the scrape and the body.
func (p *prom) scrape(t *testing.T, target string) (time.Time, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, target+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %d %v", target, resp.StatusCode, err)
	}
	at := time.Now()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	tp := textparse.NewPromParser(body, labels.NewSymbolTable(), false)
	app := p.db.Appender(t.Context())
	n := 0
	for {
		entry, err := tp.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("scrape %s: %v", target, err)
		}
		if entry != textparse.EntrySeries {
			continue
		}
		_, _, v := tp.Series()
		var ls labels.Labels
		tp.Labels(&ls)
		b := labels.NewBuilder(ls)
		b.Set(model.JobLabel, "xsw")
		b.Set(model.InstanceLabel, u.Host)
		if _, err := app.Append(0, b.Labels(), at.UnixMilli(), v); err != nil {
			t.Fatalf("store %s: %v", ls, err)
		}
		n++
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("scrape %s: no sample", target)
	}
	return at, string(body)
}

// query evaluates qs at at, as a rule or a dashboard would; a scalar is returned as a
// vector of one sample without labels.
func (p *prom) query(ctx context.Context, qs string, at time.Time) (promql.Vector, error) {
	q, err := p.engine.NewInstantQuery(ctx, p.db, nil, qs, at)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return nil, res.Err
	}
	switch v := res.Value.(type) {
	case promql.Vector:
		return v, nil
	case promql.Scalar:
		return promql.Vector{{F: v.V}}, nil
	}
	return nil, fmt.Errorf("%s is a %s, not an instant vector", qs, res.Value.Type())
}

// metricsText returns target's /metrics, or "" when it cannot be read.
func metricsText(t *testing.T, target string) string {
	t.Helper()
	resp, err := http.Get(target + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// one evaluates qs at at and returns its only sample's value.
func (p *prom) one(t *testing.T, qs string, at time.Time) float64 {
	t.Helper()
	v, err := p.query(t.Context(), qs, at)
	if err != nil {
		t.Fatalf("%s: %v", qs, err)
	}
	if len(v) != 1 {
		t.Fatalf("%s = %v, want one sample", qs, v)
	}
	return v[0].F
}

// alertRules are the alerting rules of deploy/prometheus/alerts.yaml, parsed as
// Prometheus parses them.
func alertRules(t *testing.T) []rulefmt.Rule {
	t.Helper()
	path := filepath.Join("..", "..", "deploy", "prometheus", "alerts.yaml")
	groups, errs := rulefmt.ParseFile(path, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("%s: %v", path, errors.Join(errs...))
	}
	var out []rulefmt.Rule
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out = append(out, r)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s holds no alerting rule", path)
	}
	return out
}

// grafanaHitRate is the first query of the Grafana dashboard's hit-rate panel, over the
// 5 minutes Grafana's $__rate_interval stands for here.
func grafanaHitRate(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "xsw-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	for _, p := range dash.Panels {
		if p.Title == "Pre-cache hit rate" && len(p.Targets) > 0 {
			return strings.ReplaceAll(p.Targets[0].Expr, "$__rate_interval", "5m")
		}
	}
	t.Fatal("the Grafana dashboard has no \"Pre-cache hit rate\" panel")
	return ""
}

// TestHitRateAndAlertsFromTheMetrics scrapes a running all-in-one as Prometheus would,
// before and after reads it makes itself, some of books pre-cached by browsing and some
// of books never listed, and evaluates with Prometheus' own engine: the hit rate
// (docs/operations.md's query and the Grafana panel's) is the share of the reads it
// served pre-cached, and every alert of deploy/prometheus/alerts.yaml evaluates and
// stays silent while all is well; then a site refuses us, and its alert fires.
func TestHitRateAndAlertsFromTheMetrics(t *testing.T) {
	t.Parallel()
	rules := alertRules(t)
	cfg := sitesim.DefaultConfig()
	cfg.Seed = 31
	cfg.Categories = 1
	cfg.BooksPerCategory = 30
	cfg.MinChapters, cfg.MaxChapters = 5, 40
	// Politeness on (a site's refusal is recorded only then), fast; no bound on the
	// reader's share of the sites.
	s := start(t, cfg, map[string]string{"BG_JOB_RATE_LIMIT": "0.01", "API_SOURCE_RATE_LIMIT": "0"})

	var browsed, unlisted []listed
	if resp := s.get(t, "/xsw/api/categories/1/books?page=1", &browsed); resp.StatusCode != http.StatusOK || len(browsed) != 20 {
		t.Fatalf("listing page 1: %d, %d books", resp.StatusCode, len(browsed))
	}
	if resp := s.get(t, "/xsw/api/categories/1/books?page=2&bg_sync=false", &unlisted); resp.StatusCode != http.StatusOK || len(unlisted) < 4 {
		t.Fatalf("listing page 2: %d, %d books", resp.StatusCode, len(unlisted))
	}
	var ids []string
	for _, b := range browsed {
		ids = append(ids, *b.BookID)
	}
	testkit.Eventually(t, 90*time.Second, "every browsed book pre-cached", func() bool {
		var n int
		err := s.db.QueryRow(t.Context(), `
			SELECT count(*) FROM books b
			WHERE b.site = 'xsw' AND b.id = ANY($1) AND b.name <> '' AND b.chapter_total IS NOT NULL
			  AND (SELECT count(*) FROM chapters c WHERE c.site = b.site AND c.book_id = b.id) = b.chapter_total`, ids).Scan(&n)
		return err == nil && n == len(ids)
	})

	// The fetcher has counted every prefetch job, so that the rules comparing job
	// counts see only what the reads below cause.
	testkit.Eventually(t, 30*time.Second, "every prefetch job counted", func() bool {
		return strings.Contains(metricsText(t, s.GatewayURL), `xsw_fetcher_jobs_total{lane="prefetch",outcome="completed"} 20`+"\n")
	})

	p := newProm(t)
	_, before := p.scrape(t, s.GatewayURL)
	for line := range strings.Lines(before) {
		if strings.HasPrefix(line, "xsw_gateway_book_reads_total{") && !strings.HasSuffix(strings.TrimSpace(line), " 0") {
			t.Fatalf("a book read before the test made any: %s", line)
		}
	}
	if !strings.Contains(before, `xsw_gateway_book_reads_total{served_from="database",site="xsw"} 0`) {
		t.Fatalf("no book read counter at zero before the reads:\n%s", before)
	}

	// Pre-cached: each book's page and chapter list, twice each (Postgres, then the
	// gateway's memory). Never listed: a book's page, which the reader waits for or is
	// told is queued.
	hits, misses := 0, 0
	for _, b := range browsed[:5] {
		for range 2 {
			for _, path := range []string{"/xsw/api/books/" + *b.BookID, "/xsw/api/books/" + *b.BookID + "/chapters"} {
				if resp := s.get(t, path, nil); resp.StatusCode != http.StatusOK {
					t.Fatalf("GET %s: %d", path, resp.StatusCode)
				}
				hits++
			}
		}
	}
	for _, b := range unlisted[:4] {
		if resp := s.get(t, "/xsw/api/books/"+*b.BookID, nil); resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
			t.Fatalf("book %s never listed: %d", *b.BookID, resp.StatusCode)
		}
		misses++
	}
	at, _ := p.scrape(t, s.GatewayURL)

	want := float64(hits) / float64(hits+misses)
	for _, qs := range []string{hitRateQuery, grafanaHitRate(t)} {
		if got := p.one(t, qs, at); math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %d hits of %d reads = %v", qs, got, hits, hits+misses, want)
		}
	}
	if got := p.one(t, `sum(increase(xsw_gateway_book_reads_total[5m]))`, at); math.Abs(got-float64(hits+misses)) > 1e-9 {
		t.Errorf("book reads counted: %v, want %d", got, hits+misses)
	}
	t.Logf("hit rate %v: %d hits of %d reads", want, hits, hits+misses)

	// A healthy system: every alert evaluates, and none holds.
	for _, r := range rules {
		v, err := p.query(t.Context(), r.Expr, at)
		switch {
		case err != nil:
			t.Errorf("alert %s: %v", r.Alert, err)
		case len(v) > 0:
			t.Errorf("alert %s fires on a healthy system: %s = %v", r.Alert, r.Expr, v)
		}
	}

	// czbooks.net refuses us: the alert on refusing sites fires for it, and for it only.
	if err := s.Sims["czbooks"].Site().SetFaults(sitesim.FaultRule{Kind: sitesim.FaultRefuse}); err != nil {
		t.Fatal(err)
	}
	if resp := s.get(t, "/xsw/api/sites/czbooks/categories", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("categories of a site that refuses us: %d, want 503", resp.StatusCode)
	}
	testkit.Eventually(t, 20*time.Second, "the fetcher to report czbooks refusing us", func() bool {
		return strings.Contains(metricsText(t, s.GatewayURL), `xsw_fetcher_site_refused{site="czbooks"} 1`+"\n")
	})
	at, _ = p.scrape(t, s.GatewayURL)
	fired := 0
	for _, r := range rules {
		if !strings.Contains(r.Expr, "xsw_fetcher_site_refused") {
			continue
		}
		v, err := p.query(t.Context(), r.Expr, at)
		if err != nil {
			t.Fatalf("alert %s: %v", r.Alert, err)
		}
		var sites []string
		for _, smp := range v {
			sites = append(sites, smp.Metric.Get("site"))
		}
		if !slices.Equal(sites, []string{"czbooks"}) {
			t.Errorf("alert %s fires for sites %v, want [czbooks]", r.Alert, sites)
		}
		fired++
	}
	if fired == 0 {
		t.Error("no alert watches xsw_fetcher_site_refused")
	}
}
