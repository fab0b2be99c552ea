package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Source is one configured source site.
type Source struct {
	// ID is the site id, as in SOURCES (e.g. "xsw").
	ID string
	// URL is the site's base URL: SOURCE_<SITE>_URL, or BASE_URL for the default site;
	// "" means the adapter's own default.
	URL string
	// RateLimit is the cluster-wide interval between requests to the site:
	// SOURCE_<SITE>_RATE_LIMIT, default BG_JOB_RATE_LIMIT.
	RateLimit time.Duration
}

// Sources is the set of configured sites, the default first.
type Sources []Source

// DefaultSources is SOURCES' default: m.xsw.tw alone.
const DefaultSources = "xsw"

// Default returns the default site's id (the first of SOURCES).
func (s Sources) Default() string {
	if len(s) == 0 {
		return ""
	}
	return s[0].ID
}

// Get returns the site with id, and whether it is configured.
func (s Sources) Get(id string) (Source, bool) {
	for _, src := range s {
		if src.ID == id {
			return src, true
		}
	}
	return Source{}, false
}

// IDs returns the configured site ids, the default first.
func (s Sources) IDs() []string {
	out := make([]string, len(s))
	for i, src := range s {
		out[i] = src.ID
	}
	return out
}

// SourceVar names a per-site variable: SourceVar("xsw", "URL") is SOURCE_XSW_URL.
func SourceVar(site, name string) string {
	return "SOURCE_" + strings.ToUpper(site) + "_" + name
}

// ReadSources reads the sites every service shares: SOURCES (comma-separated site ids,
// the first the default; default DefaultSources), each site's SOURCE_<SITE>_URL and
// SOURCE_<SITE>_RATE_LIMIT, BASE_URL (the default site's URL unless SOURCE_<SITE>_URL
// names one) and BG_JOB_RATE_LIMIT (every site's interval unless its own variable sets
// one). validID says whether a site id is well formed (events.ValidSiteID); which ids
// name a known adapter is the fetcher's to check. Bad values are recorded in r.
func ReadSources(r *Reader, validID func(string) bool) Sources {
	ids := r.List("SOURCES")
	if _, set := r.lookup("SOURCES"); !set {
		ids = []string{DefaultSources}
	}
	baseURL := r.String("BASE_URL", "")
	rate := r.Duration("BG_JOB_RATE_LIMIT", 2*time.Second)
	var out Sources
	seen := map[string]bool{}
	for i, id := range ids {
		id = strings.ToLower(strings.TrimSpace(id))
		if !validID(id) {
			r.fail("SOURCES", id, "site ids of a lowercase letter then letters and digits")
			continue
		}
		if seen[id] {
			r.fail("SOURCES", id, "each site once")
			continue
		}
		seen[id] = true
		src := Source{
			ID:        id,
			URL:       r.String(SourceVar(id, "URL"), ""),
			RateLimit: r.Duration(SourceVar(id, "RATE_LIMIT"), rate),
		}
		if src.URL == "" && i == 0 {
			src.URL = baseURL
		}
		out = append(out, src)
	}
	if len(out) == 0 && len(r.errs) == 0 {
		r.fail("SOURCES", r.getenv("SOURCES"), "at least one site id")
	}
	return out
}

// Validate names every site value that cannot work: a negative interval, or a base URL
// that is set but not an absolute http(s) URL with a host.
func (s Sources) Validate() error {
	if len(s) == 0 {
		return Check(false, "SOURCES", "want at least one site id")
	}
	var errs []error
	for i, src := range s {
		errs = append(errs, Check(src.RateLimit >= 0, SourceVar(src.ID, "RATE_LIMIT"), "want seconds >= 0, got %v", src.RateLimit))
		if src.URL == "" {
			continue
		}
		name := SourceVar(src.ID, "URL")
		if i == 0 {
			name += " (or BASE_URL)"
		}
		u, err := url.Parse(src.URL)
		// The URL is not quoted: it may carry a password.
		errs = append(errs, Check(err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "", name,
			"want an http(s) URL with a host"))
	}
	return errors.Join(errs...)
}

// String lists the sites for logs: "xsw (default), czbooks".
func (s Sources) String() string {
	parts := make([]string, len(s))
	for i, src := range s {
		parts[i] = src.ID
		if i == 0 {
			parts[i] = fmt.Sprintf("%s (default)", src.ID)
		}
	}
	return strings.Join(parts, ", ")
}
