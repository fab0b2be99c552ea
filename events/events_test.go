package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
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
	req := NewBookRequested("xsw", "1721851", LanePrefetch, PrefetchPriority, false, "category 1 page 1", at)
	purge := NewBookPurgeRequested("xsw", "1721851", "admin", at)
	accept := NewBookShrinkAccepted("czbooks", "cr382b", "admin", at)
	inval := NewCacheInvalidated("xsw", "1721851", "gateway-7f3a", "admin", at)
	clear := NewCacheInvalidated("", "", "gateway-7f3a", "admin", at)
	reads := NewBooksRead("gateway-7f3a", 12, map[string]int64{"xsw.1721851": 3, "czbooks.cr382b": 1}, at.Add(-time.Minute), at)
	crawl := NewCrawlRequested("xsw", []CategoryID{"1", "2", "3"}, 1, 10, at)
	known := NewBookRequested("xsw", "1721851", LaneRefresh, 0, false, "refresh", at)
	known.Known = &KnownBook{Chapters: 1402, LastChapterID: "251856158"}
	siteInfo := SiteInfo{Header: Header{Version}, ID: "czbooks", Name: "小說狂人 (czbooks.net)", BaseURL: "https://czbooks.net",
		BookIDPattern: "[a-z0-9]{1,16}", CategoryIDPattern: "[a-z0-9-]{1,32}", RateInterval: 2, Interval: 4, State: SiteThrottled,
		Fetcher: "fetcher-7f3a", At: at}
	czbook := &BookFetched{Header: Header{Version}, JobID: "czbooks.cr382b-7", Site: "czbooks", BookID: "cr382b", FetchedAt: at,
		Book: BookMeta{Name: "劍來", Author: "烽火戲諸侯", Status: "已完結", Finished: true, SourceURL: "https://czbooks.net/n/cr382b",
			LastChapterTitle: "第一千零一章", LastChapterURL: "https://czbooks.net/n/cr382b/00417", LastChapterID: "00417",
			Volumes: []Volume{{Title: "第一卷 驚蟄", FirstChapter: 1}, {Title: "第二卷 山水郎", FirstChapter: 91}}}}
	return map[string]Payload{
		"book_requested":       &req,
		"book_requested_known": &known,
		"book_fetched_volumes": czbook,
		"crawl_requested":      &crawl,
		"books_read":           &reads,
		"book_fetched": &BookFetched{Header: Header{Version}, JobID: "xsw.1721851-42", Site: "xsw", BookID: "1721851", FetchedAt: at,
			Book: BookMeta{Name: "萬古神帝", Author: "飛天魚", Genre: "玄幻小說", Status: "連載中", UpdateText: "2026/1/20 22:05:09",
				UpdatedAt: &updated, Description: "三千年前，天下第一人。", CoverURL: "https://m.xsw.tw/files/article/image/1721/1721851/1721851s.jpg",
				LastChapterTitle: "第3012章 終局", LastChapterURL: "https://m.xsw.tw/1721851/251856158.html", LastChapterID: "251856158",
				SourceURL: "https://m.xsw.tw/1721851/"}},
		"toc_page_fetched": &TOCPageFetched{Header: Header{Version}, JobID: "xsw.1721851-42", Site: "xsw", BookID: "1721851", Page: 2, TotalPages: 71, FetchedAt: at,
			Chapters: []ChapterRef{
				{Number: 21, ChapterID: "100000021", Title: "第二十一章 出關", URL: "https://m.xsw.tw/1721851/100000021.html", TitleNumber: intp(21)},
				{Number: 22, ChapterID: "100000957", Title: "上架感言", URL: "https://m.xsw.tw/1721851/100000957.html"},
			}},
		"chapter_fetched": &ChapterFetched{Header: Header{Version}, Site: "xsw", BookID: "1721851", Number: 21, ChapterID: "100000021", Title: "第二十一章 出關",
			URL: "https://m.xsw.tw/1721851/100000021.html", Text: "第一段。\n第二段。", FetchedAt: at},
		"categories_fetched": &CategoriesFetched{Header: Header{Version}, Site: "xsw", FetchedAt: at,
			Categories: []Category{{ID: "1", Name: "玄幻小說", URL: "https://m.xsw.tw/fenlei1_1.html"}}},
		"job_completed": &JobEvent{Header: Header{Version}, Kind: JobCompleted, JobID: "xsw.1721851-42", Site: "xsw", BookID: "1721851", Lane: LaneManual,
			Priority: 10, Attempt: 1, Fetcher: "fetcher-a", EnqueuedAt: at.Add(-time.Minute), StartedAt: at.Add(-10 * time.Second), At: at,
			Chapters: 1402, TOCPages: 71, Requests: 72},
		"job_failed": &JobEvent{Header: Header{Version}, Kind: JobFailed, JobID: "xsw.1234567-7", Site: "xsw", BookID: "1234567", Lane: LanePrefetch,
			Attempt: 5, EnqueuedAt: at.Add(-time.Hour), StartedAt: at.Add(-time.Second), At: at, Error: "fetch book home: timeout", Dead: true},
		"book_indexed":    &BookIndexed{Header: Header{Version}, Site: "xsw", BookID: "1721851", Chapters: 1402, Complete: true, HasMeta: true, IndexedAt: at},
		"dead_letter":     &DeadLetter{Header: Header{Version}, Request: req, JobID: "xsw.1721851-42", Attempts: 5, Error: "source: 503", DiedAt: at},
		"listing_request": &ListingRequest{Header: Header{Version}, Site: "czbooks", Category: "xuanhuan", Page: 2},
		"listing_reply": &ListingReply{Header: Header{Version}, Books: []ListingBook{{BookID: "1721851", Name: "萬古神帝", Author: "飛天魚",
			LastChapterTitle: "第3012章 終局", LastChapterURL: "https://m.xsw.tw/1721851/251856158.html", Intro: "三千年前", BookURL: "https://m.xsw.tw/1721851/"}}},
		"chapter_request":     &ChapterRequest{Header: Header{Version}, Site: "xsw", BookID: "1721851", ChapterID: "100000021", Number: 21},
		"chapter_reply_error": &ChapterReply{Header: Header{Version}, Error: &RPCError{Kind: ErrKindNotFound, Message: "source answered 404"}},
		"chapter_refs_request": &ChapterRefsRequest{Header: Header{Version}, Site: "xsw", BookID: "1721851", From: 41, To: 60,
			Stored: StoredPages{Pages: []int{1, 2}, FirstPageRefs: 20, TotalPages: 71}},
		"chapter_refs_reply":   &ChapterRefsReply{Header: Header{Version}, Refs: []ChapterRef{{Number: 41, ChapterID: "100000041", Title: "第四十一章", URL: "https://m.xsw.tw/1721851/100000041.html"}}},
		"site_info":            &siteInfo,
		"categories_request":   &CategoriesRequest{Header: Header{Version}, Site: "xsw"},
		"book_purge_requested": &purge,
		"book_shrink_accepted": &accept,
		"cache_invalidated":    &inval,
		"cache_cleared":        &clear,
		"fetcher_heartbeat": &FetcherHeartbeat{Header: Header{Version}, FetcherID: "fetcher-7f3a", Workers: 2, StartedAt: at.Add(-time.Hour), At: at,
			Interval: 2, Circuit: "closed", Sites: []SiteInfo{siteInfo}, Active: []ActiveJob{{JobID: "xsw.1721851-42", Site: "xsw", BookID: "1721851", Lane: LanePrefetch, Attempt: 1, StartedAt: at}}},
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
		{"unknown version", `{"version":3,"site":"xsw","book_id":"1","lane":"prefetch","requested_at":"2026-01-01T00:00:00Z"}`, ErrVersion},
		{"no version", `{"site":"xsw","book_id":"1","lane":"prefetch","requested_at":"2026-01-01T00:00:00Z"}`, ErrVersion},
		{"bad lane", `{"version":2,"site":"xsw","book_id":"1","lane":"urgent","requested_at":"2026-01-01T00:00:00Z"}`, ErrInvalid},
		{"bad book id", `{"version":2,"site":"xsw","book_id":"../1","lane":"prefetch","requested_at":"2026-01-01T00:00:00Z"}`, ErrInvalid},
		{"no site", `{"version":2,"book_id":"1","lane":"prefetch","requested_at":"2026-01-01T00:00:00Z"}`, ErrInvalid},
		{"bad site", `{"version":2,"site":"X.Y","book_id":"1","lane":"prefetch","requested_at":"2026-01-01T00:00:00Z"}`, ErrInvalid},
		{"legacy bad book id", `{"version":1,"book_id":"1 2","lane":"prefetch","requested_at":"2026-01-01T00:00:00Z"}`, ErrInvalid},
		{"no time", `{"version":2,"site":"xsw","book_id":"1","lane":"prefetch"}`, ErrInvalid},
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

// TestDecodeLegacy reads payloads as a build before site-qualified books wrote them
// (version 1, no site, numeric categories): they are LegacySite's, and they come out
// as version 2 payloads, so that what was left in the streams is served after an upgrade.
func TestDecodeLegacy(t *testing.T) {
	tests := []struct {
		name string
		data string
		into Payload
		want Payload
	}{
		{"request", `{"version":1,"book_id":"1721851","lane":"prefetch","priority":0,"requested_at":"2026-01-21T12:00:00Z","force":false}`,
			&BookRequested{}, &BookRequested{Header: Header{Version}, Site: LegacySite, BookID: "1721851", Lane: LanePrefetch, RequestedAt: at}},
		{"dead letter", `{"version":1,"request":{"version":1,"book_id":"7","lane":"manual","priority":10,"requested_at":"2026-01-21T12:00:00Z","force":true},"job_id":"7-3","attempts":5,"error":"source: 503","died_at":"2026-01-21T12:00:00Z"}`,
			&DeadLetter{}, &DeadLetter{Header: Header{Version}, Request: BookRequested{Header: Header{Version}, Site: LegacySite, BookID: "7",
				Lane: LaneManual, Priority: 10, RequestedAt: at, Force: true}, JobID: "7-3", Attempts: 5, Error: "source: 503", DiedAt: at}},
		{"toc page", `{"version":1,"job_id":"7-3","book_id":"7","page":1,"total_pages":1,"chapters":[{"number":1,"chapter_id":"100","title":"第一章","url":"https://m.xsw.tw/7/100.html"}],"fetched_at":"2026-01-21T12:00:00Z"}`,
			&TOCPageFetched{}, &TOCPageFetched{Header: Header{Version}, JobID: "7-3", Site: LegacySite, BookID: "7", Page: 1, TotalPages: 1,
				Chapters: []ChapterRef{{Number: 1, ChapterID: "100", Title: "第一章", URL: "https://m.xsw.tw/7/100.html"}}, FetchedAt: at}},
		{"crawl with numeric categories", `{"version":1,"crawl_id":"crawl-1","categories":[1,7],"from_page":1,"to_page":2,"requested_at":"2026-01-21T12:00:00Z"}`,
			&CrawlRequested{}, &CrawlRequested{Header: Header{Version}, CrawlID: "crawl-1", Site: LegacySite, Categories: []CategoryID{"1", "7"},
				FromPage: 1, ToPage: 2, RequestedAt: at}},
		{"cache clear stays a clear", `{"version":1,"at":"2026-01-21T12:00:00Z"}`,
			&CacheInvalidated{}, &CacheInvalidated{Header: Header{Version}, At: at}},
		{"categories", `{"version":1,"categories":[{"id":1,"name":"玄幻小說","url":"https://m.xsw.tw/fenlei1_1.html"}],"fetched_at":"2026-01-21T12:00:00Z"}`,
			&CategoriesFetched{}, &CategoriesFetched{Header: Header{Version}, Site: LegacySite,
				Categories: []Category{{ID: "1", Name: "玄幻小說", URL: "https://m.xsw.tw/fenlei1_1.html"}}, FetchedAt: at}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Decode([]byte(tt.data), tt.into); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(tt.into, tt.want) {
				t.Errorf("Decode =\n %+v\nwant\n %+v", tt.into, tt.want)
			}
		})
	}
}

