package xsw

import (
	"testing"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/fetcher/site"
	"github.com/xswtw/xsw/services/fetcher/site/sitetest"
)

func TestCanonicalIDs(t *testing.T) {
	tests := []sitetest.IDCase{
		{ID: "1721851", Book: true, Category: true},
		{ID: "1", Book: true, Category: true},
		{ID: "123456789", Book: true, Category: true},
		{ID: "1234567890", Book: true, Category: false},
		{ID: "123456789012", Book: true, Category: false},
		{ID: "1234567890123", Book: false, Category: false},
		{ID: "0123", Book: false, Category: false},
		{ID: "0", Book: false, Category: false},
		{ID: "", Book: false, Category: false},
		{ID: "12a", Book: false, Category: false},
		{ID: "-12", Book: false, Category: false},
		{ID: "１２", Book: false, Category: false},
		{ID: "12 ", Book: false, Category: false},
	}
	sitetest.RunCanonicalIDs(t, New(nil), tests)
}

func FuzzCanonicalBookID(f *testing.F) {
	for _, id := range []string{"1721851", "0123", "", "1e5", "999999999999", "9999999999999"} {
		f.Add(id)
	}
	s := New(nil)
	book, category := sitetest.Patterns(f, s)
	f.Fuzz(func(t *testing.T, id string) {
		sitetest.CheckID(t, s, book, category, id)
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
	sitetest.CheckAdapter(t, a, "http://127.0.0.1:8080/xsw/", true)
	if a.Info.ID != events.LegacySite {
		t.Errorf("id %q, want %q, the legacy site", a.Info.ID, ID)
	}
}
