package sitesim

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/encoding/traditionalchinese"
)

func TestEncoding(t *testing.T) {
	t.Parallel()
	cfg := smallConfig()
	plain := New(cfg)
	cfg.Big5 = true
	big5 := New(cfg)
	b := plain.Books()[2]
	paths := []string{
		"/",
		"/fenlei1_1.html",
		"/" + b.ID + "/",
		"/" + b.ID + "/page-1.html",
		"/" + b.ID + "/" + b.Chapters[1].ID + ".html",
	}
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			u := serve(t, plain, http.MethodGet, p)
			g := serve(t, big5, http.MethodGet, p)
			for _, rec := range []*struct {
				name string
				ct   string
			}{{"utf-8", u.Header().Get("Content-Type")}, {"big5", g.Header().Get("Content-Type")}} {
				if rec.ct != DefaultContentType {
					t.Errorf("%s mode: Content-Type %q, want %q", rec.name, rec.ct, DefaultContentType)
				}
			}
			if !strings.Contains(u.Body.String(), "charset=big5") {
				t.Error("page does not declare Big5")
			}
			if !utf8.Valid(u.Body.Bytes()) {
				t.Error("default mode: body is not UTF-8")
			}
			raw := g.Body.Bytes()
			if utf8.Valid(raw) {
				t.Fatal("Big5 mode: body is valid UTF-8")
			}
			decoded, err := traditionalchinese.Big5.NewDecoder().Bytes(raw)
			if err != nil {
				t.Fatalf("decode Big5: %v", err)
			}
			if !bytes.Equal(decoded, u.Body.Bytes()) {
				t.Error("Big5 page does not decode to the UTF-8 page")
			}
		})
	}
}

// TestWordsInBig5 checks that every generated text survives Big5: an
// unencodable rune would come back as a replacement.
func TestWordsInBig5(t *testing.T) {
	t.Parallel()
	var czNames []string
	for _, c := range czbooksCategories[1:] {
		czNames = append(czNames, c.Name)
	}
	lists := [][]string{titlePrefixes, titleSuffixes, surnames, givenNames, introSentences, chapterVerbs, chapterNouns, specialTitles, textSentences, categoryNames[1:], czNames, volumeNames, finishedWords}
	enc := traditionalchinese.Big5.NewEncoder()
	for _, list := range lists {
		for _, w := range list {
			if _, err := enc.String(w); err != nil {
				t.Errorf("%q is not encodable in Big5: %v", w, err)
			}
		}
	}
	for _, p := range []string{xswBlankPage, errorPage(429, "請求過於頻繁，請稍後再試。").body, czbooksBlankPage("big5")} {
		if _, err := enc.String(p); err != nil {
			t.Errorf("fixed page not encodable in Big5: %v", err)
		}
	}
}
