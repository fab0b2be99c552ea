package czbooks

import (
	"net/url"
	"strings"
	"testing"

	"github.com/xswtw/xsw/services/fetcher/site"
	"github.com/xswtw/xsw/services/fetcher/site/sitetest"
)

// TestLinkRule: links that name czbooks.net keep their path and query on the configured
// base, root-relative links join it, other relative links resolve against the page, and
// other hosts are not the site.
func TestLinkRule(t *testing.T) {
	const (
		standIn = "http://127.0.0.1:8080"
		prefix  = "http://host/prefix"
	)
	tests := []struct {
		name, base, page, href string
		want                   string // "" when the link names no page of the site
		wantPath               string // the path on the base, when want is set
	}{
		{name: "the description's example", base: standIn, page: standIn + "/", href: "//czbooks.net/n/cr382b", want: standIn + "/n/cr382b", wantPath: "/n/cr382b"},
		{name: "protocol-relative on https base", base: "https://czbooks.net", page: "https://czbooks.net/", href: "//czbooks.net/n/cr382b", want: "https://czbooks.net/n/cr382b", wantPath: "/n/cr382b"},
		{name: "protocol-relative stays http", base: "http://czbooks.net", page: "http://czbooks.net/", href: "//czbooks.net/c/xuanhuan", want: "http://czbooks.net/c/xuanhuan", wantPath: "/c/xuanhuan"},
		{name: "absolute https", base: standIn, page: standIn + "/", href: "https://czbooks.net/n/cr382b/crdic", want: standIn + "/n/cr382b/crdic", wantPath: "/n/cr382b/crdic"},
		{name: "absolute http", base: standIn, page: standIn + "/", href: "http://czbooks.net/n/cr382b", want: standIn + "/n/cr382b", wantPath: "/n/cr382b"},
		{name: "upper-case host", base: standIn, page: standIn + "/", href: "HTTPS://CZBOOKS.NET/n/cr382b", want: standIn + "/n/cr382b", wantPath: "/n/cr382b"},
		{name: "subdomain", base: standIn, page: standIn + "/", href: "//www.czbooks.net/c/dushi", want: standIn + "/c/dushi", wantPath: "/c/dushi"},
		{name: "port on the site's host", base: standIn, page: standIn + "/", href: "https://czbooks.net:443/n/a", want: standIn + "/n/a", wantPath: "/n/a"},
		{name: "query kept, fragment dropped", base: standIn, page: standIn + "/", href: "//czbooks.net/n/cr382b/crdic?from=list#top", want: standIn + "/n/cr382b/crdic?from=list", wantPath: "/n/cr382b/crdic"},
		{name: "dot segments resolved", base: standIn, page: standIn + "/", href: "//czbooks.net/c/../n/./cr382b", want: standIn + "/n/cr382b", wantPath: "/n/cr382b"},
		{name: "dot segments cannot climb", base: prefix, page: prefix + "/", href: "//czbooks.net/../../n/x", want: prefix + "/n/x", wantPath: "/n/x"},
		{name: "root-relative joins the base", base: standIn, page: standIn + "/n/cr382b", href: "/c/xuanhuan", want: standIn + "/c/xuanhuan", wantPath: "/c/xuanhuan"},
		{name: "root-relative joins the prefix", base: prefix, page: prefix + "/n/cr382b", href: "/n/cr382b/crdic", want: prefix + "/n/cr382b/crdic", wantPath: "/n/cr382b/crdic"},
		{name: "root-relative cannot climb", base: prefix, page: prefix + "/", href: "/../../etc/passwd", want: prefix + "/etc/passwd", wantPath: "/etc/passwd"},
		{name: "site link joins the prefix", base: prefix, page: prefix + "/", href: "//czbooks.net/n/cr382b", want: prefix + "/n/cr382b", wantPath: "/n/cr382b"},
		{name: "relative resolves against the page", base: standIn, page: standIn + "/n/cr382b/", href: "crdic", want: standIn + "/n/cr382b/crdic", wantPath: "/n/cr382b/crdic"},
		{name: "relative sibling", base: standIn, page: standIn + "/n/cr382b/crdic", href: "crdid", want: standIn + "/n/cr382b/crdid", wantPath: "/n/cr382b/crdid"},
		{name: "relative under a prefix", base: prefix, page: prefix + "/n/cr382b/crdic", href: "../s660jj", want: prefix + "/n/s660jj", wantPath: "/n/s660jj"},
		{name: "relative climbing out of the prefix", base: prefix, page: prefix + "/n/cr382b", href: "../../../x", want: ""},
		{name: "query only", base: standIn, page: standIn + "/c/xuanhuan", href: "?page=2", want: standIn + "/c/xuanhuan?page=2", wantPath: "/c/xuanhuan"},
		{name: "relative on a page of the real site", base: standIn, page: "https://czbooks.net/n/cr382b/", href: "crdic", want: standIn + "/n/cr382b/crdic", wantPath: "/n/cr382b/crdic"},
		{name: "the base's own host", base: standIn, page: standIn + "/", href: "http://127.0.0.1:8080/n/cr382b", want: standIn + "/n/cr382b", wantPath: "/n/cr382b"},
		{name: "the base's host under the prefix", base: prefix, page: prefix + "/", href: "//host/prefix/n/cr382b", want: prefix + "/n/cr382b", wantPath: "/n/cr382b"},
		{name: "the base's host outside the prefix", base: prefix, page: prefix + "/", href: "http://host/other/n/cr382b", want: ""},
		{name: "the base's host, a longer prefix", base: prefix, page: prefix + "/", href: "http://host/prefixes/n/cr382b", want: ""},
		{name: "the base's host, another port", base: standIn, page: standIn + "/", href: "http://127.0.0.1:9090/n/cr382b", want: ""},
		{name: "other host", base: standIn, page: standIn + "/", href: "https://www.facebook.com/czbooks", want: ""},
		{name: "other host, protocol-relative", base: standIn, page: standIn + "/", href: "//example.com/n/cr382b", want: ""},
		{name: "look-alike host", base: standIn, page: standIn + "/", href: "//notczbooks.net/n/cr382b", want: ""},
		{name: "site name in a subdomain of another host", base: standIn, page: standIn + "/", href: "//czbooks.net.evil.example/n/x", want: ""},
		{name: "user info", base: standIn, page: standIn + "/", href: "//user@czbooks.net/n/x", want: ""},
		{name: "javascript", base: standIn, page: standIn + "/", href: "javascript:void(0)", want: ""},
		{name: "mailto", base: standIn, page: standIn + "/", href: "mailto:a@czbooks.net", want: ""},
		{name: "ftp", base: standIn, page: standIn + "/", href: "ftp://czbooks.net/n/x", want: ""},
		{name: "fragment only", base: standIn, page: standIn + "/", href: "#top", want: ""},
		{name: "empty", base: standIn, page: standIn + "/", href: "  ", want: ""},
		{name: "does not parse", base: standIn, page: standIn + "/", href: "http://[::1", want: ""},
		{name: "scheme without host", base: standIn, page: standIn + "/", href: "http:/n/x", want: ""},
		{name: "spaces around", base: standIn, page: standIn + "/", href: "  //czbooks.net/n/cr382b\n", want: standIn + "/n/cr382b", wantPath: "/n/cr382b"},
		{name: "book link loses its trailing slash", base: standIn, page: standIn + "/c/xuanhuan", href: "//czbooks.net/n/0417/", want: standIn + "/n/0417", wantPath: "/n/0417"},
		{name: "chapter link loses its trailing slash, query kept", base: prefix, page: prefix + "/", href: "/n/cr382b/0001/?from=list", want: prefix + "/n/cr382b/0001?from=list", wantPath: "/n/cr382b/0001"},
		{name: "relative chapter link with a trailing slash", base: standIn, page: standIn + "/n/cr382b/", href: "crdic/", want: standIn + "/n/cr382b/crdic", wantPath: "/n/cr382b/crdic"},
		{name: "absolute book link with a trailing slash", base: standIn, page: standIn + "/", href: "https://www.czbooks.net/n/Ab_9-z/", want: standIn + "/n/Ab_9-z", wantPath: "/n/Ab_9-z"},
		{name: "category keeps its trailing slash", base: standIn, page: standIn + "/", href: "//czbooks.net/c/xuanhuan/", want: standIn + "/c/xuanhuan/", wantPath: "/c/xuanhuan/"},
		{name: "a path naming no book keeps its slashes", base: standIn, page: standIn + "/", href: "//czbooks.net/n/0417//", want: standIn + "/n/0417//", wantPath: "/n/0417//"},
		{name: "a non-canonical id keeps its slash", base: standIn, page: standIn + "/", href: "//czbooks.net/n/bad.id/", want: standIn + "/n/bad.id/", wantPath: "/n/bad.id/"},
		{name: "escaped path kept escaped", base: standIn, page: standIn + "/", href: "//czbooks.net/c/%E7%8E%84", want: standIn + "/c/%E7%8E%84", wantPath: "/c/%E7%8E%84"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(sitetest.MustURL(t, tt.base))
			got, ok := s.siteLink(sitetest.MustURL(t, tt.page), tt.href)
			if tt.want == "" {
				if ok {
					t.Errorf("siteLink(%q) on %s = %+v; want no site page", tt.href, tt.page, got)
				}
				return
			}
			if !ok || got.url != tt.want || got.path != tt.wantPath {
				t.Errorf("siteLink(%q) on %s = %+v, %v; want %s (path %s)", tt.href, tt.page, got, ok, tt.want, tt.wantPath)
			}
		})
	}
}

