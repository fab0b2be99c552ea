package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xswtw/xsw/dev/sitesim"
	"github.com/xswtw/xsw/platform/testkit"
)

// Settings of the two-site scenario: politeness on for both sites (refusals live in the
// limiter), with an interval the suite's jitter allowance still leaves meaningful, and a
// short cooldown.
const (
	twoSiteInterval = 100 * time.Millisecond // SOURCE_XSW_RATE_LIMIT and SOURCE_CZBOOKS_RATE_LIMIT
	twoSiteCooldown = 2 * time.Second        // CIRCUIT_COOLDOWN: the first wait of a refused site
	twoSiteFetchers = 2
	twoSiteWorkers  = 4 // BG_JOB_WORKERS of the rig's fetchers, per site
	// refusalGrace is how long after a site's first refusal the requests already under
	// way may still reach it: at most one a worker of the site (each worker has at most
	// one request out). After it, the site hears at most one probe a cooldown.
	refusalGrace = time.Second
)

// stallWatch records when the test process was held up by the machine: a 5ms sleep that
// took longer than jitter. The rig's processes share the machine and are held up alike;
// one held up between booking its slot and sending its request reaches the site late, up
// against the next request. A gap check allows, besides jitter, for the longest stall seen
// around the gap (on a busy two-CPU machine stalls of several hundred milliseconds were
// seen; a quiet one shows none, and the allowance is jitter alone).
type stallWatch struct {
	mu     sync.Mutex
	stalls []stall
}

type stall struct {
	at time.Time
	d  time.Duration
}

// watchStalls starts watching until the test ends.
func watchStalls(t *testing.T) *stallWatch {
	w := &stallWatch{}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			began := time.Now()
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if d := time.Since(began) - 5*time.Millisecond; d > jitter {
				w.mu.Lock()
				w.stalls = append(w.stalls, stall{began, d})
				w.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
	})
	return w
}

// around returns the longest stall that overlaps from..to.
func (w *stallWatch) around(from, to time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var longest time.Duration
	for _, s := range w.stalls {
		if s.at.Before(to) && s.at.Add(s.d).After(from) {
			longest = max(longest, s.d)
		}
	}
	return longest
}

// seen returns how many stalls were seen, and the longest.
func (w *stallWatch) seen() (int, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var longest time.Duration
	for _, s := range w.stalls {
		longest = max(longest, s.d)
	}
	return len(w.stalls), longest
}

// allowance is what a gap from a to b in a site's request log allows for: jitter, and the
// longest stall since a second before a (when a may have been booked) until b.
func (w *stallWatch) allowance(a, b sitesim.Request) time.Duration {
	return jitter + w.around(a.Time.Add(-time.Second), b.Time)
}

// siteState is one entry of the gateway's GET /sites.
type siteState struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Detail string `json:"detail"`
}

// siteStates reads the gateway's GET /sites, by site id.
func (r *rig) siteStates(t *testing.T) map[string]siteState {
	t.Helper()
	status, body := get(t, r.gatewayURL+"/sites", "")
	var list []siteState
	if status != http.StatusOK {
		t.Fatalf("GET /sites: %d %s", status, body)
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("GET /sites: %v in %s", err, body)
	}
	out := map[string]siteState{}
	for _, s := range list {
		out[s.ID] = s
	}
	return out
}

