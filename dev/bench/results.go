package main

import (
	"fmt"
	"math"
	"time"
)

// Results is everything one run of the harness measured. It is written as results.json
// and rendered as BENCHMARKS.md.
type Results struct {
	Machine  Machine  `json:"machine"`
	Settings Settings `json:"settings"`
	// TookSeconds is the harness's own wall time.
	TookSeconds float64 `json:"took_seconds"`

	// Pipeline is the all-in-one run in the harness's process, one entry per book size.
	Pipeline []Pipeline `json:"pipeline"`
	// PipelineProcesses is the same with gateway, fetcher and indexer as processes.
	PipelineProcesses *Pipeline `json:"pipeline_processes,omitempty"`
	// PipelineAllInOne is the same with the xsw binary as a process, queued through the
	// admin API.
	PipelineAllInOne *Pipeline        `json:"pipeline_allinone_process,omitempty"`
	Indexer          *IndexerBacklog  `json:"indexer,omitempty"`
	Reads            []Reads          `json:"reads,omitempty"`
	Listing          *Listing         `json:"listing,omitempty"`
	Politeness       []Politeness     `json:"politeness,omitempty"`
	TwoSites         *TwoSites        `json:"two_sites,omitempty"`
	Efficiency       *Efficiency      `json:"efficiency,omitempty"`
	Footprint        Footprint        `json:"footprint"`
	Profiles         []ProfileSummary `json:"profiles,omitempty"`
	GoBench          []GoBenchmark    `json:"go_benchmarks,omitempty"`
	Targets          []Target         `json:"targets"`
	// Previous is what BENCHMARKS.md held of the run before this one, for comparison.
	Previous *Record  `json:"previous,omitempty"`
	Failures []string `json:"failures,omitempty"`
}

// Settings are the sizes and knobs of the run.
type Settings struct {
	Runs               int     `json:"runs"`
	FetcherWorkers     int     `json:"fetcher_workers"`
	Books50            int     `json:"books_per_run_50_chapters"`
	Books3000          int     `json:"books_per_run_3000_chapters"`
	IndexerBooks       int     `json:"indexer_books_per_run"`
	Concurrency        int     `json:"read_concurrency"`
	ReadSeconds        float64 `json:"read_seconds"`
	ListingRate        float64 `json:"listing_rate_per_second"`
	ListingSeconds     float64 `json:"listing_seconds"`
	QueueDepth         int     `json:"queue_depth"`
	PolitenessInterval float64 `json:"politeness_interval_seconds"`
	PolitenessWindow   float64 `json:"politeness_window_seconds"`
}

// Pipeline is the throughput of syncing books with the politeness limit off.
type Pipeline struct {
	Mode           string `json:"mode"`
	Chapters       int    `json:"chapters_per_book"`
	Books          int    `json:"books_per_run"`
	Workers        int    `json:"fetcher_workers"`
	BooksPerSecond Sample `json:"books_per_second"`
	RefsPerSecond  Sample `json:"chapter_refs_per_second"`
	Seconds        Sample `json:"seconds"`
	// FetchedSeconds is when the fetchers had published the last book's completion: the
	// rest of Seconds is the indexer catching up.
	FetchedSeconds Sample `json:"fetched_seconds,omitzero"`
	// ProcessCores is the average number of cores the process running the pipeline used
	// (the harness's, when the pipeline runs in it).
	ProcessCores Sample `json:"process_cores,omitempty"`
	// MachineBusy is the share of the machine's CPU time that was busy, every process
	// (Postgres included) counted.
	MachineBusy Sample `json:"machine_busy"`
	// AllocKBPerBook is what the process allocated per book (in-process only).
	AllocKBPerBook Sample `json:"alloc_kb_per_book,omitzero"`
	// QueueSeconds is how long queueing every book took (through the admin API only).
	QueueSeconds float64 `json:"queue_seconds,omitempty"`
	// CPUMsPerBook is the CPU time per book of each process (separate processes only).
	CPUMsPerBook map[string]Sample `json:"cpu_ms_per_book,omitempty"`
}

// IndexerBacklog is the indexer alone writing a backlog of fetched events.
type IndexerBacklog struct {
	Books           int    `json:"books_per_run"`
	ChaptersPerBook int    `json:"chapters_per_book"`
	RefsPerPage     int    `json:"refs_per_page"`
	Events          int    `json:"events_per_run"`
	BatchSize       int    `json:"batch_size"`
	RefsPerSecond   Sample `json:"chapter_refs_per_second"`
	EventsPerSecond Sample `json:"events_per_second"`
	Seconds         Sample `json:"seconds"`
	ProcessCores    Sample `json:"process_cores"`
	MachineBusy     Sample `json:"machine_busy"`
	// FirstCommitMS is how long after the consumer was resumed the first batch was
	// announced: the part of Seconds that is not indexing.
	FirstCommitMS Sample `json:"first_commit_ms"`
}

