package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.uber.org/goleak"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fasthttp's process-wide Date header refresher: never stops, owned by the library.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		// fasthttp's idle-worker cleaner notices the stopped server only after its
		// current sleep (up to 10s): it ends by itself.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"))
}

const token = "test-token"

// source reports a fixed queue and one fetcher syncing a book.
type source struct{}

func (source) Stats(context.Context) (jobs.Stats, error) {
	iv, circuit := 2.0, "closed"
	return jobs.Stats{QueueSize: 3, ByLane: map[events.Lane]int{events.LanePrefetch: 3}, Active: []jobs.Book{{Site: "toy", ID: "1000009"}},
		Workers: 2, Fetchers: 1, RateInterval: &iv, Circuit: &circuit, DeadLetters: 1}, nil
}

func (source) Fetchers(context.Context) ([]events.FetcherHeartbeat, error) {
	return []events.FetcherHeartbeat{{FetcherID: "f1", Workers: 2, Interval: 2, Circuit: "closed",
		Sites:  []events.SiteInfo{{ID: "xsw", State: events.SiteOK}, {ID: "toy", State: events.SiteOK}},
		Active: []events.ActiveJob{{JobID: "toy.1000009-3", Site: "toy", BookID: "1000009", Lane: events.LaneManual, Attempt: 1, StartedAt: time.Now()}}}}, nil
}

// harness serves a dashboard on a real listener.
type harness struct {
	ns   *natstest.Server
	url  string
	dash *Dashboard
}

func serve(t *testing.T, cfg Config) *harness {
	t.Helper()
	ns := natstest.Start(t)
	return serveOn(t, ns, cfg)
}

func serveOn(t *testing.T, ns *natstest.Server, cfg Config) *harness {
	t.Helper()
	d := New(cfg, ns.Conn, ns.JS, source{}, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	d.Mount(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		_ = d.Run(ctx)
	}()
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = app.Listener(ln)
	}()
	t.Cleanup(func() {
		cancel()
		<-ran
		_ = app.ShutdownWithTimeout(2 * time.Second)
		<-served
	})
	return &harness{ns: ns, url: "http://" + ln.Addr().String(), dash: d}
}

