package czbooks

import (
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
		{"cr382b", true, true},
		{"s660jj", true, true},
		{"crdic", true, true},
		{"0123", true, true},
		{"0", true, true},
		{"1721851", true, true},
		{"Ab_9", true, true},
		{"xuanhuan", true, true},
		{"ab-12", true, false},
		{"-", true, false},
		{strings.Repeat("a", 64), true, true},
		{strings.Repeat("a", 65), false, false},
		{"", false, false},
		{"bad.id", false, false},
		{"a/b", false, false},
		{"a b", false, false},
		{"cr382b ", false, false},
		{"%63r", false, false},
		{"玄幻", false, false},
		{"１２", false, false},
		{"a*", false, false},
		{"a>", false, false},
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
			if (tt.book || tt.category) && !events.ValidID(tt.id) {
				t.Errorf("canonical id %q cannot be carried", tt.id)
			}
		})
	}
}

func FuzzCanonicalIDs(f *testing.F) {
	for _, id := range []string{"cr382b", "0123", "", "a.b", "ab-12", strings.Repeat("z", 65), "玄幻"} {
		f.Add(id)
	}
	s := New(nil)
	book, _ := site.CompilePattern(BookIDPattern)
	category, _ := site.CompilePattern(CategoryIDPattern)
	f.Fuzz(func(t *testing.T, id string) {
		b := s.CanonicalBookID(id)
		if want := book.MatchString(id); b != want {
			t.Fatalf("CanonicalBookID(%q) = %v, the pattern says %v", id, b, want)
		}
		c := s.CanonicalCategoryID(id)
		if want := category.MatchString(id); c != want {
			t.Fatalf("CanonicalCategoryID(%q) = %v, the pattern says %v", id, c, want)
		}
		if (b || c) && !events.ValidID(id) {
			t.Fatalf("canonical id %q cannot be carried", id)
		}
		if b && site.PathSegment(id) != id {
			t.Fatalf("canonical id %q changes in a URL", id)
		}
	})
}
