package site

import (
	"flag"
	"strings"
	"testing"
)

// update is accepted so that go test ./site/... -update, which rewrites the
// golden files of the adapter packages, also runs here; this package has none.
var _ = flag.Bool("update", false, "rewrite golden files (none in this package)")

func TestParseChineseNumber(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int
		ok   bool
	}{
		{name: "ascii digits", in: "123", want: 123, ok: true},
		{name: "ascii zero", in: "0", want: 0, ok: true},
		{name: "ascii leading zeros", in: "007", want: 7, ok: true},
		{name: "full-width digits", in: "１２３", want: 123, ok: true},
		{name: "mixed width digits", in: "1２3", want: 123, ok: true},
		{name: "surrounding spaces", in: "  45\u3000", want: 45, ok: true},
		{name: "single digit", in: "七", want: 7, ok: true},
		{name: "zero", in: "零", want: 0, ok: true},
		{name: "ling circle", in: "〇", want: 0, ok: true},
		{name: "ten", in: "十", want: 10, ok: true},
		{name: "leading ten", in: "十五", want: 15, ok: true},
		{name: "one ten", in: "一十五", want: 15, ok: true},
		{name: "twenty", in: "二十", want: 20, ok: true},
		{name: "ninety-nine", in: "九十九", want: 99, ok: true},
		{name: "hundred", in: "一百", want: 100, ok: true},
		{name: "one two three", in: "一百二十三", want: 123, ok: true},
		{name: "hundred zero five", in: "一百零五", want: 105, ok: true},
		{name: "hundred ten colloquial", in: "一百十", want: 110, ok: true},
		{name: "hundred digit without zero", in: "一百二", want: 102, ok: true},
		{name: "two thousand five liang", in: "兩千零五", want: 2005, ok: true},
		{name: "two thousand five simplified liang", in: "两千零五", want: 2005, ok: true},
		{name: "thousand ten", in: "一千零一十", want: 1010, ok: true},
		{name: "thousand ten short", in: "一千零十", want: 1010, ok: true},
		{name: "thousand double zero", in: "三千零零八", want: 3008, ok: true},
		{name: "full thousand", in: "九千九百九十九", want: 9999, ok: true},
		{name: "ten thousand", in: "一萬", want: 10000, ok: true},
		{name: "wan zero five", in: "一萬零五", want: 10005, ok: true},
		{name: "wan simplified", in: "一万零五", want: 10005, ok: true},
		{name: "wan multiplies all before", in: "十二萬三千四百五十六", want: 123456, ok: true},
		{name: "hundred wan", in: "一百萬", want: 1000000, ok: true},
		{name: "yi", in: "一億二千萬", want: 120000000, ok: true},
		{name: "yi zero", in: "三億零五", want: 300000005, ok: true},
		{name: "financial hundred", in: "壹佰", want: 100, ok: true},
		{name: "financial full", in: "貳仟參佰肆拾伍", want: 2345, ok: true},
		{name: "financial simplified", in: "贰佰叁拾", want: 230, ok: true},
		{name: "financial six to nine", in: "陸柒捌玖", want: 6789, ok: true},
		{name: "financial wan", in: "壹萬零壹", want: 10001, ok: true},
		{name: "financial ten", in: "拾", want: 10, ok: true},
		{name: "positional year", in: "二〇〇五", want: 2005, ok: true},
		{name: "positional digits", in: "一二三", want: 123, ok: true},
		{name: "arabic with wan", in: "3萬", want: 30000, ok: true},
		{name: "arabic with wan and thousand", in: "1萬2千", want: 12000, ok: true},
		{name: "bare wan", in: "萬", want: 10000, ok: true},
		{name: "max int32", in: "2147483647", want: 2147483647, ok: true},
		{name: "empty", in: "", ok: false},
		{name: "spaces only", in: "  ", ok: false},
		{name: "letters", in: "abc", ok: false},
		{name: "trailing garbage", in: "十五a", ok: false},
		{name: "inner space", in: "一 百", ok: false},
		{name: "negative", in: "-5", ok: false},
		{name: "not a numeral", in: "章", ok: false},
		{name: "overflow digits", in: "99999999999999999999999", ok: false},
		{name: "overflow int32", in: "2147483648", ok: false},
		{name: "overflow units", in: "九千九百萬億", ok: false},
		{name: "overflow wan wan", in: "一萬萬萬", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseChineseNumber(tt.in)
			if ok != tt.ok || got != tt.want {
				t.Errorf("ParseChineseNumber(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestTitleNumber(t *testing.T) {
	tests := []struct {
		name  string
		title string
		want  int
		ok    bool
	}{
		{name: "arabic", title: "第123章 風雲再起", want: 123, ok: true},
		{name: "arabic no space", title: "第1章開始", want: 1, ok: true},
		{name: "full-width", title: "第１２章　初入江湖", want: 12, ok: true},
		{name: "chinese", title: "第一百二十三章 血戰", want: 123, ok: true},
		{name: "liang thousand", title: "第兩千零五章 終局", want: 2005, ok: true},
		{name: "financial", title: "第壹佰章 百章紀念", want: 100, ok: true},
		{name: "leading ten", title: "第十五章", want: 15, ok: true},
		{name: "wan", title: "第一萬零五章", want: 10005, ok: true},
		{name: "spaces around number", title: "第 12 章 空格", want: 12, ok: true},
		{name: "hui", title: "第三回 桃園結義", want: 3, ok: true},
		{name: "jie", title: "第五節", want: 5, ok: true},
		{name: "volume before chapter", title: "第一卷 第十章 出山", want: 10, ok: true},
		{name: "prefix text", title: "正文 第88章 歸來", want: 88, ok: true},
		{name: "number in body after", title: "第9章 第三次", want: 9, ok: true},
		{name: "zero chapter", title: "第0章 序", want: 0, ok: true},
		{name: "no number", title: "楔子", ok: false},
		{name: "no suffix", title: "第一卷", ok: false},
		{name: "empty", title: "", ok: false},
		{name: "di only", title: "第", ok: false},
		{name: "di at end", title: "風雲第", ok: false},
		{name: "empty number", title: "第章", ok: false},
		{name: "not a numeral", title: "第X章", ok: false},
		{name: "di di", title: "第第三章", want: 3, ok: true},
		{name: "overflow", title: "第99999999999章", ok: false},
		{name: "invalid utf8", title: "第\xff章", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := TitleNumber(tt.title)
			if ok != tt.ok || got != tt.want {
				t.Errorf("TitleNumber(%q) = %d, %v; want %d, %v", tt.title, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// toChinese writes n (0 <= n < 100000000) the way a careful writer would: 一萬零五,
// 兩千零五 is written 二千零五, 十五 without the leading 一.
func toChinese(n int) string {
	const digits = "零一二三四五六七八九"
	d := []rune(digits)
	if n == 0 {
		return "零"
	}
	small := func(n int, lead bool) string { // 0 < n < 10000
		var b strings.Builder
		units := []struct {
			v int
			s string
		}{{1000, "千"}, {100, "百"}, {10, "十"}, {1, ""}}
		zero := false
		started := false
		for _, u := range units {
			q := n / u.v % 10
			if q == 0 {
				if started {
					zero = true
				}
				continue
			}
			if zero {
				b.WriteRune('零')
				zero = false
			}
			if !(lead && !started && u.v == 10 && q == 1) {
				b.WriteRune(d[q])
			}
			b.WriteString(u.s)
			started = true
		}
		return b.String()
	}
	if n < 10000 {
		return small(n, true)
	}
	s := small(n/10000, true) + "萬"
	if rest := n % 10000; rest > 0 {
		if rest < 1000 {
			s += "零"
		}
		s += small(rest, false)
	}
	return s
}

func TestParseChineseNumberRoundTrip(t *testing.T) {
	for n := 0; n < 200000; n++ {
		s := toChinese(n)
		if got, ok := ParseChineseNumber(s); !ok || got != n {
			t.Fatalf("ParseChineseNumber(%q) = %d, %v; want %d", s, got, ok, n)
		}
	}
}

func FuzzParseChineseNumber(f *testing.F) {
	for _, s := range []string{"一百二十三", "兩千零五", "一萬零五", "壹佰", "１２３", "十五", "九千九百萬億", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := ParseChineseNumber(s)
		if !ok && n != 0 {
			t.Errorf("ParseChineseNumber(%q) = %d, false; want 0 on failure", s, n)
		}
		if n < 0 {
			t.Errorf("ParseChineseNumber(%q) = %d; want non-negative", s, n)
		}
	})
}

func FuzzTitleNumber(f *testing.F) {
	for _, s := range []string{"第123章 風雲再起", "第一卷 第十章", "第兩千零五章", "第", "第 章", "楔子"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := TitleNumber(s)
		if ok && !strings.Contains(s, "第") {
			t.Errorf("TitleNumber(%q) = %d, true without 第", s, n)
		}
		if n < 0 {
			t.Errorf("TitleNumber(%q) = %d; want non-negative", s, n)
		}
	})
}
