package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xswtw/xsw/dev/sitesim"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/testkit"
)

// Settings of the flood scenario: politeness on (a budget of ten requests a second to
// the site), the gateway's per-client share of source requests at its default, and one
// client asking for many unknown books at once while a listing's books sync.
const (
	floodInterval = 100 * time.Millisecond // BG_JOB_RATE_LIMIT and SOURCE_XSW_RATE_LIMIT
	floodPrefetch = 60                     // books queued in the prefetch lane
	floodReaders  = 80                     // concurrent readers, one unknown book each
	// floodStored books are synced before the flood and synced again, forced, while it
	// runs; the site cuts the list of the first floodCut of them to a chapter or two, as
	// a site failing might. None may lose a chapter.
	floodStored = 10
	floodCut    = 5
	// floodSourceLimit is API_SOURCE_RATE_LIMIT's default (docs/configuration.md): source
	// requests one client may cause a minute, a burst refilled evenly.
	floodSourceLimit = 10
	// floodAnswerBound is how long a reader may wait for an answer of any kind: the
	// gateway's INTERACTIVE_WAIT (default 10 s) and room to answer.
	floodAnswerBound = 12 * time.Second
	// floodBackgroundShare is the least share of the site's requests background work keeps
	// while readers flood (of any ten consecutive slots readers take at most nine).
	floodBackgroundShare = 0.10
)

// floodAnswer is what one reader of the flood got.
type floodAnswer struct {
	id, path   string
	status     int
	took       time.Duration
	asked      time.Time
	retryAfter string
	detail     string
	err        error
}

