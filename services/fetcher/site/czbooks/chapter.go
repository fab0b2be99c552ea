package czbooks

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/xswtw/xsw/services/fetcher/site"
)

var (
	selChapterContent = sel(".chapter-detail div.content")
	selChapterName    = sel(".chapter-detail div.name")
	selH1             = sel("h1")
	selPageTitle      = sel("title")
)

// ParseChapter reads a chapter page. The text is .chapter-detail div.content: a page
// without it is a *site.ParseError, and so is one whose content holds no line once
// cleaned up:
//
//  1. script, style, noscript, iframe and ins elements, and any element of class ad or
//     ads, are left out with their content;
//  2. every <br> and every block element (p, div, …) ends a line;
//  3. entities are decoded;
//  4. each line is trimmed, ideographic and no-break spaces included (inline white space
//     collapses as in a browser: site.CollapseSpace);
//  5. empty lines and lines naming the site (czbooks, in any case or width) are dropped.
//
// Navigation inside the content is dropped too: the anchors saying only navigation words
// (上一章, 下一章, 上一頁, 目錄, 返回目錄, 書頁…, Traditional or Simplified) or nothing,
// or linking to the chapter itself; the elements holding
// nothing but such anchors, navigation words and separators (| · « » …), and the lines
// made of navigation words and separators only. A line that merely uses such a word in
// a sentence (他翻到下一章) stays. The lines are joined by "\n".
//
// The title is .chapter-detail div.name, else the first h1 holding a 第…章 number, else
// the 第…章 part of <title> (site.OrdinalPart), else empty. PrevURL and NextURL are the
// page's links to chapters of bookID saying 上一章 and 下一章 (or of class, id or rel prev
// and next), inside the content or not, when there are such links.
func (s *Source) ParseChapter(body []byte, pageURL *url.URL, bookID, chapterID string) (*site.Chapter, error) {
	p, err := s.parsePage(pageChapter, body, pageURL)
	if err != nil {
		return nil, err
	}
	content := p.doc.FindMatcher(selChapterContent).First()
	if content.Length() == 0 {
		return nil, p.errorf("no chapter text (.chapter-detail div.content)")
	}
	c := &site.Chapter{BookID: bookID, ChapterID: chapterID}
	// The title and links first: dropNav takes the navigation out of the content, where
	// the previous and next links, or a linked h1, may be.
	c.Title = text(p.doc.FindMatcher(selChapterName).First())
	if c.Title == "" {
		p.doc.FindMatcher(selH1).EachWithBreak(func(_ int, h1 *goquery.Selection) bool {
			if t := text(h1); hasOrdinal(t) {
				c.Title = t
			}
			return c.Title == ""
		})
	}
	if c.Title == "" {
		c.Title = site.OrdinalPart(text(p.doc.FindMatcher(selPageTitle).First()))
	}
	c.PrevURL, c.NextURL = p.navLinks(bookID)
	p.dropNav(content.Get(0), bookID, chapterID)
	lines := site.TextLines(content.Get(0), adElement)
	kept := lines[:0]
	for _, l := range lines {
		if navKind(l) == navWords {
			continue
		}
		if strings.Contains(l, navMark) {
			if l = site.CollapseSpace(strings.ReplaceAll(l, navMark, "")); l == "" {
				continue
			}
		}
		if !namesSite(l) {
			kept = append(kept, l)
		}
	}
	if len(kept) == 0 {
		return nil, p.errorf("chapter text empty in .chapter-detail div.content")
	}
	c.Text = strings.Join(kept, "\n")
	return c, nil
}

// hasOrdinal reports whether t holds a 第…章 number.
func hasOrdinal(t string) bool {
	_, ok := site.TitleNumber(t)
	return ok
}

// adElement reports the elements of a chapter's content that are not its text beyond
// those site.TextLines leaves out: ins, and any element of class ad or ads.
func adElement(n *html.Node) bool {
	return n.DataAtom == atom.Ins || site.HasClass(n, "ad") || site.HasClass(n, "ads")
}

// navWordList are the words of the links that move about a book rather than tell it,
// in Traditional and Simplified Chinese: an anchor, or a line, saying only them (with
// separators, navSeparators) is navigation. The longer come first where one begins
// another.
var navWordList = []string{
	"返回章節目錄", "返回章节目录", "返回目錄", "返回目录", "返回書頁", "返回书页", "返回首頁", "返回首页",
	"章節目錄", "章节目录", "章節列表", "章节列表", "加入書籤", "加入书签",
	"上一章", "下一章", "上一頁", "上一页", "下一頁", "下一页",
	"回目錄", "回目录", "回書頁", "回书页", "目錄", "目录", "書頁", "书页", "首頁", "首页", "書籤", "书签",
}

// navSeparators are the characters set between navigation links: bars, slashes, dots,
// dashes, arrows and brackets, but not the quotation marks of dialogue (「」『』), so
// that a line of speech saying 「下一頁」 stays. White space of every kind separates too.
const navSeparators = "|｜/／·・•‧-－–—_<>＜＞«»‹›←→⇐⇒◀▶【】[]［］()（）〔〕〈〉《》、,，:："

// navMark stands, in the content, for a navigation element that dropNav took out: a
// NUL, which the HTML parser never leaves in a text node, so no page can write it.
const navMark = "\x00"

// Kinds of text, as navKind tells them.
const (
	navBlank = iota // nothing but white space and separators
	navWords        // navigation words (or navMark) and separators, at least one word
	navOther        // anything else: text of the chapter
)

