package sitesim

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func at(ms ...int) []Request {
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]Request, len(ms))
	for i, m := range ms {
		out[i] = Request{Time: base.Add(time.Duration(m) * time.Millisecond)}
	}
	return out
}

func TestMaxInWindow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		reqs   []Request
		window time.Duration
		want   int
	}{
		{"none", nil, time.Second, 0},
		{"one", at(5), time.Second, 1},
		{"zero window", at(0, 0, 0), 0, 1},
		{"spread out", at(0, 1000, 2000, 3000), time.Second, 1},
		{"just inside", at(0, 999), time.Second, 2},
		{"burst in the middle", at(0, 1500, 1600, 1700, 1800, 4000), time.Second, 4},
		{"unsorted", at(1800, 0, 1600, 4000, 1500, 1700), time.Second, 4},
		{"same instant", at(10, 10, 10), time.Millisecond, 3},
		{"sliding, not fixed buckets", at(900, 950, 1050, 1100), 300 * time.Millisecond, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MaxInWindow(tt.reqs, tt.window); got != tt.want {
				t.Errorf("MaxInWindow = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestMinGap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		reqs   []Request
		want   time.Duration
		wantOK bool
	}{
		{"none", nil, 0, false},
		{"one", at(1), 0, false},
		{"two", at(0, 250), 250 * time.Millisecond, true},
		{"unsorted", at(1000, 0, 700, 300), 300 * time.Millisecond, true},
		{"simultaneous", at(5, 5), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := MinGap(tt.reqs)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("MinGap = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestRequestLog(t *testing.T) {
	t.Parallel()
	cfg := smallConfig()
	cfg.Latency = 20 * time.Millisecond
	srv := startServer(t, cfg)
	s := srv.Site()
	c := newClient(t)
	b := s.Books()[0]

	start := time.Now()
	get(t, c, srv.URL()+"/", 200)
	get(t, c, srv.URL()+"/"+b.ID+"/", 200)
	get(t, c, srv.URL()+"/"+b.ID+"/page-1.html", 200)
	get(t, c, srv.URL()+"/9999999/", 404)
	get(t, c, srv.URL()+"/_sim/health", 200) // control requests are not logged

	if got := s.Count(); got != 4 {
		t.Errorf("Count = %d, want 4", got)
	}
	if got := s.CountPath("/" + b.ID + "/"); got != 2 {
		t.Errorf("CountPath(book) = %d, want 2", got)
	}
	reqs := s.Requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests logged, want 4", len(reqs))
	}
	wantPaths := []string{"/", "/" + b.ID + "/", "/" + b.ID + "/page-1.html", "/9999999/"}
	wantStatus := []int{200, 200, 200, 404}
	for i, r := range reqs {
		if r.Path != wantPaths[i] || r.Status != wantStatus[i] || r.Method != http.MethodGet {
			t.Errorf("request %d = %s %s %d, want GET %s %d", i, r.Method, r.Path, r.Status, wantPaths[i], wantStatus[i])
		}
		if !strings.HasPrefix(r.RemoteAddr, "127.0.0.1:") {
			t.Errorf("request %d: remote addr %q", i, r.RemoteAddr)
		}
		if r.Time.Before(start) || r.Duration < cfg.Latency {
			t.Errorf("request %d: time %v (start %v), duration %v < latency %v", i, r.Time, start, r.Duration, cfg.Latency)
		}
	}
	// Requests one after another are at least the latency apart.
	if gap, ok := MinGap(reqs); !ok || gap < cfg.Latency {
		t.Errorf("MinGap = %v, %v; want >= %v", gap, ok, cfg.Latency)
	}

	var remote []Request
	if err := json.Unmarshal(get(t, c, srv.URL()+"/_sim/requests", 200).body, &remote); err != nil {
		t.Fatalf("decode /_sim/requests: %v", err)
	}
	if len(remote) != 4 || remote[3].Path != "/9999999/" || remote[3].Status != 404 || !remote[0].Time.Equal(reqs[0].Time) {
		t.Errorf("/_sim/requests = %+v", remote)
	}
	if err := json.Unmarshal(get(t, c, srv.URL()+"/_sim/requests?prefix=/"+b.ID+"/", 200).body, &remote); err != nil || len(remote) != 2 {
		t.Errorf("/_sim/requests?prefix: %d requests, err %v; want 2", len(remote), err)
	}

	var st Stats
	if err := json.Unmarshal(get(t, c, srv.URL()+"/_sim/stats?window=10s", 200).body, &st); err != nil {
		t.Fatalf("decode /_sim/stats: %v", err)
	}
	if st.Count != 4 || st.MaxInWindow != 4 || st.ByStatus[404] != 1 || st.ByPage["book"] != 2 || st.ByPage["toc"] != 1 || st.ByPage["home"] != 1 || st.MinGapMS < 20 {
		t.Errorf("/_sim/stats = %+v", st)
	}
	get(t, c, srv.URL()+"/_sim/stats?window=x", 400)

	if f, err := fetch(t, c, http.MethodDelete, srv.URL()+"/_sim/requests", nil); err != nil || f.status != http.StatusNoContent {
		t.Fatalf("DELETE /_sim/requests: %v %v", f.status, err)
	}
	if s.Count() != 0 || len(s.Requests()) != 0 {
		t.Errorf("after reset: Count %d, %d requests", s.Count(), len(s.Requests()))
	}
	get(t, c, srv.URL()+"/", 200)
	s.Reset()
	if s.Count() != 0 {
		t.Errorf("after Reset: Count %d", s.Count())
	}
}

func TestRequestLogLimit(t *testing.T) {
	t.Parallel()
	cfg := smallConfig()
	cfg.LogLimit = 8
	s := New(cfg)
	for range 50 {
		serve(t, s, http.MethodGet, "/")
	}
	if s.Count() != 50 {
		t.Errorf("Count = %d, want 50", s.Count())
	}
	if n := len(s.Requests()); n == 0 || n > 8 {
		t.Errorf("%d requests kept, want 1..8", n)
	}
}
