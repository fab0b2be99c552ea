package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longbridgeapp/opencc"

	"github.com/xswtw/xsw/dev/allinone"
	"github.com/xswtw/xsw/dev/sitesim"
	"github.com/xswtw/xsw/platform/testkit"
)

// apiSystem is an all-in-one in demo mode started for any test or fuzz target.
func apiSystem(tb testing.TB, site sitesim.Config, env map[string]string) *system {
	tb.Helper()
	return startOpts(tb, allinone.Options{Site: &site}, env)
}

// apiDo sends one request with the admin token and returns the status and body.
func (s *system) apiDo(t testing.TB, method, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.GatewayURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// sitePath matches every path the simulated site serves: home, listing, book home,
// table-of-contents page, chapter.
var sitePath = regexp.MustCompile(`^/$|^/fenlei\d+_\d+\.html$|^/\d+/$|^/\d+/page-\d+\.html$|^/\d+/\d+\.html$`)

// FuzzRoutes throws valid and hostile requests at the whole system (gateway, fetchers,
// indexer, simulated site) and checks that none gets a 500 or a non-JSON error, that
// another host is never contacted, and that the fetchers ask the site for its own pages
// only. The seed corpus runs in `make test`; fuzz it with
//
//	go test ./dev/e2e -run '^$' -fuzz FuzzRoutes -fuzztime 30s -parallel 4
//
// In a target, {book} becomes a book of the site and {other} the address of the other
// host.
func FuzzRoutes(f *testing.F) {
	var hits atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "the other host was contacted", http.StatusTeapot)
	}))
	f.Cleanup(other.Close)
	otherAddr := strings.TrimPrefix(other.URL, "http://")

	cfg := sitesim.DefaultConfig()
	cfg.Categories, cfg.BooksPerCategory = 2, 20
	cfg.MinChapters, cfg.MaxChapters = 3, 45
	s := apiSystem(f, cfg, map[string]string{
		"INTERACTIVE_WAIT": "300ms", "CHAPTER_WAIT": "1s", "RPC_TIMEOUT": "2s", "API_RATE_LIMIT": "0",
	})
	book := s.Site.Books()[0].ID

	for _, seed := range []struct {
		method byte
		target string
		admin  bool
	}{
		{0, "/xsw/api/health", false},
		{0, "/healthz", false},
		{0, "/xsw/api/readyz", false},
		{0, "/xsw/api/openapi.json", false},
		{0, "/xsw/api/categories", false},
		{0, "/xsw/api/categories/1/books?page=1&bg_sync=false", false},
		{0, "/xsw/api/books/{book}", false},
		{0, "/xsw/api/books/{book}/chapters?page=2&nocache=true", false},
		{0, "/xsw/api/books/{book}/chapters?all=true", false},
		{0, "/xsw/api/books/{book}/chapters/1", false},
		{0, "/xsw/api/search?q=%E7%A5%9E&search_type=all&limit=5", false},
		{0, "/xsw/api/search?q=%E7%A5%9E&search_type=content", false},
		{0, "/xsw/api/admin/stats", true},
		{0, "/xsw/api/admin/jobs/stats", true},
		{0, "/xsw/api/admin/jobs/dead?limit=5", true},
		{1, "/xsw/api/admin/jobs/sync/{book}?priority=10", true},
		{1, "/xsw/api/admin/jobs/force-resync/{book}", true},
		{1, "/xsw/api/admin/jobs/dead/{book}/replay", true},
		{1, "/xsw/api/admin/jobs/dead/replay_all", true},
		{1, "/xsw/api/admin/jobs/purge?lane=refresh", true},
		{1, "/xsw/api/admin/cache/clear", true},
		{1, "/xsw/api/admin/cache/invalidate/{book}", true},
		{2, "/xsw/api/admin/cache/chapters/{book}", true},
		{1, "/xsw/api/admin/jobs/clear_history", false},
		// Hostile.
		{0, "/xsw/api/books/../../etc/passwd", false},
		{0, "/xsw/api/books/%2e%2e%2fetc%2fpasswd", false},
		{0, "/xsw/api/books/http:%2F%2F{other}%2F", false},
		{0, "/xsw/api/books/{book}?url=http://{other}/", false},
		{0, "http://{other}/xsw/api/books/{book}", false},
		{0, "//{other}/xsw/api/books/{book}", false},
		{0, "/xsw/api/categories/0/books", false},
		{0, "/xsw/api/categories/1/books?page=-1", false},
		{0, "/xsw/api/categories/1/books?page=99999999999999999999", false},
		{0, "/xsw/api/categories/%7B{other}%7D/books", false},
		{0, "/xsw/api/books/%EF%BC%91%EF%BC%92%EF%BC%93", false}, // full-width digits
		{0, "/xsw/api/books/1234567890123", false},
		{0, "/xsw/api/books/{book}/chapters/0", false},
		{0, "/xsw/api/books/{book}/chapters/1%0d%0aHost:%20{other}", false},
		{0, "/xsw/api/books/{book}/chapters?page=1&page=2&all=maybe", false},
		{0, "/xsw/api/search?q=%00%ff&search_type=../", false},
		{0, "/xsw/api/search?q=" + strings.Repeat("%E5%AD%97", 60), false},
		{0, "/xsw/api/admin/jobs/stats", false},
		{1, "/xsw/api/admin/jobs/purge?lane=../../{other}", true},
		{1, "/xsw/api/admin/jobs/sync/{other}", true},
		{3, "/xsw/api/books/{book}", false},
		{4, "*", false},
		{0, "/" + strings.Repeat("a/", 3000), false},
	} {
		f.Add(seed.method, seed.target, seed.admin)
	}

	seen := 0 // site requests already checked
	f.Fuzz(func(t *testing.T, method byte, target string, admin bool) {
		methods := []string{"GET", "POST", "DELETE", "PUT", "OPTIONS", "HEAD"}
		m := methods[int(method)%len(methods)]
		target = strings.NewReplacer("{book}", book, "{other}", otherAddr).Replace(target)
		if target == "" || strings.ContainsAny(target, " \r\n") || len(target) > 16<<10 {
			return // not a request line: the transport would refuse to send it
		}
		status, header, body := rawRequest(t, s.GatewayURL, m, target, admin, s.AdminToken)
		t.Logf("%s %.200s (admin %v): %d %.120s", m, target, admin, status, body)
		if status == http.StatusInternalServerError || status < 100 || status > 599 {
			t.Fatalf("%s %s: status %d: %s", m, target, status, body)
		}
		if status >= 400 && m != "HEAD" {
			var d struct {
				Detail *string `json:"detail"`
			}
			if err := json.Unmarshal(body, &d); err != nil || d.Detail == nil || !strings.HasPrefix(header.Get("Content-Type"), "application/json") {
				t.Fatalf("%s %s: status %d with a body that is not {\"detail\"}: %q (%s)", m, target, status, body, header.Get("Content-Type"))
			}
		}
		if n := hits.Load(); n != 0 {
			t.Fatalf("%s %s: the other host was contacted %d times", m, target, n)
		}
		reqs := s.Site.Requests()
		for _, r := range reqs[min(seen, len(reqs)):] {
			if !sitePath.MatchString(r.Path) || r.Query != "" {
				t.Fatalf("after %s %s: the site was asked for %q?%s", m, target, r.Path, r.Query)
			}
		}
		seen = len(reqs)
	})
}

