package xsw

import (
	"net/url"
	"strings"

	"github.com/PuerkitoBio/goquery"

	"github.com/xswtw/xsw/services/fetcher/site"
)

var (
	// selChapterText are the places of a chapter's text, best first.
	selChapterText = []struct {
		name string
		m    goquery.Matcher
	}{
		{"#nr1", sel("#nr1")},
		{"div.mm-content", sel("div.mm-content")},
		{"#nr", sel("#nr")},
		{"#content", sel("#content")},
	}
	selChapterTitle = sel("#nr_title, .nr_title")
	selTitle        = sel("title")
	selPrev         = sel("#pb_prev")
	selNext         = sel("#pb_next")
)

// ParseChapter reads a chapter page. The text is the first non-empty of #nr1,
// div.mm-content, #nr and #content: paragraphs (<p> or <br>-separated) trimmed and
// joined by "\n", empty lines and the site's own lines (>>章節報錯<<, lines naming
// xsw.tw or 台灣小說網, …; see isAd) dropped. A page with none of these containers, or
// whose containers hold no text, is a *site.ParseError. The title is #nr_title (or
// .nr_title), else the part of <title> that holds a 第…章 number, else empty. PrevURL
// and NextURL are #pb_prev and #pb_next when they link to chapters of bookID; a link
// back to the table of contents (first or last chapter) leaves them empty.
func (s *Source) ParseChapter(body []byte, pageURL *url.URL, bookID, chapterID string) (*site.Chapter, error) {
	p, err := s.parsePage(pageChapter, body, pageURL)
	if err != nil {
		return nil, err
	}
	c := &site.Chapter{BookID: bookID, ChapterID: chapterID}
	var found []string
	for _, cand := range selChapterText {
		box := p.doc.FindMatcher(cand.m).First()
		if box.Length() == 0 {
			continue
		}
		found = append(found, cand.name)
		if lines := storyLines(box.Get(0)); len(lines) > 0 {
			c.Text = strings.Join(lines, "\n")
			break
		}
	}
	if c.Text == "" {
		if len(found) == 0 {
			return nil, p.errorf("no chapter text (#nr1, div.mm-content, #nr or #content)")
		}
		return nil, p.errorf("chapter text empty in %s", strings.Join(found, ", "))
	}
	c.Title = text(p.doc.FindMatcher(selChapterTitle).First())
	if c.Title == "" {
		c.Title = titleOrdinalPart(text(p.doc.FindMatcher(selTitle).First()))
	}
	c.PrevURL = p.navLink(selPrev, bookID)
	c.NextURL = p.navLink(selNext, bookID)
	return c, nil
}

// titleOrdinalPart returns the part of a page's <title> that names the chapter: of
// the parts separated by _ - | ｜ –, the first holding a 第…章 number; "" if none does.
func titleOrdinalPart(title string) string {
	parts := strings.FieldsFunc(title, func(r rune) bool {
		return r == '_' || r == '-' || r == '|' || r == '｜' || r == '–' || r == '—'
	})
	for _, part := range parts {
		if _, ok := site.TitleNumber(part); ok {
			return site.CollapseSpace(part)
		}
	}
	return ""
}

// navLink returns the chapter URL of the navigation element m (an a, or an element
// holding one) when it links to a chapter of bookID.
func (p *page) navLink(m goquery.Matcher, bookID string) string {
	el := p.doc.FindMatcher(m).First()
	if el.Length() == 0 {
		return ""
	}
	a := el
	if goquery.NodeName(el) != "a" {
		a = el.FindMatcher(selA).First()
	}
	if _, link, ok := p.chapterLink(attr(a, "href"), bookID); ok {
		return link
	}
	return ""
}
