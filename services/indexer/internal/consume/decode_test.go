package consume

import (
	"errors"
	"testing"

	"github.com/xswtw/xsw/events"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	const (
		bookV2 = `{"version":2,"site":"czbooks","book_id":"cr382b","book":{"name":"書"}}`
		jobV2  = `{"version":2,"kind":"completed","job_id":"czbooks.cr382b-3","site":"czbooks","book_id":"cr382b","lane":"refresh"}`
	)
	tests := []struct {
		name    string
		subject string
		data    string
		want    error  // nil: decodes
		key     string // the book's events.Key
	}{
		// Version 1, as left in the stream by a build before the sites: xsw's books.
		{"v1 book", "xsw.fetched.book.7", `{"version":1,"book_id":"7","book":{"name":"書"}}`, nil, "xsw.7"},
		{"v1 toc page", "xsw.fetched.toc.7", `{"version":1,"book_id":"7","page":1,"total_pages":1,"chapters":[]}`, nil, "xsw.7"},
		{"v1 chapter", "xsw.fetched.chapter.7", `{"version":1,"book_id":"7","number":1,"chapter_id":"100"}`, nil, "xsw.7"},
		{"v1 categories", "xsw.fetched.categories", `{"version":1,"categories":[{"id":1,"name":"玄幻","url":"u"}]}`, nil, ""},
		{"v1 job", "xsw.job.retrying.7", `{"version":1,"kind":"retrying","job_id":"j","book_id":"7","lane":"refresh"}`, nil, "xsw.7"},
		{"v1 purge", "xsw.cmd.purge.7", `{"version":1,"book_id":"7","requested_at":"2026-01-21T12:00:00Z"}`, nil, "xsw.7"},
		{"v1 reads", "xsw.cmd.reads", `{"version":1,"batch_id":"g-1","reads":{"7":2},"at":"2026-01-21T12:00:00Z"}`, nil, ""},
		{"v1 payload on a site's subject", "xsw.fetched.book.xsw.7", `{"version":1,"book_id":"7","book":{"name":"書"}}`, nil, "xsw.7"},
		// Version 2.
		{"book", "xsw.fetched.book.czbooks.cr382b", bookV2, nil, "czbooks.cr382b"},
		{"toc page", "xsw.fetched.toc.czbooks.cr382b", `{"version":2,"site":"czbooks","book_id":"cr382b","page":1,"total_pages":1,"chapters":[]}`, nil, "czbooks.cr382b"},
		{"chapter", "xsw.fetched.chapter.czbooks.cr382b", `{"version":2,"site":"czbooks","book_id":"cr382b","number":1,"chapter_id":"a1"}`, nil, "czbooks.cr382b"},
		{"categories", "xsw.fetched.categories.czbooks", `{"version":2,"site":"czbooks","categories":[{"id":"xuanhuan","name":"玄幻","url":"u"}]}`, nil, ""},
		{"job", "xsw.job.completed.czbooks.cr382b", jobV2, nil, "czbooks.cr382b"},
		{"purge", "xsw.cmd.purge.czbooks.cr382b", `{"version":2,"site":"czbooks","book_id":"cr382b","requested_at":"2026-01-21T12:00:00Z"}`, nil, "czbooks.cr382b"},
		{"accept shrink", "xsw.cmd.accept_shrink.czbooks.cr382b", `{"version":2,"site":"czbooks","book_id":"cr382b","accepted_at":"2026-01-21T12:00:00Z"}`, nil, "czbooks.cr382b"},
		{"reads", "xsw.cmd.reads", `{"version":2,"batch_id":"g-1","reads":{"czbooks.cr382b":2,"xsw.7":1},"at":"2026-01-21T12:00:00Z"}`, nil, ""},
		// Poison.
		{"purge without time", "xsw.cmd.purge.xsw.7", `{"version":2,"site":"xsw","book_id":"7"}`, events.ErrInvalid, ""},
		{"purge of another book", "xsw.cmd.purge.xsw.8", `{"version":2,"site":"xsw","book_id":"7","requested_at":"2026-01-21T12:00:00Z"}`, events.ErrInvalid, ""},
		{"purge of another site", "xsw.cmd.purge.xsw.cr382b", `{"version":2,"site":"czbooks","book_id":"cr382b","requested_at":"2026-01-21T12:00:00Z"}`, events.ErrInvalid, ""},
		{"accept shrink without time", "xsw.cmd.accept_shrink.xsw.7", `{"version":2,"site":"xsw","book_id":"7"}`, events.ErrInvalid, ""},
		{"accept shrink of another book", "xsw.cmd.accept_shrink.xsw.8", `{"version":2,"site":"xsw","book_id":"7","accepted_at":"2026-01-21T12:00:00Z"}`, events.ErrInvalid, ""},
		{"accept shrink on the purge subject", "xsw.cmd.purge.xsw.7", `{"version":2,"site":"xsw","book_id":"7","accepted_at":"2026-01-21T12:00:00Z"}`, events.ErrInvalid, ""},
		{"unknown command", "xsw.cmd.reindex.xsw.7", `{"version":2,"site":"xsw","book_id":"7"}`, events.ErrInvalid, ""},
		{"bad json", "xsw.fetched.book.xsw.7", `{"version":`, events.ErrInvalid, ""},
		{"version 3", "xsw.fetched.book.xsw.7", `{"version":3,"site":"xsw","book_id":"7","book":{"name":"書"}}`, events.ErrVersion, ""},
		{"no version", "xsw.fetched.toc.xsw.7", `{"site":"xsw","book_id":"7","page":1,"total_pages":1}`, events.ErrVersion, ""},
		{"v2 without a site", "xsw.fetched.book.7", `{"version":2,"book_id":"7","book":{"name":"書"}}`, events.ErrInvalid, ""},
		{"invalid", "xsw.fetched.book.xsw.7", `{"version":2,"site":"xsw","book_id":"7","book":{}}`, events.ErrInvalid, ""},
		{"book of another subject", "xsw.fetched.book.czbooks.8", bookV2, events.ErrInvalid, ""},
		{"site of another subject", "xsw.fetched.book.xsw.cr382b", bookV2, events.ErrInvalid, ""},
		{"another site's book on a subject of before the sites", "xsw.fetched.book.cr382b", bookV2, events.ErrInvalid, ""},
		{"another site's categories on the subject of before the sites", "xsw.fetched.categories", `{"version":2,"site":"czbooks","categories":[]}`, events.ErrInvalid, ""},
		{"categories of another site's subject", "xsw.fetched.categories.xsw", `{"version":2,"site":"czbooks","categories":[]}`, events.ErrInvalid, ""},
		{"kind of another subject", "xsw.job.failed.czbooks.cr382b", jobV2, events.ErrInvalid, ""},
		{"job of another site", "xsw.job.completed.xsw.cr382b", jobV2, events.ErrInvalid, ""},
		{"subject with a token too many", "xsw.fetched.book.x.czbooks.cr382b", bookV2, events.ErrInvalid, ""},
		{"unknown subject", "xsw.fetched.listing.xsw.7", `{"version":2}`, events.ErrInvalid, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, key, err := decode(tt.subject, []byte(tt.data))
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Errorf("err = %v, want %v", err, tt.want)
				}
				return
			}
			if err != nil || p == nil || key != tt.key {
				t.Errorf("decode = %T, %q, %v; want a payload of book %q", p, key, err, tt.key)
			}
			if tt.key != "" && p.PayloadVersion() != events.Version {
				t.Errorf("payload of version %d, want it upgraded to %d", p.PayloadVersion(), events.Version)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	c := &Consumer{opts: Options{}.withDefaults()}
	want := []string{"500ms", "1s", "2s", "4s", "8s", "16s", "30s", "30s"}
	for i, w := range want {
		if got := c.backoff(i + 1).String(); got != w {
			t.Errorf("backoff(%d) = %s, want %s", i+1, got, w)
		}
	}
}