// Reads is the gateway answering one kind of cached read at a fixed concurrency.
type Reads struct {
	Name        string  `json:"name"`
	Path        string  `json:"path"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds_per_run"`
	PerSecond   Sample  `json:"requests_per_second"`
	P50MS       Sample  `json:"p50_ms"`
	P99MS       Sample  `json:"p99_ms"`
	Errors      int     `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
}

// Listing compares listing latency with an empty queue and a deep one.
type Listing struct {
	Path       string         `json:"path"`
	Rate       float64        `json:"rate_per_second"`
	Seconds    float64        `json:"seconds_per_run"`
	QueueDepth uint64         `json:"queue_depth"`
	Empty      ListingLatency `json:"empty_queue"`
	Queued     ListingLatency `json:"deep_queue"`
	// P99Ratio is the deep queue's p99 over the empty queue's.
	P99Ratio float64 `json:"p99_ratio"`
}

// ListingLatency is the latency of the listing runs of one case.
type ListingLatency struct {
	Waiting    uint64 `json:"requests_waiting"`
	P50MS      Sample `json:"p50_ms"`
	P99MS      Sample `json:"p99_ms"`
	MaxMS      Sample `json:"max_ms"`
	Errors     int    `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
}

// Politeness is the request rate the site saw from fetcher processes.
type Politeness struct {
	Fetchers          int     `json:"fetchers"`
	WorkersEach       int     `json:"workers_each"`
	IntervalMS        float64 `json:"interval_ms"`
	WindowSeconds     float64 `json:"window_seconds"`
	AllowedPerSecond  float64 `json:"allowed_per_second"`
	AchievedPerSecond Sample  `json:"achieved_per_second"`
	MinGapMS          Sample  `json:"min_gap_ms"`
	MaxInInterval     Sample  `json:"max_in_interval"`
	MaxInSecond       Sample  `json:"max_in_second"`
}

// TwoSites is what each of two sites saw from the same fetcher processes, each site with
// its own budget and work waiting for both.
type TwoSites struct {
	// Date and Load say when it was measured: a run of this scenario alone may be merged
	// into the results of another.
	Date        time.Time `json:"date"`
	Load        string    `json:"load_average_before"`
	TookSeconds float64   `json:"took_seconds"`
	Fetchers    int       `json:"fetchers"`
	// WorkersEach is BG_JOB_WORKERS: each process runs that many workers per site.
	WorkersEach   int     `json:"workers_each_per_site"`
	WindowSeconds float64 `json:"window_seconds"`
	SettleSeconds float64 `json:"settle_seconds"`
	Chapters      int     `json:"chapters_per_book"`
	// LatencyMS and JitterMS are each simulated site's answer time: LatencyMS plus up to
	// JitterMS.
	LatencyMS float64           `json:"site_latency_ms"`
	JitterMS  float64           `json:"site_latency_jitter_ms"`
	Sites     []SiteUtilisation `json:"sites"`
}

// SiteUtilisation is one site's figures of the two-site run, over the measured windows.
type SiteUtilisation struct {
	Site       string  `json:"site"`
	IntervalMS float64 `json:"interval_ms"`
	// BudgetPerSecond is 1/interval: the most the site may see.
	BudgetPerSecond   float64 `json:"budget_per_second"`
	AchievedPerSecond Sample  `json:"achieved_per_second"`
	// Utilisation is AchievedPerSecond over BudgetPerSecond.
	Utilisation   Sample `json:"utilisation"`
	MinGapMS      Sample `json:"min_gap_ms"`
	MaxInInterval Sample `json:"max_in_interval"`
	// RequestsPerBook is what one book of the run costs the site to sync.
	RequestsPerBook int `json:"requests_per_book"`
	BooksQueued     int `json:"books_queued"`
	// BooksSynced counts the books fetched completely within the windows, all of them;
	// BooksPerWindow the same window by window.
	BooksSynced    int    `json:"books_synced"`
	BooksPerWindow Sample `json:"books_per_window"`
	// BooksDoneAtEnd is how many had been fetched when the last window ended: fewer than
	// queued by more than the workers hold, or the site would have run dry.
	BooksDoneAtEnd int `json:"books_done_at_end"`
	// Errors counts the requests of the windows that were not answered 200.
	Errors int `json:"errors"`
}

