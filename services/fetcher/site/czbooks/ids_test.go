package czbooks

import (
	"strings"
	"testing"

	"github.com/xswtw/xsw/services/fetcher/site/sitetest"
)

func TestCanonicalIDs(t *testing.T) {
	tests := []sitetest.IDCase{
		{ID: "cr382b", Book: true, Category: true},
		{ID: "s660jj", Book: true, Category: true},
		{ID: "crdic", Book: true, Category: true},
		{ID: "0123", Book: true, Category: true},
		{ID: "0", Book: true, Category: true},
		{ID: "1721851", Book: true, Category: true},
		{ID: "Ab_9", Book: true, Category: true},
		{ID: "xuanhuan", Book: true, Category: true},
		{ID: "ab-12", Book: true, Category: false},
		{ID: "-", Book: true, Category: false},
		{ID: strings.Repeat("a", 64), Book: true, Category: true},
		{ID: strings.Repeat("a", 65), Book: false, Category: false},
		{ID: "", Book: false, Category: false},
		{ID: "bad.id", Book: false, Category: false},
		{ID: "a/b", Book: false, Category: false},
		{ID: "a b", Book: false, Category: false},
		{ID: "cr382b ", Book: false, Category: false},
		{ID: "%63r", Book: false, Category: false},
		{ID: "玄幻", Book: false, Category: false},
		{ID: "１２", Book: false, Category: false},
		{ID: "a*", Book: false, Category: false},
		{ID: "a>", Book: false, Category: false},
	}
	sitetest.RunCanonicalIDs(t, New(nil), tests)
}

func FuzzCanonicalIDs(f *testing.F) {
	for _, id := range []string{"cr382b", "0123", "", "a.b", "ab-12", strings.Repeat("z", 65), "玄幻"} {
		f.Add(id)
	}
	s := New(nil)
	book, category := sitetest.Patterns(f, s)
	f.Fuzz(func(t *testing.T, id string) {
		sitetest.CheckID(t, s, book, category, id)
	})
}
