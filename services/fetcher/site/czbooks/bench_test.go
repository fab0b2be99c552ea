package czbooks

import (
	"fmt"
	"strings"
	"testing"

	"github.com/xswtw/xsw/services/fetcher/site/sitetest"
)

// benchPage runs the parser of the case for file b.N times, reporting bytes per second
// and allocations.
func benchPage(b *testing.B, file string) {
	sitetest.BenchFile(b, New(sitetest.MustURL(b, testBase)), pageCases, file)
}

// bigBookPage returns the page of a book of n chapters in volumes of 50, its links in
// the site's three forms, as a long serial's page looks.
func bigBookPage(n int) []byte {
	var w strings.Builder
	w.WriteString(`<!DOCTYPE html><html lang="zh-Hant-TW"><head><meta charset="utf-8"><title>劍來 - 烽火戲諸侯 - 小說狂人</title></head><body>`)
	w.WriteString(`<ul class="nav menu"><li><a href="//czbooks.net/">首頁</a></li><li><a href="//czbooks.net/c/xuanhuan">玄幻</a></li></ul>`)
	w.WriteString(`<div class="novel-detail"><div class="thumbnail"><img src="//img.czbooks.net/cover/cr382b.jpg"></div>`)
	w.WriteString(`<div class="info"><span class="title">《劍來》</span><span class="author">作者：<a href="//czbooks.net/a/x">烽火戲諸侯</a></span></div>`)
	w.WriteString(`<div class="state"><table><tr><td>狀 態：</td><td>連載中</td><td>更新時間：</td><td>2026-02-01</td></tr>`)
	w.WriteString(`<tr><td>收 藏 數：</td><td>1,234</td><td>觀　看　數：</td><td>5,678</td></tr></table></div>`)
	w.WriteString(`<a id="novel-category" href="/c/xuanhuan">玄幻</a><div class="description">大千世界，無奇不有。<br>我陳平安，唯有一劍。</div>`)
	w.WriteString(`<ul class="nav chapter-list">` + "\n")
	forms := []string{"//czbooks.net", "", "https://czbooks.net"}
	for i := 1; i <= n; i++ {
		if i%50 == 1 {
			fmt.Fprintf(&w, "<li class=\"volume\">第%d卷 卷名</li>\n", i/50+1)
		}
		fmt.Fprintf(&w, "<li><a href=\"%s/n/cr382b/c%05d\">第%d章 章節名稱</a></li>\n", forms[i%3], i, i)
	}
	w.WriteString("</ul></div><footer><a href=\"//czbooks.net/\">小說狂人</a></footer></body></html>\n")
	return []byte(w.String())
}

func TestBigBookPage(t *testing.T) {
	s := New(sitetest.MustURL(t, testBase))
	b, err := s.ParseBook(bigBookPage(312), sitetest.MustURL(t, testBase+"/n/cr382b"), "cr382b")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(b.TOC.Chapters); n != 312 || len(b.Volumes) != 7 || b.LastChapterID != "c00312" {
		t.Fatalf("%d chapters, %d volumes, newest %s; want 312, 7, c00312", n, len(b.Volumes), b.LastChapterID)
	}
	for i, c := range b.TOC.Chapters {
		if c.Number != i+1 || c.TitleNumber == nil || *c.TitleNumber != i+1 {
			t.Fatalf("chapter %+v at %d", c, i+1)
		}
	}
	if v := b.Volumes[6]; v.FirstChapter != 301 {
		t.Errorf("last volume %+v; want it to start at 301", v)
	}
}

func BenchmarkParseHome(b *testing.B)    { benchPage(b, "home.html") }
func BenchmarkParseListing(b *testing.B) { benchPage(b, "listing_xuanhuan_1.html") }
func BenchmarkParseBook(b *testing.B)    { benchPage(b, "book_cr382b.html") }
func BenchmarkParseChapter(b *testing.B) { benchPage(b, "chapter_crdic.html") }

// BenchmarkParseBook312 measures a long serial's page: 312 chapters in 7 volumes.
func BenchmarkParseBook312(b *testing.B) {
	c := sitetest.Case{Kind: pageBook, URL: testBase + "/n/cr382b", BookID: "cr382b"}
	sitetest.Bench(b, New(sitetest.MustURL(b, testBase)), c, bigBookPage(312))
}

// BenchmarkParseChapterBig5 measures the Big5 path: decoding costs a copy.
func BenchmarkParseChapterBig5(b *testing.B) { benchPage(b, "chapter_big5.html") }
