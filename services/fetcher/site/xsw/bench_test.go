package xsw

import (
	"testing"
)

// benchPage runs the parser of the case for file b.N times, reporting bytes per second
// and allocations.
func benchPage(b *testing.B, file string) {
	var c pageCase
	for _, pc := range pageCases {
		if pc.file == file {
			c = pc
		}
	}
	if c.file == "" {
		b.Fatalf("no case for %s", file)
	}
	body := readPage(b, file)
	pageURL := mustURL(b, c.url)
	s := New(nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := c.parse(s, body, pageURL); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseHome(b *testing.B)    { benchPage(b, "home.html") }
func BenchmarkParseListing(b *testing.B) { benchPage(b, "listing_fenlei1_1.html") }
func BenchmarkParseBook(b *testing.B)    { benchPage(b, "book_1721851.html") }
func BenchmarkParseTOC(b *testing.B)     { benchPage(b, "toc_cover_p1.html") }
func BenchmarkParseChapter(b *testing.B) { benchPage(b, "chapter_p.html") }

// BenchmarkParseChapterBig5 measures the Big5 path: decoding costs a copy.
func BenchmarkParseChapterBig5(b *testing.B) { benchPage(b, "chapter_big5.html") }
