package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/testkit"
	"github.com/xswtw/xsw/services/gateway/internal/testdb"
)

// TestCachedAnswers: an answer read from the memory cache is the answer that filled it,
// byte for byte, with the same headers, and the JSON the value encodes to.
func TestCachedAnswers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	testdb.InsertBook(t, e.pool, "1721851", "萬古神帝", true)
	testdb.InsertChapters(t, e.pool, "1721851", 45)
	testdb.Exec(t, e.pool, `UPDATE chapters SET text = '第一段。' || chr(10) || '"引號" <b>&</b>' WHERE book_id = '1721851' AND num = 2`)
	var calls atomic.Int32
	e.serve(events.SubjectRPCCategories, func([]byte) events.Payload {
		calls.Add(1)
		return categoriesReply(events.Category{ID: "1", Name: "玄幻小說", URL: "https://m.xsw.tw/fenlei1_1.html"})
	})
	e.serveListing(listed(3), &calls)

	tests := []struct {
		name, path string
		want       any // the answer's value, to check the JSON it is encoded to
	}{
		{"book", "/xsw/api/books/1721851", nil},
		{"chapter list page", "/xsw/api/books/1721851/chapters?page=2", nil},
		{"whole chapter list", "/xsw/api/books/1721851/chapters?all=true", nil},
		{"chapter", "/xsw/api/books/1721851/chapters/2", api.Chapter{BookID: "1721851", ChapterNum: 2, Title: "第2章",
			URL: "https://m.xsw.tw/1721851/1002.html", Text: "第一段。\n\"引號\" <b>&</b>", Site: "xsw"}},
		{"categories", "/xsw/api/categories", []api.Category{{ID: "1", Name: "玄幻小說", URL: "https://m.xsw.tw/fenlei1_1.html"}}},
		{"listing", "/xsw/api/categories/1/books?bg_sync=false", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := e.get(tt.path)
			expect(t, first, http.StatusOK)
			cached := e.get(tt.path)
			expect(t, cached, http.StatusOK)
			if !bytes.Equal(cached.body, first.body) {
				t.Errorf("cached body\n%s\nwant the first answer's\n%s", cached.body, first.body)
			}
			for _, h := range []string{"Content-Type", "X-Total-Count", "X-Sync-Status", "Content-Length"} {
				if got, want := cached.header.Get(h), first.header.Get(h); got != want {
					t.Errorf("cached %s = %q, want %q", h, got, want)
				}
			}
			if tt.want != nil {
				want, err := json.Marshal(tt.want)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(cached.body, want) {
					t.Errorf("body\n%s\nwant\n%s", cached.body, want)
				}
			}
		})
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("fetchers asked %d times, want 2 (categories and the listing, once each)", n)
	}

	// A listing read from the cache still queues its books.
	expect(t, e.get("/xsw/api/categories/1/books"), http.StatusOK)
	testkit.Eventually(t, 10*time.Second, "3 prefetch requests", func() bool { return e.stored() == 3 })
	if n := calls.Load(); n != 2 {
		t.Errorf("fetchers asked %d times, want the listing served from the cache", n)
	}
}