// rawRequest writes one HTTP/1.1 request with the target as given (no client-side
// cleaning) and reads the answer.
func rawRequest(t *testing.T, baseURL, method, target string, admin bool, token string) (int, http.Header, []byte) {
	t.Helper()
	host := strings.TrimPrefix(baseURL, "http://")
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, host)
	if admin {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", token)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: no HTTP answer: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return resp.StatusCode, resp.Header, body
}

// TestBigBookPageOutOfTurn reads a page far into a 3,000-chapter book while its sync is
// still walking the first pages: the gateway asks the fetchers for that one source page
// and serves it, numbered right, long before the sync gets there.
func TestBigBookPageOutOfTurn(t *testing.T) {
	t.Parallel()
	cfg := sitesim.DefaultConfig()
	cfg.Categories, cfg.BooksPerCategory = 1, 20
	big := sitesim.BookIDs(cfg)[3]
	cfg.BigBooks = map[string]int{big: 3000}
	s := apiSystem(t, cfg, map[string]string{"BG_JOB_RATE_LIMIT": "0.1"}) // 150 pages: 15s at least
	truth, ok := s.Site.Book(big)
	if !ok || len(truth.Chapters) != 3000 {
		t.Fatalf("big book %s: %d chapters", big, len(truth.Chapters))
	}

	if status, body := s.apiDo(t, http.MethodGet, "/xsw/api/books/"+big); status != http.StatusOK {
		t.Fatalf("book: %d %s", status, body)
	}
	testkit.Eventually(t, 20*time.Second, "the first page stored", func() bool {
		status, _ := s.apiDo(t, http.MethodGet, "/xsw/api/books/"+big+"/chapters?nocache=true")
		return status == http.StatusOK
	})
	began := time.Now()
	status, body := s.apiDo(t, http.MethodGet, "/xsw/api/books/"+big+"/chapters?page=120")
	if status != http.StatusOK {
		t.Fatalf("page 120: %d %s", status, body)
	}
	t.Logf("page 120 of a book still syncing served in %v", time.Since(began))
	var refs []chapterRef
	if err := json.Unmarshal(body, &refs); err != nil {
		t.Fatal(err)
	}
	if len(refs) != 20 {
		t.Fatalf("page 120 has %d chapters, want 20", len(refs))
	}
	for i, r := range refs {
		n := 2381 + i
		want := truth.Chapters[n-1]
		if r.Number != n || r.Title != want.Title || !strings.HasSuffix(r.URL, "/"+big+"/"+want.ID+".html") {
			t.Fatalf("chapter %d = %+v, want title %q id %s", n, r, want.Title, want.ID)
		}
	}
	var synced int
	if err := s.db.QueryRow(context.Background(), `SELECT count(*) FROM chapters WHERE book_id = $1 AND num < 2381`, big).Scan(&synced); err != nil {
		t.Fatal(err)
	}
	if synced >= 2380 {
		t.Errorf("the sync had already stored %d chapters: the page was not served out of turn", synced)
	}

	// A chapter far ahead is read the same way, text included.
	status, body = s.apiDo(t, http.MethodGet, "/xsw/api/books/"+big+"/chapters/2900")
	if status != http.StatusOK {
		t.Fatalf("chapter 2900: %d %s", status, body)
	}
	var ch struct {
		ChapterNum int    `json:"chapter_num"`
		Title      string `json:"title"`
		Text       string `json:"text"`
	}
	if err := json.Unmarshal(body, &ch); err != nil {
		t.Fatal(err)
	}
	text, _ := s.Site.Chapter(big, truth.Chapters[2899].ID)
	if ch.ChapterNum != 2900 || ch.Title != text.Title || ch.Text != strings.Join(text.Paragraphs, "\n") {
		t.Errorf("chapter 2900 = %+v, want title %q", ch, text.Title)
	}
}