func get(t *testing.T, url, bearer string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestPageIsServedWithItsAssets(t *testing.T) {
	t.Parallel()
	h := serve(t, Config{AdminToken: token})
	for path, ctype := range map[string]string{"/xsw/admin/": "text/html", "/xsw/admin/app.js": "javascript", "/xsw/admin/app.css": "text/css"} {
		resp := get(t, h.url+path, "")
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), ctype) || len(body) == 0 {
			t.Errorf("GET %s = %d %q, %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
		// Nothing is fetched from another origin: the page works offline.
		for _, remote := range []string{"http://", "https://", "//cdn"} {
			if strings.Contains(string(body), remote) && !strings.Contains(string(body), "http://www.w3.org/2000/svg") {
				t.Errorf("%s refers to %q", path, remote)
			}
		}
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(h.url + "/xsw/admin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/xsw/admin/" {
		t.Errorf("GET /xsw/admin = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestEventStreamNeedsTheToken(t *testing.T) {
	t.Parallel()
	h := serve(t, Config{AdminToken: token})
	for _, bearer := range []string{"", "wrong"} {
		resp := get(t, h.url+"/xsw/admin/events", bearer)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("token %q: %d, want 401 with WWW-Authenticate", bearer, resp.StatusCode)
		}
	}
	off := serve(t, Config{})
	resp := get(t, off.url+"/xsw/admin/events", "anything")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("without XSW_ADMIN_TOKEN: %d, want 403", resp.StatusCode)
	}
}

// sse is a parsed server-sent event.
type sse struct {
	id, event, data string
}

// readEvents parses the stream into ch until it ends.
func readEvents(body io.Reader, ch chan<- sse) {
	defer close(ch)
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var ev sse
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.event != "" || ev.data != "" {
				ch <- ev
			}
			ev = sse{}
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
}

// next returns the next event named event, skipping others.
func next(t *testing.T, ch <-chan sse, event string) sse {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended before a %q event", event)
			}
			if ev.event == event {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %q event within 10s", event)
		}
	}
}

func publishJob(t *testing.T, ns *natstest.Server, kind events.JobKind, book string, at time.Time) {
	t.Helper()
	e := events.JobEvent{Header: events.Header{Version: events.Version}, Kind: kind, JobID: "xsw." + book + "-1", Site: "xsw", BookID: book,
		Lane: events.LanePrefetch, Attempt: 1, Fetcher: "f1", StartedAt: at.Add(-1500 * time.Millisecond), At: at}
	if kind == events.JobFailed {
		e.Error, e.Permanent, e.Dead = "source: not found", true, true
	}
	if kind == events.JobCompleted {
		e.Chapters, e.TOCPages = 42, 3
	}
	if _, err := broker.Publish(t.Context(), ns.JS, e.Subject(), e.MsgID(), &e); err != nil {
		t.Fatal(err)
	}
}

func TestEventStreamCarriesActivityAndSnapshots(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	// Before the gateway starts: read back from the event stream.
	publishJob(t, ns, events.JobCompleted, "1000001", time.Now().Add(-time.Minute))
	publishJob(t, ns, events.JobFailed, "1000002", time.Now().Add(-30*time.Second))
	h := serveOn(t, ns, Config{AdminToken: token, StatsEvery: 50 * time.Millisecond, StreamLifetime: 5 * time.Second})
	<-h.dash.caughtUp

	resp := get(t, h.url+"/xsw/admin/events", token)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("events: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ch := make(chan sse, 100)
	go readEvents(resp.Body, ch)

	var recent []Activity
	if err := json.Unmarshal([]byte(next(t, ch, "recent").data), &recent); err != nil {
		t.Fatal(err)
	}
	if len(recent) != 2 || recent[0].Site != "xsw" || recent[0].BookID != "1000001" || recent[0].Kind != "completed" || recent[0].Chapters != 42 ||
		recent[0].Took != 1.5 || recent[1].Kind != "failed" || recent[1].Error != "source: not found" {
		t.Errorf("recent = %+v", recent)
	}

	// Live: a request, then its job. The request and the job's events travel on two
	// streams, read apart, so the job's are published once the request is shown: the
	// order between streams is the order things happened in, not one the bus promises.
	r := events.NewBookRequested("toy", "1000003", events.LaneManual, 10, false, "admin sync", time.Now())
	if _, err := broker.Publish(t.Context(), ns.JS, r.Subject(), r.MsgID(), &r); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	var lastID string
	for len(kinds) < 3 {
		if len(kinds) == 1 {
			publishJob(t, ns, events.JobStarted, "1000003", time.Now())
			publishJob(t, ns, events.JobCompleted, "1000003", time.Now())
		}
		ev := next(t, ch, "job")
		var a Activity
		if err := json.Unmarshal([]byte(ev.data), &a); err != nil {
			t.Fatal(err)
		}
		if a.BookID != "1000003" || (a.Kind == "queued") != (a.Site == "toy") {
			t.Fatalf("job event %+v", a)
		}
		if ev.id <= lastID && len(ev.id) <= len(lastID) {
			t.Errorf("event id %s after %s", ev.id, lastID)
		}
		lastID = ev.id
		kinds = append(kinds, a.Kind)
	}
	if strings.Join(kinds, ",") != "queued,started,completed" {
		t.Errorf("kinds = %v, want queued, started, completed", kinds)
	}

	var snap Snapshot
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := json.Unmarshal([]byte(next(t, ch, "stats").data), &snap); err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, n := range snap.Throughput.Completed {
			total += n
		}
		if total == 2 || time.Now().After(deadline) {
			break
		}
	}
	if snap.QueueSize != 3 || snap.QueueByLane[events.LanePrefetch] != 3 || snap.DeadLetters != 1 || *snap.RateInterval != 2 ||
		*snap.Circuit != "closed" || len(snap.Fetchers) != 1 || strings.Join(snap.Fetchers[0].Sites, ",") != "xsw,toy" ||
		len(snap.InFlight) != 1 || snap.InFlight[0].Site != "toy" || snap.InFlight[0].BookID != "1000009" ||
		snap.InFlight[0].FetcherID != "f1" || snap.Error != "" ||
		len(snap.Sites) != 2 || snap.Sites[0].ID != "toy" || snap.Sites[1].ID != "xsw" || snap.Sites[1].State != events.SiteOK {
		t.Errorf("snapshot = %+v", snap)
	}
	completed, failed := 0, 0
	for i := range snap.Throughput.Completed {
		completed += snap.Throughput.Completed[i]
		failed += snap.Throughput.Failed[i]
	}
	if completed != 2 || failed != 1 || snap.Throughput.BucketSeconds != 10 || len(snap.Throughput.Completed) != 60 {
		t.Errorf("throughput: %d completed, %d failed in %d buckets of %ds", completed, failed,
			len(snap.Throughput.Completed), snap.Throughput.BucketSeconds)
	}
}

// putHeartbeat writes hb into the fetchers bucket, as a live fetcher does.
func putHeartbeat(t *testing.T, ns *natstest.Server, hb events.FetcherHeartbeat) {
	t.Helper()
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketFetchers)
	if err != nil {
		t.Fatal(err)
	}
	hb.Header, hb.Workers, hb.Circuit, hb.StartedAt, hb.At = events.Header{Version: events.Version}, 1, "closed", time.Now(), time.Now()
	for i := range hb.Sites {
		hb.Sites[i].Header, hb.Sites[i].BookIDPattern, hb.Sites[i].Fetcher, hb.Sites[i].At = hb.Header, `[0-9]+`, hb.FetcherID, hb.At
	}
	data, err := events.Encode(&hb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), hb.FetcherID, data); err != nil {
		t.Fatal(err)
	}
}

