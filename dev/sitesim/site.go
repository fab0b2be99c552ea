package sitesim

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/traditionalchinese"

	"github.com/xswtw/xsw/platform/clock"
)

// ErrUnknownBook reports a book id that the site does not have.
var ErrUnknownBook = errors.New("unknown book")

// Site is a simulated source site. It is safe for concurrent use.
type Site struct {
	cfg     Config
	handler http.Handler

	mu  sync.RWMutex // guards the books in cat
	cat *catalogue

	log    requestLog
	faults faults
}

// New builds the site that cfg describes. Zero counts take their defaults and
// out-of-range values are clamped (see Config.Validate); invalid fault rules
// are dropped.
func New(cfg Config) *Site {
	cfg = cfg.withDefaults()
	s := &Site{
		cfg: cfg,
		cat: generate(cfg),
		log: requestLog{limit: cfg.LogLimit},
	}
	s.faults.rng = newRand(cfg.Seed, streamFaults)
	var rules []FaultRule
	for _, r := range cfg.Faults {
		if r.validate() == nil {
			rules = append(rules, r)
		}
	}
	_ = s.faults.set(rules, false) // validated above
	s.handler = s.newHandler()
	return s
}

// Handler returns the HTTP handler of the site and of its /_sim/ control
// endpoints.
func (s *Site) Handler() http.Handler { return s.handler }

// Category is one category of the site.
type Category struct {
	// ID is the number of the category, 1..Config.Categories: the id on
	// m.xsw.tw, the order of the menu on czbooks.net.
	ID int `json:"id"`
	// Slug is the id of the category on czbooks.net (xuanhuan); empty on
	// m.xsw.tw.
	Slug string `json:"slug,omitempty"`
	Name string `json:"name"`
}

// Categories returns the site's categories in id order.
func (s *Site) Categories() []Category {
	out := make([]Category, 0, s.cfg.Categories)
	for id := 1; id <= s.cfg.Categories; id++ {
		out = append(out, s.category(id))
	}
	return out
}

// category returns the category with number id, 1..Config.Categories.
func (s *Site) category(id int) Category {
	if s.cfg.Site == SiteCzbooks {
		return czbooksCategories[id]
	}
	return Category{ID: id, Name: categoryNames[id]}
}

// Flavour returns the site simulated: SiteXSW or SiteCzbooks.
func (s *Site) Flavour() string { return s.cfg.Site }

// ChapterInfo is a chapter as the table of contents shows it.
type ChapterInfo struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// BookInfo is the ground truth about a book.
type BookInfo struct {
	// Site is the flavour of the site: SiteXSW or SiteCzbooks.
	Site   string `json:"site"`
	ID     string `json:"id"`
	Name   string `json:"name"`
	Author string `json:"author"`
	// Category is the number of the book's category (Category.ID).
	Category int `json:"category"`
	// CategoryID is the category's id as the site writes it in URLs: the
	// number on m.xsw.tw ("3"), the slug on czbooks.net ("dushi").
	CategoryID string `json:"category_id"`
	// Genre is the category's name, as the book page shows it (m.xsw.tw: the
	// 分類 line; czbooks.net: a#novel-category).
	Genre string `json:"genre"`
	// Status is the status word on the book page: 已完成 or 連載中 on
	// m.xsw.tw; 連載中, 已完成, 完結 or 已完結 on czbooks.net. Finished says
	// whether the book is finished.
	Status   string `json:"status"`
	Finished bool   `json:"finished"`
	// Intro is the description.
	Intro string `json:"intro"`
	// Updated is the book's update time (Taiwan time, whole seconds);
	// UpdatedText is how the book page writes it: the 更新 line of m.xsw.tw
	// (2025/5/31 9:05:07) or the 更新時間 cell of czbooks.net (2025-05-31).
	Updated      time.Time `json:"updated"`
	UpdatedText  string    `json:"updated_text"`
	ChapterCount int       `json:"chapter_count"`
	// TOCPages is the number of table of contents pages (at least 1); 1 on
	// czbooks.net, whose book page lists every chapter.
	TOCPages int `json:"toc_pages"`
	// ListingPage is the category listing page that shows the book.
	ListingPage int `json:"listing_page"`
	// Bookmarks and Views are the 收藏數 and 觀看數 counts of czbooks.net.
	Bookmarks int `json:"bookmarks,omitempty"`
	Views     int `json:"views,omitempty"`
	// Volumes are the volume headers of the czbooks.net chapter list, in
	// order; many books have none, and m.xsw.tw has none.
	Volumes []Volume `json:"volumes,omitempty"`
	// Chapters are in reading order; Books and /_sim/books leave them out
	// unless asked.
	Chapters []ChapterInfo `json:"chapters,omitempty"`
}

