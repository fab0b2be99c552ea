package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/xswtw/xsw/platform/testkit"
)

// slowBooks is a site of a dozen books of 8 to 10 table-of-contents pages each, every
// page 40ms away: syncs last long enough to be interrupted.
var slowBooks = []string{"-categories", "1", "-books", "12", "-chapters", "150..200", "-latency", "40ms"}

// activeBooks reads fetcher id's heartbeat: the books it is syncing now.
func (r *rig) activeBooks(t *testing.T, id string) []string {
	t.Helper()
	var out []string
	for _, hb := range r.heartbeats(t) {
		if hb.FetcherID == id {
			for _, a := range hb.Active {
				out = append(out, a.BookID)
			}
		}
	}
	return out
}

// TestFetcherKilledMidSync kills a fetcher process with SIGKILL while it holds syncs
// half done. Its requests, never acknowledged, go to the other fetcher once their ack
// wait runs out; every book ends fully indexed, each with one job in its history, and the
// books the dead fetcher held were finished by the survivor.
func TestFetcherKilledMidSync(t *testing.T) {
	t.Parallel()
	r := newRig(t, options{site: slowBooks})
	doomed := r.startFetcher("doomed")
	ids := r.site.ids(t, 0)
	r.request(ids)

	var held []string
	testkit.Eventually(t, 30*time.Second, "the doomed fetcher half way through syncs", func() bool {
		held = r.activeBooks(t, "doomed")
		return len(held) >= 2 && r.indexedRefs() > 0
	})
	doomed.Kill()
	t.Logf("killed the fetcher holding %v with %d refs indexed", held, r.indexedRefs())
	r.startFetcher("survivor")
	r.settleAll(t, ids, 90*time.Second)

	for _, id := range held {
		var fetcher string
		var attempts int
		if err := r.db.QueryRow(context.Background(),
			`SELECT fetcher, attempts FROM job_history WHERE book_id = $1 AND status = 'completed'`, id).Scan(&fetcher, &attempts); err != nil {
			t.Errorf("book %s: %v", id, err)
			continue
		}
		if fetcher != "survivor" || attempts < 2 {
			t.Errorf("book %s held by the killed fetcher: completed by %q at attempt %d, want survivor at 2 or later", id, fetcher, attempts)
		}
	}
}

// TestIndexerKilledWhileWriting kills the indexer with SIGKILL while chapter references
// pour in, and starts it again. Events it had not acknowledged are delivered again; the
// upserts make the second delivery change nothing, so every book ends exactly as the
// site has it, each with one job in its history.
func TestIndexerKilledWhileWriting(t *testing.T) {
	t.Parallel()
	r := newRig(t, options{site: []string{"-categories", "1", "-books", "20", "-chapters", "300..400"}, fetchers: 2})
	ids := r.site.ids(t, 0)
	r.request(ids)
	for round := 1; round <= 2; round++ {
		before := r.indexedRefs()
		testkit.Eventually(t, 60*time.Second, "the indexer writing", func() bool { return r.indexedRefs() > before+200 })
		r.indexer.Kill()
		t.Logf("killed the indexer with %d refs indexed", r.indexedRefs())
		time.Sleep(500 * time.Millisecond)
		r.indexer.Restart()
	}
	r.settleAll(t, ids, 90*time.Second)
}
