package sitesim

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults used by DefaultConfig and by New for zero fields.
const (
	DefaultCategories         = 7
	DefaultBooksPerCategory   = 60
	DefaultBooksPerPage       = 20
	DefaultMinChapters        = 20
	DefaultMaxChapters        = 300
	DefaultChaptersPerTOCPage = 20
	DefaultFinishedRatio      = 0.3
	DefaultLogLimit           = 200_000
	// DefaultContentType is the Content-Type of m.xsw.tw pages, which declare
	// Big5 whatever their bytes are.
	DefaultContentType = "text/html; charset=big5"
	// DefaultCzbooksContentType is the Content-Type of czbooks.net pages
	// (with Config.Big5 they are served as DefaultContentType).
	DefaultCzbooksContentType = "text/html; charset=utf-8"
)

// The flavours of site that Config.Site selects.
const (
	// SiteXSW simulates m.xsw.tw (台灣小說網, mobile): numeric ids, paginated
	// tables of contents, pages that declare Big5.
	SiteXSW = "xsw"
	// SiteCzbooks simulates czbooks.net (小說狂人): opaque string ids, category
	// slugs, the whole chapter list with volume headers on the book page,
	// UTF-8 pages whose links name czbooks.net.
	SiteCzbooks = "czbooks"
)

// maxBooks bounds the catalogue so that book ids stay 7-digit numbers.
const maxBooks = 1_000_000

// maxChaptersPerBook bounds one book, growth included.
const maxChaptersPerBook = 1_000_000

// categoryNames is the known set of categories of m.xsw.tw, by id.
var categoryNames = [...]string{1: "玄幻小說", 2: "修真小說", 3: "都市小說", 4: "曆史小說", 5: "網遊小說", 6: "科幻小說", 7: "恐怖小說"}

// czbooksCategories are the categories of czbooks.net, by number (1-based,
// index 0 unused): the first three are known from the original project, the
// rest are plausible.
var czbooksCategories = [...]Category{
	{},
	{ID: 1, Slug: "xuanhuan", Name: "玄幻"},
	{ID: 2, Slug: "yanqing", Name: "言情"},
	{ID: 3, Slug: "dushi", Name: "都市"},
	{ID: 4, Slug: "xianxia", Name: "仙俠"},
	{ID: 5, Slug: "lishi", Name: "歷史"},
	{ID: 6, Slug: "kehuan", Name: "科幻"},
	{ID: 7, Slug: "kongbu", Name: "恐怖"},
}

// maxCategories is the number of categories each flavour knows (a test checks
// that they agree).
const maxCategories = len(categoryNames) - 1

