package events

import (
	"strings"
	"time"
)

// ActiveJob is a job a fetcher is working on now.
type ActiveJob struct {
	JobID     string    `json:"job_id"`
	Site      string    `json:"site"`
	BookID    string    `json:"book_id"`
	Lane      Lane      `json:"lane"`
	Attempt   int       `json:"attempt"`
	StartedAt time.Time `json:"started_at"`
}

// FetcherHeartbeat is what a live fetcher process keeps in BucketFetchers under its id,
// rewritten every FetcherHeartbeatTTL/3. A heartbeat older than the bucket's TTL is gone,
// and so is the fetcher as far as the stats are concerned.
type FetcherHeartbeat struct {
	Header
	FetcherID string `json:"fetcher_id"`
	// Workers is the number of jobs the process may run at once, every site's together
	// (BG_JOB_WORKERS per site served).
	Workers   int         `json:"workers"`
	Active    []ActiveJob `json:"active"`
	StartedAt time.Time   `json:"started_at"`
	At        time.Time   `json:"at"`
	// Interval is the default site's politeness interval in force now, in seconds (after
	// any slow-down).
	Interval float64 `json:"interval_seconds"`
	// Circuit is the default site's circuit state as this fetcher saw it: closed, open,
	// half-open.
	Circuit string `json:"circuit"`
	// Sites lists every site this fetcher serves, the default first, with its state.
	Sites    []SiteInfo `json:"sites,omitempty"`
	Draining bool       `json:"draining,omitempty"`
}

// Validate reports whether the heartbeat honours the contract.
func (h FetcherHeartbeat) Validate() error {
	if h.FetcherID == "" || strings.ContainsAny(h.FetcherID, ".* >") {
		return invalid("fetcher_heartbeat: bad fetcher_id %q", h.FetcherID)
	}
	for _, s := range h.Sites {
		if err := s.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// SiteIDs lists the sites the fetcher serves, the default first.
func (h FetcherHeartbeat) SiteIDs() []string {
	out := make([]string, len(h.Sites))
	for i, s := range h.Sites {
		out[i] = s.ID
	}
	return out
}

func (h *FetcherHeartbeat) upgrade() {
	h.Version = Version
	for i := range h.Active {
		h.Active[i].Site = legacySite(h.Active[i].Site)
	}
}

// SyncedValue encodes the time a book's sync completed, the value kept in BucketSynced.
func SyncedValue(t time.Time) []byte { return []byte(t.UTC().Format(time.RFC3339Nano)) }

// ParseSyncedValue decodes a BucketSynced value.
func ParseSyncedValue(b []byte) (time.Time, error) { return time.Parse(time.RFC3339Nano, string(b)) }

// circuitSeverity ranks the circuit states of FetcherHeartbeat.Circuit, the worst last.
var circuitSeverity = map[string]int{"closed": 0, "half-open": 1, "open": 2}

// WorseCircuit reports whether circuit state a is worse than b (open, then half-open,
// closed); an unknown state is worse than any known one.
func WorseCircuit(a, b string) bool { return worse(circuitSeverity, a, b) }

// SyncClaim is the value of a book's claim in BucketClaims: the one job syncing the book
// now. A fetcher takes it (create, compare-and-set) before it fetches anything for the
// book and deletes it when the job ends; another job for the book meanwhile does not
// sync it again. A reader's request that finds the book claimed sets Interactive, and the
// job holding the claim then books its remaining requests as a reader's.
type SyncClaim struct {
	Header
	JobID   string `json:"job_id"`
	Fetcher string `json:"fetcher"`
	Lane    Lane   `json:"lane"`
	// Interactive is set when a reader waits for the sync.
	Interactive bool      `json:"interactive,omitempty"`
	At          time.Time `json:"at"`
}

// Validate reports whether the claim honours the contract.
func (c SyncClaim) Validate() error {
	if c.JobID == "" || !c.Lane.Valid() {
		return invalid("sync_claim: job %q, lane %q", c.JobID, c.Lane)
	}
	return nil
}
