package chaos

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/xswtw/xsw/platform/testkit"
)

// getStatus sends GET path to the gateway and returns the status and body.
func (r *rig) getStatus(t *testing.T, path string) (int, []byte) {
	t.Helper()
	return get(t, r.gatewayURL+path, "")
}

// TestPostgresUnreachable cuts every connection to Postgres, and refuses new ones, for
// 30 seconds in the middle of a sync. Meanwhile the gateway answers a book it has cached
// with 200 and what it cannot answer with 503 and a JSON detail, never 500; the indexer
// keeps running and retries with growing delays instead of spinning. Once the database
// is back the indexer catches up and every book ends fully indexed: no event was dropped.
func TestPostgresUnreachable(t *testing.T) {
	t.Parallel()
	const outage = 30 * time.Second
	r := newRig(t, options{site: []string{"-categories", "1", "-books", "30", "-chapters", "100..200", "-latency", "20ms"},
		proxyPostgres: true, fetchers: 2, gateway: true})
	ids := r.site.ids(t, 0)
	first, rest := ids[:5], ids[5:]
	r.request(first)
	r.settleAll(t, first, 60*time.Second)
	cached, uncached := first[0], first[1]
	if status, body := r.getStatus(t, "/books/"+cached); status != http.StatusOK {
		t.Fatalf("GET /books/%s before the outage: %d %s", cached, status, body)
	}

	r.request(rest)
	before := r.indexedRefs()
	testkit.Eventually(t, 30*time.Second, "the second sync under way", func() bool { return r.indexedRefs() > before })
	failuresBefore := metrics(t, r.indexerAddr)["xsw_indexer_batch_failures_total"]
	r.pg.Cut()
	cutAt := time.Now()
	seen := map[string]map[int]int{} // path → status → count
	for time.Since(cutAt) < outage {
		for _, path := range []string{"/books/" + cached, "/books/" + uncached, "/books/" + uncached + "/chapters", "/health"} {
			status, body := r.getStatus(t, path)
			if seen[path] == nil {
				seen[path] = map[int]int{}
			}
			seen[path][status]++
			if status >= 500 && status != http.StatusServiceUnavailable {
				t.Errorf("GET %s with Postgres unreachable: %d %s", path, status, body)
			}
			if status == http.StatusServiceUnavailable {
				var e struct {
					Detail string `json:"detail"`
				}
				if err := json.Unmarshal(body, &e); err != nil || (e.Detail == "" && path != "/health") {
					t.Errorf("GET %s: 503 without a JSON detail: %s", path, body)
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	failures := metrics(t, r.indexerAddr)["xsw_indexer_batch_failures_total"] - failuresBefore
	r.pg.Restore(t)
	t.Logf("answers during the %v outage: %v; indexer failed transactions: %.0f", outage, seen, failures)

	if got := seen["/books/"+cached]; len(got) != 1 || got[http.StatusOK] == 0 {
		t.Errorf("cached book during the outage: %v, want only 200", seen["/books/"+cached])
	}
	if seen["/books/"+uncached][http.StatusServiceUnavailable] == 0 {
		t.Errorf("uncached book during the outage: %v, want 503", seen["/books/"+uncached])
	}
	if seen["/health"][http.StatusServiceUnavailable] == 0 {
		t.Errorf("/health during the outage: %v, want 503 (degraded)", seen["/health"])
	}
	// The delay doubles from 500ms with every failed transaction (up to four writers
	// fail at each attempt): a 30s outage costs a handful of them. A loop that retried
	// without delay would fail hundreds.
	if failures < 1 || failures > 15 {
		t.Errorf("%.0f failed transactions during a %v outage, want a handful (backoff)", failures, outage)
	}
	if !r.indexer.Running() {
		t.Fatalf("indexer exited during the outage: %v", r.indexer.Err())
	}

	r.settleAll(t, ids, 2*time.Minute)
	waitHTTP(t, r.gatewayURL+"/health", 30*time.Second)
	if status, body := r.getStatus(t, "/books/"+uncached); status != http.StatusOK {
		t.Errorf("GET /books/%s after the outage: %d %s", uncached, status, body)
	}
}
