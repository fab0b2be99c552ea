package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const goBenchOutput = `goos: linux
goarch: amd64
pkg: github.com/xswtw/xsw/events
cpu: AMD EPYC
BenchmarkEncode/toc_page_fetched-2         	  100000	     11843 ns/op	 220.52 MB/s	    4000 B/op	      3 allocs/op
BenchmarkDecode/toc_page_fetched-2         	   30000	     40001 ns/op	  65.21 MB/s	    8000 B/op	     90 allocs/op
PASS
ok  	github.com/xswtw/xsw/events	3.1s
pkg: github.com/xswtw/xsw/services/indexer/internal/store
BenchmarkIndexTOCPage/refs=50
    store_test.go:12: a log line between the name and the figures
     500	   2500000 ns/op	     20000 refs/s	   12345 B/op	     200 allocs/op
BenchmarkNoProcs 	 10	 5 ns/op
--- FAIL: BenchmarkBroken
FAIL
FAIL	github.com/xswtw/xsw/services/gateway [build failed]
`

func TestParseGoBench(t *testing.T) {
	got, failed, err := parseGoBench(strings.NewReader(goBenchOutput))
	if err != nil {
		t.Fatal(err)
	}
	wantFailed := []string{"github.com/xswtw/xsw/services/indexer/internal/store BenchmarkBroken", "github.com/xswtw/xsw/services/gateway [build failed]"}
	if diff := cmp.Diff(wantFailed, failed); diff != "" {
		t.Errorf("failed (-want +got):\n%s", diff)
	}
	want := []GoBenchmark{
		{Package: "github.com/xswtw/xsw/events", Name: "BenchmarkEncode/toc_page_fetched", Procs: 2, Iterations: 100000,
			Metrics: map[string]float64{"ns/op": 11843, "MB/s": 220.52, "B/op": 4000, "allocs/op": 3}},
		{Package: "github.com/xswtw/xsw/events", Name: "BenchmarkDecode/toc_page_fetched", Procs: 2, Iterations: 30000,
			Metrics: map[string]float64{"ns/op": 40001, "MB/s": 65.21, "B/op": 8000, "allocs/op": 90}},
		{Package: "github.com/xswtw/xsw/services/indexer/internal/store", Name: "BenchmarkIndexTOCPage/refs=50", Procs: 1, Iterations: 500,
			Metrics: map[string]float64{"ns/op": 2500000, "refs/s": 20000, "B/op": 12345, "allocs/op": 200}},
		{Package: "github.com/xswtw/xsw/services/indexer/internal/store", Name: "BenchmarkNoProcs", Procs: 1, Iterations: 10,
			Metrics: map[string]float64{"ns/op": 5}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseGoBench (-want +got):\n%s", diff)
	}
}

func TestComponent(t *testing.T) {
	tests := []struct {
		name string
		fns  []string // leaf first
		want string
	}{
		{"fetcher worker in a library", []string{"runtime.memmove", "encoding/json.Marshal", "github.com/xswtw/xsw/platform/broker.Publish",
			"github.com/xswtw/xsw/services/fetcher/internal/worker.(*Pool).work", "runtime.goexit"}, "fetcher"},
		{"the root owner wins over a deeper one", []string{"github.com/xswtw/xsw/dev/sitesim.(*Site).render",
			"github.com/xswtw/xsw/services/gateway/internal/httpapi.(*Server).book", "runtime.goexit"}, "gateway"},
		{"simulated site behind net/http", []string{"fmt.Fprintf", "github.com/xswtw/xsw/dev/sitesim.(*Site).render",
			"net/http.(*conn).serve", "runtime.goexit"}, "simulated site"},
		{"embedded server", []string{"github.com/nats-io/nats-server/v2/server.(*client).readLoop"}, "NATS server (embedded)"},
		{"harness", []string{"main.closedLoop.func1"}, "harness"},
		{"client read loop", []string{"syscall.Syscall", "github.com/nats-io/nats.go.(*Conn).readLoop"}, "NATS client I/O"},
		{"background GC", []string{"runtime.scanobject", "runtime.gcBgMarkWorker"}, "Go GC (background)"},
		{"http transport", []string{"net/http.(*persistConn).readLoop"}, "net/http I/O (site client and server)"},
		{"nothing known", []string{"runtime.mcall"}, "Go runtime and other"},
		{"empty stack", nil, "Go runtime and other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := component(tt.fns); got != tt.want {
				t.Errorf("component = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAggregate(t *testing.T) {
	own := "github.com/xswtw/xsw/services/indexer/internal/store.(*Store).Apply"
	stacks := []stack{
		{fns: []string{"encoding/json.Unmarshal", "github.com/xswtw/xsw/events.Decode", "github.com/xswtw/xsw/services/indexer/internal/consume.(*Consumer).Run"}, value: 3},
		{fns: []string{"github.com/jackc/pgx/v5.(*Conn).Exec", own, own, "github.com/xswtw/xsw/services/indexer/internal/consume.(*Consumer).Run"}, value: 1},
	}
	s := aggregate("x", "f", "s", stacks)
	if s.Total != 4 {
		t.Errorf("total %v, want 4", s.Total)
	}
	if diff := cmp.Diff([]Share{{Name: "indexer", Value: 4, Percent: 100}}, s.Components); diff != "" {
		t.Errorf("components (-want +got):\n%s", diff)
	}
	wantTopics := []Share{{Name: "JSON encoding/decoding", Value: 3, Percent: 75}, {Name: "Postgres client (pgx)", Value: 1, Percent: 25}}
	if diff := cmp.Diff(wantTopics, s.Topics); diff != "" {
		t.Errorf("topics (-want +got):\n%s", diff)
	}
	// A recursive function counts once per sample in the cumulative view.
	for _, sh := range s.OwnCum {
		if sh.Name == own && sh.Value != 1 {
			t.Errorf("cumulative of a recursive function = %v, want 1", sh.Value)
		}
	}
	if s.Flat[0].Name != "encoding/json.Unmarshal" {
		t.Errorf("top flat = %q", s.Flat[0].Name)
	}
}

func TestTargets(t *testing.T) {
	r := &Results{
		Pipeline:  []Pipeline{{Chapters: 3000, BooksPerSecond: Sample{Median: 1}}, {Chapters: 50, BooksPerSecond: Sample{Median: 250}}},
		Reads:     []Reads{{Name: "book", PerSecond: Sample{Median: 25000}, P99MS: Sample{Median: 6}}},
		Listing:   &Listing{P99Ratio: 1.1, Queued: ListingLatency{Waiting: 10020}},
		Footprint: Footprint{PeakRSSMB: map[string]float64{"fetcher": 61, "gateway": 40}},
	}
	got := map[string]string{}
	for _, tg := range targets(r) {
		got[tg.Name] = metText(tg.Met)
	}
	want := map[string]string{
		"end-to-end books of 50 chapters, limit off": "**met**",
		"cached book read":                           "**not met**", // fast enough, but p99 over 5 ms
		"listing p99 with a 10,000-deep queue":       "**met**",
		"indexer":                                    "not measured",
		"fetcher peak RSS":                           "**not met**",
		"gateway peak RSS":                           "**met**",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
}

func TestMarkdown(t *testing.T) {
	// An empty run (every scenario failed) still renders, and says so.
	r := &Results{Machine: Machine{Date: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)}, Failures: []string{"pipeline: boom\nat line 2"}}
	r.Targets = targets(r)
	md := renderT(t, "benchmarks", r)
	for _, want := range []string{"# Benchmarks", "2026-01-02 03:04 UTC", "pipeline: boom at line 2", "| indexer | ≥ 50,000 chapter refs/s | not measured | not measured |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestMarkdownTwoSites(t *testing.T) {
	run := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	site := func(id string, interval, budget float64, util []float64) SiteUtilisation {
		return SiteUtilisation{Site: id, IntervalMS: interval, BudgetPerSecond: budget, AchievedPerSecond: newSample([]float64{budget * util[0], budget * util[1]}),
			Utilisation: newSample(util), MinGapMS: newSample([]float64{interval - 1, interval - 3}), MaxInInterval: newSample([]float64{1, 2}),
			RequestsPerBook: 1, BooksQueued: 300, BooksSynced: 20}
	}
	r := &Results{Machine: Machine{Date: run}, TookSeconds: 600, TwoSites: &TwoSites{Date: run.Add(time.Minute), Fetchers: 3, WorkersEach: 4,
		WindowSeconds: 5, SettleSeconds: 1, Chapters: 100, LatencyMS: 20, JitterMS: 20,
		Sites: []SiteUtilisation{site("xsw", 50, 20, []float64{0.98, 0.96}), site("czbooks", 80, 12.5, []float64{0.8, 0.9})}}}
	md := renderT(t, "benchmarks", r)
	for _, want := range []string{"## Two sites", "(300 of `xsw`, 300 of `czbooks`)", "answering in 20 to 40 ms", "2 windows of 5 s",
		"| xsw | 50 ms | 20.0 | 19.40 | 97.0% (lowest 96.0%) | **met** | 47.0 ms | 2 | 1 | 20 (2.00/s) |",
		"| czbooks | 80 ms | 12.5 | 10.62 | 85.0% (lowest 80.0%) | **not met** | 77.0 ms | 2 | 1 | 20 (2.00/s) |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "in a run of this scenario alone") {
		t.Error("a figure of the run itself is said to come from another")
	}
	r.TwoSites.Date = run.Add(time.Hour)
	if md := renderT(t, "benchmarks", r); !strings.Contains(md, "Measured in a run of this scenario alone on 2026-01-02 04:04 UTC") {
		t.Errorf("a figure merged from another run is not dated:\n%s", md)
	}
}

// renderT renders the template name on r, without notes.
func renderT(t *testing.T, name string, r *Results) string {
	t.Helper()
	b, err := render(name, report{Results: r})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRecord(t *testing.T) {
	// What BENCHMARKS.md records of its run is read back by the next run and by
	// deploy/check.
	r := &Results{Machine: Machine{Date: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), CPUs: 2, LoadBefore: "0.5 0.4 0.3"},
		Footprint: Footprint{PeakRSSMB: map[string]float64{"fetcher": 20.3}}}
	r.Targets = targets(r)
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := os.WriteFile(path, []byte(renderT(t, "benchmarks", r)), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &Record{Date: r.Machine.Date, Machine: "2 CPUs, load average 0.5 0.4 0.3", Targets: r.Targets, Footprint: r.Footprint}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
	if got, err := readRecord(filepath.Join(t.TempDir(), "none.md")); got != nil || err != nil {
		t.Errorf("readRecord of a missing report = %v, %v; want nil, nil", got, err)
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.891: "1,234,568", -20000: "-20,000"} {
		if got := num(v, 0); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
	if got := num(1234.5, 1); got != "1,234.5" {
		t.Errorf("num(1234.5, 1) = %q", got)
	}
}

func TestReplaceBlock(t *testing.T) {
	doc := "# x\n\n## Benchmarks\n\n" + headlineStart + "\nold figures\n" + headlineEnd + "\n\nafter\n"
	got, ok := replaceBlock(doc, "new figures\n")
	want := "# x\n\n## Benchmarks\n\n" + headlineStart + "\nnew figures\n" + headlineEnd + "\n\nafter\n"
	if !ok || got != want {
		t.Errorf("replaceBlock = %q, %v; want %q", got, ok, want)
	}
	if _, ok := replaceBlock("no markers", "x"); ok {
		t.Error("replaceBlock found markers in a document without them")
	}
	// Rewriting twice gives the same document.
	again, _ := replaceBlock(got, "new figures\n")
	if again != got {
		t.Errorf("second rewrite changed the document:\n%s", again)
	}
}

func TestHeadline(t *testing.T) {
	r := &Results{Machine: Machine{Date: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), CPUs: 2}, Settings: Settings{Runs: 3},
		Politeness: []Politeness{{Fetchers: 3, AllowedPerSecond: 10, AchievedPerSecond: Sample{Median: 9.8}, MinGapMS: Sample{Median: 97}}}}
	r.Targets = targets(r)
	h := renderT(t, "headline", r)
	for _, want := range []string{"Measured 2026-01-02 on 2 CPUs", "| indexer | ≥ 50,000 chapter refs/s | not measured | not measured |",
		"3 fetcher processes: 9.80 requests/s of 10.0 allowed"} {
		if !strings.Contains(h, want) {
			t.Errorf("headline lacks %q:\n%s", want, h)
		}
	}
}
