package site

import (
	"strings"
	"unicode"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// CollapseSpace trims s, white space of every kind (no-break and ideographic spaces
// included), and collapses each run of collapsible white space inside it (ASCII spaces,
// tabs and line breaks) into one ASCII space, as a browser does; no-break and
// ideographic spaces inside the text stay as the site wrote them (第52章　拜師). As in a
// browser (CSS Text 3, segment breaks), a run holding a line break between two wide East
// Asian characters disappears instead: Chinese text wrapped in the HTML source is one
// line. When s needs no change, the result is s itself.
func CollapseSpace(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	needs := false
	prevSpace := false
	for _, r := range s {
		sp := collapsible(r)
		if sp && (prevSpace || r != ' ') {
			needs = true
			break
		}
		prevSpace = sp
	}
	if !needs {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	var prev rune     // last rune written
	inRun := false    // inside a run of white space
	runBreak := false // the run holds a line break
	for _, r := range s {
		if collapsible(r) {
			inRun = true
			runBreak = runBreak || r == '\n' || r == '\r'
			continue
		}
		if inRun && !(runBreak && isWide(prev) && isWide(r)) {
			b.WriteByte(' ')
		}
		inRun, runBreak = false, false
		b.WriteRune(r)
		prev = r
	}
	return b.String()
}

// collapsible reports the white space a browser collapses.
func collapsible(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', '\f':
		return true
	}
	return false
}

// isWide reports the East Asian wide characters between which a line break in the
// source is no space: Han ideographs, CJK punctuation, kana, bopomofo and full-width
// forms.
func isWide(r rune) bool {
	switch {
	case r >= 0x3000 && r <= 0x30FF, // CJK symbols and punctuation, kana
		r >= 0x3100 && r <= 0x312F,                             // bopomofo
		r >= 0xFF01 && r <= 0xFF60, r >= 0xFFE0 && r <= 0xFFE6: // full-width forms
		return true
	}
	return unicode.Is(unicode.Han, r)
}

// lineBreaking reports the elements that end a line of text: <br> and the block
// elements.
func lineBreaking(a atom.Atom) bool {
	switch a {
	case atom.Br, atom.P, atom.Div, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6,
		atom.Li, atom.Ul, atom.Ol, atom.Dl, atom.Dt, atom.Dd, atom.Section, atom.Article,
		atom.Blockquote, atom.Pre, atom.Table, atom.Tr, atom.Hr, atom.Center, atom.Header,
		atom.Footer:
		return true
	}
	return false
}

// NeverText reports the elements whose content is never text a reader sees: scripts,
// styles, frames, the head, form controls. TextLines leaves them out.
func NeverText(a atom.Atom) bool {
	switch a {
	case atom.Script, atom.Style, atom.Noscript, atom.Iframe, atom.Template, atom.Object,
		atom.Embed, atom.Select, atom.Textarea, atom.Button, atom.Head:
		return true
	}
	return false
}

// TextLines returns the text under n as lines, the way paragraphs written either as
// <p>…</p> or as text separated by <br> come out the same: <br> and every block element
// (p, div, h1…h6, li, table rows, …) end a line; each line is trimmed and its inner
// white space collapsed (CollapseSpace), so lines padded with no-break or ideographic
// spaces lose the padding; empty lines are dropped. Entities were decoded by the HTML
// parser. Scripts, styles, noscript, iframes, the head and form controls are left out,
// and so is every element for which skip (when not nil) reports true, with its content.
func TextLines(n *html.Node, skip func(*html.Node) bool) []string {
	if n == nil {
		return nil
	}
	var lines []string
	var b strings.Builder
	flush := func() {
		if line := CollapseSpace(b.String()); line != "" {
			lines = append(lines, line)
		}
		b.Reset()
	}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		switch n.Type {
		case html.TextNode:
			b.WriteString(n.Data)
			return
		case html.ElementNode:
			if NeverText(n.DataAtom) || skip != nil && skip(n) {
				return
			}
			if lineBreaking(n.DataAtom) {
				flush()
				defer flush()
			}
		case html.CommentNode, html.DoctypeNode:
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	flush()
	return lines
}

// HasClass reports whether the element n has class c among the white-space separated
// names of its class attribute.
func HasClass(n *html.Node, c string) bool {
	for _, a := range n.Attr {
		if a.Key != "class" {
			continue
		}
		for f := range strings.FieldsSeq(a.Val) {
			if f == c {
				return true
			}
		}
	}
	return false
}

// PathSegment makes id safe as one segment of a URL path on a site's base, whatever it
// holds: a valid id (events.ValidID: ASCII letters, digits, '-' and '_') passes
// unchanged; in anything else every byte outside that alphabet becomes "_", so that no
// "/", ".", "%", "?", "#" or "\" survives for a server to decode or resolve, and an empty
// id becomes "_". Adapters validate ids before building URLs of them; this keeps a stray
// one under the base all the same.
func PathSegment(id string) string {
	if id == "" {
		return "_"
	}
	for i := 0; i < len(id); i++ {
		if !idByte(id[i]) {
			b := []byte(id)
			for j := i; j < len(b); j++ {
				if !idByte(b[j]) {
					b[j] = '_'
				}
			}
			return string(b)
		}
	}
	return id
}

// idByte reports the bytes of a valid id.
func idByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-'
}
