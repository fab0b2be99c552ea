package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/dev/sitesim"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/testkit"
)

// buildXswctl builds the CLI from its module (cmd/xswctl) into a temporary directory.
func buildXswctl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "xswctl")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join("..", "..", "cmd", "xswctl")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build xswctl: %v\n%s", err, out)
	}
	return bin
}

// tailed collects what a running `xswctl tail --json` prints.
type tailed struct {
	mu    sync.Mutex
	lines []map[string]any
}

// at returns when the first event of kind about book happened, as tail printed it.
func (tl *tailed) at(kind, book string) time.Time {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, l := range tl.lines {
		if l["kind"] == kind && l["book_id"] == book {
			at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(l["at"]))
			return at
		}
	}
	return time.Time{}
}

func (tl *tailed) has(kind, book string) bool {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, l := range tl.lines {
		if l["kind"] == kind && l["book_id"] == book {
			return true
		}
	}
	return false
}

// TestXswctlAgainstAGateway runs every xswctl command against the all-in-one and the
// simulated site.
func TestXswctlAgainstAGateway(t *testing.T) {
	t.Parallel()
	bin := buildXswctl(t)
	cfg := sitesim.DefaultConfig()
	cfg.Seed = 31
	cfg.Categories = 2
	cfg.BooksPerCategory = 20
	cfg.MinChapters, cfg.MaxChapters = 10, 45
	// Two workers for each of the demo's two sites.
	s := start(t, cfg, map[string]string{"BG_JOB_WORKERS": "2", "BG_JOB_MAX_ATTEMPTS": "2", "BG_JOB_RETRY_BASE": "0.05"})
	env := []string{"XSW_URL=" + s.GatewayURL, "XSW_ADMIN_TOKEN=" + s.AdminToken, "PATH=/usr/bin:/bin"}
	ctl := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			var stderr string
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("xswctl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		return string(out)
	}
	wantOut := func(out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("output lacks %q:\n%s", w, out)
			}
		}
	}
	var first, second []string // books of category 1 and 2
	for _, b := range s.Site.Books() {
		if b.Category == 1 {
			first = append(first, b.ID)
		} else {
			second = append(second, b.ID)
		}
	}
	good, broken := first[0], first[1]

	// tail follows everything that happens below.
	ctx, cancel := context.WithCancel(context.Background())
	tail := exec.CommandContext(ctx, bin, "tail", "--json")
	tail.Env = env
	stdout, err := tail.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	var tl tailed
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l map[string]any
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Errorf("tail printed %q: %v", sc.Text(), err)
				continue
			}
			tl.mu.Lock()
			tl.lines = append(tl.lines, l)
			tl.mu.Unlock()
		}
	}()
	defer func() {
		cancel()
		<-read
		_ = tail.Wait()
	}()

	wantOut(ctl("stats"), "queue       0 waiting (interactive 0 · manual 0 · prefetch 0 · refresh 0)", "fetchers    1 alive, 4 workers", "circuit     closed")

	wantOut(ctl("sync", good), "book "+good+": queued in the manual lane (priority 10)")
	testkit.Eventually(t, 30*time.Second, "tail shows the sync completed", func() bool { return tl.has("queued", good) && tl.has("completed", good) })
	wantOut(ctl("sync", good), "book "+good+": synced moments ago, not queued again (resync forces it)")
	// The fetcher's heartbeat lists a job until a moment after its completed event.
	testkit.Eventually(t, 10*time.Second, "no job in flight", func() bool {
		var st struct {
			Jobs struct {
				ActiveJobs int `json:"active_jobs"`
			} `json:"jobs"`
		}
		return json.Unmarshal([]byte(ctl("stats", "--json")), &st) == nil && st.Jobs.ActiveJobs == 0
	})
	wantOut(ctl("resync", good, "--priority", "20"), "book "+good+": queued in the manual lane (priority 20, forced)")

	// A book the site does not have: a dead letter, listed, then replayed once it is back.
	if err := s.Site.SetFaults(sitesim.FaultRule{Kind: sitesim.FaultNotFound, PathPrefix: "/" + broken + "/"}); err != nil {
		t.Fatal(err)
	}
	ctl("sync", broken)
	testkit.Eventually(t, 30*time.Second, "tail shows the failure", func() bool { return tl.has("failed", broken) })
	testkit.Eventually(t, 10*time.Second, "the dead letter listed", func() bool { return strings.Contains(ctl("dead"), broken) })
	wantOut(ctl("dead"), "1 dead letters", broken+"  manual", "not found")
	var dead struct {
		Total int `json:"total"`
	}
	if err := json.Unmarshal([]byte(ctl("dead", "--json")), &dead); err != nil || dead.Total != 1 {
		t.Errorf("dead --json: total %d, %v", dead.Total, err)
	}
	if err := s.Site.SetFaults(); err != nil {
		t.Fatal(err)
	}
	wantOut(ctl("dead", "replay", broken), "book "+broken+": queued in the manual lane (forced); its dead letter is deleted")
	testkit.Eventually(t, 30*time.Second, "the replayed book synced", func() bool { return tl.has("completed", broken) })
	wantOut(ctl("dead"), "no dead letters")
	wantOut(ctl("dead", "replay", "--all"), "replayed 0 dead letters")

	// A whole category: its listing page walked, its books synced, with a progress bar.
	out := ctl("crawl", "--categories", "2", "--pages", "1", "--every", "100ms")
	wantOut(out, "crawl crawl-", "done: 1 listing pages walked, 20 books seen", "the prefetch lane has drained")
	for _, id := range second {
		if !tl.has("completed", id) && !tl.has("skipped", id) {
			t.Errorf("book %s of the crawled category: no completed sync in the tail", id)
		}
	}

	// The crawl is listed, and its status kept.
	id := regexp.MustCompile(`crawl (crawl-[0-9]+) done`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("no crawl id in %q", out)
	}
	wantOut(ctl("crawl", "list"), id[1], "done")
	wantOut(ctl("crawl", "status", id[1]), "1 of 1 listing pages · 20 books seen")
	var crawl events.CrawlProgress
	if err := json.Unmarshal([]byte(ctl("crawl", "status", id[1], "--json")), &crawl); err != nil || crawl.State != events.CrawlDone {
		t.Errorf("crawl status --json: %v, state %q", err, crawl.State)
	}

	wantOut(ctl("jobs"), "in flight  0", "recent failures", broken)
	wantOut(ctl("version"), "xswctl   ", "gateway  ")

	// A paused lane: the fetchers take none of its requests until it is resumed.
	third, fourth := first[2], first[3]
	wantOut(ctl("lane", "pause", "manual", "--until", "1h"), "lane manual of every site paused until ", "fetch-manual-xsw, ")
	wantOut(ctl("sync", third), "book "+third+": queued in the manual lane")
	testkit.Eventually(t, 10*time.Second, "the request waits in the paused lane", func() bool {
		var l api.Lanes
		if err := json.Unmarshal([]byte(ctl("lane", "--json")), &l); err != nil {
			t.Fatal(err)
		}
		for _, c := range l.Consumers {
			if c.Consumer == "fetch-manual-xsw" {
				return c.Paused && c.Waiting == 1
			}
		}
		return false
	})
	wantOut(ctl("lane"), "paused until ", "fetch-manual-xsw")
	resumed := time.Now()
	wantOut(ctl("lane", "resume", "manual"), "lane manual of every site resumed")
	testkit.Eventually(t, 30*time.Second, "the book synced once its lane resumed", func() bool { return tl.has("completed", third) })
	if at := tl.at("started", third); at.Before(resumed) {
		t.Errorf("the sync of book %s started at %v, before its lane resumed at %v", third, at, resumed)
	}

	// A purged lane.
	wantOut(ctl("lane", "pause", "prefetch", "--site", "xsw"), "lane prefetch of site xsw paused until resumed (fetch-prefetch-xsw, fetch-prefetch)")
	wantOut(ctl("sync", fourth, "--priority", "0"), "book "+fourth+": queued in the prefetch lane")
	wantOut(ctl("lane", "purge", "prefetch"), "lane prefetch purged: 1 waiting requests dropped")
	wantOut(ctl("lane", "resume", "prefetch", "--site", "xsw"), "lane prefetch of site xsw resumed")

	// The caches, and the stored texts.
	if resp := s.get(t, "/xsw/api/books/"+good+"/chapters/1", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("read chapter 1 of book %s: %d", good, resp.StatusCode)
	}
	testkit.Eventually(t, 10*time.Second, "the chapter's text stored", func() bool {
		var n int
		err := s.db.QueryRow(t.Context(), `SELECT count(*) FROM chapters WHERE site = 'xsw' AND book_id = $1 AND text IS NOT NULL`, good).Scan(&n)
		return err == nil && n == 1
	})
	wantOut(ctl("book", good), "book      "+good)
	wantOut(ctl("cache", "invalidate", good), "book "+good+": ", "cached entries dropped on replica ")
	wantOut(ctl("cache", "clear"), "cache cleared: ")
	wantOut(ctl("cache", "purge-texts", good), "book "+good+": 1 stored chapter texts forgotten; they are fetched again when next read")

	// The job history, cleared.
	jobs := func() api.JobStats {
		var j api.JobStats
		if err := json.Unmarshal([]byte(ctl("jobs", "--json")), &j); err != nil {
			t.Fatal(err)
		}
		return j
	}
	before := jobs()
	wantOut(ctl("history", "clear"), "job history cleared")
	if after := jobs(); after.CompletedCount >= before.CompletedCount || after.FailedCount != 0 {
		t.Errorf("after clear: %d completed, %d failed; before: %d completed", after.CompletedCount, after.FailedCount, before.CompletedCount)
	}

	// A wrong token is refused, and says so.
	bad := exec.Command(bin, "stats")
	bad.Env = []string{"XSW_URL=" + s.GatewayURL, "XSW_ADMIN_TOKEN=wrong"}
	msg, err := bad.CombinedOutput()
	if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(msg), "401") {
		t.Errorf("wrong token: %v %s", err, msg)
	}
}
