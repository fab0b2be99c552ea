package sitetest

import (
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/fetcher/site"
)

// CheckAdapter checks a as the fetcher takes it: it validates and registers, builds on
// base (an http(s) URL ending in "/") a Source whose home page is base, whose Info is
// a's and which is site.Paginated or not as paginated says, and refuses a base that is
// no absolute http(s) URL with an error naming the base URL. It returns the Source.
func CheckAdapter(t *testing.T, a site.Adapter, base string, paginated bool) site.Source {
	t.Helper()
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	src, err := a.New(MustURL(t, base))
	if err != nil {
		t.Fatal(err)
	}
	if got := src.HomeURL(); got != base {
		t.Errorf("home %s", got)
	}
	if _, ok := src.(site.Paginated); ok != paginated {
		t.Errorf("the source is site.Paginated: %v; want %v", ok, paginated)
	}
	if src.Info() != a.Info {
		t.Errorf("source info %+v, want %+v", src.Info(), a.Info)
	}
	def := MustURL(t, a.Info.DefaultBaseURL)
	for _, bad := range []string{"ftp://" + def.Host, "/relative"} {
		if _, err := a.New(MustURL(t, bad)); err == nil || !strings.Contains(err.Error(), "base URL") {
			t.Errorf("New(%s) = %v, want a base URL error", bad, err)
		}
	}
	r := site.Registry{}
	if err := r.Add(a); err != nil {
		t.Fatalf("register: %v", err)
	}
	return src
}

// URLCase is a URL a Source of type S builds on a base: Got(New(Base)) is Want, an
// empty Base meaning a nil one.
type URLCase[S any] struct {
	Name string
	Base string
	Got  func(S) string
	Want string
}

// RunURLCases runs the cases, building each Source with newSource.
func RunURLCases[S any](t *testing.T, newSource func(*url.URL) S, cases []URLCase[S]) {
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			var base *url.URL
			if tt.Base != "" {
				base = MustURL(t, tt.Base)
			}
			if got := tt.Got(newSource(base)); got != tt.Want {
				t.Errorf("got %q; want %q", got, tt.Want)
			}
		})
	}
}

// CheckOnBase fails the test unless u, a URL a Source built, is on base: same scheme and
// host, no user, no query or fragment, and a path under base's path whose segments,
// even once decoded, hold no "/" and are not "." or "..".
func CheckOnBase(t testing.TB, base *url.URL, u string) {
	t.Helper()
	got, err := url.Parse(u)
	if err != nil {
		t.Fatalf("built URL %q does not parse: %v", u, err)
	}
	if got.Scheme != base.Scheme || got.Host != base.Host || got.User != nil || got.RawQuery != "" || got.Fragment != "" {
		t.Fatalf("built URL %q is not on %s", u, base)
	}
	prefix := strings.TrimRight(base.EscapedPath(), "/") + "/"
	rest, ok := strings.CutPrefix(got.EscapedPath(), prefix)
	if !ok {
		t.Fatalf("built URL %q is outside %q", u, prefix)
	}
	for _, seg := range strings.Split(rest, "/") {
		dec, err := url.PathUnescape(seg)
		if err != nil || dec == "." || dec == ".." || strings.ContainsAny(dec, `/\`) {
			t.Fatalf("built URL %q has segment %q", u, seg)
		}
	}
}

// IDCase says whether ID is a canonical book id and a canonical category id of a site.
type IDCase struct {
	ID             string
	Book, Category bool
}

// RunCanonicalIDs checks src's canonical-id rules on the cases, that the patterns it
// publishes (Info.BookIDPattern, Info.CategoryIDPattern) say the same, and that the
// canonical ids can be carried (events.ValidID).
func RunCanonicalIDs(t *testing.T, src site.Source, cases []IDCase) {
	book, category := Patterns(t, src)
	for _, tt := range cases {
		t.Run(tt.ID, func(t *testing.T) {
			if got := src.CanonicalBookID(tt.ID); got != tt.Book {
				t.Errorf("CanonicalBookID(%q) = %v, want %v", tt.ID, got, tt.Book)
			}
			if got := src.CanonicalCategoryID(tt.ID); got != tt.Category {
				t.Errorf("CanonicalCategoryID(%q) = %v, want %v", tt.ID, got, tt.Category)
			}
			// The patterns published for the other services say the same.
			if got := book.MatchString(tt.ID); got != tt.Book {
				t.Errorf("BookIDPattern matches %q: %v, want %v", tt.ID, got, tt.Book)
			}
			if got := category.MatchString(tt.ID); got != tt.Category {
				t.Errorf("CategoryIDPattern matches %q: %v, want %v", tt.ID, got, tt.Category)
			}
			if (tt.Book || tt.Category) && !events.ValidID(tt.ID) {
				t.Errorf("canonical id %q cannot be carried", tt.ID)
			}
		})
	}
}

// Patterns returns the book and category id patterns src publishes, compiled as they
// are matched (site.CompilePattern).
func Patterns(t testing.TB, src site.Source) (book, category *regexp.Regexp) {
	t.Helper()
	book, err := site.CompilePattern(src.Info().BookIDPattern)
	if err != nil {
		t.Fatal(err)
	}
	category, err = site.CompilePattern(src.Info().CategoryIDPattern)
	if err != nil {
		t.Fatal(err)
	}
	return book, category
}

// CheckID fails t unless src's canonical-id rules say of id what its patterns book and
// category (Patterns) say, a canonical id can be carried (events.ValidID), and a
// canonical book id is its own segment in a URL path (site.PathSegment).
func CheckID(t testing.TB, src site.Source, book, category *regexp.Regexp, id string) {
	t.Helper()
	b := src.CanonicalBookID(id)
	if want := book.MatchString(id); b != want {
		t.Fatalf("CanonicalBookID(%q) = %v, the pattern says %v", id, b, want)
	}
	c := src.CanonicalCategoryID(id)
	if want := category.MatchString(id); c != want {
		t.Fatalf("CanonicalCategoryID(%q) = %v, the pattern says %v", id, c, want)
	}
	if (b || c) && !events.ValidID(id) {
		t.Fatalf("canonical id %q cannot be carried", id)
	}
	if b && site.PathSegment(id) != id {
		t.Fatalf("canonical id %q changes in a URL", id)
	}
}
