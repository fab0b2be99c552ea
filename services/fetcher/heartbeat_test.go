package fetcher

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/natstest"
)

// TestHeartbeatReportsEverySite runs a fetcher serving two sites, one slowed down and
// one whose circuit is open (as another fetcher left them in the shared bucket), and
// reads what it reports of each: in its heartbeat and in the sites bucket.
func TestHeartbeatReportsEverySite(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	politeness, err := ns.JS.KeyValue(t.Context(), events.BucketPoliteness)
	if err != nil {
		t.Fatal(err)
	}
	// Each site books in its own entry: the toy site is slowed down four times, the
	// circuit of m.xsw.tw is open.
	open := time.Now().Add(time.Hour).UnixNano()
	for key, state := range map[string]string{
		"site.toy": `{"next":0,"factor":4,"failures":0,"open_until":0,"opens":0}`,
		"site.xsw": fmt.Sprintf(`{"next":0,"factor":1,"failures":4,"open_until":%d,"opens":1}`, open),
	} {
		if _, err := politeness.Put(t.Context(), key, []byte(state)); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := ConfigFromEnv(config.Map(map[string]string{
		"NATS_URL": ns.URL, "SOURCES": "xsw,toy", "BASE_URL": srv.URL, "SOURCE_TOY_URL": strings.Replace(srv.URL, "http://", "http://user:secret@", 1),
		"SOURCE_TOY_RATE_LIMIT": "0.5", "FETCHER_HEALTH_ADDR": "127.0.0.1:0", "FETCHER_ID": "hb-test",
	}))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Adapters = Builtin()
	if err := cfg.Adapters.Add(toyAdapter()); err != nil {
		t.Fatal(err)
	}
	run(t, cfg)

	fetchers, err := ns.JS.KeyValue(t.Context(), events.BucketFetchers)
	if err != nil {
		t.Fatal(err)
	}
	var hb events.FetcherHeartbeat
	deadline := time.Now().Add(10 * time.Second)
	for {
		if e, err := fetchers.Get(t.Context(), "hb-test"); err == nil && events.Decode(e.Value(), &hb) == nil && len(hb.Sites) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no heartbeat with two sites")
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := map[string]events.SiteInfo{
		"xsw": {ID: "xsw", Name: "台灣小說網 (m.xsw.tw)", BaseURL: srv.URL, BookIDPattern: `[1-9][0-9]{0,11}`, CategoryIDPattern: `[1-9][0-9]{0,8}`,
			RateInterval: 2, Interval: 2, State: events.SiteCircuitOpen, Detail: "repeated failures opened the circuit", Fetcher: "hb-test"},
		"toy": {ID: "toy", Name: "Toy", BaseURL: strings.Replace(srv.URL, "http://", "http://user:xxxxx@", 1), BookIDPattern: `[1-9][0-9]{0,11}`,
			CategoryIDPattern: `[1-9][0-9]{0,8}`, RateInterval: 0.5, Interval: 2, State: events.SiteThrottled,
			Detail: "slowed down to one request per 2s after the site asked us to", Fetcher: "hb-test"},
	}
	check := func(where string, got events.SiteInfo) {
		t.Helper()
		w := want[got.ID]
		w.Header, w.At = got.Header, got.At
		// The open circuit says when it lets a request through: within the hour set.
		if w.State == events.SiteCircuitOpen && got.Until != nil && got.Until.After(time.Now().Add(59*time.Minute)) {
			w.Until = got.Until
		}
		if got != w {
			t.Errorf("%s: site %+v, want %+v", where, got, w)
		}
		if strings.Contains(got.BaseURL, "secret") {
			t.Errorf("%s: base URL %q shows a password", where, got.BaseURL)
		}
	}
	if hb.Sites[0].ID != "xsw" || hb.Sites[1].ID != "toy" {
		t.Errorf("heartbeat sites %s, %s; want xsw (the default) then toy", hb.Sites[0].ID, hb.Sites[1].ID)
	}
	for _, s := range hb.Sites {
		check("heartbeat", s)
	}
	if hb.Interval != 2 || hb.Circuit != "open" {
		t.Errorf("heartbeat interval %v circuit %q, want the default site's: 2, open", hb.Interval, hb.Circuit)
	}
	sitesKV, err := ns.JS.KeyValue(t.Context(), events.BucketSites)
	if err != nil {
		t.Fatal(err)
	}
	for id := range want {
		e, err := sitesKV.Get(t.Context(), id)
		if err != nil {
			t.Fatalf("sites bucket has no %s: %v", id, err)
		}
		var info events.SiteInfo
		if err := events.Decode(e.Value(), &info); err != nil {
			t.Fatal(err)
		}
		check("sites bucket", info)
	}
	// The heartbeat JSON names the fields the gateways read.
	raw, _ := json.Marshal(hb.Sites[1])
	for _, field := range []string{`"state":"throttled"`, `"rate_interval_seconds":0.5`, `"book_id_pattern":`} {
		if !strings.Contains(string(raw), field) {
			t.Errorf("site info %s lacks %s", raw, field)
		}
	}
}

// TestSiteStateIsPublishedAtOnce: a fetcher writes a site's state to the sites bucket as
// soon as it sees the site start or stop refusing us, well within a heartbeat period
// (events.FetcherHeartbeatTTL/3), so that gateways tell readers at once.
func TestSiteStateIsPublishedAtOnce(t *testing.T) {
	t.Parallel()
	const within = time.Second
	tests := []struct {
		name string
		// seed is the site's shared politeness entry at start, if any.
		seed func() string
		// refusing is whether the site refuses us.
		refusing bool
		// request is a reader's book the test asks for, if any.
		request string
		want    string
	}{
		{name: "refusal starts", refusing: true, request: "1", want: events.SiteRefused},
		{name: "refusal ends", seed: func() string {
			return fmt.Sprintf(`{"next":0,"factor":1,"failures":0,"open_until":0,"opens":0,"refused":"xsw: refused, HTTP 403","probe_at":%d}`,
				time.Now().Add(1500*time.Millisecond).UnixNano())
		}, want: events.SiteOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns := natstest.Start(t)
			answered := make(chan time.Time, 16)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// Answer after the fetcher's beat for the job's start.
				select {
				case <-time.After(500 * time.Millisecond):
				case <-r.Context().Done():
					return
				}
				if tt.refusing {
					w.WriteHeader(http.StatusForbidden)
				} else {
					_, _ = w.Write([]byte("<html></html>"))
				}
				answered <- time.Now()
			}))
			defer srv.Close()
			if tt.seed != nil {
				kv, err := ns.JS.KeyValue(t.Context(), events.BucketPoliteness)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := kv.Put(t.Context(), "site.xsw", []byte(tt.seed())); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := ConfigFromEnv(config.Map(map[string]string{
				"NATS_URL": ns.URL, "BASE_URL": srv.URL, "FETCHER_HEALTH_ADDR": "127.0.0.1:0", "FETCHER_ID": "state-test",
				"CIRCUIT_COOLDOWN": "1m", "SHUTDOWN_TIMEOUT": "1s",
			}))
			if err != nil {
				t.Fatal(err)
			}
			sitesKV, err := ns.JS.KeyValue(t.Context(), events.BucketSites)
			if err != nil {
				t.Fatal(err)
			}
			run(t, cfg)
			if tt.request != "" {
				r := events.NewBookRequested("xsw", tt.request, events.LaneInteractive, 100, false, "test", time.Now())
				if _, err := broker.Publish(t.Context(), ns.JS, r.Subject(), r.MsgID(), &r); err != nil {
					t.Fatal(err)
				}
			}
			var at time.Time
			select {
			case at = <-answered:
			case <-time.After(10 * time.Second):
				t.Fatal("the site was never asked")
			}
			deadline := at.Add(events.FetcherHeartbeatTTL / 3)
			for {
				var info events.SiteInfo
				if e, err := sitesKV.Get(t.Context(), "xsw"); err == nil && events.Decode(e.Value(), &info) == nil && info.State == tt.want {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the sites bucket did not say %s within a heartbeat period", tt.want)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if took := time.Since(at); took > within {
				t.Errorf("the sites bucket said %s %v after the site's answer, want within %v", tt.want, took.Round(time.Millisecond), within)
			}
		})
	}
}
