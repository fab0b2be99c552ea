package checkpoint

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/services/fetcher/site/xsw"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLoad(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketCheckpoints)
	if err != nil {
		t.Fatal(err)
	}
	s := Store{KV: kv}
	// Written before books were site-qualified: under the bare id, without
	// last_page_first.
	if _, err := kv.Put(t.Context(), "1721851", []byte(`{"last_chapter_id":"9","chapters":1420,"toc_pages":71,"per_page":20,"home":{"etag":"x"}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), "ab-12", []byte(`{"chapters":3}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(t.Context(), "toy", "cd-34", Checkpoint{LastChapterID: "c3", Chapters: 3, TOCPages: 1, FirstPageRefs: 3, LastPageFirst: 1, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		site, book   string
		ok           bool
		chapters     int
		lastPageFrom int
	}{
		{"legacy key of the legacy site", "xsw", "1721851", true, 1420, 1401},
		{"site-qualified key", "toy", "cd-34", true, 3, 1},
		{"a bare key is no other site's", "toy", "ab-12", false, 0, 0},
		{"none", "xsw", "1000001", false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp, ok := s.Load(t.Context(), tt.site, tt.book)
			if ok != tt.ok || cp.Chapters != tt.chapters {
				t.Fatalf("Load = %+v, %v; want %d chapters, %v", cp, ok, tt.chapters, tt.ok)
			}
			if !ok {
				return
			}
			if from, known := cp.LastPageStart(xsw.New(nil)); !known || from != tt.lastPageFrom {
				t.Errorf("LastPageStart = %d, %v; want %d", from, known, tt.lastPageFrom)
			}
		})
	}
	// Saving writes the site-qualified key; the legacy one is read only while it is
	// the only one.
	if err := s.Save(t.Context(), "xsw", "1721851", Checkpoint{Chapters: 1421, TOCPages: 72, FirstPageRefs: 20, LastPageFirst: 1421}); err != nil {
		t.Fatal(err)
	}
	if cp, ok := s.Load(t.Context(), "xsw", "1721851"); !ok || cp.Chapters != 1421 {
		t.Errorf("Load after Save = %+v, %v; want the saved one", cp, ok)
	}
	if _, err := kv.Get(t.Context(), events.Key("xsw", "1721851")); err != nil {
		t.Errorf("saved under %s: %v", events.Key("xsw", "1721851"), err)
	}
	// Without a bucket there are none, and saving is no error.
	if _, ok := (Store{}).Load(t.Context(), "xsw", "1721851"); ok {
		t.Error("a store without a bucket holds a checkpoint")
	}
	if err := (Store{}).Save(t.Context(), "xsw", "1", Checkpoint{}); err != nil {
		t.Errorf("Save without a bucket = %v", err)
	}
}
