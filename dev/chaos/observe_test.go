package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
)

// jobRow is a book's row in job_history.
type jobRow struct {
	Status    string
	Attempts  int
	Error     string
	Permanent bool
	Dead      bool
}

// job reads the one job_history row of book id.
func (r *rig) job(t *testing.T, id string) jobRow {
	t.Helper()
	var j jobRow
	var n int
	err := r.db.QueryRow(context.Background(), `
		SELECT count(*) OVER (), status, attempts, error, permanent, dead
		FROM job_history WHERE book_id = $1 LIMIT 1`, id).Scan(&n, &j.Status, &j.Attempts, &j.Error, &j.Permanent, &j.Dead)
	if err != nil {
		t.Fatalf("job history of book %s: %v", id, err)
	}
	if n != 1 {
		t.Errorf("book %s has %d jobs in its history, want 1", id, n)
	}
	return j
}

// deadLetter is one entry of GET /admin/jobs/dead.
type deadLetter struct {
	BookID   string `json:"book_id"`
	Error    string `json:"error"`
	Attempts int    `json:"attempts"`
	JobID    string `json:"job_id"`
}

// deadLetters lists the dead letters through the gateway's admin API, by book.
func (r *rig) deadLetters(t *testing.T) map[string]deadLetter {
	t.Helper()
	var out struct {
		Total       int          `json:"total"`
		DeadLetters []deadLetter `json:"dead_letters"`
	}
	status, body := adminGet(t, r.gatewayURL+"/admin/jobs/dead?limit=1000")
	if status != http.StatusOK {
		t.Fatalf("GET /admin/jobs/dead: %d %s", status, body)
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("GET /admin/jobs/dead: %v in %s", err, body)
	}
	m := map[string]deadLetter{}
	for _, d := range out.DeadLetters {
		m[d.BookID] = d
	}
	if out.Total != len(m) {
		t.Errorf("GET /admin/jobs/dead: total %d, %d letters listed", out.Total, len(m))
	}
	return m
}

// adminGet calls an admin endpoint with the right token.
func adminGet(t *testing.T, url string) (int, []byte) {
	t.Helper()
	return get(t, url, adminToken)
}

// get sends GET url, with token as its bearer token when set, and returns the status
// and body.
func get(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// heartbeats reads the live fetchers' heartbeats.
func (r *rig) heartbeats(t *testing.T) []events.FetcherHeartbeat {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := r.js.KeyValue(ctx, events.BucketFetchers)
	if err != nil {
		t.Fatal(err)
	}
	hbs, err := broker.Heartbeats(ctx, kv, nil)
	if err != nil {
		t.Fatal(err)
	}
	return hbs
}

// metrics scrapes a Prometheus text endpoint at addr (host:port) and returns every
// sample by its series, as written: name{label="value",...}.
func metrics(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", addr, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	return out
}
