package site

import (
	"bytes"
	"errors"
	"fmt"
)

// ErrParse marks a page that could not be read: the expected elements were missing or
// malformed. A parse error is permanent, retrying the same bytes cannot help, unless it
// also matches ErrTruncated (see Permanent).
var ErrParse = errors.New("parse error")

// ErrTruncated marks a page whose bytes stop before the end of its document: the
// connection or the server cut it short, and what arrived may lack any part of the page
// (chapters of a table of contents, the end of a chapter) without looking malformed.
// Nothing is read from such a page; unlike other parse errors it is transient, since
// fetching the page again may bring all of it.
var ErrTruncated = errors.New("page truncated")

// ErrNotCanonical marks an id that is not the site's canonical spelling of any book or
// category (m.xsw.tw's "0123" for "123"): it names nothing on the site, so nothing is
// fetched for it. It is permanent.
var ErrNotCanonical = errors.New("not a canonical id of the site")

// ParseError says which page could not be parsed and what was missing.
type ParseError struct {
	Page string // page kind: "home", "listing", "book", "toc", "chapter"
	URL  string // the page's URL, when known
	What string // what was missing or malformed
	// Truncated is set when the page's bytes stop before the end of its document.
	Truncated bool
}

func (e *ParseError) Error() string {
	if e.URL == "" {
		return fmt.Sprintf("parse %s page: %s", e.Page, e.What)
	}
	return fmt.Sprintf("parse %s page %s: %s", e.Page, e.URL, e.What)
}

// Unwrap lets errors.Is(err, ErrParse) match, and errors.Is(err, ErrTruncated) for a
// truncated page.
func (e *ParseError) Unwrap() []error {
	if e.Truncated {
		return []error{ErrParse, ErrTruncated}
	}
	return []error{ErrParse}
}

// Permanent reports whether err is a parse error that fetching the page again cannot
// cure (any but a truncated page's), or a non-canonical id.
func Permanent(err error) bool {
	return errors.Is(err, ErrParse) && !errors.Is(err, ErrTruncated) || errors.Is(err, ErrNotCanonical)
}

// Truncated reports whether the HTML document in text (UTF-8) stops before its end: it
// opens an html or body element and closes neither. A page cut short anywhere before its
// last lines looks like that. A fragment that never opens them is not judged, since
// HTML lets a document leave out all four tags.
func Truncated(text []byte) bool {
	opened := false
	for i := 0; ; {
		j := bytes.IndexByte(text[i:], '<')
		if j < 0 {
			return opened
		}
		i += j + 1
		switch rest := text[i:]; {
		case tagAt(rest, "/body"), tagAt(rest, "/html"):
			return false
		case tagAt(rest, "html"), tagAt(rest, "body"):
			opened = true
		}
	}
}

// tagAt reports whether s starts with the tag name, in any case, followed by the end of
// the name.
func tagAt(s []byte, name string) bool {
	if len(s) < len(name) || !bytes.EqualFold(s[:len(name)], []byte(name)) {
		return false
	}
	if len(s) == len(name) {
		return name[0] == '/' // "</body" at the very end: the page stopped inside the tag
	}
	switch s[len(name)] {
	case '>', '/', ' ', '\t', '\n', '\r', '\f':
		return true
	}
	return false
}