func TestMsgIDs(t *testing.T) {
	a := NewBookRequested("xsw", "1", LanePrefetch, 0, false, "x", at)
	b := NewBookRequested("xsw", "1", LanePrefetch, 0, false, "y", at.Add(time.Second))
	if a.MsgID() != b.MsgID() {
		t.Errorf("same request a second apart: ids %q and %q differ", a.MsgID(), b.MsgID())
	}
	for name, c := range map[string]BookRequested{
		"other book": NewBookRequested("xsw", "2", LanePrefetch, 0, false, "x", at),
		"other site": NewBookRequested("czbooks", "1", LanePrefetch, 0, false, "x", at),
		"other lane": NewBookRequested("xsw", "1", LaneManual, 10, false, "x", at),
		"forced":     NewBookRequested("xsw", "1", LanePrefetch, 0, true, "x", at),
		"much later": NewBookRequested("xsw", "1", LanePrefetch, 0, false, "x", at.Add(2*DuplicateWindow)),
	} {
		if c.MsgID() == a.MsgID() {
			t.Errorf("%s: id %q equals the original's", name, c.MsgID())
		}
	}
	p1 := TOCPageFetched{JobID: "xsw.1-2", Page: 1}
	p2 := TOCPageFetched{JobID: "xsw.1-2", Page: 2}
	if p1.MsgID() == p2.MsgID() {
		t.Errorf("two pages share id %q", p1.MsgID())
	}
	c1 := ChapterFetched{Site: "xsw", BookID: "1", ChapterID: "9"}
	c2 := ChapterFetched{Site: "czbooks", BookID: "1", ChapterID: "9"}
	if c1.MsgID() == c2.MsgID() {
		t.Errorf("chapters of two sites share id %q", c1.MsgID())
	}
	if JobID("xsw", "1", 2) == JobID("czbooks", "1", 2) {
		t.Error("jobs of two sites share an id")
	}
}