// TestReaderFlood runs two fetcher processes with politeness on (0.1 s between requests
// to the site, a budget of 10 a second) and a gateway whose per-client share of source
// requests is the default (API_SOURCE_RATE_LIMIT 10 a minute). 60 books are queued in the
// prefetch lane as a listing would; at once one client (one address) asks for 80 other
// books, unknown to the database, 80 GETs at the same time. Every reader gets an answer
// (200, 202, 429 or 503, nothing else) within 12 s; the 429s carry Retry-After and a
// detail, and the books behind them are never asked of the site; the site never has two
// requests closer than the interval (allowing for stalls of the machine, see stallWatch);
// while the readers' syncs run, at least a tenth of the site's requests are for the 60
// prefetch books; and once everything settles, the 60 books and every reader's book that
// was queued are fully indexed with one job each. Meanwhile ten books stored before the
// flood are synced again, forced, five of them cut short by the site to a chapter or
// two: none loses a chapter; the cut ones' syncs are refused, recorded in job history and
// dead-lettered, the others' applied.
func TestReaderFlood(t *testing.T) {
	began := time.Now()
	interval := fmt.Sprint(floodInterval.Seconds())
	r := newRig(t, options{
		// 20-40 chapters: two or three requests a book.
		site:     []string{"-categories", "2", "-books", "80", "-chapters", "20..40", "-latency", "20ms", "-jitter", "20ms"},
		fetchers: 2, gateway: true,
		fetcherEnv: map[string]string{"BG_JOB_RATE_LIMIT": interval, "SOURCE_XSW_RATE_LIMIT": interval},
		gatewayEnv: map[string]string{"API_SOURCE_RATE_LIMIT": strconv.Itoa(floodSourceLimit)},
	})
	stalls := watchStalls(t)
	testkit.Eventually(t, 20*time.Second, "xsw described and ok", func() bool {
		return r.siteStates(t)[siteXSW].State == "ok"
	})
	ids := r.site.ids(t, 0)
	if len(ids) < floodPrefetch+floodReaders+floodStored {
		t.Fatalf("the site has %d books, want %d", len(ids), floodPrefetch+floodReaders+floodStored)
	}
	prefetch, readers := ids[:floodPrefetch], ids[floodPrefetch:floodPrefetch+floodReaders]
	stored := ids[floodPrefetch+floodReaders : floodPrefetch+floodReaders+floodStored]
	isPrefetch, isReader, isStored := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, id := range prefetch {
		isPrefetch[id] = true
	}
	for _, id := range readers {
		isReader[id] = true
	}
	for _, id := range stored {
		isStored[id] = true
	}
	t.Logf("rig up in %v", time.Since(began).Round(time.Millisecond))

	// The stored books, synced before the flood; then the site cuts some of them short.
	r.request(stored)
	r.settleAll(t, stored, 30*time.Second)
	storedBefore := r.chapterCounts(t, stored)
	for i, id := range stored[:floodCut] {
		r.site.control(t, http.MethodPost, fmt.Sprintf("/_sim/books/%s/cut?keep=%d", id, 1+i%2), nil, nil)
	}
	t.Logf("%d books stored before the flood (chapters %v); the site cut %d of them to 1 or 2 chapters",
		len(stored), storedBefore, floodCut)

	// The listing's books and the stored books' forced resyncs, then at once the flood.
	r.request(prefetch)
	r.force(stored)
	flooded := time.Now()
	answers := r.flood(t, readers)
	floodEnd := time.Now()

	statuses := map[int]int{}
	var slowest floodAnswer
	var excused []string
	for _, a := range answers {
		if a.err != nil {
			t.Errorf("reader GET %s: no answer after %v: %v", a.path, a.took.Round(time.Millisecond), a.err)
			continue
		}
		statuses[a.status]++
		if a.took > slowest.took {
			slowest = a
		}
		if allow := stalls.around(a.asked, a.asked.Add(a.took)); a.took > floodAnswerBound+allow {
			t.Errorf("reader GET %s: %d after %v, want an answer within %v (allowing %v for stalls)",
				a.path, a.status, a.took.Round(time.Millisecond), floodAnswerBound, allow)
		} else if a.took > floodAnswerBound {
			excused = append(excused, fmt.Sprintf("%s %v (the machine stalled %v)", a.path, a.took.Round(time.Millisecond), allow))
		}
		switch a.status {
		case http.StatusOK, http.StatusAccepted:
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			if secs, err := strconv.Atoi(a.retryAfter); err != nil || secs < 1 {
				t.Errorf("reader GET %s: %d with Retry-After %q, want a number of seconds", a.path, a.status, a.retryAfter)
			}
			if a.detail == "" {
				t.Errorf("reader GET %s: %d without a detail", a.path, a.status)
			}
		default:
			t.Errorf("reader GET %s: %d (%s), want 200, 202, 429 or 503", a.path, a.status, a.detail)
		}
	}
	var detail429 string
	for _, a := range answers {
		if a.status == http.StatusTooManyRequests {
			detail429 = fmt.Sprintf("Retry-After %s: %q", a.retryAfter, a.detail)
			break
		}
	}
	t.Logf("flood of %d readers answered in %v: statuses %v; slowest %s, %d in %v; 429 e.g. %s; over %v only around stalls: %v",
		len(answers), floodEnd.Sub(flooded).Round(time.Millisecond), statuses, slowest.path, slowest.status,
		slowest.took.Round(time.Millisecond), detail429, floodAnswerBound, excused)

	// The books to settle: the listing's, and the readers' that were queued (a 200 or 202
	// says so; a 503 may have queued it too, which the site's log or the job history shows).
	settled := append([]string(nil), prefetch...)
	var limited []string // readers answered 429
	var maybe []string   // readers answered 503
	for _, a := range answers {
		switch a.status {
		case http.StatusOK, http.StatusAccepted:
			settled = append(settled, a.id)
		case http.StatusTooManyRequests:
			limited = append(limited, a.id)
		default:
			maybe = append(maybe, a.id)
		}
	}
	r.settleAll(t, settled, 40*time.Second)
	if len(maybe) > 0 {
		heard := r.booksHeardOf(t, maybe)
		if len(heard) > 0 {
			r.settleAll(t, heard, 20*time.Second)
		}
		t.Logf("of the %d readers answered 503, %d had their book synced: %v", len(maybe), len(heard), heard)
		settled = append(settled, heard...)
	}
	t.Logf("%d books fully indexed with one job each (%d listed, %d readers') %v after the flood",
		len(settled), floodPrefetch, len(settled)-floodPrefetch, time.Since(flooded).Round(time.Millisecond))

	log := sortedLog(r.site.requests(t))
	// A 429 is the client's share spent: nothing of its book is asked of the site.
	if heard := r.booksHeardOf(t, limited); len(heard) > 0 {
		t.Errorf("%d books whose readers were answered 429 were synced anyway: %v", len(heard), heard)
	}
	readerBooks := map[string]bool{}
	for _, q := range log {
		if id := bookOfPath(q.Path); isReader[id] {
			readerBooks[id] = true
		}
	}
	// The share is a burst of floodSourceLimit, refilled one per minute/floodSourceLimit.
	if allowed := floodSourceLimit + int(floodEnd.Sub(flooded)/(time.Minute/floodSourceLimit)); len(readerBooks) > allowed {
		t.Errorf("the site heard of %d readers' books, want at most %d (API_SOURCE_RATE_LIMIT %d a minute)",
			len(readerBooks), allowed, floodSourceLimit)
	}

	// Politeness, as the site saw it.
	closest, gapsExcused := checkGaps(t, stalls, siteXSW, log, floodInterval)

	// Background work's share while the readers' syncs ran: from the site's first request
	// for a reader's book to its last.
	var first, last int = -1, -1
	for i, q := range log {
		if isReader[bookOfPath(q.Path)] {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		t.Fatalf("the site heard nothing of the readers' books (statuses %v)", statuses)
	}
	window := log[first : last+1]
	var bg, fg, other, run, longestRun int
	for _, q := range window {
		switch id := bookOfPath(q.Path); {
		case isPrefetch[id], isStored[id]:
			bg++
			run = 0
		case isReader[id]:
			fg++
			run++
			longestRun = max(longestRun, run)
		default:
			other++
		}
	}
	span := window[len(window)-1].Time.Sub(window[0].Time)
	share := float64(bg) / float64(len(window))
	t.Logf("while the readers' syncs ran (%v, from %v after the flood): %d requests to the site (%.1f/s; budget %.0f/s), %d for the listed and stored books, %d for readers' books, %d other: background share %.1f%%; at most %d readers' requests in a row",
		span.Round(time.Millisecond), window[0].Time.Sub(flooded).Round(time.Millisecond), len(window),
		float64(len(window)-1)/span.Seconds(), float64(time.Second)/float64(floodInterval), bg, fg, other, 100*share, longestRun)
	isBackground := map[string]bool{}
	for id := range isPrefetch {
		isBackground[id] = true
	}
	for id := range isStored {
		isBackground[id] = true
	}
	t.Logf("the site's requests while the readers' syncs ran (B listed or stored, R reader's): %s", describeWindow(window, isBackground, isReader, flooded))
	// Which listed books' syncs were under way meanwhile (between their first and last
	// request to the site), to tell a limiter that gave background work no slot from a
	// pool that ran no background job.
	spans := map[string][2]time.Time{}
	for _, q := range log {
		if id := bookOfPath(q.Path); isPrefetch[id] {
			s, ok := spans[id]
			if !ok {
				s[0] = q.Time
			}
			s[1] = q.Time
			spans[id] = s
		}
	}
	var underWay []string
	for id, s := range spans {
		if s[1].After(window[0].Time) && s[0].Before(window[len(window)-1].Time) {
			underWay = append(underWay, fmt.Sprintf("%s %v..%v", id, s[0].Sub(flooded).Round(time.Millisecond), s[1].Sub(flooded).Round(time.Millisecond)))
		}
	}
	sort.Strings(underWay)
	t.Logf("listed books synced during that window (first..last request, after the flood): %d %v", len(underWay), underWay)
	// A tenth of the budget: of any ten consecutive slots one was background work's, so
	// no run of readers' requests longer than nine, and of the window's slots (which
	// begins and ends with a reader's by construction) at least one in ten whole.
	if longestRun > 9 || float64(bg) < math.Floor(floodBackgroundShare*float64(len(window))) {
		t.Errorf("while the readers' syncs ran, %d of the site's %d requests (%.1f%%) were for the listed and stored books, with up to %d readers' requests in a row; want at least one in ten",
			bg, len(window), 100*share, longestRun)
	}

	r.checkStoredKept(t, stored, storedBefore)

	var bgAll int
	for _, q := range log {
		if isPrefetch[bookOfPath(q.Path)] {
			bgAll++
		}
	}
	n, longest := stalls.seen()
	t.Logf("site: %d requests (%d for the listed books), the closest two %v apart (interval %v); closer than %v only around stalls: %v",
		len(log), bgAll, closest.Round(time.Millisecond), floodInterval, floodInterval-jitter, gapsExcused)
	t.Logf("scenario took %v; the test process stalled longer than %v %d times, at most %v",
		time.Since(began).Round(time.Millisecond), jitter, n, longest.Round(time.Millisecond))
}

// flood sends one GET per book of ids to the gateway, all at once from one client:
// alternately the book (/books/{id}) and its whole chapter list
// (/books/{id}/chapters?all=true). It returns every answer, each timed from its own send.
func (r *rig) flood(t *testing.T, ids []string) []floodAnswer {
	t.Helper()
	client := &http.Client{
		Timeout:   3 * floodAnswerBound, // a hang is reported, never waited out
		Transport: &http.Transport{MaxIdleConnsPerHost: len(ids)},
	}
	t.Cleanup(client.CloseIdleConnections)
	answers := make([]floodAnswer, len(ids))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, id := range ids {
		path := "/books/" + id
		if i%2 == 1 {
			path += "/chapters?all=true"
		}
		wg.Go(func() {
			a := &answers[i]
			a.id, a.path = id, path
			<-start
			a.asked = time.Now()
			resp, err := client.Get(r.gatewayURL + path)
			if err != nil {
				a.took, a.err = time.Since(a.asked), err
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			a.took, a.err = time.Since(a.asked), err
			a.status, a.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
			if resp.StatusCode >= 300 {
				var e struct {
					Detail string `json:"detail"`
				}
				_ = json.Unmarshal(b, &e)
				a.detail = e.Detail
			}
		})
	}
	close(start)
	wg.Wait()
	return answers
}

// booksHeardOf returns the books of xsw among ids that the site was asked about or that
// have a job in their history.
func (r *rig) booksHeardOf(t *testing.T, ids []string) []string {
	t.Helper()
	if len(ids) == 0 {
		return nil
	}
	asked := map[string]bool{}
	for _, q := range r.site.requests(t) {
		asked[bookOfPath(q.Path)] = true
	}
	var out []string
	for _, id := range ids {
		var jobs int
		err := r.db.QueryRow(context.Background(), `SELECT count(*) FROM job_history WHERE site = $1 AND book_id = $2`, siteXSW, id).Scan(&jobs)
		if err != nil {
			t.Fatal(err)
		}
		if asked[id] || jobs > 0 {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// bookOfPath is the book id a path of xsw's pages names ("/{id}/..."), or "".
func bookOfPath(path string) string {
	rest, ok := strings.CutPrefix(path, "/")
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	return id
}

// checkGaps checks politeness as site saw it in log (sorted by arrival): no two requests
// closer than interval, less the suite's jitter and any stall of the machine around them
// (stallWatch.allowance). It returns the closest gap and the gaps excused by stalls.
func checkGaps(t *testing.T, stalls *stallWatch, site string, log []sitesim.Request, interval time.Duration) (time.Duration, []string) {
	t.Helper()
	closest := time.Duration(-1)
	var excused []string
	for i := 1; i < len(log); i++ {
		a, b := log[i-1], log[i]
		gap, allow := b.Time.Sub(a.Time), stalls.allowance(a, b)
		if closest < 0 || gap < closest {
			closest = gap
		}
		switch {
		case gap < interval-allow:
			t.Errorf("%s was asked for %s (from %s) %v after %s (from %s); want %v at least (its interval less %v)",
				site, b.Path, b.RemoteAddr, gap, a.Path, a.RemoteAddr, interval-allow, allow)
		case gap < interval-jitter:
			excused = append(excused, fmt.Sprintf("%v (the machine stalled %v)", gap.Round(time.Millisecond), (allow-jitter).Round(time.Millisecond)))
		}
	}
	return closest, excused
}

// describeWindow shows a stretch of the site's log as one letter a request: B for a
// listed book, R for a reader's, - for anything else, with its start after the flood.
func describeWindow(log []sitesim.Request, isPrefetch, isReader map[string]bool, flooded time.Time) string {
	var sb strings.Builder
	for _, q := range log {
		switch id := bookOfPath(q.Path); {
		case isPrefetch[id]:
			sb.WriteByte('B')
		case isReader[id]:
			sb.WriteByte('R')
		default:
			sb.WriteByte('-')
		}
	}
	return fmt.Sprintf("from %v after the flood: %s", log[0].Time.Sub(flooded).Round(time.Millisecond), sb.String())
}

// force queues a forced sync of each book of xsw in the manual lane, as an operator's
// resync would.
func (r *rig) force(ids []string) {
	r.t.Helper()
	for _, id := range ids {
		req := events.NewBookRequested(siteXSW, id, events.LaneManual, 0, true, "chaos", time.Now())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := broker.Publish(ctx, r.js, req.Subject(), req.MsgID(), &req)
		cancel()
		if err != nil {
			r.t.Fatalf("force a sync of %s: %v", id, err)
		}
	}
}

// chapterCounts returns how many chapters the database holds of each book of xsw of ids.
func (r *rig) chapterCounts(t *testing.T, ids []string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, id := range ids {
		var n int
		err := r.db.QueryRow(context.Background(), `SELECT count(*) FROM chapters WHERE site = $1 AND book_id = $2`, siteXSW, id).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		out[id] = n
	}
	return out
}

// checkStoredKept waits for the second sync of each of the flood's stored books to end,
// then checks that none lost a chapter: the first floodCut, which the site cut short,
// were refused (a failed job naming the shrink, and a dead letter), the others applied.
func (r *rig) checkStoredKept(t *testing.T, stored []string, before map[string]int) {
	t.Helper()
	type run struct{ status, reason string }
	ended := map[string][]run{}
	testkit.Eventually(t, 40*time.Second, "the stored books' second syncs ended", func() bool {
		for _, id := range stored {
			rows, err := r.db.Query(context.Background(), `
				SELECT status, coalesce(error, '') FROM job_history
				WHERE site = $1 AND book_id = $2 AND status IN ('completed', 'failed')
				ORDER BY finished_at`, siteXSW, id)
			if err != nil {
				t.Fatal(err)
			}
			var runs []run
			for rows.Next() {
				var j run
				if err := rows.Scan(&j.status, &j.reason); err != nil {
					t.Fatal(err)
				}
				runs = append(runs, j)
			}
			rows.Close()
			if len(runs) < 2 {
				return false
			}
			ended[id] = runs
		}
		return true
	})
	after := r.chapterCounts(t, stored)
	dead := r.deadLetters(t)
	for i, id := range stored {
		if after[id] < before[id] {
			t.Errorf("stored book %s: %d chapters after the flood, %d before", id, after[id], before[id])
		}
		last := ended[id][len(ended[id])-1]
		switch cut := i < floodCut; {
		case cut && (last.status != "failed" || !strings.Contains(last.reason, "shrink refused")):
			t.Errorf("stored book %s, cut short by the site: its sync ended %s (%q), want failed, the shrink refused", id, last.status, last.reason)
		case cut && !strings.Contains(dead[id].Error, "shrink refused"):
			t.Errorf("stored book %s, cut short by the site: dead letter %+v, want one naming the shrink", id, dead[id])
		case !cut && last.status != "completed":
			t.Errorf("stored book %s: its forced sync ended %s (%q), want completed", id, last.status, last.reason)
		}
	}
	t.Logf("stored books after their forced syncs during the flood: chapters %v (before %v); the site had cut %d of them short",
		after, before, floodCut)

	// An operator who finds the site really removed the chapters accepts the shrink of
	// one: the sync it asks for applies, and its letter is gone.
	id := stored[0]
	req, err := http.NewRequest(http.MethodPost, r.gatewayURL+"/admin/books/"+id+"/accept-shrink", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("accept the shrink of %s: %v", id, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("accept the shrink of %s: %d %s", id, resp.StatusCode, body)
	}
	var n int
	testkit.Eventually(t, 30*time.Second, "the accepted shrink applied", func() bool {
		n = r.chapterCounts(t, []string{id})[id]
		return n == 1 // the site kept one chapter of the first book it cut
	})
	if d, ok := r.deadLetters(t)[id]; ok {
		t.Errorf("book %s: dead letter %+v left after its shrink was accepted", id, d)
	}
	t.Logf("book %s: shrink accepted by the operator, %d chapters stored (%d before)", id, n, before[id])
}
