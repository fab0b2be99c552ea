package sitesim

import "testing"

func TestChineseNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n     int
		style numeralStyle
		want  string
	}{
		{1, numeralPlain, "一"},
		{10, numeralPlain, "十"},
		{15, numeralPlain, "十五"},
		{20, numeralPlain, "二十"},
		{101, numeralPlain, "一百零一"},
		{110, numeralPlain, "一百一十"},
		{123, numeralPlain, "一百二十三"},
		{1010, numeralPlain, "一千零一十"},
		{2005, numeralPlain, "二千零五"},
		{2005, numeralLiang, "兩千零五"},
		{222, numeralLiang, "兩百二十二"},
		{10005, numeralPlain, "一萬零五"},
		{12345, numeralPlain, "一萬二千三百四十五"},
		{100010, numeralPlain, "十萬零一十"},
		{100, numeralFinancial, "壹佰"},
		{15, numeralFinancial, "壹拾伍"},
		{3008, numeralFinancial, "參仟零捌"},
		{0, numeralPlain, "零"},
	}
	for _, tt := range tests {
		if got := chineseNumber(tt.n, tt.style); got != tt.want {
			t.Errorf("chineseNumber(%d, %d) = %q, want %q", tt.n, tt.style, got, tt.want)
		}
	}
	if got := fullWidthDigits("123"); got != "１２３" {
		t.Errorf("fullWidthDigits = %q", got)
	}
}