// TestMsgIDPeriods: requests share an id within a fixed period of DuplicateWindow, not
// within DuplicateWindow of each other.
func TestMsgIDPeriods(t *testing.T) {
	start := at.Truncate(DuplicateWindow) // a period's first second
	id := func(d time.Duration) string {
		return NewBookRequested("xsw", "1", LaneInteractive, 0, false, "x", start.Add(d)).MsgID()
	}
	if id(0) != id(DuplicateWindow-time.Second) {
		t.Errorf("first and last second of a period: ids differ")
	}
	if id(-time.Second) == id(0) {
		t.Errorf("a second apart across a period's start: same id %q", id(0))
	}
}

func TestRefreshMsgIDs(t *testing.T) {
	a := RefreshMsgID("xsw", "1", at)
	if b := RefreshMsgID("xsw", "1", at); a != b {
		t.Errorf("same round: ids %q and %q differ", a, b)
	}
	for name, id := range map[string]string{
		"next round, seconds later": RefreshMsgID("xsw", "1", at.Add(4*time.Second)),
		"never checked":             RefreshMsgID("xsw", "1", time.Time{}),
		"other book":                RefreshMsgID("xsw", "2", at),
		"other site":                RefreshMsgID("czbooks", "1", at),
		"a refresh request's MsgID": NewBookRequested("xsw", "1", LaneRefresh, 0, false, "refresh", at).MsgID(),
	} {
		if id == a {
			t.Errorf("%s: id %q equals the original's", name, id)
		}
	}
}