// TestPurgeTextsAndSearch checks, through the real indexer, that an administrator's purge
// forgets a chapter's stored text so that the next read fetches it again, and that the
// search finds what was synced, Simplified queries included.
func TestPurgeTextsAndSearch(t *testing.T) {
	t.Parallel()
	cfg := sitesim.DefaultConfig()
	cfg.Categories, cfg.BooksPerCategory = 1, 20
	cfg.MinChapters, cfg.MaxChapters = 5, 30
	s := apiSystem(t, cfg, nil)
	b := s.Site.Books()[0]
	if status, body := s.apiDo(t, http.MethodGet, "/xsw/api/books/"+b.ID); status != http.StatusOK {
		t.Fatalf("book: %d %s", status, body)
	}
	chapterPath := "/" + b.ID + "/" + b.Chapters[0].ID + ".html"
	if status, body := s.apiDo(t, http.MethodGet, "/xsw/api/books/"+b.ID+"/chapters/1"); status != http.StatusOK {
		t.Fatalf("chapter 1: %d %s", status, body)
	}
	testkit.Eventually(t, 10*time.Second, "the text stored", func() bool {
		var n int
		err := s.db.QueryRow(context.Background(), `SELECT count(*) FROM chapters WHERE book_id = $1 AND text IS NOT NULL`, b.ID).Scan(&n)
		return err == nil && n == 1
	})
	fetches := s.Site.CountPath(chapterPath)

	status, body := s.apiDo(t, http.MethodDelete, "/xsw/api/admin/cache/chapters/"+b.ID)
	if status != http.StatusOK || string(body) != `{"book_id":"`+b.ID+`","site":"xsw","status":"purged","texts_cleared":1}` {
		t.Fatalf("purge: %d %s", status, body)
	}
	if status, body := s.apiDo(t, http.MethodGet, "/xsw/api/books/"+b.ID+"/chapters/1"); status != http.StatusOK {
		t.Fatalf("chapter 1 after the purge: %d %s", status, body)
	}
	if got := s.Site.CountPath(chapterPath); got != fetches+1 {
		t.Errorf("the chapter was fetched %d times after the purge, want once", got-fetches)
	}

	// The book's name, typed in Simplified Chinese, finds it.
	status, body = s.apiDo(t, http.MethodGet, "/xsw/api/search?search_type=books&q="+url.QueryEscape(toSimplified(t, b.Name)))
	var found struct {
		Results []struct {
			BookID string `json:"book_id"`
			Name   string `json:"name"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &found); status != http.StatusOK || err != nil || len(found.Results) == 0 ||
		found.Results[0].BookID != b.ID || found.Results[0].Name != b.Name {
		t.Errorf("search for %q: %d %s", b.Name, status, body)
	}
}

// toSimplified writes s in Simplified Chinese, as a reader in the mainland would type it.
func toSimplified(t *testing.T, s string) string {
	t.Helper()
	cc, err := opencc.New("t2s")
	if err != nil {
		t.Fatal(err)
	}
	out, err := cc.Convert(s)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
