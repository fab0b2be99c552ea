package xsw

import (
	"net/url"
	"strings"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/xswtw/xsw/services/fetcher/site"
)

var (
	selBookTitle   = sel(".block_txt2 h2")
	selBookLines   = sel(".block_txt2 p")
	selCover       = sel(".block_img2 img")
	selIntroInfo   = sel(".intro_info")
	selPreviewLink = sel("ul.chapter > li > a")
)

// taipei is the site's time zone, UTC+8 without daylight saving time.
var taipei = time.FixedZone("UTC+8", 8*60*60)

// updateLayouts are the forms of the 更新： line, the first the site's own.
var updateLayouts = []string{
	"2006/1/2 15:04:05", "2006/1/2 15:04", "2006-1-2 15:04:05", "2006-1-2 15:04", "2006/1/2", "2006-1-2",
}

// Labels of the lines of div.block_txt2, longest first where one prefixes another.
var (
	labelAuthor = []string{"作者"}
	labelGenre  = []string{"分類", "分类", "類別", "类别"}
	labelStatus = []string{"狀態", "状态"}
	labelUpdate = []string{"更新時間", "更新时间", "更新"}
	labelLatest = []string{"最新章節", "最新章节", "最新"}
	labelIntro  = []string{"簡介", "简介", "內容簡介", "内容简介"}
)

// ParseBook reads a book's home page. The title (div.block_txt2 h2) is essential: a
// page without it is a *site.ParseError. Everything else is optional: the labelled
// lines 作者 分類 狀態 更新 最新, the cover, the description and the preview of the newest
// chapters (newest first, only links to chapters of bookID, never numbered). Finished
// is true when the status contains 已完成. UpdatedAt is the 更新 time read as UTC+8 and
// given in UTC, nil when it does not parse.
func (s *Source) ParseBook(body []byte, pageURL *url.URL, bookID string) (*site.Book, error) {
	p, err := s.parsePage(pageBook, body, pageURL)
	if err != nil {
		return nil, err
	}
	b := &site.Book{BookID: bookID, SourceURL: p.url.String(), Preview: []site.ChapterLink{}}
	b.Name = text(p.doc.FindMatcher(selBookTitle).First())
	if b.Name == "" {
		return nil, p.errorf("no book title (div.block_txt2 h2)")
	}
	p.doc.FindMatcher(selBookLines).Each(func(_ int, line *goquery.Selection) {
		t := text(line)
		if v, ok := label(t, labelAuthor...); ok {
			b.Author = v
		} else if v, ok := label(t, labelGenre...); ok {
			b.Genre = v
		} else if v, ok := label(t, labelStatus...); ok {
			b.Status = v
		} else if v, ok := label(t, labelUpdate...); ok {
			b.UpdateText = v
			b.UpdatedAt = parseUpdate(v)
		} else if v, ok := label(t, labelLatest...); ok {
			b.LastChapterTitle = v
			if a := line.FindMatcher(selA).First(); a.Length() > 0 {
				b.LastChapterTitle = text(a)
				if id, link, ok := p.chapterLink(attr(a, "href"), bookID); ok {
					b.LastChapterID, b.LastChapterURL = id, link
				}
			}
		}
	})
	b.Finished = strings.Contains(b.Status, "已完成")
	if img := p.doc.FindMatcher(selCover).First(); img.Length() > 0 {
		for _, name := range []string{"src", "data-src", "data-original"} {
			if b.CoverURL = p.resolve(attr(img, name)); b.CoverURL != "" {
				break
			}
		}
	}
	if intro := p.doc.FindMatcher(selIntroInfo).First(); intro.Length() > 0 {
		lines := textLines(intro.Get(0))
		if len(lines) > 0 {
			if v, ok := label(lines[0], labelIntro...); ok {
				lines[0] = v
				if v == "" {
					lines = lines[1:]
				}
			}
		}
		b.Description = strings.Join(lines, "\n")
	}
	seen := map[string]bool{}
	p.doc.FindMatcher(selPreviewLink).Each(func(_ int, a *goquery.Selection) {
		id, link, ok := p.chapterLink(attr(a, "href"), bookID)
		if !ok || seen[id] {
			return
		}
		seen[id] = true
		b.Preview = append(b.Preview, site.ChapterLink{ChapterID: id, Title: text(a), URL: link})
	})
	return b, nil
}

// parseUpdate reads the 更新 line's time as UTC+8 and returns it in UTC; nil when it
// is in none of updateLayouts.
func parseUpdate(v string) *time.Time {
	for _, layout := range updateLayouts {
		if t, err := time.ParseInLocation(layout, v, taipei); err == nil {
			t = t.UTC()
			return &t
		}
	}
	return nil
}