// sitesDashboard returns a dashboard over the queue and the fetchers of ns, as the
// gateway builds it.
func sitesDashboard(t *testing.T, ns *natstest.Server) *Dashboard {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	m, err := jobs.New(t.Context(), ns.JS, time.Hour, logger)
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{AdminToken: token}, ns.Conn, ns.JS, m, logger)
}

var (
	xswSite     = events.SiteInfo{ID: "xsw", Name: "小說王", BaseURL: "https://m.xsw.tw", RateInterval: 2, Interval: 2, State: events.SiteOK}
	czbooksSite = events.SiteInfo{ID: "czbooks", Name: "小說狂人 (czbooks.net)", BaseURL: "https://czbooks.net", RateInterval: 3, Interval: 3, State: events.SiteOK}
)

// TestSitesMergeTheFetchersReports: each site is shown once, in the worst state a live
// fetcher reports, with that fetcher's detail and next probe, whichever fetcher it is.
func TestSitesMergeTheFetchersReports(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	probe := time.Now().Add(10 * time.Minute).UTC().Truncate(time.Second)
	opens := time.Now().Add(time.Minute).UTC().Truncate(time.Second)

	// f1 is slowed down by xsw and serves czbooks; f2 serves xsw but is refused by czbooks;
	// f3 serves czbooks only, its circuit open. Each lists its default site first.
	throttledXSW := xswSite
	throttledXSW.State, throttledXSW.Interval, throttledXSW.Detail = events.SiteThrottled, 8, "xsw: slowed down, HTTP 429, Retry-After 8"
	refused := czbooksSite
	refused.State, refused.Detail, refused.Until = events.SiteRefused, "czbooks: refused, HTTP 403 (Cloudflare)", &probe
	open := czbooksSite
	open.State, open.Interval, open.Detail, open.Until = events.SiteCircuitOpen, 6, "czbooks: 5 failures in a row", &opens
	putHeartbeat(t, ns, events.FetcherHeartbeat{FetcherID: "f1", Sites: []events.SiteInfo{throttledXSW, czbooksSite}})
	putHeartbeat(t, ns, events.FetcherHeartbeat{FetcherID: "f2", Sites: []events.SiteInfo{xswSite, refused}})
	putHeartbeat(t, ns, events.FetcherHeartbeat{FetcherID: "f3", Sites: []events.SiteInfo{open}})

	snap := sitesDashboard(t, ns).Snapshot(t.Context())
	if snap.Error != "" || len(snap.Fetchers) != 3 {
		t.Fatalf("snapshot: %d fetchers, error %q", len(snap.Fetchers), snap.Error)
	}
	want := []SiteState{
		{ID: "czbooks", Name: czbooksSite.Name, BaseURL: czbooksSite.BaseURL, State: events.SiteRefused, Detail: refused.Detail, Until: &probe,
			Fetcher: "f2", Interval: 6, RateInterval: 3, Fetchers: 3},
		{ID: "xsw", Name: xswSite.Name, BaseURL: xswSite.BaseURL, State: events.SiteThrottled, Detail: throttledXSW.Detail,
			Fetcher: "f1", Interval: 8, RateInterval: 2, Fetchers: 2},
	}
	if len(snap.Sites) != len(want) {
		t.Fatalf("sites = %+v, want %+v", snap.Sites, want)
	}
	for i, w := range want {
		g := snap.Sites[i]
		untilOK := (g.Until == nil) == (w.Until == nil) && (g.Until == nil || g.Until.Equal(*w.Until))
		g.Until, w.Until = nil, nil
		if g != w || !untilOK {
			t.Errorf("site %d = %+v (until %v), want %+v (until %v)", i, snap.Sites[i], snap.Sites[i].Until, want[i], want[i].Until)
		}
	}
}