// Volume is a volume header of a czbooks.net chapter list.
type Volume struct {
	// Title is the header's text, such as 第一卷 風起雲湧.
	Title string `json:"title"`
	// FirstChapter is the 1-based number of the volume's first chapter,
	// counting chapters only (headers never count). Every volume has at
	// least one chapter.
	FirstChapter int `json:"first_chapter"`
}

// Chapter is a chapter with its text.
type Chapter struct {
	BookID string `json:"book_id"`
	ID     string `json:"id"`
	// Position is the 1-based place of the chapter in the table of contents.
	Position int    `json:"position"`
	Title    string `json:"title"`
	// Paragraphs are the text, without indentation or the trailing
	// >>章節報錯<< line.
	Paragraphs []string `json:"paragraphs"`
}

// Book returns the ground truth about one book, chapters included.
func (s *Site) Book(id string) (BookInfo, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.cat.byID[id]
	if !ok {
		return BookInfo{}, false
	}
	return s.bookInfo(b, true), true
}

// Books returns the ground truth about every book in catalogue order, with
// their chapters. On m.xsw.tw book ids increase in that order; on czbooks.net
// they are opaque and follow no order.
func (s *Site) Books() []BookInfo {
	return s.books(true)
}

func (s *Site) books(withChapters bool) []BookInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]BookInfo, len(s.cat.books))
	for i, b := range s.cat.books {
		out[i] = s.bookInfo(b, withChapters)
	}
	return out
}

// bookInfo copies b; the caller holds s.mu.
func (s *Site) bookInfo(b *book, withChapters bool) BookInfo {
	cat := s.category(b.category)
	info := BookInfo{
		Site:         s.cfg.Site,
		ID:           b.id,
		Name:         b.name,
		Author:       b.author,
		Category:     b.category,
		CategoryID:   cmp.Or(cat.Slug, strconv.Itoa(cat.ID)),
		Genre:        cat.Name,
		Status:       b.status(),
		Finished:     b.finished,
		Intro:        b.intro,
		Updated:      b.updated,
		UpdatedText:  s.updatedText(b.updated),
		ChapterCount: len(b.chapters),
		TOCPages:     s.tocPages(b),
		ListingPage:  b.listPos/s.cfg.BooksPerPage + 1,
		Bookmarks:    b.bookmarks,
		Views:        b.views,
	}
	for _, v := range b.volumes {
		info.Volumes = append(info.Volumes, Volume{Title: v.title, FirstChapter: v.first + 1})
	}
	if withChapters {
		info.Chapters = make([]ChapterInfo, len(b.chapters))
		for i, c := range b.chapters {
			info.Chapters[i] = ChapterInfo{ID: c.id, Title: c.title}
		}
	}
	return info
}

// status is the status word on the book page.
func (b *book) status() string {
	switch {
	case !b.finished:
		return "連載中"
	case b.finishedWord != "":
		return b.finishedWord
	}
	return "已完成"
}

func (s *Site) tocPages(b *book) int {
	if s.cfg.Site == SiteCzbooks {
		return 1
	}
	return max(1, (len(b.chapters)+s.cfg.ChaptersPerTOCPage-1)/s.cfg.ChaptersPerTOCPage)
}

// Chapter returns a chapter of a book with its text.
func (s *Site) Chapter(bookID, chapterID string) (Chapter, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.cat.byID[bookID]
	if !ok {
		return Chapter{}, false
	}
	pos, ok := b.byID[chapterID]
	if !ok {
		return Chapter{}, false
	}
	return Chapter{
		BookID:     bookID,
		ID:         chapterID,
		Position:   pos + 1,
		Title:      b.chapters[pos].title,
		Paragraphs: chapterText(s.cfg.Seed, s.cat.textKey(bookID, chapterID), b.hero),
	}, true
}