func TestPathIDs(t *testing.T) {
	tests := []struct {
		path              string
		book              string // "" when the path names no book
		chapterBook, chap string // "" when it names no chapter
		category          string // "" when it names no category
	}{
		{path: "/n/cr382b", book: "cr382b"},
		{path: "/n/cr382b/", book: "cr382b"},
		{path: "/n/0123", book: "0123"},
		{path: "/n/cr382b/crdic", chapterBook: "cr382b", chap: "crdic"},
		{path: "/n/cr382b/0001/", chapterBook: "cr382b", chap: "0001"},
		{path: "/n/cr382b/crdic/x"},
		{path: "/n/cr382b//"},
		{path: "/n/"},
		{path: "/n"},
		{path: "/n/bad.id"},
		{path: "/n/%63r382b"},
		{path: "/c/xuanhuan", category: "xuanhuan"},
		{path: "/c/xuanhuan/", category: "xuanhuan"},
		{path: "/c/xuanhuan/2"},
		{path: "/c/ke-huan"},
		{path: "/c/"},
		{path: "/x/n/cr382b"},
		{path: "/"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			book, ok := bookOf(tt.path)
			if ok != (tt.book != "") || ok && book != tt.book {
				t.Errorf("bookOf = %q, %v; want %q", book, ok, tt.book)
			}
			b, c, ok := chapterOf(tt.path)
			if ok != (tt.chap != "") || ok && (b != tt.chapterBook || c != tt.chap) {
				t.Errorf("chapterOf = %q, %q, %v; want %q, %q", b, c, ok, tt.chapterBook, tt.chap)
			}
			slug, ok := categoryOf(tt.path)
			if ok != (tt.category != "") || ok && slug != tt.category {
				t.Errorf("categoryOf = %q, %v; want %q", slug, ok, tt.category)
			}
		})
	}
}

