package chaos

import (
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/xswtw/xsw/dev/proctest"
	"github.com/xswtw/xsw/dev/sitesim"
	"github.com/xswtw/xsw/platform/testkit"
)

// Settings of the fetcher in the source fault tests: politeness on (the circuit and the
// slow-down live in it), one worker so that the site's request log is one sequence of
// cause and effect, a short HTTP timeout, a small circuit.
const (
	sourceInterval    = 20 * time.Millisecond
	sourceHTTPTimeout = time.Second
	sourceCooldown    = time.Second
	sourceFailures    = 3
	sourceMaxAttempts = 4
	// jitter is what the assertions on gaps in the site's request log allow for clocks
	// and scheduling.
	jitter = 50 * time.Millisecond
)

func sourceFetcherEnv(healthAddr string) map[string]string {
	return map[string]string{
		"BG_JOB_WORKERS": "1", "BG_JOB_RATE_LIMIT": sourceInterval.String(),
		"HTTP_TIMEOUT": sourceHTTPTimeout.String(), "CIRCUIT_FAILURES": "3",
		"CIRCUIT_COOLDOWN": sourceCooldown.String(), "BG_JOB_MAX_ATTEMPTS": "4",
		"FETCHER_HEALTH_ADDR": healthAddr,
	}
}

// bookLog is the part of the site's request log that concerns book id, in arrival order.
func bookLog(log []sitesim.Request, id string) []sitesim.Request {
	var out []sitesim.Request
	for _, q := range log {
		if strings.HasPrefix(q.Path, "/"+id+"/") {
			out = append(out, q)
		}
	}
	return out
}

func sortedLog(log []sitesim.Request) []sitesim.Request {
	log = slices.Clone(log)
	slices.SortStableFunc(log, func(a, b sitesim.Request) int { return a.Time.Compare(b.Time) })
	return log
}

// after returns the first request of log that arrived after q.
func after(log []sitesim.Request, q sitesim.Request) (sitesim.Request, bool) {
	for _, n := range sortedLog(log) {
		if n.Time.After(q.Time) {
			return n, true
		}
	}
	return sitesim.Request{}, false
}

// faulted returns the requests of log that got fault kind k.
func faulted(log []sitesim.Request, k sitesim.FaultKind) []sitesim.Request {
	var out []sitesim.Request
	for _, q := range log {
		if q.Fault == k {
			out = append(out, q)
		}
	}
	return out
}

// offSite is a listener that stands for another host: it counts the connections it gets.
type offSite struct {
	ln    net.Listener
	conns atomic.Int64
	wg    sync.WaitGroup
}

func startOffSite(t *testing.T) *offSite {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &offSite{ln: ln}
	o.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.conns.Add(1)
			_ = c.Close()
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		o.wg.Wait()
	})
	return o
}