// AddChapters appends n new chapters to a book, as an author publishing them;
// on czbooks.net they join the book's last volume.
// The book's 更新 time moves to now (at least one second past the previous
// one), so that Last-Modified changes.
func (s *Site) AddChapters(bookID string, n int) error {
	if n <= 0 {
		return fmt.Errorf("add %d chapters to book %s: n must be positive", n, bookID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.cat.byID[bookID]
	if !ok {
		return fmt.Errorf("add chapters to book %s: %w", bookID, ErrUnknownBook)
	}
	if len(b.chapters)+n > maxChaptersPerBook {
		return fmt.Errorf("add %d chapters to book %s: more than %d chapters", n, bookID, maxChaptersPerBook)
	}
	s.cat.addChapters(b, n)
	b.touch()
	return nil
}

// CutChapters makes book bookID list only its first keep chapters, as a site that
// loses or hides chapters would (the chapters cut are gone from its pages too), keeping
// the volumes that still begin within them. keep must be below the book's chapter count.
func (s *Site) CutChapters(bookID string, keep int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.cat.byID[bookID]
	if !ok {
		return fmt.Errorf("cut the chapters of book %s: %w", bookID, ErrUnknownBook)
	}
	if keep < 0 || keep >= len(b.chapters) {
		return fmt.Errorf("cut book %s to %d chapters: want 0 to %d", bookID, keep, len(b.chapters)-1)
	}
	for _, c := range b.chapters[keep:] {
		delete(b.byID, c.id)
	}
	b.chapters = b.chapters[:keep:keep]
	for i, v := range b.volumes {
		if v.first >= keep {
			b.volumes = b.volumes[:i:i]
			break
		}
	}
	b.touch()
	return nil
}

// touch moves the book's 更新 time to now, at least one second past the previous one, so
// that Last-Modified changes.
func (b *book) touch() {
	now, floor := time.Now().In(taipei).Truncate(time.Second), b.updated.Add(time.Second)
	if now.Before(floor) {
		now = floor
	}
	b.updated = now
}

// Requests returns a copy of the request log, oldest first.
func (s *Site) Requests() []Request { return s.log.snapshot("") }

// Count returns the number of site requests since the start or the last
// Reset, including those dropped from the log.
func (s *Site) Count() int { return s.log.count() }

// CountPath returns the number of logged requests whose path starts with
// prefix.
func (s *Site) CountPath(prefix string) int { return len(s.log.snapshot(prefix)) }

// Reset clears the request log and the count.
func (s *Site) Reset() { s.log.reset() }

// Stats summarises the request log; window is the window of MaxInWindow.
func (s *Site) Stats(window time.Duration) Stats {
	total, reqs := s.log.all()
	return computeStats(total, reqs, window, s.pageKind)
}

// SetFaults replaces the fault rules; no rules turns faults off.
func (s *Site) SetFaults(rules ...FaultRule) error { return s.faults.set(rules, false) }

// AddFault adds a fault rule after the current ones.
func (s *Site) AddFault(rule FaultRule) error { return s.faults.set([]FaultRule{rule}, true) }

// Faults returns the fault rules in force with their counters.
func (s *Site) Faults() []FaultState { return s.faults.list() }

// newHandler routes /_sim/ to the control endpoints and everything else to
// the site.
func (s *Site) newHandler() http.Handler {
	control := s.controlMux()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_sim/") {
			control.ServeHTTP(w, r)
			return
		}
		s.serveSite(w, r)
	})
}

// statusWriter records the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Site) serveSite(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	entry := s.log.begin(Request{
		Time:       start,
		Method:     r.Method,
		Path:       r.URL.Path,
		Query:      r.URL.RawQuery,
		RemoteAddr: r.RemoteAddr,
		UserAgent:  r.UserAgent(),
	})
	sw := &statusWriter{ResponseWriter: w}
	fault := s.serve(sw, r)
	s.log.end(entry, sw.status, fault, time.Since(start))
}

