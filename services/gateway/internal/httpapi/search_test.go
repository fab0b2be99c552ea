package httpapi

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/services/gateway/internal/testdb"
)

func searchFixture(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	testdb.InsertBook(t, e.pool, "1721851", "萬古神帝", true) // author 飛天魚
	testdb.InsertBook(t, e.pool, "2", "頭髮與裡面", true)
	testdb.Exec(t, e.pool, `INSERT INTO chapters (site, book_id, num, chapter_id, title, url, text) VALUES
		('xsw', '1721851', 1, '1001', '第一章 萬古之始', 'https://m.xsw.tw/1721851/1001.html', '三千年前，神帝出關。'),
		('xsw', '1721851', 2, '1002', '第二章 神帝出關', 'https://m.xsw.tw/1721851/1002.html', NULL)`)
	return e
}

func TestSearch(t *testing.T) {
	t.Parallel()
	e := searchFixture(t)
	r := e.get("/xsw/api/search?q=" + url.QueryEscape("万古神帝"))
	expect(t, r, http.StatusOK)
	hasKeys(t, "search", r.body, "query", "search_type", "terms", "count", "results")
	var got api.Search
	r.decode(t, &got)
	if got.Query != "万古神帝" || got.SearchType != "all" || !slices.Equal(got.Terms, []string{"万古神帝", "萬古神帝"}) || got.Count != 1 {
		t.Fatalf("answer %s", r.body)
	}
	h := got.Results[0]
	if h.Type != "book" || h.Match != "name" || h.Site != "xsw" || h.BookID != "1721851" || h.Name != "萬古神帝" || h.Author != "飛天魚" ||
		h.URL != "https://m.xsw.tw/1721851/" || h.Score != 3 || h.ChapterNum != nil || h.Title != nil || h.Snippet != nil {
		t.Errorf("hit %+v", h)
	}
	var raw struct {
		Results []map[string]any `json:"results"`
	}
	r.decode(t, &raw)
	for _, k := range []string{"type", "match", "site", "book_id", "name", "author", "chapter_num", "title", "url", "score", "snippet"} {
		if _, ok := raw.Results[0][k]; !ok {
			t.Errorf("hit lacks %q", k)
		}
	}

	tests := []struct {
		query string
		want  []string // type:book_id[:chapter_num]
	}{
		{"q=" + url.QueryEscape("神帝"), []string{"book:1721851", "chapter:1721851:2"}},
		{"q=" + url.QueryEscape("神帝") + "&search_type=books", []string{"book:1721851"}},
		{"q=" + url.QueryEscape("神帝") + "&search_type=chapters", []string{"chapter:1721851:2"}},
		{"q=" + url.QueryEscape("神帝出关") + "&search_type=content", []string{"chapter:1721851:1"}},
		{"q=" + url.QueryEscape("飞天鱼"), []string{"book:1721851", "book:2"}},   // Simplified author; ties by site, then book id (text)
		{"q=" + url.QueryEscape("头发与里面"), []string{"book:2"}},                 // the Taiwan form of 里
		{"q=" + url.QueryEscape("神帝") + "&limit=1", []string{"book:1721851"}}, // best first
		{"q=" + url.QueryEscape("無此書"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := e.get("/xsw/api/search?" + tt.query)
			expect(t, r, http.StatusOK)
			var got api.Search
			r.decode(t, &got)
			var ids []string
			for _, h := range got.Results {
				id := h.Type + ":" + h.BookID
				if h.ChapterNum != nil {
					id += ":" + strconv.Itoa(*h.ChapterNum)
				}
				ids = append(ids, id)
			}
			if !slices.Equal(ids, tt.want) || got.Count != len(tt.want) || got.Results == nil {
				t.Errorf("hits %v (count %d), want %v; %s", ids, got.Count, tt.want, r.body)
			}
		})
	}
	r = e.get("/xsw/api/search?search_type=content&q=" + url.QueryEscape("神帝出關"))
	r.decode(t, &got)
	if len(got.Results) != 1 || got.Results[0].Snippet == nil || !strings.Contains(*got.Results[0].Snippet, "神帝出關") {
		t.Errorf("content hit without its snippet: %s", r.body)
	}
}

func TestSearchBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, q := range []string{
		"", "q=", "q=%20%20", "q=" + strings.Repeat("字", 51), "q=a%00b", "q=a%0Ab", "q=%ff%fe",
		"q=x&search_type=everything", "q=x&search_type=Books", "q=x&limit=0", "q=x&limit=101", "q=x&limit=ten",
	} {
		r := e.get("/xsw/api/search?" + q)
		expect(t, r, http.StatusBadRequest)
		if r.detail(t) == "" {
			t.Errorf("%s: empty detail", q)
		}
	}
	expect(t, e.get("/xsw/api/search?q="+strings.Repeat("字", 50)), http.StatusOK)
}

func TestSearchDatabaseDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.pool.Close()
	r := e.get("/xsw/api/search?q=x")
	expect(t, r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" || r.detail(t) == "" {
		t.Errorf("503 without Retry-After or detail: %s", r.body)
	}
}
