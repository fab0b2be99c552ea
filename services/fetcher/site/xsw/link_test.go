package xsw

import (
	"net/url"
	"testing"
)

// TestPlainLink: the links resolved by joining strings, and those left to url.Parse.
func TestPlainLink(t *testing.T) {
	tests := []struct {
		page, href string
		want       string // "" when plainLink leaves the link to url.Parse
	}{
		{"https://m.xsw.tw/1721851/page-1.html", "251000001.html", "/1721851/251000001.html"},
		{"https://m.xsw.tw/1721851/page-1.html", "/1721851/251000002.html", "/1721851/251000002.html"},
		{"https://m.xsw.tw/1721851/page-1.html", "/1721851/", "/1721851/"},
		{"https://m.xsw.tw/1721851/page-1.html", "sub/a_b-c.d.html", "/1721851/sub/a_b-c.d.html"},
		{"https://m.xsw.tw/1721851/page-1.html", "/", "/"},
		{"https://m.xsw.tw", "251000001.html", "/251000001.html"},
		{"https://m.xsw.tw/1721851/page-1.html", "./251000005.html", ""},
		{"https://m.xsw.tw/1721851/page-1.html", "../1721851/251000009.html", ""},
		{"https://m.xsw.tw/1721851/page-1.html", "//m.xsw.tw/1/2.html", ""},
		{"https://m.xsw.tw/1721851/page-1.html", "https://m.xsw.tw/1/2.html", ""},
		{"https://m.xsw.tw/1721851/page-1.html", "2.html?from=toc", ""},
		{"https://m.xsw.tw/1721851/page-1.html", "a//b.html", ""},
		{"https://m.xsw.tw/1721851/page-1.html", "%31.html", ""},
		{"https://m.xsw.tw/1721851/page-1.html", "javascript:void(0);", ""},
		{"https://m.xsw.tw/1721851/page-1.html", "第1章.html", ""},
		{"https://m.xsw.tw/a/../b/page-1.html", "1.html", ""},
		{"https://m.xsw.tw/%E6%9B%B8/page-1.html", "1.html", ""},
		{"ftp://m.xsw.tw/1721851/page-1.html", "1.html", ""},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.page)
		if err != nil {
			t.Fatal(err)
		}
		p := newPage(pageTOC, u)
		got, ok := p.plainLink(tt.href)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("plainLink(%q) on %s = %q, %v; want %q", tt.href, tt.page, got, ok, tt.want)
		}
		if ok {
			if parsed, _ := p.parsedLink(tt.href); parsed != got {
				t.Errorf("plainLink(%q) on %s = %q, url.Parse resolves %q", tt.href, tt.page, got, parsed)
			}
		}
	}
}

// FuzzPlainLink: whatever the page and the link, a link plainLink resolves is the one
// url.Parse resolves.
func FuzzPlainLink(f *testing.F) {
	f.Add("https://m.xsw.tw/1721851/page-1.html", "251000001.html")
	f.Add("https://m.xsw.tw/1721851/page-1.html", "/1721851/251000002.html")
	f.Add("https://m.xsw.tw/1721851/", "a/b/")
	f.Add("https://m.xsw.tw", "...")
	f.Add("http://m.xsw.tw/a/./b/c.html", "d.html")
	f.Add("https://m.xsw.tw//a/b.html", "c.html")
	f.Fuzz(func(t *testing.T, pageURL, href string) {
		u, err := url.Parse(pageURL)
		if err != nil || !u.IsAbs() || u.Host == "" {
			return
		}
		p := newPage(pageTOC, u)
		got, ok := p.plainLink(href)
		if !ok {
			return
		}
		if want, ok := p.parsedLink(href); !ok || got != want {
			t.Fatalf("plainLink(%q) on %s = %q; url.Parse resolves %q (%v)", href, pageURL, got, want, ok)
		}
	})
}