// TestSourceFaults runs one pipeline against a site that misbehaves in one way at a
// time, each fault aimed at the pages of one book: 429 with Retry-After, 500s,
// connection resets, a response that hangs past HTTP_TIMEOUT, a truncated page, a page
// with none of the expected elements, and a redirect to another host. Transient faults
// are retried and the book ends fully indexed at a later attempt; 429 holds every source
// request back for its Retry-After; a hanging response is given up at HTTP_TIMEOUT; a
// truncated page is never indexed as if it were whole; a blank page and an off-site
// redirect fail the book at once with a reason naming the cause, in job_history and in
// the dead letters, and the redirect target never hears from the fetcher.
func TestSourceFaults(t *testing.T) {
	healthAddr := proctest.FreeAddr(t)
	r := newRig(t, options{
		site:     []string{"-categories", "1", "-books", "12", "-chapters", "41..60"},
		fetchers: 1, fetcherEnv: sourceFetcherEnv(healthAddr), gateway: true,
	})
	books := r.site.ids(t, 0)
	next := func() string {
		t.Helper()
		if len(books) == 0 {
			t.Fatal("out of books")
		}
		id := books[0]
		books = books[1:]
		return id
	}
	var requested []string
	wantFailed := map[string]jobRow{}
	// run requests one book with rules aimed at it, waits for it to settle and returns
	// its job and its part of the request log.
	run := func(t *testing.T, id string, rules ...sitesim.FaultRule) (jobRow, []sitesim.Request, []sitesim.Request) {
		t.Helper()
		r.site.setFaults(t, rules...)
		defer r.site.setFaults(t)
		requested = append(requested, id)
		r.request([]string{id})
		failed := r.settle(t, []string{id}, 60*time.Second)
		j := r.job(t, id)
		if _, ok := failed[id]; ok {
			wantFailed[id] = j
		}
		log := r.site.requests(t)
		return j, bookLog(log, id), log
	}

	t.Run("429 holds requests back for Retry-After", func(t *testing.T) {
		id := next()
		const retryAfter = time.Second
		before := metrics(t, healthAddr)
		j, mine, all := run(t, id, sitesim.FaultRule{Kind: sitesim.FaultTooManyRequests, PathPrefix: "/" + id + "/page-2", Next: 2, RetryAfter: retryAfter})
		if j.Status != "completed" || j.Attempts != 3 {
			t.Errorf("job %+v, want completed at attempt 3 (two 429s retried)", j)
		}
		throttled := faulted(mine, sitesim.FaultTooManyRequests)
		if len(throttled) != 2 {
			t.Fatalf("%d requests answered 429, want 2", len(throttled))
		}
		for _, q := range throttled {
			n, ok := after(all, q)
			if !ok {
				t.Errorf("no request after the 429 of %s at %s", q.Path, q.Time.Format(time.StampMilli))
				continue
			}
			if gap := n.Time.Sub(q.Time); gap < retryAfter-jitter {
				t.Errorf("the site was asked for %s %v after answering 429 with Retry-After %v", n.Path, gap, retryAfter)
			} else {
				t.Logf("next request %v after the 429", gap.Round(time.Millisecond))
			}
		}
		after := metrics(t, healthAddr)
		if d := after[`xsw_fetcher_source_requests_total{site="xsw",status="4xx"}`] - before[`xsw_fetcher_source_requests_total{site="xsw",status="4xx"}`]; d != 2 {
			t.Errorf("fetcher counted %v 4xx answers, want 2", d)
		}
		if d := after[`xsw_fetcher_jobs_total{lane="prefetch",outcome="retrying"}`] - before[`xsw_fetcher_jobs_total{lane="prefetch",outcome="retrying"}`]; d != 2 {
			t.Errorf("fetcher counted %v retrying attempts, want 2", d)
		}
	})

	t.Run("500 is retried", func(t *testing.T) {
		id := next()
		before := metrics(t, healthAddr)
		j, mine, _ := run(t, id, sitesim.FaultRule{Kind: sitesim.FaultServerError, PathPrefix: "/" + id + "/", Next: 2})
		if j.Status != "completed" || j.Attempts != 3 {
			t.Errorf("job %+v, want completed at attempt 3 (two 500s retried)", j)
		}
		if n := len(faulted(mine, sitesim.FaultServerError)); n != 2 {
			t.Errorf("%d requests answered 500, want 2", n)
		}
		after := metrics(t, healthAddr)
		if d := after[`xsw_fetcher_source_requests_total{site="xsw",status="5xx"}`] - before[`xsw_fetcher_source_requests_total{site="xsw",status="5xx"}`]; d != 2 {
			t.Errorf("fetcher counted %v 5xx answers, want 2", d)
		}
	})

	t.Run("connection reset is retried", func(t *testing.T) {
		id := next()
		path := "/" + id + "/page-1.html"
		j, mine, _ := run(t, id, sitesim.FaultRule{Kind: sitesim.FaultReset, PathPrefix: path, Next: 2})
		if j.Status != "completed" {
			t.Errorf("job %+v, want completed", j)
		}
		resets := faulted(mine, sitesim.FaultReset)
		if len(resets) != 2 {
			t.Fatalf("%d requests reset, want 2", len(resets))
		}
		for _, q := range resets {
			if q.Status != 0 {
				t.Errorf("reset request logged with status %d, want 0 (no answer)", q.Status)
			}
		}
		var later bool
		for _, q := range mine {
			later = later || q.Path == path && q.Status == http.StatusOK && q.Time.After(resets[1].Time)
		}
		if !later {
			t.Errorf("%s was not fetched again after the resets", path)
		}
	})

	t.Run("hang is cut off at HTTP_TIMEOUT and retried", func(t *testing.T) {
		id := next()
		const hang = 30 * time.Second
		j, mine, _ := run(t, id, sitesim.FaultRule{Kind: sitesim.FaultHang, PathPrefix: "/" + id + "/page-2", Next: 1, Hang: hang})
		if j.Status != "completed" || j.Attempts != 2 {
			t.Errorf("job %+v, want completed at attempt 2", j)
		}
		hung := faulted(mine, sitesim.FaultHang)
		if len(hung) != 1 {
			t.Fatalf("%d requests hung, want 1", len(hung))
		}
		// The site stops waiting when the client hangs up: the logged duration is how long
		// the fetcher waited.
		if d := hung[0].Duration; d < sourceHTTPTimeout-jitter || d > sourceHTTPTimeout+5*time.Second {
			t.Errorf("the fetcher gave up on the hanging page after %v, want about HTTP_TIMEOUT %v", d, sourceHTTPTimeout)
		}
		if n, ok := after(mine, hung[0]); !ok || n.Time.Before(hung[0].Time.Add(hung[0].Duration)) {
			t.Errorf("request after the hang: %+v, want one after the fetcher gave up", n)
		}
	})

	t.Run("truncated page is never indexed as whole", func(t *testing.T) {
		id := next()
		j, mine, _ := run(t, id, sitesim.FaultRule{Kind: sitesim.FaultTruncate, PathPrefix: "/" + id + "/page-1", Next: 1})
		// settle has checked that the book is indexed exactly as the site has it, or
		// failed with a reason; a retry is what a cut-off page deserves.
		if j.Status != "completed" || j.Attempts != 2 {
			t.Errorf("job %+v, want completed at attempt 2 (the truncated page retried)", j)
		}
		if n := len(faulted(mine, sitesim.FaultTruncate)); n != 1 {
			t.Errorf("%d requests truncated, want 1", n)
		}
	})

	t.Run("page without the expected elements fails at once", func(t *testing.T) {
		id := next()
		j, _, _ := run(t, id, sitesim.FaultRule{Kind: sitesim.FaultBlank, PathPrefix: "/" + id + "/page-1"})
		if j.Status != "failed" || j.Attempts != 1 || !j.Permanent || !j.Dead {
			t.Errorf("job %+v, want failed for good at attempt 1", j)
		}
		if !strings.Contains(j.Error, "parse") || !strings.Contains(j.Error, "page-1.html") {
			t.Errorf("failure reason %q does not say which page could not be parsed", j.Error)
		}
	})

	t.Run("redirect off the site is not followed", func(t *testing.T) {
		id := next()
		other := startOffSite(t)
		target := "http://" + other.ln.Addr().String()
		j, mine, _ := run(t, id, sitesim.FaultRule{Kind: sitesim.FaultRedirect, PathPrefix: "/" + id + "/page-2", RedirectTo: target})
		if j.Status != "failed" || j.Attempts != 1 || !j.Permanent || !j.Dead {
			t.Errorf("job %+v, want failed for good at attempt 1", j)
		}
		if !strings.Contains(j.Error, "redirect off") || !strings.Contains(j.Error, target) {
			t.Errorf("failure reason %q does not name the off-site redirect to %s", j.Error, target)
		}
		if n := len(faulted(mine, sitesim.FaultRedirect)); n != 1 {
			t.Errorf("%d requests redirected, want 1 (no retry of a permanent failure)", n)
		}
		// Give a follower every chance to show itself before counting.
		time.Sleep(200 * time.Millisecond)
		if n := other.conns.Load(); n != 0 {
			t.Errorf("the redirect target got %d connections, want none", n)
		}
	})

	t.Run("persistent 500s open the circuit, which closes once the site recovers", func(t *testing.T) {
		doomed := next()
		var (
			mu     sync.Mutex
			states []string // circuit states the heartbeats showed, in order, without repeats
			stop   = make(chan struct{})
			done   = make(chan struct{})
		)
		go func() {
			defer close(done)
			for {
				for _, hb := range r.heartbeats(t) {
					mu.Lock()
					if len(states) == 0 || states[len(states)-1] != hb.Circuit {
						states = append(states, hb.Circuit)
					}
					mu.Unlock()
				}
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}()
		defer func() {
			select {
			case <-stop:
			default:
				close(stop)
			}
			<-done
		}()

		j, mine, _ := run(t, doomed, sitesim.FaultRule{Kind: sitesim.FaultServerError})
		if j.Status != "failed" || j.Attempts != sourceMaxAttempts || j.Permanent || !j.Dead {
			t.Errorf("job %+v, want dead after %d attempts, not permanent", j, sourceMaxAttempts)
		}
		if !strings.Contains(j.Error, "500") {
			t.Errorf("failure reason %q does not say the site answered 500", j.Error)
		}
		errs := faulted(mine, sitesim.FaultServerError)
		if len(errs) != sourceMaxAttempts {
			t.Fatalf("%d requests answered 500, want one per attempt, %d", len(errs), sourceMaxAttempts)
		}
		// The third consecutive failure opened the circuit for the cooldown; the probe
		// after it failed and reopened it for twice as long.
		if gap := errs[sourceFailures].Time.Sub(errs[sourceFailures-1].Time); gap < sourceCooldown-jitter {
			t.Errorf("probe %v after the circuit opened, want the cooldown %v at least", gap, sourceCooldown)
		}

		// The site recovers while the circuit is open; books requested now wait for it.
		recovering := []string{next(), next()}
		requested = append(requested, recovering...)
		r.request(recovering)
		r.settleAll(t, recovering, 60*time.Second)
		for _, id := range recovering {
			if j := r.job(t, id); j.Attempts != 1 {
				t.Errorf("book %s requested while the circuit was open: %+v, want completed at attempt 1 (waited, not failed)", id, j)
			}
		}
		all := r.site.requests(t)
		probe, ok := after(all, errs[len(errs)-1])
		if !ok {
			t.Fatal("no request after the last 500")
		}
		if gap := probe.Time.Sub(errs[len(errs)-1].Time); gap < 2*sourceCooldown-jitter || probe.Status != http.StatusOK {
			t.Errorf("first request after the reopening: %s %d %v later, want a 200 after twice the cooldown (%v)",
				probe.Path, probe.Status, gap.Round(time.Millisecond), 2*sourceCooldown)
		}
		testkit.Eventually(t, 20*time.Second, "a heartbeat with the circuit closed", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(states) > 0 && states[len(states)-1] == "closed"
		})
		close(stop)
		<-done
		if !slices.Contains(states, "open") {
			t.Errorf("heartbeats showed the circuit %v, never open", states)
		}
		t.Logf("circuit in the heartbeats: %v", states)
		if v := metrics(t, healthAddr)[`xsw_fetcher_circuit_state{site="xsw"}`]; v != 0 {
			t.Errorf("xsw_fetcher_circuit_state %v after recovery, want 0 (closed)", v)
		}
	})

	// The promise, over every book requested: indexed exactly once, or failed with its
	// reason and dead-lettered with the same reason.
	failed := r.settle(t, requested, 30*time.Second)
	dead := r.deadLetters(t)
	for id, j := range wantFailed {
		if failed[id] != j.Error {
			t.Errorf("book %s: failed with %q, want %q", id, failed[id], j.Error)
		}
		d, ok := dead[id]
		switch {
		case !ok:
			t.Errorf("book %s failed but has no dead letter", id)
		case d.Error != j.Error || d.Attempts != j.Attempts:
			t.Errorf("book %s: dead letter %+v, want error %q after %d attempts", id, d, j.Error, j.Attempts)
		}
	}
	for id := range dead {
		if _, ok := wantFailed[id]; !ok {
			t.Errorf("book %s is dead-lettered but did not fail", id)
		}
	}
	if len(failed) != len(wantFailed) {
		t.Errorf("%d books failed, want %d: %v", len(failed), len(wantFailed), failed)
	}
}