// serve answers a site request and returns the fault injected, if any.
func (s *Site) serve(w *statusWriter, r *http.Request) FaultKind {
	ctx := r.Context()
	if !clock.Sleep(ctx, s.latency()) {
		return ""
	}
	rule, faulty := s.faults.pick(r.URL.Path)
	if faulty {
		switch rule.Kind {
		case FaultTooManyRequests:
			w.Header().Set("Retry-After", retryAfter(cmp.Or(rule.RetryAfter, DefaultRetryAfter)))
			s.write(w, r, s.errorPage(http.StatusTooManyRequests, "請求過於頻繁，請稍後再試。"), false)
			return rule.Kind
		case FaultServerError:
			s.write(w, r, s.errorPage(http.StatusInternalServerError, ""), false)
			return rule.Kind
		case FaultUnavailable:
			if rule.RetryAfter > 0 {
				w.Header().Set("Retry-After", retryAfter(rule.RetryAfter))
			}
			s.write(w, r, s.errorPage(http.StatusServiceUnavailable, ""), false)
			return rule.Kind
		case FaultNotFound:
			s.write(w, r, s.errorPage(http.StatusNotFound, ""), false)
			return rule.Kind
		case FaultReset:
			resetConn(w)
			return rule.Kind
		case FaultRefuse:
			s.refuse(w, r)
			return rule.Kind
		case FaultBlank:
			s.write(w, r, response{status: http.StatusOK, body: s.blankPage()}, false)
			return rule.Kind
		case FaultRedirect:
			to := strings.TrimSuffix(cmp.Or(rule.RedirectTo, DefaultRedirectTo), "/") + r.URL.RequestURI()
			w.Header().Set("Location", to)
			w.WriteHeader(http.StatusFound)
			return rule.Kind
		case FaultHang:
			if !clock.Sleep(ctx, cmp.Or(rule.Hang, DefaultHang)) {
				return rule.Kind
			}
		case FaultTruncate:
			// Below.
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.write(w, r, s.errorPage(http.StatusMethodNotAllowed, ""), false)
		return rule.Kind
	}
	s.write(w, r, s.render(r.URL.Path), faulty && rule.Kind == FaultTruncate)
	return rule.Kind
}

func retryAfter(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// resetConn closes the connection with a TCP reset. Without a hijackable
// connection (HTTP/2) it aborts the response instead.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST instead of FIN; best effort
	}
	_ = conn.Close()
}

func (s *Site) latency() time.Duration {
	d := s.cfg.Latency
	if s.cfg.LatencyJitter > 0 {
		d += rand.N(s.cfg.LatencyJitter)
	}
	return d
}

// response is a rendered page before encoding.
type response struct {
	status   int
	body     string
	etag     string    // set on pages that support validators
	modified time.Time // Last-Modified of those pages
}

// write sends resp: validators and 304 when enabled, Big5 encoding when
// configured, and only the first half of the body when truncate is set.
func (s *Site) write(w http.ResponseWriter, r *http.Request, resp response, truncate bool) {
	h := w.Header()
	h.Set("Content-Type", s.cfg.ContentType)
	if s.cfg.Validators && resp.etag != "" && resp.status == http.StatusOK {
		h.Set("ETag", resp.etag)
		h.Set("Last-Modified", resp.modified.UTC().Format(http.TimeFormat))
		if notModified(r, resp) {
			h.Del("Content-Type")
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	body := []byte(resp.body)
	if s.cfg.Big5 {
		if enc, err := encoding.ReplaceUnsupported(traditionalchinese.Big5.NewEncoder()).String(resp.body); err == nil {
			body = []byte(enc)
		}
	}
	if truncate {
		body = cut(body, !s.cfg.Big5)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body) // the client went away; nothing to do
	}
}

// cut returns the first half of body, on a rune boundary when utf8 is set.
func cut(body []byte, utf8 bool) []byte {
	n := len(body) / 2
	if utf8 {
		for n > 0 && body[n]&0xC0 == 0x80 {
			n--
		}
	}
	return body[:n]
}

// notModified evaluates If-None-Match, or else If-Modified-Since.
func notModified(r *http.Request, resp response) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for tag := range strings.SplitSeq(inm, ",") {
			tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
			if tag == "*" || tag == strings.TrimPrefix(resp.etag, "W/") {
				return true
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		t, err := http.ParseTime(ims)
		return err == nil && !resp.modified.Truncate(time.Second).After(t)
	}
	return false
}