// navKind tells whether s is blank, navigation only, or other text.
func navKind(s string) int {
	kind := navBlank
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) || strings.ContainsRune(navSeparators, r) {
			i += size
			continue
		}
		if strings.HasPrefix(s[i:], navMark) {
			kind, i = navWords, i+len(navMark)
			continue
		}
		word := ""
		for _, w := range navWordList {
			if strings.HasPrefix(s[i:], w) {
				word = w
				break
			}
		}
		if word == "" {
			return navOther
		}
		kind, i = navWords, i+len(word)
	}
	return kind
}

// dropNav takes the navigation out of the content n of chapter chapterID of bookID:
// each anchor that navAnchor calls navigation, and each element holding only such
// anchors, navigation words and separators, keeps its place but its content becomes
// navMark, so that the line it was on can tell it was there. It returns the kind of n's content (navKind): navWords when n holds navigation
// and nothing else, for its parent to mark; n itself is left as it is.
func (p *page) dropNav(n *html.Node, bookID, chapterID string) int {
	kind := navBlank // navBlank < navWords < navOther: the content is its greatest part
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		switch c.Type {
		case html.TextNode:
			kind = max(kind, navKind(c.Data))
		case html.ElementNode:
			switch {
			case hiddenElement(c):
			case c.DataAtom == atom.A && p.navAnchor(c, bookID, chapterID):
				markNav(c)
				kind = max(kind, navWords)
			default:
				k := p.dropNav(c, bookID, chapterID)
				if k == navWords {
					markNav(c)
				}
				kind = max(kind, k)
			}
		}
	}
	return kind
}

// hiddenElement reports the elements of a chapter's content that are never its text,
// as site.TextLines and adElement leave them out: neither navigation nor chapter.
func hiddenElement(n *html.Node) bool {
	return site.NeverText(n.DataAtom) || adElement(n)
}

// navAnchor reports whether the anchor a is navigation within chapter chapterID of
// bookID: it says only navigation words, or nothing; it links to this very chapter (a
// title's permalink); or it links to the book or one of its chapters and is a previous
// or next link as navLinks knows them (下一章：第四章 碎瓷, rel="next") or says 返回. An
// anchor saying anything else keeps its text, wherever it links: an author's reference
// to another chapter (請看<a>第三章的伏筆</a>) is text of the chapter, and so is text a
// page wraps in its next-chapter link.
func (p *page) navAnchor(a *html.Node, bookID, chapterID string) bool {
	t := nodeText(a)
	if navKind(t) != navOther {
		return true
	}
	for _, at := range a.Attr {
		if at.Key != "href" {
			continue
		}
		l, ok := p.link(at.Val)
		if !ok {
			return false
		}
		book, chapter, n := pathIDs(l.path, "n")
		switch {
		case n == 0 || book != bookID:
			return false
		case n == 2 && chapter == chapterID:
			return true
		case strings.TrimSpace(t) == "返回":
			return true
		}
		if sel := p.doc.FindNodes(a); navDirection(sel) != 0 && !hasParagraphs(a) {
			return true
		}
		return false
	}
	return false
}

// hasParagraphs reports whether n holds block elements: text a page wraps in a link,
// never a link's own words.
func hasParagraphs(n *html.Node) bool {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode && (c.DataAtom == atom.P || c.DataAtom == atom.Div || hasParagraphs(c)) {
			return true
		}
	}
	return false
}

// markNav replaces the content of the element n with navMark.
func markNav(n *html.Node) {
	for c := n.FirstChild; c != nil; c = n.FirstChild {
		n.RemoveChild(c)
	}
	n.AppendChild(&html.Node{Type: html.TextNode, Data: navMark})
}

// sitePlain is the site's name as it appears in its own lines, lowercase.
const sitePlain = "czbooks"

// namesSite reports whether line names the site: it contains czbooks in any case, in
// ASCII or full-width letters (ｃｚｂｏｏｋｓ).
func namesSite(line string) bool {
	matched := 0
	for _, r := range line {
		if r >= 0xFF01 && r <= 0xFF5E { // full-width ASCII
			r -= 0xFEE0
		}
		if r >= 'A' && r <= 'Z' {
			r += 'a' - 'A'
		}
		switch {
		case r == rune(sitePlain[matched]):
			matched++
			if matched == len(sitePlain) {
				return true
			}
		case r == rune(sitePlain[0]):
			matched = 1
		default:
			matched = 0
		}
	}
	return false
}

// navLinks returns the links of the page to the previous and the next chapter of
// bookID: anchors saying 上一章 or 下一章, or of class, id or rel prev or next.
func (p *page) navLinks(bookID string) (prev, next string) {
	p.doc.FindMatcher(selAHref).EachWithBreak(func(_ int, a *goquery.Selection) bool {
		dir := navDirection(a)
		if dir == 0 || dir < 0 && prev != "" || dir > 0 && next != "" {
			return true
		}
		l, ok := p.hrefLink(a)
		if !ok {
			return true
		}
		if book, _, ok := chapterOf(l.path); !ok || book != bookID {
			return true
		}
		if dir < 0 {
			prev = l.url
		} else {
			next = l.url
		}
		return prev == "" || next == ""
	})
	return prev, next
}

// navDirection reports whether a links to the previous chapter (-1), the next (1) or
// neither (0).
func navDirection(a *goquery.Selection) int {
	t := text(a)
	switch {
	case strings.Contains(t, "上一章"):
		return -1
	case strings.Contains(t, "下一章"):
		return 1
	}
	for _, name := range []string{"rel", "id", "class"} {
		for f := range strings.FieldsSeq(strings.ToLower(attr(a, name))) {
			switch f {
			case "prev", "previous":
				return -1
			case "next":
				return 1
			}
		}
	}
	return 0
}