// Efficiency is what a synced book costs the site and the database.
type Efficiency struct {
	// RequestsNew is source requests per newly synced book, by chapters per book;
	// MinimumNew is what a book of that size needs (its home page and every
	// table-of-contents page).
	RequestsNew map[string]float64 `json:"requests_per_new_book"`
	MinimumNew  map[string]float64 `json:"minimum_requests_per_new_book"`
	// RequestsForced is per forced resync of an unchanged book, by chapters per book.
	RequestsForced map[string]float64 `json:"requests_per_forced_unchanged_resync"`
	// RequestsRecent is per unforced resync request within the window.
	RequestsRecent float64 `json:"requests_per_recent_unforced_resync"`
	// RequestsAfterWindow is per unforced resync of an unchanged book after the window
	// (the gateway passes what the database holds: the fetcher may resync
	// incrementally), by chapters per book.
	RequestsAfterWindow map[string]float64 `json:"requests_per_unforced_unchanged_resync_after_window"`
	// Answers are the admin API's answers to the resync requests, by case and status.
	Answers map[string]map[string]int `json:"resync_answers"`
	// Bytes of the chapters table per chapter ref: heap, indexes, and both with TOAST.
	HeapBytesPerChapter  float64 `json:"heap_bytes_per_chapter"`
	IndexBytesPerChapter float64 `json:"index_bytes_per_chapter"`
	TotalBytesPerChapter float64 `json:"total_bytes_per_chapter"`
	// WALBytesPerRef is write-ahead log per chapter ref synced, by chapters per book
	// (the whole server's WAL: other activity on it counts too).
	WALBytesPerRef map[string]Sample `json:"wal_bytes_per_ref"`
}

// Footprint is memory and start-up time.
type Footprint struct {
	// PeakRSSMB is each process's VmHWM at the end of its scenario, in MiB.
	PeakRSSMB map[string]float64 `json:"peak_rss_mb,omitempty"`
	// StartedInMS is what the all-in-one reports (Running.StartedIn: from Run to /readyz
	// 200 and a fetcher answering), on a fresh schema and store.
	StartedInMS Sample `json:"allinone_started_in_ms,omitzero"`
	// ExecToReadyMS is from starting the process to its "xsw ready" log line.
	ExecToReadyMS Sample `json:"allinone_exec_to_ready_ms,omitzero"`
}

// Target is one goal of the issue with what was measured against it.
type Target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	// Met is nil when the figure was not measured.
	Met *bool `json:"met"`
}

func boolp(b bool) *bool { return &b }

// targets compares the figures with the targets. Nothing is adjusted: a figure
// that is missing is reported as not measured.
func targets(r *Results) []Target {
	var out []Target
	add := func(name, want string, measured bool, got string, met bool) {
		t := Target{Name: name, Want: want, Got: "not measured"}
		if measured {
			t.Got, t.Met = got, boolp(met)
		}
		out = append(out, t)
	}
	var p50 *Pipeline
	for i := range r.Pipeline {
		if r.Pipeline[i].Chapters == 50 {
			p50 = &r.Pipeline[i]
		}
	}
	if p50 != nil {
		v := p50.BooksPerSecond.Median
		add("end-to-end books of 50 chapters, limit off", "≥ 200 books/s", true, num(v, 1)+" books/s", v >= 200)
	} else {
		add("end-to-end books of 50 chapters, limit off", "≥ 200 books/s", false, "", false)
	}
	var book *Reads
	for i := range r.Reads {
		if r.Reads[i].Name == "book" {
			book = &r.Reads[i]
		}
	}
	if book != nil {
		v, p99 := book.PerSecond.Median, book.P99MS.Median
		add("cached book read", "≥ 20,000 req/s with p99 ≤ 5 ms", true,
			fmt.Sprintf("%s req/s, p99 %.2f ms", num(v, 0), p99), v >= 20000 && p99 <= 5 && book.Errors == 0)
	} else {
		add("cached book read", "≥ 20,000 req/s with p99 ≤ 5 ms", false, "", false)
	}
	if l := r.Listing; l != nil {
		add("listing p99 with a 10,000-deep queue", "within 20% of an empty queue's", true,
			fmt.Sprintf("%.2f ms vs %.2f ms (%+.0f%%), %s waiting", l.Queued.P99MS.Median, l.Empty.P99MS.Median, 100*(l.P99Ratio-1), num(float64(l.Queued.Waiting), 0)),
			l.P99Ratio <= 1.2 && l.Queued.Waiting >= 10000 && l.Empty.Errors+l.Queued.Errors == 0)
	} else {
		add("listing p99 with a 10,000-deep queue", "within 20% of an empty queue's", false, "", false)
	}
	if ix := r.Indexer; ix != nil {
		v := ix.RefsPerSecond.Median
		add("indexer", "≥ 50,000 chapter refs/s", true, num(v, 0)+" refs/s", v >= 50000)
	} else {
		add("indexer", "≥ 50,000 chapter refs/s", false, "", false)
	}
	for _, name := range sortedKeys(rssLimits) {
		v, ok := r.Footprint.PeakRSSMB[name]
		add(name+" peak RSS", fmt.Sprintf("≤ %.0f MB", rssLimits[name]), ok, fmt.Sprintf("%.1f MB", v), ok && v <= rssLimits[name])
	}
	return out
}

// rssLimits are the targets of peak RSS in MB, by process.
var rssLimits = map[string]float64{"fetcher": 60, "gateway": 80}

// finite replaces NaN and infinities, which JSON cannot hold, with 0.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}