// Config describes a simulated site. Start from DefaultConfig: New replaces zero
// counts with their defaults, but zero ratios and durations mean zero.
type Config struct {
	// Site selects the site simulated: SiteXSW (the default, also for "") or
	// SiteCzbooks. Both draw the same kind of catalogue from the seed; they
	// differ in ids, URLs, markup and encoding (see the package doc).
	Site string
	// Seed makes the site deterministic: the same seed and sizes give the same
	// books, ids, titles and text.
	Seed int64
	// Categories is how many categories exist, 1..7 (default 7), the first
	// ones of the real site's set: 1 玄幻小說 … 7 恐怖小說 on m.xsw.tw,
	// xuanhuan 玄幻, yanqing 言情, dushi 都市, xianxia 仙俠, lishi 歷史,
	// kehuan 科幻, kongbu 恐怖 on czbooks.net.
	Categories int
	// BooksPerCategory is the number of books in each category (default 60).
	BooksPerCategory int
	// BooksPerPage is the size of a category listing page (default 20).
	BooksPerPage int
	// MinChapters and MaxChapters bound the chapter count of a book, drawn per
	// book from the seed (default 20..300). Equal values give a fixed count.
	// MinChapters may be 0 when MaxChapters is set: a book with no chapters yet.
	MinChapters, MaxChapters int
	// BigBooks overrides the chapter count of specific books, by book id (see
	// BookIDs for the ids a configuration gets).
	BigBooks map[string]int
	// ChaptersPerTOCPage is the number of chapters on one table of contents
	// page of m.xsw.tw (default 20; the real site shows 20 to 50). czbooks.net
	// has no such pages.
	ChaptersPerTOCPage int
	// FinishedRatio is the share of finished books (0..1): 已完成 on
	// m.xsw.tw, one of 已完成, 完結 and 已完結 on czbooks.net.
	FinishedRatio float64
	// Latency is added to every site response; LatencyJitter adds a uniform
	// random extra in [0, LatencyJitter).
	Latency, LatencyJitter time.Duration
	// Big5 serves pages really encoded as Big5 instead of UTF-8. czbooks.net
	// pages then declare Big5 too; m.xsw.tw pages always do.
	Big5 bool
	// ContentType is the Content-Type header of pages. The default is
	// DefaultContentType for m.xsw.tw (as the real site declares, whatever
	// the bytes) and DefaultCzbooksContentType for czbooks.net, or
	// DefaultContentType there with Big5.
	ContentType string
	// Validators sends ETag and Last-Modified on book pages (m.xsw.tw: book
	// home and table of contents pages) and answers conditional requests
	// with 304.
	Validators bool
	// Faults are the fault rules in force at start (see FaultRule).
	Faults []FaultRule
	// LogLimit caps the request log; the oldest entries are dropped first
	// (default 200000). Count stays exact.
	LogLimit int
	// Logger receives the HTTP server's internal errors; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the default configuration with seed 1: m.xsw.tw, and
// ContentType left empty so that New picks the one of the flavour.
func DefaultConfig() Config {
	return Config{
		Seed:               1,
		Categories:         DefaultCategories,
		BooksPerCategory:   DefaultBooksPerCategory,
		BooksPerPage:       DefaultBooksPerPage,
		MinChapters:        DefaultMinChapters,
		MaxChapters:        DefaultMaxChapters,
		ChaptersPerTOCPage: DefaultChaptersPerTOCPage,
		FinishedRatio:      DefaultFinishedRatio,
		LogLimit:           DefaultLogLimit,
	}
}

// withDefaults fills zero counts with defaults and clamps the rest into range,
// so that New never fails.
func (c Config) withDefaults() Config {
	if c.Site != SiteCzbooks {
		c.Site = SiteXSW
	}
	if c.Categories <= 0 {
		c.Categories = DefaultCategories
	}
	c.Categories = min(c.Categories, maxCategories)
	if c.BooksPerCategory <= 0 {
		c.BooksPerCategory = DefaultBooksPerCategory
	}
	c.BooksPerCategory = min(c.BooksPerCategory, maxBooks/c.Categories)
	if c.BooksPerPage <= 0 {
		c.BooksPerPage = DefaultBooksPerPage
	}
	if c.MinChapters == 0 && c.MaxChapters == 0 {
		c.MinChapters, c.MaxChapters = DefaultMinChapters, DefaultMaxChapters
	}
	c.MinChapters = min(max(c.MinChapters, 0), maxChaptersPerBook)
	c.MaxChapters = min(max(c.MaxChapters, c.MinChapters), maxChaptersPerBook)
	if c.ChaptersPerTOCPage <= 0 {
		c.ChaptersPerTOCPage = DefaultChaptersPerTOCPage
	}
	c.FinishedRatio = min(max(c.FinishedRatio, 0), 1)
	c.Latency = max(c.Latency, 0)
	c.LatencyJitter = max(c.LatencyJitter, 0)
	if c.ContentType == "" {
		c.ContentType = DefaultContentType
		if c.Site == SiteCzbooks && !c.Big5 {
			c.ContentType = DefaultCzbooksContentType
		}
	}
	if c.LogLimit <= 0 {
		c.LogLimit = DefaultLogLimit
	}
	return c
}

// Validate reports the first setting that New would have to change or ignore.
func (c Config) Validate() error {
	var errs []error
	if c.Site != "" && c.Site != SiteXSW && c.Site != SiteCzbooks {
		errs = append(errs, fmt.Errorf("site %q: want %q or %q", c.Site, SiteXSW, SiteCzbooks))
	}
	if c.Categories < 0 || c.Categories > maxCategories {
		errs = append(errs, fmt.Errorf("categories %d: want 1..%d", c.Categories, maxCategories))
	}
	if c.BooksPerCategory < 0 || c.Categories > 0 && c.BooksPerCategory*c.Categories > maxBooks {
		errs = append(errs, fmt.Errorf("books per category %d: want 1..%d books in all", c.BooksPerCategory, maxBooks))
	}
	if c.BooksPerPage < 0 {
		errs = append(errs, fmt.Errorf("books per page %d: want > 0", c.BooksPerPage))
	}
	if c.MinChapters < 0 || c.MaxChapters < c.MinChapters || c.MaxChapters > maxChaptersPerBook {
		errs = append(errs, fmt.Errorf("chapters %d..%d: want 0 <= min <= max <= %d", c.MinChapters, c.MaxChapters, maxChaptersPerBook))
	}
	for id, n := range c.BigBooks {
		if n < 0 || n > maxChaptersPerBook {
			errs = append(errs, fmt.Errorf("big book %s: %d chapters: want 0..%d", id, n, maxChaptersPerBook))
		}
	}
	if c.ChaptersPerTOCPage < 0 {
		errs = append(errs, fmt.Errorf("chapters per toc page %d: want > 0", c.ChaptersPerTOCPage))
	}
	if c.FinishedRatio < 0 || c.FinishedRatio > 1 {
		errs = append(errs, fmt.Errorf("finished ratio %v: want 0..1", c.FinishedRatio))
	}
	if c.Latency < 0 || c.LatencyJitter < 0 {
		errs = append(errs, errors.New("latency and jitter must not be negative"))
	}
	for i, r := range c.Faults {
		if err := r.validate(); err != nil {
			errs = append(errs, fmt.Errorf("fault rule %d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}
