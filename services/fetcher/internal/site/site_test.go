package site

import (
	"errors"
	"fmt"
	"testing"
)

func TestTruncated(t *testing.T) {
	tests := []struct {
		name string
		text string
		want bool
	}{
		{"whole page", "<html><body><p>x</p></body></html>\n", false},
		{"upper case", "<HTML><BODY>x</BODY></HTML>", false},
		{"html closed only", "<html><body>x</html>", false},
		{"body closed only", "<html><body>x</body>", false},
		{"attributes", "<html lang=zh-TW><body class=m>x</body >", false},
		{"fragment", `<div class="cover"><ul><li><a href="1.html">第1章</a></li></ul></div>`, false},
		{"empty", "", false},
		{"cut in the body", "<html><body><ul><li>第1章</li>", true},
		{"cut in the head", "<!DOCTYPE html><html><head><title>x", true},
		{"body opened only", "<body><ul><li>第1章</li>", true},
		{"cut in the closing tag", "<html><body>x</bo", true},
		{"other closing tags", "<html><body><div>x</div></p>", true},
		{"similar names", "<html><body>x</bodyx></htmlx>", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Truncated([]byte(tt.text)); got != tt.want {
				t.Errorf("Truncated(%q) = %v, want %v", tt.text, got, tt.want)
			}
		})
	}
}

func TestPermanent(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"parse error", &ParseError{Page: "toc", What: "no table of contents"}, true},
		{"wrapped parse error", fmt.Errorf("toc page 2: %w", &ParseError{Page: "toc"}), true},
		{"truncated page", &ParseError{Page: "toc", What: "truncated", Truncated: true}, false},
		{"wrapped truncated page", fmt.Errorf("toc page 2: %w", &ParseError{Page: "toc", Truncated: true}), false},
		{"another error", errors.New("connection reset"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Permanent(tt.err); got != tt.want {
				t.Errorf("Permanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
