package site

import (
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxNumber bounds every value ParseChineseNumber computes, so that it fits an int on
// every platform; larger numbers are rejected rather than wrapped.
const maxNumber = math.MaxInt32

// digitValue reports the value of a single digit: ASCII and full-width Arabic digits,
// Chinese digits (traditional, simplified and the financial forms).
func digitValue(r rune) (int64, bool) {
	switch {
	case r >= '0' && r <= '9':
		return int64(r - '0'), true
	case r >= '０' && r <= '９':
		return int64(r - '０'), true
	}
	switch r {
	case '零', '〇', '○':
		return 0, true
	case '一', '壹', '弌':
		return 1, true
	case '二', '兩', '两', '貳', '贰', '弍':
		return 2, true
	case '三', '參', '叁', '叄', '弎':
		return 3, true
	case '四', '肆':
		return 4, true
	case '五', '伍':
		return 5, true
	case '六', '陸', '陆':
		return 6, true
	case '七', '柒':
		return 7, true
	case '八', '捌':
		return 8, true
	case '九', '玖':
		return 9, true
	}
	return 0, false
}

// unitValue reports the value of a unit character: 十 百 千 萬 億 and their
// financial and simplified forms.
func unitValue(r rune) (int64, bool) {
	switch r {
	case '十', '拾':
		return 10, true
	case '百', '佰':
		return 100, true
	case '千', '仟':
		return 1000, true
	case '萬', '万':
		return 10000, true
	case '億', '亿':
		return 100000000, true
	}
	return 0, false
}

// isNumeral reports whether r may appear in a number ParseChineseNumber reads.
func isNumeral(r rune) bool {
	if _, ok := digitValue(r); ok {
		return true
	}
	_, ok := unitValue(r)
	return ok
}

// ParseChineseNumber parses a number written in Arabic digits (ASCII or full-width),
// in Chinese numerals, or in a mix of both: 一百二十三 = 123, 十五 = 15 (a leading 十
// means 10), 兩千零五 = 2005, 壹佰 = 100, 一萬零五 = 10005 (萬 multiplies everything
// since the last 億), 二〇〇五 = 2005 (digits without units read positionally), 3萬 =
// 30000. Surrounding white space is ignored; any other character, an empty string or a
// value above math.MaxInt32 gives false. A digit after a unit without 零 adds to it:
// 一百二 is 102, not the colloquial 120.
func ParseChineseNumber(s string) (int, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	// yi holds everything up to the last 億, wan everything since then up to the last
	// 萬, section the 十/百/千 groups since then, number the current digit run.
	var yi, wan, section, number int64
	for _, r := range s {
		if d, ok := digitValue(r); ok {
			if number > (maxNumber-d)/10 {
				return 0, false
			}
			number = number*10 + d
			continue
		}
		u, ok := unitValue(r)
		if !ok {
			return 0, false
		}
		switch u {
		case 10, 100, 1000:
			if number == 0 {
				number = 1 // 十五, 一千零十
			}
			if number > maxNumber/u {
				return 0, false
			}
			section += number * u
			number = 0
		case 10000:
			v := wan + section + number
			if v == 0 {
				v = 1
			}
			if v > maxNumber/u {
				return 0, false
			}
			wan, section, number = v*u, 0, 0
		default: // 億
			v := yi + wan + section + number
			if v == 0 {
				v = 1
			}
			if v > maxNumber/u {
				return 0, false
			}
			yi, wan, section, number = v*u, 0, 0, 0
		}
		if section > maxNumber {
			return 0, false
		}
	}
	total := yi + wan + section + number
	if total > maxNumber {
		return 0, false
	}
	return int(total), true
}

// isOrdinalSuffix reports whether r closes an ordinal such as 第十章: 章 (chapter), 回
// (episode), 節 or 节 (section).
func isOrdinalSuffix(r rune) bool {
	return r == '章' || r == '回' || r == '節' || r == '节'
}

// TitleNumber finds the first 第…章 (or 第…回, 第…節) in a chapter title whose number
// parses with ParseChineseNumber and returns that number: 第一百二十三章 gives 123,
// 第１２章 gives 12, 第一卷 第十章 gives 10. White space around the number is allowed.
// It reports false when the title holds no such number.
func TitleNumber(title string) (int, bool) {
	n, _, ok := findOrdinal(title)
	return n, ok
}

// findOrdinal finds the first 第…章 of TitleNumber and returns its number and the byte
// offset of its 第 in title.
func findOrdinal(title string) (n, start int, ok bool) {
	const di = "第"
	for from := 0; from < len(title); {
		i := strings.Index(title[from:], di)
		if i < 0 {
			break
		}
		start := from + i
		j := start + len(di)
		numStart := j
		for j < len(title) {
			r, size := utf8.DecodeRuneInString(title[j:])
			if !isNumeral(r) && !unicode.IsSpace(r) {
				break
			}
			j += size
		}
		if j < len(title) {
			r, _ := utf8.DecodeRuneInString(title[j:])
			if isOrdinalSuffix(r) {
				if n, ok := ParseChineseNumber(title[numStart:j]); ok {
					return n, start, true
				}
			}
		}
		from = start + len(di)
	}
	return 0, 0, false
}

// OrdinalPart returns the part of a page title (an HTML <title>) that names a chapter:
// from the 第 of its first 第…章 number (see TitleNumber) to the next separator the sites
// put between a chapter's, a book's and their own names (_ - | ｜ – —), trimmed, its
// white space collapsed (CollapseSpace). "某書 第十二章 風起_某書_小說網" gives
// "第十二章 風起". It returns "" when the title holds no such number.
func OrdinalPart(title string) string {
	_, start, ok := findOrdinal(title)
	if !ok {
		return ""
	}
	part := title[start:]
	if end := strings.IndexFunc(part, isTitleSeparator); end >= 0 {
		part = part[:end]
	}
	return CollapseSpace(part)
}

// isTitleSeparator reports the characters that separate the parts of a page title.
func isTitleSeparator(r rune) bool {
	switch r {
	case '_', '-', '|', '｜', '–', '—':
		return true
	}
	return false
}
