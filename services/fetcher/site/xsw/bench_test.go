package xsw

import (
	"testing"

	"github.com/xswtw/xsw/services/fetcher/site/sitetest"
)

// benchPage runs the parser of the case for file b.N times, reporting bytes per second
// and allocations.
func benchPage(b *testing.B, file string) { sitetest.BenchFile(b, New(nil), pageCases, file) }

func BenchmarkParseHome(b *testing.B)    { benchPage(b, "home.html") }
func BenchmarkParseListing(b *testing.B) { benchPage(b, "listing_fenlei1_1.html") }
func BenchmarkParseBook(b *testing.B)    { benchPage(b, "book_1721851.html") }
func BenchmarkParseTOC(b *testing.B)     { benchPage(b, "toc_cover_p1.html") }
func BenchmarkParseChapter(b *testing.B) { benchPage(b, "chapter_p.html") }

// BenchmarkParseChapterBig5 measures the Big5 path: decoding costs a copy.
func BenchmarkParseChapterBig5(b *testing.B) { benchPage(b, "chapter_big5.html") }
