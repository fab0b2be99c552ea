package xsw

import (
	"net/url"
	"strings"
	"testing"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/fetcher/site"
)

func TestCanonicalIDs(t *testing.T) {
	tests := []struct {
		id             string
		book, category bool
	}{
		{"1721851", true, true},
		{"1", true, true},
		{"123456789", true, true},
		{"1234567890", true, false},
		{"123456789012", true, false},
		{"1234567890123", false, false},
		{"0123", false, false},
		{"0", false, false},
		{"", false, false},
		{"12a", false, false},
		{"-12", false, false},
		{"１２", false, false},
		{"12 ", false, false},
	}
	s := New(nil)
	book, err := site.CompilePattern(BookIDPattern)
	if err != nil {
		t.Fatal(err)
	}
	category, err := site.CompilePattern(CategoryIDPattern)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if got := s.CanonicalBookID(tt.id); got != tt.book {
				t.Errorf("CanonicalBookID(%q) = %v, want %v", tt.id, got, tt.book)
			}
			if got := s.CanonicalCategoryID(tt.id); got != tt.category {
				t.Errorf("CanonicalCategoryID(%q) = %v, want %v", tt.id, got, tt.category)
			}
			// The patterns published for the other services say the same.
			if got := book.MatchString(tt.id); got != tt.book {
				t.Errorf("BookIDPattern matches %q: %v, want %v", tt.id, got, tt.book)
			}
			if got := category.MatchString(tt.id); got != tt.category {
				t.Errorf("CategoryIDPattern matches %q: %v, want %v", tt.id, got, tt.category)
			}
			if tt.book && !events.ValidBookID(tt.id) {
				t.Errorf("canonical id %q cannot be carried", tt.id)
			}
		})
	}
}

func FuzzCanonicalBookID(f *testing.F) {
	for _, id := range []string{"1721851", "0123", "", "1e5", "999999999999", "9999999999999"} {
		f.Add(id)
	}
	s := New(nil)
	book, _ := site.CompilePattern(BookIDPattern)
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := s.CanonicalBookID(id), book.MatchString(id); got != want {
			t.Fatalf("CanonicalBookID(%q) = %v, the pattern says %v", id, got, want)
		}
	})
}

// TestPagingRule: every page but the last holds as many chapters as page 1.
func TestPagingRule(t *testing.T) {
	s := New(nil)
	l := site.Layout{FirstPageRefs: 20, TotalPages: 71}
	for _, tt := range []struct{ n, page, first int }{
		{1, 1, 1}, {20, 1, 1}, {21, 2, 21}, {40, 2, 21}, {1418, 71, 1401}, {1421, 72, 1421},
	} {
		page, ok := s.PageOf(tt.n, l)
		if !ok || page != tt.page {
			t.Errorf("PageOf(%d) = %d, %v; want %d", tt.n, page, ok, tt.page)
		}
		first, ok := s.FirstOf(page, l)
		if !ok || first != tt.first {
			t.Errorf("FirstOf(%d) = %d, %v; want %d", page, first, ok, tt.first)
		}
	}
	// Without page 1's size only page 1 is known.
	if page, ok := s.PageOf(5, site.Layout{TotalPages: 3}); ok {
		t.Errorf("PageOf without a layout = %d, want unknown", page)
	}
	if first, ok := s.FirstOf(1, site.Layout{}); !ok || first != 1 {
		t.Errorf("FirstOf(1) without a layout = %d, %v; want 1", first, ok)
	}
	if _, ok := s.FirstOf(2, site.Layout{}); ok {
		t.Error("FirstOf(2) without a layout is known")
	}
	if _, ok := s.PageOf(0, l); ok {
		t.Error("PageOf(0) is known")
	}
}

func TestAdapter(t *testing.T) {
	a := Adapter()
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	if a.Info.ID != events.LegacySite {
		t.Errorf("id %q, want %q, the legacy site", a.Info.ID, ID)
	}
	base, _ := url.Parse("http://127.0.0.1:8080/xsw/")
	src, err := a.New(base)
	if err != nil {
		t.Fatal(err)
	}
	if got := src.HomeURL(); got != "http://127.0.0.1:8080/xsw/" {
		t.Errorf("home %s", got)
	}
	if _, ok := src.(site.Paginated); !ok {
		t.Error("the adapter's source is not paginated")
	}
	if src.Info() != a.Info {
		t.Errorf("source info %+v, want %+v", src.Info(), a.Info)
	}
	for _, bad := range []string{"ftp://m.xsw.tw", "/relative"} {
		u, _ := url.Parse(bad)
		if _, err := a.New(u); err == nil || !strings.Contains(err.Error(), "base URL") {
			t.Errorf("New(%s) = %v, want a base URL error", bad, err)
		}
	}
}
