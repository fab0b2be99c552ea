package consume

import (
	"errors"
	"testing"

	"github.com/xswtw/xsw/events"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		subject string
		data    string
		want    error // nil: decodes
		book    string
	}{
		{"book", "xsw.fetched.book.7", `{"version":1,"book_id":"7","book":{"name":"書"}}`, nil, "7"},
		{"toc page", "xsw.fetched.toc.7", `{"version":1,"book_id":"7","page":1,"total_pages":1,"chapters":[]}`, nil, "7"},
		{"chapter", "xsw.fetched.chapter.7", `{"version":1,"book_id":"7","number":1,"chapter_id":"100"}`, nil, "7"},
		{"categories", "xsw.fetched.categories", `{"version":1,"categories":[]}`, nil, ""},
		{"job", "xsw.job.retrying.7", `{"version":1,"kind":"retrying","job_id":"j","book_id":"7","lane":"refresh"}`, nil, "7"},
		{"purge", "xsw.cmd.purge.7", `{"version":1,"book_id":"7","requested_at":"2026-01-21T12:00:00Z"}`, nil, "7"},
		{"purge without time", "xsw.cmd.purge.7", `{"version":1,"book_id":"7"}`, events.ErrInvalid, ""},
		{"purge of another subject", "xsw.cmd.purge.8", `{"version":1,"book_id":"7","requested_at":"2026-01-21T12:00:00Z"}`, events.ErrInvalid, ""},
		{"unknown command", "xsw.cmd.reindex.7", `{"version":1,"book_id":"7"}`, events.ErrInvalid, ""},
		{"bad json", "xsw.fetched.book.7", `{"version":`, events.ErrInvalid, ""},
		{"version 2", "xsw.fetched.book.7", `{"version":2,"book_id":"7","book":{"name":"書"}}`, events.ErrVersion, ""},
		{"no version", "xsw.fetched.toc.7", `{"book_id":"7","page":1,"total_pages":1}`, events.ErrVersion, ""},
		{"invalid", "xsw.fetched.book.7", `{"version":1,"book_id":"7","book":{}}`, events.ErrInvalid, ""},
		{"book of another subject", "xsw.fetched.book.8", `{"version":1,"book_id":"7","book":{"name":"書"}}`, events.ErrInvalid, ""},
		{"kind of another subject", "xsw.job.failed.7", `{"version":1,"kind":"completed","job_id":"j","book_id":"7","lane":"refresh"}`, events.ErrInvalid, ""},
		{"unknown subject", "xsw.fetched.listing.7", `{"version":1}`, events.ErrInvalid, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, book, err := decode(tt.subject, []byte(tt.data))
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Errorf("err = %v, want %v", err, tt.want)
				}
				return
			}
			if err != nil || p == nil || book != tt.book {
				t.Errorf("decode = %T, %q, %v; want a payload of book %q", p, book, err, tt.book)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	c := &Consumer{opts: Options{}.withDefaults()}
	want := []string{"500ms", "1s", "2s", "4s", "8s", "16s", "30s", "30s"}
	for i, w := range want {
		if got := c.backoff(i + 1).String(); got != w {
			t.Errorf("backoff(%d) = %s, want %s", i+1, got, w)
		}
	}
}
