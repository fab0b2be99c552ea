package site

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/html"

	"github.com/xswtw/xsw/events"
)

func TestCollapseSpace(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "empty", in: "", want: ""},
		{name: "only spaces", in: " \t\n\u3000\u00a0", want: ""},
		{name: "plain", in: "第一章 出山", want: "第一章 出山"},
		{name: "trim every kind of space", in: "\u3000\u3000\u00a0 正文\u00a0\u3000", want: "正文"},
		{name: "inner ideographic space kept", in: "第52章\u3000拜師", want: "第52章\u3000拜師"},
		{name: "inner no-break space kept", in: "a\u00a0b", want: "a\u00a0b"},
		{name: "runs collapse", in: "a  \t b", want: "a b"},
		{name: "tab alone becomes a space", in: "a\tb", want: "a b"},
		{name: "wrapped Chinese joins", in: "他說：\n    「走吧。」", want: "他說：「走吧。」"},
		{name: "wrapped Latin keeps a space", in: "hello\nworld", want: "hello world"},
		{name: "wrap between Latin and Chinese keeps a space", in: "HP\n歸零", want: "HP 歸零"},
		{name: "space between Chinese without a break kept", in: "他 說", want: "他 說"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CollapseSpace(tt.in); got != tt.want {
				t.Errorf("CollapseSpace(%q) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

// parseBody parses s as the content of a body and returns the body element.
func parseBody(t *testing.T, s string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader("<html><body>" + s + "</body></html>"))
	if err != nil {
		t.Fatal(err)
	}
	var body *html.Node
	var find func(n *html.Node)
	find = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "body" {
			body = n
		}
		for c := n.FirstChild; c != nil && body == nil; c = c.NextSibling {
			find(c)
		}
	}
	find(doc)
	return body
}

func TestTextLines(t *testing.T) {
	skipAds := func(n *html.Node) bool { return HasClass(n, "ad") || n.Data == "ins" }
	tests := []struct {
		name string
		in   string
		skip func(*html.Node) bool
		want []string
	}{
		{name: "paragraphs", in: "<p>一</p><p>二</p>", want: []string{"一", "二"}},
		{name: "br", in: "一<br>二<br/><br />三", want: []string{"一", "二", "三"}},
		{name: "nested divs", in: "<div>一<div>二</div>三</div>", want: []string{"一", "二", "三"}},
		{name: "inline elements join", in: "<p>一<span>二</span><b>三</b></p>", want: []string{"一二三"}},
		{name: "padding trimmed", in: "&nbsp;&nbsp;\u3000\u3000一&nbsp;<br>\u3000二\u3000", want: []string{"一", "二"}},
		{name: "entities decoded", in: "<p>&lt;甲&gt; &amp; &#20057;&quot;</p>", want: []string{`<甲> & 乙"`}},
		{name: "empty lines dropped", in: "<p></p><p> </p><br><br>一", want: []string{"一"}},
		{name: "hidden never text", in: "一<script>var a=1;</script><style>p{}</style><noscript>x</noscript><iframe>y</iframe>二", want: []string{"一二"}},
		{name: "comments left out", in: "一<!-- 廣告 -->二", want: []string{"一二"}},
		{name: "skip callback", in: `<p>一</p><div class="x ad">廣告</div><ins>ins</ins><p>二</p>`, skip: skipAds, want: []string{"一", "二"}},
		{name: "nothing", in: "", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := TextLines(parseBody(t, tt.in), tt.skip)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("TextLines(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
	if got := TextLines(nil, nil); got != nil {
		t.Errorf("TextLines(nil) = %q; want nil", got)
	}
}

func TestHasClass(t *testing.T) {
	n := &html.Node{Type: html.ElementNode, Data: "div", Attr: []html.Attribute{{Key: "class", Val: " ad\tbanner "}}}
	for c, want := range map[string]bool{"ad": true, "banner": true, "ads": false, "": false, "ad banner": false} {
		if got := HasClass(n, c); got != want {
			t.Errorf("HasClass(%q) = %v; want %v", c, got, want)
		}
	}
}

func TestPathSegment(t *testing.T) {
	tests := []struct{ in, want string }{
		{"cr382b", "cr382b"},
		{"0123", "0123"},
		{"ab-12_X", "ab-12_X"},
		{"", "_"},
		{".", "_"},
		{"..", "__"},
		{"a/b", "a_b"},
		{"//evil.example", "__evil_example"},
		{"2?x=@evil#", "2_x__evil_"},
		{"%2e%2e", "_2e_2e"},
		{`\x`, "_x"},
		{"第一章", strings.Repeat("_", len("第一章"))},
	}
	for _, tt := range tests {
		if got := PathSegment(tt.in); got != tt.want {
			t.Errorf("PathSegment(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzPathSegment(f *testing.F) {
	for _, s := range []string{"cr382b", "", "..", "a/b", "第一章", "%2F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		got := PathSegment(id)
		if !events.ValidID(got) && len(got) <= events.MaxBookIDLen {
			t.Fatalf("PathSegment(%q) = %q, not made of id bytes", id, got)
		}
		if events.ValidID(id) && got != id {
			t.Fatalf("PathSegment(%q) = %q; a valid id passes unchanged", id, got)
		}
		if len(got) != max(len(id), 1) {
			t.Fatalf("PathSegment(%q) = %q changes the length", id, got)
		}
	})
}

func TestOrdinalPart(t *testing.T) {
	tests := []struct{ in, want string }{
		{"第十二章 風起_某書_小說狂人", "第十二章 風起"},
		{"某書 第十二章 風起 - 小說狂人", "第十二章 風起"},
		{"《某書》第3章　初見｜小說狂人", "第3章\u3000初見"},
		{"某書_第一卷 出山_第五章 下山_網", "第五章 下山"},
		{"第 十 回  比武|書", "第 十 回 比武"},
		{"某書 - 小說狂人", ""},
		{"第幾章", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := OrdinalPart(tt.in); got != tt.want {
			t.Errorf("OrdinalPart(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
