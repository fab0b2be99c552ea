package xsw

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/PuerkitoBio/goquery"

	"github.com/xswtw/xsw/services/fetcher/site"
)

var (
	// selTOCLists are the places of the chapter list, best first.
	selTOCLists = []goquery.Matcher{
		sel("div.cover > ul > li > a"),
		sel("div.liebiao > ul > li > a"),
		sel("ul.chapter li a"),
	}
	// selTOCStructure matches the elements that make a page a table of contents.
	selTOCStructure = sel("div.cover, div.liebiao, ul.chapter, div.page")
	selPageBlock    = sel("div.page")
	// rePageCount matches 第1/71頁, with or without brackets; the second number is the count.
	rePageCount = regexp.MustCompile(`第\s*\d+\s*[/／]\s*(\d{1,9})\s*[頁页]`)
	// rePageLink matches a table of contents page's path; the number is the page.
	rePageLink = regexp.MustCompile(`page-(\d{1,9})\.html$`)
)

// ParseTOC reads one page of a book's table of contents. The chapters are the links to
// chapters of bookID in the first of div.cover > ul > li > a, div.liebiao > ul > li > a
// and ul.chapter li a that holds any, deduplicated by chapter id, numbered firstNumber,
// firstNumber+1, … in page order. A page with the structure of a table of contents
// (div.cover, div.liebiao, ul.chapter or div.page) but no chapter link is a page past
// the end: an empty page and no error. A page with none of that structure is a
// *site.ParseError.
//
// TotalPages comes from a 第1/71頁 text in a div.page, else from the page-{n}.html link
// named 尾頁 or 末頁, else it is 1. HasNext is true when an a of class next or with
// text 下一頁 links somewhere other than this page or an earlier one.
func (s *Source) ParseTOC(body []byte, pageURL *url.URL, bookID string, page, firstNumber int) (*site.TOCPage, error) {
	p, err := s.parsePage(pageTOC, body, pageURL)
	if err != nil {
		return nil, err
	}
	toc := &site.TOCPage{BookID: bookID, Page: page, Chapters: []site.ChapterRef{}}
	// One walk of the page finds every link; each place of the list is looked for among
	// them (an a without href is no chapter anyway).
	anchors := p.doc.FindMatcher(selAnchors)
	for _, m := range selTOCLists {
		seen := map[string]bool{}
		anchors.FilterMatcher(m).Each(func(_ int, a *goquery.Selection) {
			id, link, ok := p.chapterLink(attr(a, "href"), bookID)
			if !ok || seen[id] {
				return
			}
			seen[id] = true
			ref := site.ChapterRef{
				Number:    firstNumber + len(toc.Chapters),
				ChapterID: id,
				Title:     text(a),
				URL:       link,
			}
			if n, ok := site.TitleNumber(ref.Title); ok {
				ref.TitleNumber = &n
			}
			toc.Chapters = append(toc.Chapters, ref)
		})
		if len(toc.Chapters) > 0 {
			break
		}
	}
	if len(toc.Chapters) == 0 && p.doc.FindMatcher(selTOCStructure).Length() == 0 {
		return nil, p.errorf("no table of contents (div.cover, div.liebiao, ul.chapter or div.page)")
	}
	toc.TotalPages = p.totalPages(anchors)
	toc.HasNext = p.hasNext(anchors, page)
	return toc, nil
}

// totalPages reads the page count: 第1/71頁 in a div.page, else the 尾頁/末頁 link
// among the page's anchors, else 1.
func (p *page) totalPages(anchors *goquery.Selection) int {
	n := 0
	p.doc.FindMatcher(selPageBlock).EachWithBreak(func(_ int, block *goquery.Selection) bool {
		if m := rePageCount.FindStringSubmatch(block.Text()); m != nil {
			n, _ = strconv.Atoi(m[1])
		}
		return n == 0
	})
	if n > 0 {
		return n
	}
	anchors.EachWithBreak(func(_ int, a *goquery.Selection) bool {
		switch text(a) {
		case "尾頁", "末頁", "尾页", "末页":
			if path, ok := p.siteLink(attr(a, "href")); ok {
				if m := rePageLink.FindStringSubmatch(path); m != nil {
					n, _ = strconv.Atoi(m[1])
				}
			}
		}
		return n == 0
	})
	return max(n, 1)
}

// hasNext reports whether the page links to a next page: one of its anchors of class
// next or with text 下一頁 whose link goes somewhere; a link to page-{n}.html counts
// only for n after the current page, so a last page whose next button points at itself
// has none.
func (p *page) hasNext(anchors *goquery.Selection, current int) bool {
	found := false
	anchors.EachWithBreak(func(_ int, a *goquery.Selection) bool {
		t := text(a)
		if !a.HasClass("next") && t != "下一頁" && t != "下一页" {
			return true
		}
		href := attr(a, "href")
		if href == "" || href == "#" || strings.HasPrefix(strings.ToLower(href), "javascript:") {
			return true
		}
		path, ok := p.siteLink(href)
		if !ok {
			return true
		}
		if m := rePageLink.FindStringSubmatch(path); m != nil {
			if n, err := strconv.Atoi(m[1]); err == nil && n <= current {
				return true
			}
		}
		found = true
		return false
	})
	return found
}