func TestWorstSiteStateWins(t *testing.T) {
	t.Parallel()
	states := []string{events.SiteOK, events.SiteThrottled, events.SiteCircuitOpen, events.SiteRefused, "melted"}
	for i, better := range states {
		for _, worse := range states[i+1:] {
			for _, order := range [][2]string{{better, worse}, {worse, better}} {
				var hbs []events.FetcherHeartbeat
				for j, st := range order {
					hbs = append(hbs, events.FetcherHeartbeat{FetcherID: fmt.Sprint("f", j),
						Sites: []events.SiteInfo{{ID: "czbooks", State: st, Detail: "saw " + st}}})
				}
				got := mergeSites(hbs)
				if len(got) != 1 || got[0].State != worse || got[0].Detail != "saw "+worse || got[0].Fetchers != 2 {
					t.Errorf("%v: %+v, want %s", order, got, worse)
				}
			}
		}
	}
	if got := mergeSites(nil); got == nil || len(got) != 0 {
		t.Errorf("no heartbeat: %#v, want an empty list", got)
	}
}

// TestSitesJSON: the page reads the sites under these names; an ok site carries no detail
// and no next probe; the fields older clients read are still there.
func TestSitesJSON(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	d := sitesDashboard(t, ns)
	var empty map[string]json.RawMessage
	if err := json.Unmarshal(mustJSON(t, d.Snapshot(t.Context())), &empty); err != nil {
		t.Fatal(err)
	}
	if string(empty["sites"]) != "[]" {
		t.Errorf("without fetchers, sites = %s, want []", empty["sites"])
	}

	probe := time.Date(2026, 1, 21, 12, 10, 0, 0, time.UTC)
	refused := czbooksSite
	refused.State, refused.Detail, refused.Until = events.SiteRefused, "czbooks: refused, HTTP 403 (Cloudflare)", &probe
	putHeartbeat(t, ns, events.FetcherHeartbeat{FetcherID: "f1", Sites: []events.SiteInfo{xswSite, refused}})
	var snap struct {
		Sites []map[string]any `json:"sites"`
	}
	data := mustJSON(t, d.Snapshot(t.Context()))
	if err := json.Unmarshal(data, &snap); err != nil {
		t.Fatal(err)
	}
	var all map[string]json.RawMessage
	_ = json.Unmarshal(data, &all)
	for _, k := range []string{"at", "queue_by_lane", "queue_size", "in_flight", "fetchers", "dead_letters", "rate_interval_seconds", "circuit", "throughput", "sites"} {
		if _, ok := all[k]; !ok {
			t.Errorf("snapshot has no %q: %s", k, data)
		}
	}
	want := []map[string]any{
		{"id": "czbooks", "name": czbooksSite.Name, "base_url": "https://czbooks.net", "state": "refused", "detail": "czbooks: refused, HTTP 403 (Cloudflare)",
			"until": "2026-01-21T12:10:00Z", "fetcher": "f1", "interval_seconds": 3.0, "rate_interval_seconds": 3.0, "fetchers": 1.0},
		{"id": "xsw", "name": xswSite.Name, "base_url": "https://m.xsw.tw", "state": "ok", "fetcher": "f1",
			"interval_seconds": 2.0, "rate_interval_seconds": 2.0, "fetchers": 1.0},
	}
	if fmt.Sprint(snap.Sites) != fmt.Sprint(want) {
		t.Errorf("sites =\n%v, want\n%v", snap.Sites, want)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestStreamEndsWithItsLifetimeAndTheDashboard(t *testing.T) {
	h := serve(t, Config{AdminToken: token, StreamLifetime: 200 * time.Millisecond})
	resp := get(t, h.url+"/xsw/admin/events", token)
	began := time.Now()
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("the stream lasted %v, want about its 200ms lifetime", took)
	}
}

func TestCounts(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 21, 12, 0, 5, 0, time.UTC)
	c := newCounts(time.Minute, 10*time.Second)
	c.add("completed", now, now)
	c.add("completed", now.Add(-15*time.Second), now)
	c.add("failed", now.Add(-15*time.Second), now)
	c.add("started", now, now)
	c.add("completed", now.Add(-2*time.Minute), now) // older than the window
	w := c.window(now)
	if w.BucketSeconds != 10 || len(w.Completed) != 6 || !w.End.Equal(time.Date(2026, 1, 21, 12, 0, 10, 0, time.UTC)) {
		t.Fatalf("window = %+v", w)
	}
	if w.Completed[5] != 1 || w.Completed[4] != 1 || w.Failed[4] != 1 || w.Failed[5] != 0 {
		t.Errorf("window = %+v", w)
	}
	// A minute later everything has left the window, and is forgotten.
	if w := c.window(now.Add(time.Minute)); w.Completed[5] != 0 || len(c.completed) != 0 || len(c.failed) != 0 {
		t.Errorf("later window = %+v, kept %v %v", w, c.completed, c.failed)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