// TestOneSiteRefusesOtherThrottled runs both sites, m.xsw.tw and czbooks.net, from two
// fetcher processes with politeness on. czbooks refuses every request the way Cloudflare
// does (403, cf-mitigated: challenge, "Just a moment..."), while xsw answers every third
// request 429 with Retry-After: 1s; ten books of each site are queued. While it lasts:
// the gateway's /sites shows czbooks refused, in words naming HTTP 403, and xsw never
// refused; a reader asking for an unstored czbooks book hears 503 at once with those
// words; czbooks hears only the requests already under way when it first refused (at most
// one a worker, within refusalGrace), then one probe a cooldown at most. Once both sites
// recover, every book ends fully indexed with one job (the reader's too), both sites are
// ok again, and no site ever had two requests closer than its interval. Every bound on a
// gap or a wait allows for the stalls of the machine seen around it (see stallWatch).
func TestOneSiteRefusesOtherThrottled(t *testing.T) {
	began := time.Now()
	interval := fmt.Sprint(twoSiteInterval.Seconds())
	r := newRig(t, options{
		site:     []string{"-categories", "1", "-books", "10", "-chapters", "10..19"}, // two requests a book
		czbooks:  []string{"-categories", "1", "-books", "11", "-chapters", "20..60"}, // one request a book
		fetchers: twoSiteFetchers, gateway: true,
		fetcherEnv: map[string]string{
			"SOURCE_XSW_RATE_LIMIT": interval, "SOURCE_CZBOOKS_RATE_LIMIT": interval,
			"CIRCUIT_COOLDOWN": twoSiteCooldown.String(),
			// Every 429 costs a job an attempt: room enough that none is given up.
			"BG_JOB_MAX_ATTEMPTS": "10",
		},
	})
	xsw, cz := r.sites[siteXSW], r.sites[siteCzbooks]
	stalls := watchStalls(t)
	testkit.Eventually(t, 20*time.Second, "both sites described and ok", func() bool {
		st := r.siteStates(t)
		return st[siteXSW].State == "ok" && st[siteCzbooks].State == "ok"
	})
	xswIDs := xsw.ids(t, 10)
	czIDs := cz.ids(t, 11)
	czIDs, readerID := czIDs[:10], czIDs[10]
	const retryAfter = time.Second
	cz.setFaults(t, sitesim.FaultRule{Kind: sitesim.FaultRefuse})
	xsw.setFaults(t, sitesim.FaultRule{Kind: sitesim.FaultTooManyRequests, Every: 3, RetryAfter: retryAfter})
	requested := time.Now()
	t.Logf("rig up in %v", requested.Sub(began).Round(time.Millisecond))
	r.requestOn(siteXSW, xswIDs)
	r.requestOn(siteCzbooks, czIDs)

	// While both sites misbehave.
	var (
		refusedAt time.Time
		xswSeen   = map[string]int{} // xsw's states in the polls
		deadline  = time.Now().Add(20 * time.Second)
	)
	for {
		st := r.siteStates(t)
		xswSeen[st[siteXSW].State]++
		if st[siteXSW].State == "refused" {
			t.Errorf("xsw, which only throttles, listed refused: %+v", st[siteXSW])
		}
		if c := st[siteCzbooks]; refusedAt.IsZero() && c.State == "refused" {
			refusedAt = time.Now()
			t.Logf("czbooks listed refused %v after the requests: %q", refusedAt.Sub(requested).Round(time.Millisecond), c.Detail)
			if !strings.Contains(c.Detail, "HTTP 403") {
				t.Errorf("czbooks refused with detail %q, want it to name HTTP 403", c.Detail)
			}
			asked := time.Now()
			if took := r.readerRefused(t, siteCzbooks, readerID); took > time.Second+stalls.around(asked, asked.Add(took)) {
				t.Errorf("reader GET of czbooks/%s answered after %v, want within 1s", readerID, took)
			}
		}
		// The faults last until czbooks has had a probe refused (a request after the
		// grace), so that the next probe, a doubled cooldown later, finds it recovered, and
		// until xsw has answered two 429s.
		if log := sortedLog(cz.requests(t)); !refusedAt.IsZero() && len(log) > 0 &&
			log[len(log)-1].Time.Sub(log[0].Time) >= refusalGrace &&
			len(faulted(xsw.requests(t), sitesim.FaultTooManyRequests)) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			what := "czbooks never listed refused"
			if !refusedAt.IsZero() {
				what = fmt.Sprintf("czbooks listed refused after %v but no probe seen", refusedAt.Sub(requested).Round(time.Millisecond))
			}
			t.Fatalf("after 20s: %s; %d requests to czbooks, %d 429s from xsw; /sites %+v", what, len(cz.requests(t)),
				len(faulted(xsw.requests(t), sitesim.FaultTooManyRequests)), st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The fetchers describe their sites at every change of their jobs and every 5s.
	if refusedAt.Sub(requested) > 6*time.Second+stalls.around(requested, refusedAt) {
		t.Errorf("czbooks listed refused %v after the first requests, want within 6s", refusedAt.Sub(requested))
	}
	if xswSeen["throttled"] == 0 {
		t.Errorf("xsw never listed throttled while it answered 429s: %v", xswSeen)
	}
	t.Logf("xsw's states while faulted, by poll: %v", xswSeen)

	cleared := time.Now()
	cz.setFaults(t)
	xsw.setFaults(t)
	all := append(booksOf(siteXSW, xswIDs...), booksOf(siteCzbooks, append(czIDs, readerID)...)...)
	r.settleAllBooks(t, all, 40*time.Second)
	settled := time.Now()
	testkit.Eventually(t, 15*time.Second, "both sites ok again", func() bool {
		st := r.siteStates(t)
		return st[siteXSW].State == "ok" && st[siteCzbooks].State == "ok"
	})
	t.Logf("faulted %v; all %d books indexed %v after the faults were cleared (last request to xsw %v, to czbooks %v after); both ok %v after",
		cleared.Sub(requested).Round(time.Millisecond), len(all), settled.Sub(cleared).Round(time.Millisecond),
		lastAt(xsw.requests(t)).Sub(cleared).Round(time.Millisecond), lastAt(cz.requests(t)).Sub(cleared).Round(time.Millisecond),
		time.Since(cleared).Round(time.Millisecond))

	// czbooks while it refused us: its requests up to the first it answered.
	czLog := sortedLog(cz.requests(t))
	var refusal []sitesim.Request
	for _, q := range czLog {
		refusal = append(refusal, q)
		if q.Status == http.StatusOK {
			break
		}
	}
	if len(refusal) == 0 || refusal[len(refusal)-1].Status != http.StatusOK {
		t.Fatalf("czbooks never answered 200: %d requests", len(czLog))
	}
	first := refusal[0].Time
	var times []string
	var underWay, probes int
	for i, q := range refusal {
		times = append(times, fmt.Sprintf("%v %d", q.Time.Sub(first).Round(time.Millisecond), q.Status))
		if q.Status != http.StatusOK && q.Fault != sitesim.FaultRefuse {
			t.Errorf("czbooks request %s answered %d without the refusal", q.Path, q.Status)
		}
		if q.Time.Sub(first) < refusalGrace {
			underWay++
			continue
		}
		probes++
		// At most one request a cooldown: 0.9 of it, less any stall around the gap.
		if gap, allow := q.Time.Sub(refusal[i-1].Time), stalls.allowance(refusal[i-1], q)-jitter; gap < twoSiteCooldown*9/10-allow {
			t.Errorf("czbooks was asked for %s %v after the request before, %v after its first refusal; want one request a cooldown (%v) at most (allowing %v for stalls)",
				q.Path, gap.Round(time.Millisecond), q.Time.Sub(first).Round(time.Millisecond), twoSiteCooldown, allow)
		}
	}
	if limit := twoSiteFetchers * twoSiteWorkers; underWay > limit {
		t.Errorf("czbooks heard %d requests within %v of its first refusal, want at most one a worker (%d)", underWay, refusalGrace, limit)
	}
	t.Logf("czbooks while refusing (since its first refusal, status): %s; %d under way, %d probes, the faults cleared at %v; its last request %v after the probe it answered",
		strings.Join(times, ", "), underWay, probes, cleared.Sub(first).Round(time.Millisecond),
		lastAt(czLog).Sub(refusal[len(refusal)-1].Time).Round(time.Millisecond))

	// xsw's 429s, and politeness on both sites.
	xswLog := sortedLog(xsw.requests(t))
	throttled := faulted(xswLog, sitesim.FaultTooManyRequests)
	if len(throttled) == 0 {
		t.Error("xsw never answered 429")
	}
	pause := time.Duration(-1)
	for _, q := range throttled {
		if n, ok := after(xswLog, q); ok && (pause < 0 || n.Time.Sub(q.Time) < pause) {
			pause = n.Time.Sub(q.Time)
		}
	}
	t.Logf("xsw: %d requests, %d answered 429 (Retry-After %v); shortest wait after a 429 %v", len(xswLog), len(throttled), retryAfter, pause.Round(time.Millisecond))
	// Politeness, as each site saw it: no two requests closer than its interval, less the
	// suite's allowance for scheduling and any stall of the machine around them.
	for _, site := range []struct {
		id  string
		log []sitesim.Request
	}{{siteXSW, xswLog}, {siteCzbooks, czLog}} {
		closest := time.Duration(-1)
		var excused []string
		for i := 1; i < len(site.log); i++ {
			a, b := site.log[i-1], site.log[i]
			gap, allow := b.Time.Sub(a.Time), stalls.allowance(a, b)
			if closest < 0 || gap < closest {
				closest = gap
			}
			switch {
			case gap < twoSiteInterval-allow:
				t.Errorf("%s was asked for %s (from %s) %v after %s (from %s), %v after czbooks' first refusal; want %v at least (its interval less %v)",
					site.id, b.Path, b.RemoteAddr, gap, a.Path, a.RemoteAddr, a.Time.Sub(first).Round(time.Millisecond), twoSiteInterval-allow, allow)
			case gap < twoSiteInterval-jitter:
				excused = append(excused, fmt.Sprintf("%v (the machine stalled %v)", gap.Round(time.Millisecond), (allow-jitter).Round(time.Millisecond)))
			}
		}
		t.Logf("%s: %d requests, the closest two %v apart (interval %v); closer than %v only around stalls: %v",
			site.id, len(site.log), closest.Round(time.Millisecond), twoSiteInterval, twoSiteInterval-jitter, excused)
	}
	n, longest := stalls.seen()
	t.Logf("scenario took %v; the test process stalled longer than %v %d times, at most %v",
		time.Since(began).Round(time.Millisecond), jitter, n, longest.Round(time.Millisecond))
}

// lastAt is the time of the last request of log.
func lastAt(log []sitesim.Request) time.Time {
	var last time.Time
	for _, q := range log {
		if q.Time.After(last) {
			last = q.Time
		}
	}
	return last
}

// readerRefused asks the gateway for unstored book id of site, which refuses us: the
// answer must be 503 with a Retry-After and the refusal's words. It returns how long the
// answer took.
func (r *rig) readerRefused(t *testing.T, site, id string) time.Duration {
	t.Helper()
	start := time.Now()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(r.gatewayURL + "/sites/" + site + "/books/" + id)
	if err != nil {
		t.Fatalf("reader GET of %s/%s: %v", site, id, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	var e struct {
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal(b, &e)
	switch {
	case resp.StatusCode != http.StatusServiceUnavailable:
		t.Errorf("reader GET of %s/%s while the site refuses us: %d %s, want 503", site, id, resp.StatusCode, b)
	case !strings.Contains(e.Detail, "HTTP 403"):
		t.Errorf("reader GET of %s/%s: detail %q (body %s), want it to name HTTP 403", site, id, e.Detail, b)
	case resp.Header.Get("Retry-After") == "":
		t.Errorf("reader GET of %s/%s: 503 without Retry-After", site, id)
	}
	t.Logf("reader GET of %s/%s: %d in %v, Retry-After %q: %s", site, id, resp.StatusCode, took.Round(time.Millisecond), resp.Header.Get("Retry-After"), e.Detail)
	return took
}
