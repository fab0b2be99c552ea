package xsw

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// isSpace reports white space, including the no-break and ideographic spaces.
func isSpace(r rune) bool { return unicode.IsSpace(r) }

// breaks reports elements that end a line of text: <br> and the block elements.
func breaks(a atom.Atom) bool {
	switch a {
	case atom.Br, atom.P, atom.Div, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6,
		atom.Li, atom.Ul, atom.Ol, atom.Dl, atom.Dt, atom.Dd, atom.Section, atom.Article,
		atom.Blockquote, atom.Pre, atom.Table, atom.Tr, atom.Hr, atom.Center, atom.Header,
		atom.Footer:
		return true
	}
	return false
}

// hidden reports elements whose content is never text of the page: scripts, styles,
// frames, forms' controls.
func hidden(a atom.Atom) bool {
	switch a {
	case atom.Script, atom.Style, atom.Noscript, atom.Iframe, atom.Template, atom.Object,
		atom.Embed, atom.Select, atom.Textarea, atom.Button, atom.Head:
		return true
	}
	return false
}

// skipIDs are elements of a chapter page that are not its text even when they sit
// inside the text container: the title and the navigation.
var skipIDs = map[string]bool{"nr_title": true, "pb_prev": true, "pb_next": true, "pb_mulu": true}

// skipped reports whether n is an element whose content textLines leaves out.
func skipped(n *html.Node) bool {
	if hidden(n.DataAtom) {
		return true
	}
	for _, a := range n.Attr {
		switch a.Key {
		case "id":
			if skipIDs[a.Val] {
				return true
			}
		case "class":
			for _, c := range strings.Fields(a.Val) {
				if c == "nr_title" {
					return true
				}
			}
		}
	}
	return false
}

// textLines returns the text under n as lines: <br> and block elements end a line,
// each line is trimmed and its inner white space collapsed (see clean), and empty lines
// are dropped. It is how paragraphs written either as <p>…</p> or as text separated by
// <br> come out the same.
func textLines(n *html.Node) []string {
	var lines []string
	var b strings.Builder
	flush := func() {
		if line := clean(b.String()); line != "" {
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
			if skipped(n) {
				return
			}
			if breaks(n.DataAtom) {
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

// adMaxRunes bounds the length of a line that isAd may drop: the site's ad lines are
// short, and a long paragraph that happens to name the site is story text.
const adMaxRunes = 80

// adMarkers are text that only the site's own lines carry: its domain, its name, its
// error-report link and its "read on your phone" promotion.
var adMarkers = []string{
	siteDomain, "ｘｓｗ．ｔｗ", "台灣小說網", "台湾小说网", "章節報錯", "章节报错", "手機閱讀", "手机阅读",
}

// promoMarkers are the text that turns a line naming 最新章節 (latest chapter) into a
// promotion: an address or a call to remember or visit the site.
var promoMarkers = []string{"http", "www.", ".com", ".net", ".tw", "網址", "网址", "請記住", "请记住", "本站", "首發", "首发"}

// isAd reports whether line is one of the site's own lines rather than story text. The
// rule is deliberately conservative: a line of at most adMaxRunes runes that contains
// the domain (xsw.tw), the site's name (台灣小說網), the error report link (章節報錯) or
// 手機閱讀, or that mentions 最新章節 together with an address or 請記住/本站/首發.
func isAd(line string) bool {
	if utf8.RuneCountInString(line) > adMaxRunes {
		return false
	}
	lower := strings.ToLower(line)
	for _, m := range adMarkers {
		if strings.Contains(lower, m) {
			return true
		}
	}
	if strings.Contains(line, "最新章節") || strings.Contains(line, "最新章节") {
		for _, m := range promoMarkers {
			if strings.Contains(lower, m) {
				return true
			}
		}
	}
	return false
}

// storyLines returns textLines of n without the ad lines (see isAd).
func storyLines(n *html.Node) []string {
	lines := textLines(n)
	out := lines[:0]
	for _, l := range lines {
		if !isAd(l) {
			out = append(out, l)
		}
	}
	return out
}
