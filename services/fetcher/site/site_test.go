package site

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
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
		{"non-canonical id", fmt.Errorf("book %q: %w", "0123", ErrNotCanonical), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Permanent(tt.err); got != tt.want {
				t.Errorf("Permanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func testInfo(id string) Info {
	return Info{ID: id, Name: id, DefaultBaseURL: "https://" + id + ".example", BookIDPattern: `[a-z0-9]+`, CategoryIDPattern: `[a-z]+`}
}

func testAdapter(id string) Adapter {
	return Adapter{Info: testInfo(id), New: func(*url.URL) (Source, error) { return nil, errors.New("not for building") }}
}

func TestAdapterValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Adapter)
		want string // part of the error; "" for none
	}{
		{"valid", func(*Adapter) {}, ""},
		{"bad id", func(a *Adapter) { a.Info.ID = "Toy" }, `site "Toy"`},
		{"id with a dot", func(a *Adapter) { a.Info.ID = "to.y" }, `site "to.y"`},
		{"no New", func(a *Adapter) { a.New = nil }, "without New"},
		{"relative default URL", func(a *Adapter) { a.Info.DefaultBaseURL = "toy.example" }, "default base URL"},
		{"no book pattern", func(a *Adapter) { a.Info.BookIDPattern = "" }, "no book id pattern"},
		{"bad category pattern", func(a *Adapter) { a.Info.CategoryIDPattern = "[a-" }, "category id pattern"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := testAdapter("toy")
			tt.edit(&a)
			err := a.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestRegistry(t *testing.T) {
	r := Registry{}
	for _, id := range []string{"toy", "abc"} {
		if err := r.Add(testAdapter(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Add(testAdapter("toy")); err == nil {
		t.Error("a site registered twice")
	}
	if err := r.Add(Adapter{Info: testInfo("bad")}); err == nil {
		t.Error("an adapter without New registered")
	}
	if got := strings.Join(r.Names(), ","); got != "abc,toy" {
		t.Errorf("Names() = %s, want abc,toy", got)
	}
	if a, err := r.Lookup("toy"); err != nil || a.Info.ID != "toy" {
		t.Errorf("Lookup(toy) = %+v, %v", a.Info, err)
	}
	_, err := r.Lookup("czbooks")
	if !errors.Is(err, ErrUnknownSite) || !strings.Contains(err.Error(), `"czbooks" (known: [abc toy])`) {
		t.Errorf("Lookup(czbooks) = %v, want ErrUnknownSite naming abc and toy", err)
	}
	r["misfiled"] = testAdapter("toy")
	if _, err := r.Lookup("misfiled"); err == nil {
		t.Error("an adapter registered under another id was looked up")
	}
}

func TestCompilePattern(t *testing.T) {
	re, err := CompilePattern(`[1-9][0-9]*|x`)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"123": true, "x": true, "0123": false, "123x": false, "x1": false, "": false} {
		if got := re.MatchString(id); got != want {
			t.Errorf("match %q = %v, want %v (the whole id)", id, got, want)
		}
	}
}

func TestBase(t *testing.T) {
	for _, bad := range []string{"", "ftp://h/", "/relative", "//h/x"} {
		var u *url.URL
		if bad != "" {
			u, _ = url.Parse(bad)
		}
		if _, err := NewBase(u); err == nil || !strings.Contains(err.Error(), "base URL") {
			t.Errorf("NewBase(%q) = %v; want a base URL error", bad, err)
		}
	}
	if _, err := NewBase(&url.URL{Scheme: "http", Host: "bad host"}); err == nil {
		t.Error("NewBase of a host that does not parse: no error")
	}
	u, _ := url.Parse("HTTP://h:8080/p%20q/?x=1#f")
	b, err := NewBase(u)
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := url.Parse("n/1")
	abs, _ := url.Parse("https://other/x")
	for _, tt := range []struct{ got, want string }{
		{b.HomeURL(), "http://h:8080/p%20q/"},
		{b.URL("/n/1"), "http://h:8080/p%20q/n/1"},
		{b.Host(), "h:8080"},
		{b.Prefix(), "/p%20q"},
		{b.PageURL(nil).String(), "http://h:8080/p%20q/"},
		{b.PageURL(rel).String(), "http://h:8080/p%20q/n/1"},
		{b.PageURL(abs).String(), "https://other/x"},
		{BaseOr(nil, "https://d.example/").HomeURL(), "https://d.example/"},
		{BaseOr(u, "https://d.example/").HomeURL(), "http://h:8080/p%20q/"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q; want %q", tt.got, tt.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("BaseOr with an unusable fallback did not panic")
		}
	}()
	BaseOr(nil, "ftp://d.example/")
}

func TestParsePage(t *testing.T) {
	u, _ := url.Parse("https://h/n/1")
	doc, err := ParsePage("book", []byte("<html><body><p>x</p></body></html>"), u)
	if err != nil || doc.Url != u || doc.Find("p").Text() != "x" {
		t.Fatalf("ParsePage = %v, %v; want the document at %s", doc, err, u)
	}
	_, err = ParsePage("book", []byte("<html><body><p>x"), u)
	var pe *ParseError
	if !errors.As(err, &pe) || !pe.Truncated || pe.Page != "book" || pe.URL != u.String() || Permanent(err) {
		t.Errorf("ParsePage of a cut page: %v; want a truncated-page ParseError for the book page at %s", err, u)
	}
	if err := ParseErrorf("home", nil, "no %s", "links"); err.Error() != "parse home page: no links" {
		t.Errorf("ParseErrorf without a URL: %q", err)
	}
	if err := ParseErrorf("home", u, "no links"); err.Error() != "parse home page https://h/n/1: no links" {
		t.Errorf("ParseErrorf with a URL: %q", err)
	}
}