// TestSourceBig5Pages serves every page of the site in Big5 bytes (under a meta charset
// that the fetcher ignores) and asserts that every book ends indexed with its name and
// every chapter title exactly as the site wrote them in UTF-8.
func TestSourceBig5Pages(t *testing.T) {
	t.Parallel()
	r := newRig(t, options{site: []string{"-big5", "-categories", "1", "-books", "4", "-chapters", "41..60"}, fetchers: 1})
	ids := r.site.ids(t, 0)
	resp, err := http.Get(r.site.url + "/" + ids[0] + "/page-1.html")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("page 1 of book %s: %v %d", ids[0], err, resp.StatusCode)
	}
	if utf8.Valid(b) {
		t.Fatal("the site serves UTF-8, want Big5 bytes")
	}
	r.request(ids)
	r.settleAll(t, ids, 60*time.Second)
	for _, id := range ids {
		rows, err := r.db.Query(context.Background(), `SELECT title FROM chapters WHERE book_id = $1 ORDER BY num`, id)
		if err != nil {
			t.Fatal(err)
		}
		var i int
		for rows.Next() {
			var title string
			if err := rows.Scan(&title); err != nil {
				t.Fatal(err)
			}
			if want := r.site.books[id].Chapters[i].Title; title != want {
				t.Errorf("book %s chapter %d: title %q, want %q", id, i+1, title, want)
			}
			i++
		}
		rows.Close()
	}
}
