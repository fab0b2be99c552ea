package events

import (
	"regexp"
	"strings"
	"time"
)

// A book is identified by its site and the site's id for it: (site, book id). Both are
// strings that are safe as one NATS subject token, one key-value key segment and one URL
// path segment; every per-book subject ends with "<site>.<book_id>" and every per-book
// key is "<site>.<book_id>" (see Key). Which spelling of an id is canonical is the site
// adapter's rule (SiteInfo.BookIDPattern): the contract only guarantees that an id is
// safe to carry.

// LegacySite is the site of everything written before books were site-qualified: the
// site the pipeline started with, m.xsw.tw. Version 1 payloads, subjects with a bare book
// id and rows migrated from the old schema are its.
const LegacySite = "xsw"

// MaxSiteIDLen bounds a site id.
const MaxSiteIDLen = 16

// MaxBookIDLen bounds a book, chapter or category id.
const MaxBookIDLen = 64

// ValidSiteID reports whether s is a site id: a lowercase ASCII letter followed by at
// most MaxSiteIDLen-1 lowercase letters and digits. It names the site's variables too
// (SOURCE_<SITE>_URL), so it has no other characters.
func ValidSiteID(s string) bool {
	if s == "" || len(s) > MaxSiteIDLen || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// ValidID reports whether s may be carried as a book, chapter or category id: 1 to
// MaxBookIDLen ASCII letters, digits, '-' and '_'. Such an id is one subject token, one
// key segment and one path segment, and it needs no escaping anywhere.
func ValidID(s string) bool {
	if s == "" || len(s) > MaxBookIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ValidBookID reports whether s may be carried as a book id (see ValidID). Whether it is
// the site's canonical spelling is the adapter's to say.
func ValidBookID(s string) bool { return ValidID(s) }

// Key is the key of a book in key-value buckets and the tail of its subjects:
// "<site>.<book_id>".
func Key(site, bookID string) string { return site + "." + bookID }

// SplitKey splits a book's Key into its site and book id. A key without a site (written
// before books were site-qualified) is LegacySite's.
func SplitKey(key string) (site, bookID string, ok bool) {
	site, bookID, found := strings.Cut(key, ".")
	if !found {
		site, bookID = LegacySite, key
	}
	return site, bookID, ValidSiteID(site) && ValidBookID(bookID)
}

// BookOfSubject returns the book a per-book subject names: its last two tokens, or its
// last token alone (LegacySite's) when the subject has only prefixTokens+1 tokens, as
// subjects written before books were site-qualified do. prefixTokens is the number of
// tokens before the book (3 for xsw.fetched.book.<site>.<book_id>).
func BookOfSubject(subject string, prefixTokens int) (site, bookID string, ok bool) {
	tokens := strings.Split(subject, ".")
	switch len(tokens) - prefixTokens {
	case 1:
		site, bookID = LegacySite, tokens[len(tokens)-1]
	case 2:
		site, bookID = tokens[len(tokens)-2], tokens[len(tokens)-1]
	default:
		return "", "", false
	}
	return site, bookID, ValidSiteID(site) && ValidBookID(bookID)
}

// Site states, as SiteInfo.State reports them.
const (
	// SiteOK: requests go out at the configured interval.
	SiteOK = "ok"
	// SiteThrottled: the site asked us to slow down (429/503, Retry-After) and the
	// interval in force is longer than the configured one.
	SiteThrottled = "throttled"
	// SiteCircuitOpen: repeated failures opened the circuit; no request goes out until it
	// cools down.
	SiteCircuitOpen = "circuit_open"
	// SiteRefused: the site refuses us (403, a challenge page); it is probed rarely.
	SiteRefused = "refused"
)

// siteSeverity ranks the site states, the worst last.
var siteSeverity = map[string]int{SiteOK: 0, SiteThrottled: 1, SiteCircuitOpen: 2, SiteRefused: 3}

// WorseSiteState reports whether site state a is worse than b (refused, then
// circuit_open, throttled, ok), for merging what several fetchers report of one site.
func WorseSiteState(a, b string) bool { return worse(siteSeverity, a, b) }

// worse reports whether state a ranks after b in severity. A state missing from severity
// is worse than any in it; of two missing ones the greater string is, so that a merge
// does not depend on the order of the reports.
func worse(severity map[string]int, a, b string) bool {
	sa, oka := severity[a]
	sb, okb := severity[b]
	switch {
	case !oka && !okb:
		return a > b
	case !oka:
		return true
	case !okb:
		return false
	}
	return sa > sb
}

// SiteInfo describes one configured site, as the fetchers serving it see it. Fetchers
// keep it in BucketSites under the site id, rewritten with their heartbeats; gateways
// read it to validate ids (BookIDPattern) and to list sites, without knowing any site
// rule themselves.
type SiteInfo struct {
	Header
	ID   string `json:"id"`
	Name string `json:"name"`
	// BaseURL is the site's base URL as configured (without credentials).
	BaseURL string `json:"base_url"`
	// BookIDPattern is an RE2 regular expression that matches exactly the canonical
	// spellings of the site's book ids (it is matched against the whole id). Any other
	// spelling names no book of the site, and is refused before anything is queued or
	// fetched.
	BookIDPattern string `json:"book_id_pattern"`
	// CategoryIDPattern likewise matches the site's category ids.
	CategoryIDPattern string `json:"category_id_pattern"`
	// RateInterval is the configured interval between requests to the site, in seconds,
	// cluster-wide; Interval is the one in force now (longer after a slow-down).
	RateInterval float64 `json:"rate_interval_seconds"`
	Interval     float64 `json:"interval_seconds"`
	// State is one of SiteOK, SiteThrottled, SiteCircuitOpen, SiteRefused.
	State string `json:"state"`
	// Detail says in words why the state is not SiteOK: for a refusal, what the site
	// answered ("czbooks: refused, HTTP 403 (Cloudflare)").
	Detail string `json:"detail,omitempty"`
	// Until is when an open circuit lets a request through again, or when a refusing
	// site is next probed; nil while the site is served.
	Until *time.Time `json:"until,omitempty"`
	// Fetcher names the fetcher that wrote this, At when.
	Fetcher string    `json:"fetcher,omitempty"`
	At      time.Time `json:"at"`
}

// Validate reports whether the descriptor honours the contract.
func (s SiteInfo) Validate() error {
	switch {
	case !ValidSiteID(s.ID):
		return invalid("site_info: bad id %q", s.ID)
	case s.BookIDPattern == "":
		return invalid("site_info: site %s has no book_id_pattern", s.ID)
	}
	switch s.State {
	case SiteOK, SiteThrottled, SiteCircuitOpen, SiteRefused:
	default:
		return invalid("site_info: site %s has bad state %q", s.ID, s.State)
	}
	return nil
}

// CompileIDPattern compiles an id pattern of SiteInfo (BookIDPattern,
// CategoryIDPattern) as it is matched: against the whole id.
func CompileIDPattern(pattern string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + pattern + `)$`)
}

// validBook is the check every payload naming a book makes.
func validBook(kind, site, bookID string) error {
	if !ValidSiteID(site) {
		return invalid("%s: bad site %q", kind, site)
	}
	if !ValidBookID(bookID) {
		return invalid("%s: bad book_id %q", kind, bookID)
	}
	return nil
}
