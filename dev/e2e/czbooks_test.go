package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xswtw/xsw/dev/allinone"
	"github.com/xswtw/xsw/dev/sitesim"
	"github.com/xswtw/xsw/platform/testkit"
)

// TestCzbooksBookEndToEnd runs the demo's two sites, m.xsw.tw (the default) and
// czbooks.net, the latter read by its real adapter from the simulated site written
// independently from the same description. A czbooks book listed in a category is
// pre-cached whole in one request, volume headers kept as volumes and never counted,
// ids kept as the site writes them; its chapters are served with clean text; an
// unchanged resync costs one conditional request, and new chapters keep the existing
// numbers. One search finds a title on both sites.
func TestCzbooksBookEndToEnd(t *testing.T) {
	t.Parallel()
	xcfg := sitesim.DefaultConfig()
	xcfg.Categories, xcfg.BooksPerCategory, xcfg.MinChapters, xcfg.MaxChapters = 1, 4, 20, 40
	ccfg := sitesim.DefaultConfig()
	ccfg.Site = sitesim.SiteCzbooks
	ccfg.Categories, ccfg.BooksPerCategory, ccfg.MinChapters, ccfg.MaxChapters = 2, 12, 30, 120
	ccfg.Validators = true
	big := sitesim.BookIDs(ccfg)[0]
	ccfg.BigBooks = map[string]int{big: 312}
	s := startOpts(t, allinone.Options{Site: &xcfg, Sims: map[string]sitesim.Config{allinone.SiteCZBooks: ccfg}},
		map[string]string{"SYNC_DEDUP_WINDOW": "1ms"})
	cz := s.Sims[allinone.SiteCZBooks].Site()

	var sites []struct {
		ID      string `json:"id"`
		Default bool   `json:"default"`
		State   string `json:"state"`
		BaseURL string `json:"base_url"`
	}
	testkit.Eventually(t, 20*time.Second, "both sites described", func() bool {
		return s.get(t, "/xsw/api/sites", &sites).StatusCode == http.StatusOK && len(sites) == 2 &&
			sites[0].ID == "xsw" && sites[0].Default && sites[0].State == "ok" &&
			sites[1].ID == "czbooks" && !sites[1].Default && sites[1].State == "ok"
	})
	if sites[1].BaseURL != s.Sims[allinone.SiteCZBooks].URL() {
		t.Errorf("czbooks base URL %q, want the simulated site's %q", sites[1].BaseURL, s.Sims[allinone.SiteCZBooks].URL())
	}

	// The categories are the site's slugs, each once.
	var cats []struct{ ID, Name string }
	if s.get(t, "/xsw/api/sites/czbooks/categories", &cats).StatusCode != http.StatusOK {
		t.Fatal("categories")
	}
	var wantCats []string
	for _, c := range cz.Categories() {
		wantCats = append(wantCats, c.Slug)
	}
	var gotCats []string
	for _, c := range cats {
		gotCats = append(gotCats, c.ID)
	}
	if fmt.Sprint(gotCats) != fmt.Sprint(wantCats) {
		t.Errorf("categories %v, want %v", gotCats, wantCats)
	}

	// A listing: its books are pre-cached, each whole after one request.
	var listing []struct {
		Site   string  `json:"site"`
		Name   string  `json:"bookname"`
		BookID *string `json:"book_id"`
	}
	if s.get(t, "/xsw/api/sites/czbooks/categories/"+wantCats[0]+"/books", &listing).StatusCode != http.StatusOK || len(listing) == 0 {
		t.Fatalf("listing %+v", listing)
	}
	var ids []string
	for _, b := range listing {
		if b.Site != "czbooks" || b.BookID == nil {
			t.Fatalf("listed %+v", b)
		}
		ids = append(ids, *b.BookID)
	}
	truth := map[string]sitesim.BookInfo{}
	for _, id := range ids {
		b, ok := cz.Book(id)
		if !ok {
			t.Fatalf("listed book %s is not on the site", id)
		}
		truth[id] = b
	}
	testkit.Eventually(t, 60*time.Second, "every listed book pre-cached", func() bool {
		var n int
		err := s.db.QueryRow(context.Background(), `
			SELECT count(*) FROM books b WHERE b.site = 'czbooks' AND b.id = ANY($1)
			AND (SELECT count(*) FROM chapters c WHERE c.site = b.site AND c.book_id = b.id) = b.chapter_total`, ids).Scan(&n)
		return err == nil && n == len(ids)
	})
	for _, id := range ids {
		if n := cz.CountPath("/n/" + id); n != 1 {
			t.Errorf("book %s: %d requests under /n/%s to pre-cache it, want 1 (its page carries the whole list)", id, n, id)
		}
	}

	// Each book as the site has it: chapter ids in the site's order numbered 1..n, the
	// volumes with their first chapters, ids as written (leading zeros kept).
	var withVolumes, leadingZero string
	for _, id := range ids {
		b := truth[id]
		full := sitesimBook(t, s, id)
		var refs []chapterRef
		if s.get(t, "/xsw/api/sites/czbooks/books/"+id+"/chapters?all=true", &refs).StatusCode != http.StatusOK {
			t.Fatalf("chapters of %s", id)
		}
		if len(refs) != b.ChapterCount {
			t.Errorf("book %s: %d chapters, want %d", id, len(refs), b.ChapterCount)
			continue
		}
		for i, r := range refs {
			want := full.Chapters[i]
			if r.Number != i+1 || r.Title != want.Title || !strings.HasSuffix(r.URL, "/n/"+id+"/"+want.ID) {
				t.Errorf("book %s chapter %d: %+v, want %s %q", id, i+1, r, want.ID, want.Title)
				break
			}
		}
		var info struct {
			Site    string `json:"site"`
			BookID  string `json:"book_id"`
			Name    string `json:"name"`
			Volumes []struct {
				Title        string `json:"title"`
				FirstChapter int    `json:"first_chapter"`
			} `json:"volumes"`
		}
		if s.get(t, "/xsw/api/sites/czbooks/books/"+id, &info).StatusCode != http.StatusOK {
			t.Fatalf("book %s", id)
		}
		if info.Site != "czbooks" || info.BookID != id || info.Name != b.Name {
			t.Errorf("book %s: %+v, want %q", id, info, b.Name)
		}
		got, want := fmt.Sprint(info.Volumes), fmt.Sprint(b.Volumes)
		if len(b.Volumes) == 0 {
			want = "[]"
		}
		if got != want {
			t.Errorf("book %s: volumes %s, want %s", id, got, want)
		}
		if len(b.Volumes) > 1 {
			withVolumes = id
		}
		if strings.HasPrefix(id, "0") {
			leadingZero = id
		}
	}
	if withVolumes == "" {
		t.Error("no listed book has volumes: the check above proved nothing")
	}
	// An id of digits with a leading zero is the site's own, kept as written.
	if leadingZero == "" {
		for _, b := range cz.Books() {
			if strings.HasPrefix(b.ID, "0") {
				leadingZero = b.ID
				break
			}
		}
	}
	if leadingZero == "" {
		t.Fatal("the simulated catalogue has no id with a leading zero: choose another size")
	}
	var zero struct {
		BookID string `json:"book_id"`
		Last   *int   `json:"last_chapter_number"`
	}
	testkit.Eventually(t, 30*time.Second, "book "+leadingZero+" served", func() bool {
		return s.get(t, "/xsw/api/sites/czbooks/books/"+leadingZero, &zero).StatusCode == http.StatusOK && zero.Last != nil
	})
	if b, _ := cz.Book(leadingZero); zero.BookID != leadingZero || *zero.Last != b.ChapterCount {
		t.Errorf("book %s served as %+v, want %d chapters", leadingZero, zero, b.ChapterCount)
	}

	// A book of 312 chapters is one request too.
	var bigBook struct {
		Last *int `json:"last_chapter_number"`
	}
	testkit.Eventually(t, 30*time.Second, "book "+big+" served", func() bool {
		return s.get(t, "/xsw/api/sites/czbooks/books/"+big, &bigBook).StatusCode == http.StatusOK && bigBook.Last != nil
	})
	var bigRefs []chapterRef
	if s.get(t, "/xsw/api/sites/czbooks/books/"+big+"/chapters?all=true", &bigRefs).StatusCode != http.StatusOK || len(bigRefs) != 312 || *bigBook.Last != 312 {
		t.Errorf("book %s: %d chapters served, last %d; want 312", big, len(bigRefs), *bigBook.Last)
	}
	if n := cz.CountPath("/n/" + big); n != 1 {
		t.Errorf("book %s of 312 chapters cost %d requests, want 1", big, n)
	}

	// A chapter's text: the site's paragraphs, in order, without its ads and its name.
	id := ids[0]
	full := sitesimBook(t, s, id)
	var ch struct {
		Site  string `json:"site"`
		Num   int    `json:"chapter_num"`
		Title string `json:"title"`
		Text  string `json:"text"`
	}
	if s.get(t, "/xsw/api/sites/czbooks/books/"+id+"/chapters/2", &ch).StatusCode != http.StatusOK {
		t.Fatal("chapter 2")
	}
	want, _ := cz.Chapter(id, full.Chapters[1].ID)
	if ch.Site != "czbooks" || ch.Num != 2 || ch.Title != want.Title || ch.Text != strings.Join(want.Paragraphs, "\n") {
		t.Errorf("chapter 2 of %s:\n got %+v\nwant %q %q", id, ch, want.Title, strings.Join(want.Paragraphs, "\n"))
	}
	if strings.Contains(strings.ToLower(ch.Text), "czbooks") {
		t.Errorf("chapter text names the site: %q", ch.Text)
	}

	// Unchanged: a resync costs one conditional request, answered 304.
	resync := func(endpoint string) []sitesim.Request {
		t.Helper()
		var jobs int
		_ = s.db.QueryRow(context.Background(), `SELECT count(*) FROM job_history WHERE site = 'czbooks' AND book_id = $1 AND status = 'completed'`, id).Scan(&jobs)
		cz.Reset()
		// The fetchers' heartbeats may still list the last sync for a moment after it
		// ended (already_syncing): ask until the request is queued.
		testkit.Eventually(t, 10*time.Second, "the resync queued", func() bool {
			var answer struct{ Status string }
			code := s.post(t, "/xsw/api/admin/jobs/"+endpoint+"/"+id+"?site=czbooks", &answer)
			if code != http.StatusAccepted && code != http.StatusOK {
				t.Fatalf("sync: %d %+v", code, answer)
			}
			return answer.Status == "queued"
		})
		testkit.Eventually(t, 30*time.Second, "the resync recorded", func() bool {
			var n int
			_ = s.db.QueryRow(context.Background(), `SELECT count(*) FROM job_history WHERE site = 'czbooks' AND book_id = $1 AND status = 'completed'`, id).Scan(&n)
			return n == jobs+1
		})
		return cz.Requests()
	}
	if got := resync("sync"); len(got) != 1 || got[0].Path != "/n/"+id || got[0].Status != http.StatusNotModified {
		t.Errorf("unchanged resync: %+v, want one request of /n/%s answered 304", got, id)
	}

	// Three new chapters: one request again, the old numbers kept, the new ones after.
	// (A second sync of the book in the manual lane within two minutes would be the
	// same request, dropped as a duplicate: this one is forced.)
	before := full.ChapterCount
	if err := cz.AddChapters(id, 3); err != nil {
		t.Fatal(err)
	}
	if got := resync("force-resync"); len(got) != 1 || got[0].Status != http.StatusOK {
		t.Errorf("resync after growth: %+v, want one request answered 200", got)
	}
	grown := sitesimBook(t, s, id)
	testkit.Eventually(t, 30*time.Second, "the new chapters served", func() bool {
		var refs []chapterRef
		if s.get(t, "/xsw/api/sites/czbooks/books/"+id+"/chapters?all=true", &refs).StatusCode != http.StatusOK || len(refs) != before+3 {
			return false
		}
		for i, r := range refs {
			if r.Number != i+1 || !strings.HasSuffix(r.URL, "/"+grown.Chapters[i].ID) {
				t.Fatalf("after growth chapter %d is %+v, want %s", i+1, r, grown.Chapters[i].ID)
			}
		}
		return true
	})

	// One search finds a title on both sites, every hit naming its site.
	xid := s.Site.Books()[0].ID
	if s.get(t, "/xsw/api/books/"+xid, nil).StatusCode != http.StatusOK {
		testkit.Eventually(t, 30*time.Second, "an m.xsw.tw book stored", func() bool { return s.get(t, "/xsw/api/books/"+xid, nil).StatusCode == http.StatusOK })
	}
	xname := s.Site.Books()[0].Name
	query := commonRunes(xname, truth[id].Name)
	if query == "" {
		t.Skipf("no character common to %q and %q", xname, truth[id].Name)
	}
	var found struct {
		Results []struct {
			Site   string `json:"site"`
			BookID string `json:"book_id"`
		} `json:"results"`
	}
	if s.get(t, "/xsw/api/search?site=all&search_type=books&limit=100&q="+url.QueryEscape(query), &found).StatusCode != http.StatusOK {
		t.Fatal("search")
	}
	var hits []string
	for _, r := range found.Results {
		if r.Site == "" {
			t.Errorf("a hit without its site: %+v", r)
		}
		hits = append(hits, r.Site+"/"+r.BookID)
	}
	for _, want := range []string{"xsw/" + xid, "czbooks/" + id} {
		if !slices.Contains(hits, want) {
			t.Errorf("search %q over every site: %v, want %s among them", query, hits, want)
		}
	}
}

// sitesimBook is the simulated czbooks.net's ground truth for a book, with its chapters.
func sitesimBook(t *testing.T, s *system, id string) sitesim.BookInfo {
	t.Helper()
	var b sitesim.BookInfo
	resp, err := http.Get(s.Sims[allinone.SiteCZBooks].URL() + "/_sim/books/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || len(b.Chapters) == 0 {
		t.Fatalf("ground truth of %s: %v", id, err)
	}
	return b
}

// commonRunes returns the longest run of characters the two names share (at most
// four), or "".
func commonRunes(a, b string) string {
	ra, best := []rune(a), ""
	for i := range ra {
		for j := i + 1; j <= len(ra) && j-i <= 4; j++ {
			if sub := string(ra[i:j]); strings.Contains(b, sub) && len([]rune(sub)) > len([]rune(best)) {
				best = sub
			}
		}
	}
	return best
}
