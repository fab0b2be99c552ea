package httpapi

import (
	"net/http"
	"testing"

	"github.com/xswtw/xsw/services/gateway/internal/testdb"
)

// BenchmarkCachedRead answers reads the memory cache holds, through the whole Fiber
// chain driven by App().Test. The figures are relative: the in-memory HTTP round trip of
// a test request costs more than the handler.
func BenchmarkCachedRead(b *testing.B) {
	e := newEnv(b)
	testdb.InsertBook(b, e.pool, "1721851", "萬古神帝", true)
	testdb.InsertChapters(b, e.pool, "1721851", 400)
	// About the size of a chapter of the site: 3,000 characters.
	testdb.Exec(b, e.pool, `UPDATE chapters SET text = repeat('第一段，正文。' || chr(10), 400) WHERE book_id = '1721851' AND num = 2`)
	for _, bc := range []struct{ name, path string }{
		{"book", "/xsw/api/books/1721851"},
		{"chapters", "/xsw/api/books/1721851/chapters?page=2"},
		{"chapters_all", "/xsw/api/books/1721851/chapters?all=true"},
		{"chapter", "/xsw/api/books/1721851/chapters/2"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if r := e.get(bc.path); r.status != http.StatusOK { // fills the cache
				b.Fatalf("status %d: %s", r.status, r.body)
			}
			for b.Loop() {
				if r := e.get(bc.path); r.status != http.StatusOK {
					b.Fatalf("status %d: %s", r.status, r.body)
				}
			}
		})
	}
}
