package sitesim

import "strings"

// numeralStyle selects how chineseNumber writes a number.
type numeralStyle int

const (
	numeralPlain     numeralStyle = iota // 一百二十三, 二千零五
	numeralLiang                         // 兩千零五: 兩 for a 2 before 百, 千 and 萬
	numeralFinancial                     // 壹佰貳拾參
)

var (
	plainDigits     = [10]string{"零", "一", "二", "三", "四", "五", "六", "七", "八", "九"}
	financialDigits = [10]string{"零", "壹", "貳", "參", "肆", "伍", "陸", "柒", "捌", "玖"}
	plainUnits      = [4]string{"", "十", "百", "千"}
	financialUnits  = [4]string{"", "拾", "佰", "仟"}
)

// chineseNumber writes n (0 <= n < 100000000) in Chinese numerals. Plain style
// writes 10..19 with a leading 十 (十五); the financial style keeps the
// leading digit (壹拾伍).
func chineseNumber(n int, style numeralStyle) string {
	if n <= 0 || n >= 100_000_000 {
		if style == numeralFinancial {
			return financialDigits[0]
		}
		return plainDigits[0]
	}
	var b strings.Builder
	high, low := n/10000, n%10000
	if high > 0 {
		writeSection(&b, high, style, true)
		b.WriteString("萬")
		if low > 0 && low < 1000 {
			b.WriteString("零")
		}
		if low > 0 {
			writeSection(&b, low, style, false)
		}
		return b.String()
	}
	writeSection(&b, low, style, true)
	return b.String()
}

// writeSection writes 1 <= x <= 9999. leading says whether x starts the number
// (a leading 1 before 十 is then dropped in the plain styles).
func writeSection(b *strings.Builder, x int, style numeralStyle, leading bool) {
	digits, units := plainDigits, plainUnits
	if style == numeralFinancial {
		digits, units = financialDigits, financialUnits
	}
	pendingZero := false
	started := false
	for pos := 3; pos >= 0; pos-- {
		p := 1
		for range pos {
			p *= 10
		}
		d := x / p % 10
		if d == 0 {
			if started {
				pendingZero = true
			}
			continue
		}
		if pendingZero {
			b.WriteString(digits[0])
			pendingZero = false
		}
		switch {
		case pos == 1 && d == 1 && !started && leading && style != numeralFinancial:
			// 十五, not 一十五.
		case d == 2 && pos >= 2 && style == numeralLiang:
			b.WriteString("兩")
		default:
			b.WriteString(digits[d])
		}
		b.WriteString(units[pos])
		started = true
	}
}

// fullWidthDigits writes the decimal digits of s as full-width digits.
func fullWidthDigits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			r = r - '0' + '０'
		}
		b.WriteRune(r)
	}
	return b.String()
}
