package events_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xswtw/xsw/events"
)

// benchPayloads are the payloads on the hot paths, at realistic sizes: every synced book
// is one request, one metadata event, one table-of-contents event per 20 chapters, job
// events and announcements; a chapter's text is a few thousand characters.
func benchPayloads() []struct {
	name string
	p    func() events.Payload
} {
	at := time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)
	updated := at.Add(-time.Hour)
	h := events.Header{Version: events.Version}
	toc := func(refs int) events.Payload {
		e := &events.TOCPageFetched{Header: h, JobID: "xsw.1721851-42", Site: "xsw", BookID: "1721851", Page: 2, TotalPages: 150, FetchedAt: at}
		for i := range refs {
			n := 21 + i
			e.Chapters = append(e.Chapters, events.ChapterRef{Number: n, ChapterID: fmt.Sprint(100000000 + n),
				Title: fmt.Sprintf("第%d章 天下第一人的歸來", n), URL: fmt.Sprintf("https://m.xsw.tw/1721851/%d.html", 100000000+n), TitleNumber: &n})
		}
		return e
	}
	return []struct {
		name string
		p    func() events.Payload
	}{
		{"book_requested", func() events.Payload {
			r := events.NewBookRequested("xsw", "1721851", events.LanePrefetch, events.PrefetchPriority, false, "category 1 page 1", at)
			return &r
		}},
		{"book_fetched", func() events.Payload {
			return &events.BookFetched{Header: h, JobID: "xsw.1721851-42", Site: "xsw", BookID: "1721851", FetchedAt: at,
				Book: events.BookMeta{Name: "萬古神帝", Author: "飛天魚", Genre: "玄幻小說", Status: "連載中", UpdateText: "2026/1/20 22:05:09",
					UpdatedAt: &updated, Description: strings.Repeat("三千年前，天下第一人。", 20), CoverURL: "https://m.xsw.tw/files/article/image/1721/1721851/1721851s.jpg",
					LastChapterTitle: "第3012章 終局", LastChapterURL: "https://m.xsw.tw/1721851/251856158.html", LastChapterID: "251856158",
					SourceURL: "https://m.xsw.tw/1721851/"}}
		}},
		{"toc_page_fetched_20_refs", func() events.Payload { return toc(20) }},
		{"toc_page_fetched_50_refs", func() events.Payload { return toc(50) }},
		{"chapter_fetched", func() events.Payload {
			return &events.ChapterFetched{Header: h, Site: "xsw", BookID: "1721851", Number: 21, ChapterID: "100000021", Title: "第二十一章 出關",
				URL: "https://m.xsw.tw/1721851/100000021.html", Text: strings.Repeat("少年抬頭望向天空，雲層之後似有金光。\n", 150), FetchedAt: at}
		}},
		{"job_completed", func() events.Payload {
			return &events.JobEvent{Header: h, Kind: events.JobCompleted, JobID: "xsw.1721851-42", Site: "xsw", BookID: "1721851", Lane: events.LanePrefetch,
				Attempt: 1, Fetcher: "fetcher-a", EnqueuedAt: at.Add(-time.Minute), StartedAt: at.Add(-10 * time.Second), At: at,
				Chapters: 3000, TOCPages: 150, Requests: 151}
		}},
		{"book_indexed", func() events.Payload {
			return &events.BookIndexed{Header: h, Site: "xsw", BookID: "1721851", Chapters: 3000, Complete: true, HasMeta: true, IndexedAt: at}
		}},
	}
}

// BenchmarkEncode measures events.Encode (validate, then marshal) per payload type.
func BenchmarkEncode(b *testing.B) {
	for _, c := range benchPayloads() {
		b.Run(c.name, func(b *testing.B) {
			p := c.p()
			data, err := events.Encode(p)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := events.Encode(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecode measures events.Decode (unmarshal, check the version, validate) per
// payload type, into a zero value each time as consumers do.
func BenchmarkDecode(b *testing.B) {
	for _, c := range benchPayloads() {
		b.Run(c.name, func(b *testing.B) {
			p := c.p()
			data, err := events.Encode(p)
			if err != nil {
				b.Fatal(err)
			}
			typ := reflect.TypeOf(p).Elem()
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				zero := reflect.New(typ).Interface().(events.Payload) // as a consumer's var e T
				if err := events.Decode(data, zero); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