// FuzzSiteLink: whatever the base, page and href, a link the rule accepts is an
// absolute URL under the base, its path the one it reports.
func FuzzSiteLink(f *testing.F) {
	f.Add("http://127.0.0.1:8080", "http://127.0.0.1:8080/n/cr382b", "//czbooks.net/n/cr382b")
	f.Add("http://host/prefix", "http://host/prefix/n/cr382b/", "../../../x")
	f.Add("http://host/prefix", "https://czbooks.net/n/a", "/../b?c#d")
	f.Add("https://czbooks.net", "https://czbooks.net/", "HTTP://WWW.CZBOOKS.NET/%2e%2e/x")
	f.Fuzz(func(t *testing.T, base, pageURL, href string) {
		b, err := url.Parse(base)
		if err != nil {
			return
		}
		on, err := site.NewBase(b)
		if err != nil {
			return
		}
		s := &Source{base: on}
		p, err := url.Parse(pageURL)
		if err != nil || !p.IsAbs() || p.Host == "" {
			return
		}
		l, ok := s.siteLink(p, href)
		if !ok {
			return
		}
		if !strings.HasPrefix(l.path, "/") {
			t.Fatalf("siteLink(%q) path %q does not start with /", href, l.path)
		}
		if want := s.base.URL(l.path); l.url != want && !strings.HasPrefix(l.url, want+"?") {
			t.Fatalf("siteLink(%q) = %q; want %q and a query at most", href, l.url, want)
		}
		u, err := url.Parse(l.url)
		if err != nil {
			t.Fatalf("siteLink(%q) = %q, which does not parse: %v", href, l.url, err)
		}
		if u.Host != b.Host || u.User != nil || u.Fragment != "" {
			t.Fatalf("siteLink(%q) = %q is not on %s", href, l.url, base)
		}
		for _, seg := range strings.Split(l.path, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("siteLink(%q) = %q keeps a dot segment", href, l.url)
			}
		}
	})
}

