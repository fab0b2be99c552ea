package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

var at = time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)

func intp(n int) *int { return &n }

// payloads lists one realistic value of every payload type, keyed by golden file name.
func payloads() map[string]Payload {
	updated := time.Date(2026, 1, 20, 14, 5, 9, 0, time.UTC)
	req := NewBookRequested("1721851", LanePrefetch, PrefetchPriority, false, "category 1 page 1", at)
	purge := NewBookPurgeRequested("1721851", "admin", at)
	inval := NewCacheInvalidated("1721851", "gateway-7f3a", "admin", at)
	clear := NewCacheInvalidated("", "gateway-7f3a", "admin", at)
	reads := NewBooksRead("gateway-7f3a", 12, map[string]int64{"1721851": 3, "1000001": 1}, at.Add(-time.Minute), at)
	crawl := NewCrawlRequested([]int{1, 2, 3}, 1, 10, at)
	known := NewBookRequested("1721851", LaneRefresh, 0, false, "refresh", at)
	known.Known = &KnownBook{Chapters: 1402, LastChapterID: "251856158"}
	return map[string]Payload{
		"book_requested":       &req,
		"book_requested_known": &known,
		"crawl_requested":      &crawl,
		"books_read":           &reads,
		"book_fetched": &BookFetched{Header: Header{Version}, JobID: "1721851-42", BookID: "1721851", FetchedAt: at,
			Book: BookMeta{Name: "萬古神帝", Author: "飛天魚", Genre: "玄幻小說", Status: "連載中", UpdateText: "2026/1/20 22:05:09",
				UpdatedAt: &updated, Description: "三千年前，天下第一人。", CoverURL: "https://m.xsw.tw/files/article/image/1721/1721851/1721851s.jpg",
				LastChapterTitle: "第3012章 終局", LastChapterURL: "https://m.xsw.tw/1721851/251856158.html", LastChapterID: "251856158",
				SourceURL: "https://m.xsw.tw/1721851/"}},
		"toc_page_fetched": &TOCPageFetched{Header: Header{Version}, JobID: "1721851-42", BookID: "1721851", Page: 2, TotalPages: 71, FetchedAt: at,
			Chapters: []ChapterRef{
				{Number: 21, ChapterID: "100000021", Title: "第二十一章 出關", URL: "https://m.xsw.tw/1721851/100000021.html", TitleNumber: intp(21)},
				{Number: 22, ChapterID: "100000957", Title: "上架感言", URL: "https://m.xsw.tw/1721851/100000957.html"},
			}},
		"chapter_fetched": &ChapterFetched{Header: Header{Version}, BookID: "1721851", Number: 21, ChapterID: "100000021", Title: "第二十一章 出關",
			URL: "https://m.xsw.tw/1721851/100000021.html", Text: "第一段。\n第二段。", FetchedAt: at},
		"categories_fetched": &CategoriesFetched{Header: Header{Version}, FetchedAt: at,
			Categories: []Category{{ID: 1, Name: "玄幻小說", URL: "https://m.xsw.tw/fenlei1_1.html"}}},
		"job_completed": &JobEvent{Header: Header{Version}, Kind: JobCompleted, JobID: "1721851-42", BookID: "1721851", Lane: LaneManual,
			Priority: 10, Attempt: 1, Fetcher: "fetcher-a", EnqueuedAt: at.Add(-time.Minute), StartedAt: at.Add(-10 * time.Second), At: at,
			Chapters: 1402, TOCPages: 71, Requests: 72},
		"job_failed": &JobEvent{Header: Header{Version}, Kind: JobFailed, JobID: "1234567-7", BookID: "1234567", Lane: LanePrefetch,
			Attempt: 5, EnqueuedAt: at.Add(-time.Hour), StartedAt: at.Add(-time.Second), At: at, Error: "fetch book home: timeout", Dead: true},
		"book_indexed":    &BookIndexed{Header: Header{Version}, BookID: "1721851", Chapters: 1402, Complete: true, HasMeta: true, IndexedAt: at},
		"dead_letter":     &DeadLetter{Header: Header{Version}, Request: req, JobID: "1721851-42", Attempts: 5, Error: "source: 503", DiedAt: at},
		"listing_request": &ListingRequest{Header: Header{Version}, Category: 1, Page: 2},
		"listing_reply": &ListingReply{Header: Header{Version}, Books: []ListingBook{{BookID: "1721851", Name: "萬古神帝", Author: "飛天魚",
			LastChapterTitle: "第3012章 終局", LastChapterURL: "https://m.xsw.tw/1721851/251856158.html", Intro: "三千年前", BookURL: "https://m.xsw.tw/1721851/"}}},
		"chapter_request":      &ChapterRequest{Header: Header{Version}, BookID: "1721851", ChapterID: "100000021", Number: 21},
		"chapter_reply_error":  &ChapterReply{Header: Header{Version}, Error: &RPCError{Kind: ErrKindNotFound, Message: "source answered 404"}},
		"toc_request":          &TOCRequest{Header: Header{Version}, BookID: "1721851", Page: 3},
		"categories_request":   &CategoriesRequest{Header: Header{Version}},
		"book_purge_requested": &purge,
		"cache_invalidated":    &inval,
		"cache_cleared":        &clear,
		"fetcher_heartbeat": &FetcherHeartbeat{Header: Header{Version}, FetcherID: "fetcher-7f3a", Workers: 2, StartedAt: at.Add(-time.Hour), At: at,
			Interval: 2, Circuit: "closed", Active: []ActiveJob{{JobID: "1721851-42", BookID: "1721851", Lane: LanePrefetch, Attempt: 1, StartedAt: at}}},
	}
}

