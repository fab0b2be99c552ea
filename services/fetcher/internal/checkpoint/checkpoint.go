// Package checkpoint keeps what the fetchers remember of each book's last sync, in
// events.BucketCheckpoints under the book's events.Key: the shape of its chapter list,
// its newest chapter and its page validators. Syncs use it to resume where a book grows;
// the chapter-refs calls use it to find the pages a reader waits for.
package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/fetcher/internal/source"
	"github.com/xswtw/xsw/services/fetcher/site"
)

// Checkpoint is what is remembered of a book's last sync.
type Checkpoint struct {
	LastChapterID string `json:"last_chapter_id"`
	// Chapters is the number of chapters published; TOCPages the pages of the list.
	Chapters int `json:"chapters"`
	TOCPages int `json:"toc_pages"`
	// FirstPageRefs is the number of chapters on page 1 of the list. Its name on the
	// wire is from checkpoints written for m.xsw.tw alone, where it was the size of
	// every page but the last.
	FirstPageRefs int `json:"per_page"`
	// LastPageFirst is the number of the first chapter on page TOCPages; 0 in
	// checkpoints written before it was kept (see LastPageStart).
	LastPageFirst int `json:"last_page_first,omitempty"`
	// Home holds the book page's validators, for a conditional request.
	Home source.Validators `json:"home"`
	At   time.Time         `json:"at"`
}

// Layout is what the checkpoint knows of the book's paginated list.
func (c Checkpoint) Layout() site.Layout {
	return site.Layout{FirstPageRefs: c.FirstPageRefs, TotalPages: c.TOCPages}
}

// LastPageStart returns the number of the first chapter on the last page walked: as
// remembered, or, for a checkpoint from before it was, by the site's paging rule.
func (c Checkpoint) LastPageStart(p site.Paginated) (int, bool) {
	if c.LastPageFirst >= 1 {
		return c.LastPageFirst, true
	}
	if c.TOCPages < 1 {
		return 0, false
	}
	return p.FirstOf(c.TOCPages, c.Layout())
}

// Store reads and writes checkpoints in a key-value bucket; with a nil KV it holds none.
type Store struct {
	KV jetstream.KeyValue
}

// Load returns the checkpoint of a book, and whether there is one. A checkpoint of an
// events.LegacySite book written before books were site-qualified (under the bare book
// id) is read when there is none under the book's key, so that an upgrade does not force
// full re-walks.
func (s Store) Load(ctx context.Context, siteID, bookID string) (Checkpoint, bool) {
	var cp Checkpoint
	if s.KV == nil {
		return cp, false
	}
	e, err := s.KV.Get(ctx, events.Key(siteID, bookID))
	if errors.Is(err, jetstream.ErrKeyNotFound) && siteID == events.LegacySite {
		e, err = s.KV.Get(ctx, bookID)
	}
	if err != nil || json.Unmarshal(e.Value(), &cp) != nil {
		return Checkpoint{}, false
	}
	return cp, true
}

// Save writes the checkpoint of a book under its key.
func (s Store) Save(ctx context.Context, siteID, bookID string, cp Checkpoint) error {
	if s.KV == nil {
		return nil
	}
	b, err := json.Marshal(cp)
	if err == nil {
		_, err = s.KV.Put(ctx, events.Key(siteID, bookID), b)
	}
	if err != nil {
		return fmt.Errorf("save checkpoint of %s: %w", events.Key(siteID, bookID), err)
	}
	return nil
}