// TestPlainLink: the links read by joining strings, and those left to url.Parse; both
// ways agree.
func TestPlainLink(t *testing.T) {
	tests := []struct {
		href string
		want string // the path; "" when plainLink leaves the link to url.Parse
	}{
		{"//czbooks.net/n/cr382b", "/n/cr382b"},
		{"https://czbooks.net/n/cr382b/crdic", "/n/cr382b/crdic"},
		{"http://czbooks.net/c/xuanhuan/", "/c/xuanhuan/"},
		{"//czbooks.net/n/cr382b/", "/n/cr382b"},
		{"/n/cr382b/0123/", "/n/cr382b/0123"},
		{"/c/xuanhuan", "/c/xuanhuan"},
		{"/", "/"},
		{"/static/a.b-c_d.css", "/static/a.b-c_d.css"},
		{"//czbooks.net", ""},
		{"//czbooks.net.evil.example/n/x", ""},
		{"//czbooks.net:443/n/x", ""},
		{"//www.czbooks.net/n/x", ""},
		{"//CZBOOKS.NET/n/x", ""},
		{"/n/x?from=list", ""},
		{"/n/x#top", ""},
		{"/n/./x", ""},
		{"/n/../x", ""},
		{"/n//x", ""},
		{"//czbooks.net//n/x", ""},
		{"/c/%E7%8E%84", ""},
		{"/c/玄幻", ""},
		{"crdic", ""},
		{"./crdic", ""},
		{"javascript:void(0)", ""},
	}
	s := New(sitetest.MustURL(t, "http://host/prefix"))
	page := sitetest.MustURL(t, "http://host/prefix/n/cr382b")
	for _, tt := range tests {
		got, ok := s.plainLink(tt.href)
		if ok != (tt.want != "") || ok && got.path != tt.want {
			t.Errorf("plainLink(%q) = %+v, %v; want path %q", tt.href, got, ok, tt.want)
		}
		if ok {
			if parsed, pok := s.parsedLink(page, tt.href); !pok || parsed != got {
				t.Errorf("plainLink(%q) = %+v; url.Parse gives %+v, %v", tt.href, got, parsed, pok)
			}
		}
	}
}

// FuzzPlainLink: whatever the href, a link plainLink reads is the one url.Parse reads.
func FuzzPlainLink(f *testing.F) {
	for _, h := range []string{"//czbooks.net/n/cr382b", "/c/x/", "/...", "/a/.b/c..", "https://czbooks.net/", "//czbooks.net/.."} {
		f.Add(h)
	}
	s := New(sitetest.MustURL(f, "http://127.0.0.1:8080/cz"))
	page := sitetest.MustURL(f, "http://127.0.0.1:8080/cz/n/cr382b/crdic")
	f.Fuzz(func(t *testing.T, href string) {
		got, ok := s.plainLink(href)
		if !ok {
			return
		}
		if want, ok := s.parsedLink(page, href); !ok || got != want {
			t.Fatalf("plainLink(%q) = %+v; url.Parse gives %+v, %v", href, got, want, ok)
		}
	})
}