func TestIDs(t *testing.T) {
	for s, want := range map[string]bool{
		"1721851": true, "0": true, "cr382b": true, "00417": true, "ab-12_X": true, strings.Repeat("9", MaxBookIDLen): true,
		"": false, "-": true, "1.2": false, "a b": false, "１２": false, "a/b": false, "*": false, ">": false, "%41": false,
		strings.Repeat("9", MaxBookIDLen+1): false,
	} {
		if got := ValidBookID(s); got != want {
			t.Errorf("ValidBookID(%q) = %v, want %v", s, got, want)
		}
	}
	for s, want := range map[string]bool{
		"xsw": true, "czbooks": true, "a1": true, "": false, "1a": false, "Xsw": false, "x-y": false, "x_y": false, "x.y": false,
		strings.Repeat("a", MaxSiteIDLen): true, strings.Repeat("a", MaxSiteIDLen+1): false,
	} {
		if got := ValidSiteID(s); got != want {
			t.Errorf("ValidSiteID(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestKeysAndSubjects(t *testing.T) {
	if k := Key("czbooks", "cr382b"); k != "czbooks.cr382b" {
		t.Errorf("Key = %q", k)
	}
	for key, want := range map[string][3]string{
		"czbooks.cr382b": {"czbooks", "cr382b", "true"},
		"1721851":        {LegacySite, "1721851", "true"},
		"Bad.1":          {"Bad", "1", "false"},
		"xsw.a.b":        {"xsw", "a.b", "false"},
	} {
		site, id, ok := SplitKey(key)
		if got := [3]string{site, id, strconv.FormatBool(ok)}; got != want {
			t.Errorf("SplitKey(%q) = %v, want %v", key, got, want)
		}
	}
	tests := []struct {
		subject    string
		prefix     int
		site, book string
		ok         bool
	}{
		{RequestSubject(LaneManual, "czbooks", "00417"), RequestPrefixTokens, "czbooks", "00417", true},
		{"xsw.book.requested.manual.1721851", RequestPrefixTokens, LegacySite, "1721851", true},
		{SubjectFetchedTOC("xsw", "7"), FetchedPrefixTokens, "xsw", "7", true},
		{SubjectJob(JobFailed, "toy", "ab-1"), JobPrefixTokens, "toy", "ab-1", true},
		{SubjectIndexed("xsw", "7"), IndexedPrefixTokens, "xsw", "7", true},
		{"xsw.indexed.7", IndexedPrefixTokens, LegacySite, "7", true},
		{SubjectDead("czbooks", "cr382b"), DeadPrefixTokens, "czbooks", "cr382b", true},
		{SubjectPurgeBook("xsw", "7"), PurgePrefixTokens, "xsw", "7", true},
		{SubjectAcceptShrink("czbooks", "00417"), AcceptPrefixTokens, "czbooks", "00417", true},
		{SubjectCacheInvalidate("xsw", "7"), CachePrefixTokens, "xsw", "7", true},
		{"xsw.indexed", IndexedPrefixTokens, "", "", false},
		{"xsw.indexed.a.b.c", IndexedPrefixTokens, "", "", false},
		{"xsw.indexed.BAD.7", IndexedPrefixTokens, "BAD", "7", false},
	}
	for _, tt := range tests {
		site, book, ok := BookOfSubject(tt.subject, tt.prefix)
		if ok != tt.ok || (ok && (site != tt.site || book != tt.book)) {
			t.Errorf("BookOfSubject(%q) = %q %q %v, want %q %q %v", tt.subject, site, book, ok, tt.site, tt.book, tt.ok)
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
		c := FetcherConsumer(l, "czbooks", time.Minute, 5)
		if c.Stream != StreamRequests || c.FilterSubjects[0] != "xsw.book.requested."+string(l)+".czbooks.*" || c.Durable != "fetch-"+string(l)+"-czbooks" {
			t.Errorf("consumer %+v", c)
		}
		if got, ok := FetcherConsumerLane(c.Durable); !ok || got != l {
			t.Errorf("FetcherConsumerLane(%q) = %q, %v", c.Durable, got, ok)
		}
		legacy := LegacyFetcherConsumer(l, time.Minute, 5)
		if legacy.Durable != "fetch-"+string(l) || legacy.FilterSubjects[0] != "xsw.book.requested."+string(l)+".*" {
			t.Errorf("legacy consumer %+v", legacy)
		}
		if got, ok := FetcherConsumerLane(legacy.Durable); !ok || got != l {
			t.Errorf("FetcherConsumerLane(%q) = %q, %v", legacy.Durable, got, ok)
		}
	}
	for _, name := range []string{"crawl", "fetch-", "fetch-nosuchlane", "fetch-manual-Bad.Site", "indexer"} {
		if l, ok := FetcherConsumerLane(name); ok {
			t.Errorf("FetcherConsumerLane(%q) = %q, true", name, l)
		}
	}
}

func TestCommandsAndCache(t *testing.T) {
	p := NewBookPurgeRequested("xsw", "42", "admin", at)
	if p.Subject() != "xsw.cmd.purge.xsw.42" || p.Validate() != nil {
		t.Errorf("purge %+v: subject %s, validate %v", p, p.Subject(), p.Validate())
	}
	later := NewBookPurgeRequested("xsw", "42", "admin", at.Add(time.Nanosecond))
	if p.MsgID() == later.MsgID() {
		t.Errorf("two purge requests share id %q", p.MsgID())
	}
	a := NewBookShrinkAccepted("xsw", "42", "admin", at)
	if a.Subject() != "xsw.cmd.accept_shrink.xsw.42" || a.Validate() != nil || a.MsgID() == p.MsgID() {
		t.Errorf("acceptance %+v: subject %s, validate %v, id %s", a, a.Subject(), a.Validate(), a.MsgID())
	}
	for name, bad := range map[string]Payload{
		"purge bad id":           &BookPurgeRequested{Header: Header{Version}, Site: "xsw", BookID: "4.2", RequestedAt: at},
		"purge no site":          &BookPurgeRequested{Header: Header{Version}, BookID: "42", RequestedAt: at},
		"purge no time":          &BookPurgeRequested{Header: Header{Version}, Site: "xsw", BookID: "42"},
		"accept bad id":          &BookShrinkAccepted{Header: Header{Version}, Site: "xsw", BookID: "4.2", AcceptedAt: at},
		"accept no time":         &BookShrinkAccepted{Header: Header{Version}, Site: "xsw", BookID: "42"},
		"invalidation bad id":    &CacheInvalidated{Header: Header{Version}, Site: "xsw", BookID: "*", At: at},
		"invalidation no site":   &CacheInvalidated{Header: Header{Version}, BookID: "42", At: at},
		"invalidation site only": &CacheInvalidated{Header: Header{Version}, Site: "xsw", At: at},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", name, err)
		}
	}
	if s := NewCacheInvalidated("xsw", "42", "", "", at).Subject(); s != "xsw.cache.invalidate.xsw.42" {
		t.Errorf("invalidation subject %s", s)
	}
	if s := NewCacheInvalidated("", "", "", "", at).Subject(); s != SubjectCacheClear {
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
		{SubjectPurgeBook("xsw", "42"), StreamEvents},
		{SubjectFetchedTOC("xsw", "42"), StreamEvents},
		{SubjectFetchedCategories("czbooks"), StreamEvents},
		{SubjectReads, StreamEvents},
		{SubjectJob(JobFailed, "xsw", "42"), StreamEvents},
		{RequestSubject(LaneManual, "xsw", "42"), StreamRequests},
		{"xsw.book.requested.manual.42", StreamRequests},
		{SubjectIndexed("xsw", "42"), StreamIndexed},
		{SubjectDead("czbooks", "cr382b"), StreamDead},
		{SubjectCacheInvalidate("xsw", "42"), ""},
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
	if !subjectMatches(SubjectCacheAll, SubjectCacheClear) || !subjectMatches(SubjectCacheAll, SubjectCacheInvalidate("xsw", "1")) {
		t.Error("SubjectCacheAll misses a cache subject")
	}
}

func TestCrawlAndReadsValidate(t *testing.T) {
	ok := NewCrawlRequested("czbooks", []CategoryID{"xuanhuan", "7"}, 1, 10, at)
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid crawl: %v", err)
	}
	for name, p := range map[string]Payload{
		"crawl no categories":   &CrawlRequested{Header: Header{Version}, CrawlID: "c1", Site: "xsw", FromPage: 1, ToPage: 2},
		"crawl no site":         &CrawlRequested{Header: Header{Version}, CrawlID: "c1", Categories: []CategoryID{"1"}, FromPage: 1, ToPage: 2},
		"crawl pages backwards": &CrawlRequested{Header: Header{Version}, CrawlID: "c1", Site: "xsw", Categories: []CategoryID{"1"}, FromPage: 3, ToPage: 2},
		"crawl bad category":    &CrawlRequested{Header: Header{Version}, CrawlID: "c1", Site: "xsw", Categories: []CategoryID{"a/b"}, FromPage: 1, ToPage: 2},
		"crawl too big":         &CrawlRequested{Header: Header{Version}, CrawlID: "c1", Site: "xsw", Categories: []CategoryID{"1", "2", "3", "4", "5", "6", "7"}, FromPage: 1, ToPage: 1000},
		"crawl bad id":          &CrawlRequested{Header: Header{Version}, CrawlID: "a.b", Site: "xsw", Categories: []CategoryID{"1"}, FromPage: 1, ToPage: 1},
		"reads empty":           &BooksRead{Header: Header{Version}, BatchID: "g-1", At: at},
		"reads bad book":        &BooksRead{Header: Header{Version}, BatchID: "g-1", At: at, Reads: map[string]int64{"xsw.a b": 1}},
		"reads bad site":        &BooksRead{Header: Header{Version}, BatchID: "g-1", At: at, Reads: map[string]int64{"X.1": 1}},
		"reads zero":            &BooksRead{Header: Header{Version}, BatchID: "g-1", At: at, Reads: map[string]int64{"xsw.1": 0}},
		"refs backwards":        &ChapterRefsRequest{Header: Header{Version}, Site: "xsw", BookID: "1", From: 5, To: 4},
		"refs too many":         &ChapterRefsRequest{Header: Header{Version}, Site: "xsw", BookID: "1", From: 1, To: MaxRefsPerCall + 1},
		"site info bad state":   &SiteInfo{Header: Header{Version}, ID: "xsw", BookIDPattern: "[0-9]+", State: "sleepy"},
		"site info no pattern":  &SiteInfo{Header: Header{Version}, ID: "xsw", State: SiteOK},
		"volume at chapter 0": &BookFetched{Header: Header{Version}, Site: "xsw", BookID: "1", Book: BookMeta{Name: "x",
			Volumes: []Volume{{Title: "v", FirstChapter: 0}}}},
	} {
		if err := p.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", name, err)
		}
	}
}

func TestWorseStates(t *testing.T) {
	sites := []string{SiteOK, SiteThrottled, SiteCircuitOpen, SiteRefused, "melted"}
	circuits := []string{"closed", "half-open", "open", "melted"}
	for _, tt := range []struct {
		states []string
		worse  func(a, b string) bool
	}{{sites, WorseSiteState}, {circuits, WorseCircuit}} {
		for i, a := range tt.states {
			for j, b := range tt.states {
				if got := tt.worse(a, b); got != (i > j) {
					t.Errorf("worse(%s, %s) = %v, want %v", a, b, got, i > j)
				}
			}
		}
	}
	if !WorseSiteState("zzz", "melted") || WorseSiteState("melted", "zzz") {
		t.Error("of two unknown states the greater string is the worse")
	}
}
