package site

import (
	"bytes"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/encoding/traditionalchinese"
)

func mustBig5(t testing.TB, s string) []byte {
	t.Helper()
	b, err := traditionalchinese.Big5.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatalf("encode %q as big5: %v", s, err)
	}
	return b
}

func TestDecode(t *testing.T) {
	const text = "<html><head><meta charset=big5><title>第一章 風起</title></head><body>台灣小說網</body></html>"
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{name: "utf8 with big5 meta", in: []byte(text), want: text},
		{name: "utf8 with bom", in: append([]byte("\xEF\xBB\xBF"), text...), want: text},
		{name: "big5 bytes", in: mustBig5(t, text), want: text},
		{name: "empty", in: nil, want: ""},
		{name: "ascii", in: []byte("<p>hello</p>"), want: "<p>hello</p>"},
		{name: "invalid big5 byte becomes replacement", in: []byte("a\xffb"), want: "a\uFFFDb"},
		{name: "truncated big5 pair", in: append(mustBig5(t, "說"), 0xA4), want: "說\uFFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.in)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("Decode = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestDecodeSharesValidUTF8(t *testing.T) {
	in := []byte("第一章")
	got, err := Decode(in)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if &got[0] != &in[0] {
		t.Error("Decode copied valid UTF-8; want the input returned as is")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("<meta charset=big5>第一章"))
	f.Add([]byte("\xEF\xBB\xBF<p>x</p>"))
	f.Add(mustBig5(f, "台灣小說網 第一百二十三章"))
	f.Add([]byte{0xA4, 0x40, 0xFF, 0x80})
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := Decode(in)
		if err != nil {
			t.Fatalf("Decode(%q): %v", in, err)
		}
		if !utf8.Valid(got) {
			t.Errorf("Decode(%q) = %q; not valid UTF-8", in, got)
		}
		if utf8.Valid(in) && !bytes.Equal(got, bytes.TrimPrefix(in, []byte("\xEF\xBB\xBF"))) {
			t.Errorf("Decode(%q) = %q; want valid UTF-8 unchanged", in, got)
		}
	})
}
