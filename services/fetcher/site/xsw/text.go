package xsw

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"

	"github.com/xswtw/xsw/services/fetcher/site"
)

// skipIDs are elements of a chapter page that are not its text even when they sit
// inside the text container: the title and the navigation.
var skipIDs = map[string]bool{"nr_title": true, "pb_prev": true, "pb_next": true, "pb_mulu": true}

// skipped reports the elements that textLines leaves out, with their content, besides
// those site.TextLines always does: the chapter title (id or class nr_title) and the
// navigation (ids pb_prev, pb_next, pb_mulu).
func skipped(n *html.Node) bool {
	for _, a := range n.Attr {
		if a.Key == "id" && skipIDs[a.Val] {
			return true
		}
	}
	return site.HasClass(n, "nr_title")
}

// textLines returns the text under n as lines (site.TextLines), leaving out the
// elements skipped reports.
func textLines(n *html.Node) []string { return site.TextLines(n, skipped) }

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