func TestGolden(t *testing.T) {
	for name, p := range payloads() {
		t.Run(name, func(t *testing.T) {
			got, err := Encode(p)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, got, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			path := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden (run with -update to create): %v", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("%s changed on the wire:\n got %s\nwant %s", name, pretty.Bytes(), want)
			}
			// And back: the golden decodes to the same value.
			back := reflect.New(reflect.TypeOf(p).Elem()).Interface().(Payload)
			if err := Decode(want, back); err != nil {
				t.Fatalf("Decode golden: %v", err)
			}
			if !reflect.DeepEqual(back, p) {
				t.Errorf("round trip differs:\n got %+v\nwant %+v", back, p)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		data string
		want error
	}{
		{"not json", `{`, ErrInvalid},
		{"unknown version", `{"version":2,"book_id":"1","lane":"prefetch","requested_at":"2026-01-01T00:00:00Z"}`, ErrVersion},
		{"no version", `{"book_id":"1","lane":"prefetch","requested_at":"2026-01-01T00:00:00Z"}`, ErrVersion},
		{"bad lane", `{"version":1,"book_id":"1","lane":"urgent","requested_at":"2026-01-01T00:00:00Z"}`, ErrInvalid},
		{"bad book id", `{"version":1,"book_id":"../1","lane":"prefetch","requested_at":"2026-01-01T00:00:00Z"}`, ErrInvalid},
		{"no time", `{"version":1,"book_id":"1","lane":"prefetch"}`, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r BookRequested
			if err := Decode([]byte(tt.data), &r); !errors.Is(err, tt.want) {
				t.Errorf("Decode = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestMsgIDs(t *testing.T) {
	a := NewBookRequested("1", LanePrefetch, 0, false, "x", at)
	b := NewBookRequested("1", LanePrefetch, 0, false, "y", at.Add(time.Second))
	if a.MsgID() != b.MsgID() {
		t.Errorf("same request a second apart: ids %q and %q differ", a.MsgID(), b.MsgID())
	}
	for name, c := range map[string]BookRequested{
		"other book": NewBookRequested("2", LanePrefetch, 0, false, "x", at),
		"other lane": NewBookRequested("1", LaneManual, 10, false, "x", at),
		"forced":     NewBookRequested("1", LanePrefetch, 0, true, "x", at),
		"much later": NewBookRequested("1", LanePrefetch, 0, false, "x", at.Add(2*DuplicateWindow)),
	} {
		if c.MsgID() == a.MsgID() {
			t.Errorf("%s: id %q equals the original's", name, c.MsgID())
		}
	}
	p1 := TOCPageFetched{JobID: "1-2", Page: 1}
	p2 := TOCPageFetched{JobID: "1-2", Page: 2}
	if p1.MsgID() == p2.MsgID() {
		t.Errorf("two pages share id %q", p1.MsgID())
	}
}

func TestValidBookID(t *testing.T) {
	for s, want := range map[string]bool{
		"1721851": true, "0": true, "": false, "12a": false, "-1": false, "1234567890123": false, "１２": false, "1.2": false,
	} {
		if got := ValidBookID(s); got != want {
			t.Errorf("ValidBookID(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestLanes(t *testing.T) {
	if LaneForPriority(10) != LaneManual || LaneForPriority(5) != LaneManual || LaneForPriority(4) != LanePrefetch {
		t.Error("LaneForPriority does not split at ManualMinPriority")
	}
	for i, l := range Lanes {
		if l.Rank() != i || !l.Valid() {
			t.Errorf("lane %s: rank %d valid %v", l, l.Rank(), l.Valid())
		}
	}
	if Lane("x").Valid() || Lane("x").Rank() != -1 {
		t.Error("unknown lane accepted")
	}
}

func TestStreamsDoNotOverlap(t *testing.T) {
	seen := map[string]string{}
	for _, s := range Streams(time.Hour) {
		for _, subj := range s.Subjects {
			if other, ok := seen[subj]; ok {
				t.Errorf("subject %s in %s and %s", subj, other, s.Name)
			}
			seen[subj] = s.Name
		}
	}
	for _, l := range Lanes {
		c := FetcherConsumer(l, time.Minute, 5)
		if c.Stream != StreamRequests || c.FilterSubjects[0] != RequestSubjectLane(l) {
			t.Errorf("consumer %+v", c)
		}
	}
}

func TestCommandsAndCache(t *testing.T) {
	p := NewBookPurgeRequested("42", "admin", at)
	if p.Subject() != "xsw.cmd.purge.42" || p.Validate() != nil {
		t.Errorf("purge %+v: subject %s, validate %v", p, p.Subject(), p.Validate())
	}
	later := NewBookPurgeRequested("42", "admin", at.Add(time.Nanosecond))
	if p.MsgID() == later.MsgID() {
		t.Errorf("two purge requests share id %q", p.MsgID())
	}
	for name, bad := range map[string]Payload{
		"purge bad id":        &BookPurgeRequested{Header: Header{Version}, BookID: "4.2", RequestedAt: at},
		"purge no time":       &BookPurgeRequested{Header: Header{Version}, BookID: "42"},
		"invalidation bad id": &CacheInvalidated{Header: Header{Version}, BookID: "*", At: at},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", name, err)
		}
	}
	if s := NewCacheInvalidated("42", "", "", at).Subject(); s != "xsw.cache.invalidate.42" {
		t.Errorf("invalidation subject %s", s)
	}
	if s := NewCacheInvalidated("", "", "", at).Subject(); s != SubjectCacheClear {
		t.Errorf("clear subject %s", s)
	}
}

// subjectMatches reports whether the NATS subject matches the filter (with * and >).
func subjectMatches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(f) == len(s)
}

// TestStreamsCaptureTheirSubjects checks where every published subject lands: commands
// in the indexer's stream, cache invalidations in none.
func TestStreamsCaptureTheirSubjects(t *testing.T) {
	tests := []struct {
		subject string
		stream  string // "" for core NATS only
	}{
		{SubjectPurgeBook("42"), StreamEvents},
		{SubjectFetchedTOC("42"), StreamEvents},
		{SubjectJob(JobFailed, "42"), StreamEvents},
		{RequestSubject(LaneManual, "42"), StreamRequests},
		{SubjectIndexed("42"), StreamIndexed},
		{SubjectDead("42"), StreamDead},
		{SubjectCacheInvalidate("42"), ""},
		{SubjectCacheClear, ""},
	}
	for _, tt := range tests {
		var got []string
		for _, s := range Streams(time.Hour) {
			for _, f := range s.Subjects {
				if subjectMatches(f, tt.subject) {
					got = append(got, s.Name)
				}
			}
		}
		want := []string{}
		if tt.stream != "" {
			want = []string{tt.stream}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s is captured by %v, want %v", tt.subject, got, want)
		}
	}
	if !subjectMatches(SubjectCacheAll, SubjectCacheClear) || !subjectMatches(SubjectCacheAll, SubjectCacheInvalidate("1")) {
		t.Error("SubjectCacheAll misses a cache subject")
	}
}

func TestCrawlAndReadsValidate(t *testing.T) {
	ok := NewCrawlRequested([]int{1, 7}, 1, 10, at)
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid crawl: %v", err)
	}
	for name, p := range map[string]Payload{
		"crawl no categories":   &CrawlRequested{Header: Header{Version}, CrawlID: "c1", FromPage: 1, ToPage: 2},
		"crawl pages backwards": &CrawlRequested{Header: Header{Version}, CrawlID: "c1", Categories: []int{1}, FromPage: 3, ToPage: 2},
		"crawl category 0":      &CrawlRequested{Header: Header{Version}, CrawlID: "c1", Categories: []int{0}, FromPage: 1, ToPage: 2},
		"crawl too big":         &CrawlRequested{Header: Header{Version}, CrawlID: "c1", Categories: []int{1, 2, 3, 4, 5, 6, 7}, FromPage: 1, ToPage: 1000},
		"crawl bad id":          &CrawlRequested{Header: Header{Version}, CrawlID: "a.b", Categories: []int{1}, FromPage: 1, ToPage: 1},
		"reads empty":           &BooksRead{Header: Header{Version}, BatchID: "g-1", At: at},
		"reads bad book":        &BooksRead{Header: Header{Version}, BatchID: "g-1", At: at, Reads: map[string]int64{"x": 1}},
		"reads zero":            &BooksRead{Header: Header{Version}, BatchID: "g-1", At: at, Reads: map[string]int64{"1": 0}},
	} {
		if err := p.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", name, err)
		}
	}
}
