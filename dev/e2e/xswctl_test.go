package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xswtw/xsw/dev/sitesim"
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
			if ee, ok := err.(*exec.ExitError); ok {
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
	eventually(t, 30*time.Second, "tail shows the sync completed", func() bool { return tl.has("queued", good) && tl.has("completed", good) })
	wantOut(ctl("sync", good), "book "+good+": synced moments ago, not queued again (resync forces it)")
	// The fetcher's heartbeat lists a job until a moment after its completed event.
	eventually(t, 10*time.Second, "no job in flight", func() bool {
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
	eventually(t, 30*time.Second, "tail shows the failure", func() bool { return tl.has("failed", broken) })
	eventually(t, 10*time.Second, "the dead letter listed", func() bool { return strings.Contains(ctl("dead"), broken) })
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
	eventually(t, 30*time.Second, "the replayed book synced", func() bool { return tl.has("completed", broken) })
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

	// A wrong token is refused, and says so.
	bad := exec.Command(bin, "stats")
	bad.Env = []string{"XSW_URL=" + s.GatewayURL, "XSW_ADMIN_TOKEN=wrong"}
	msg, err := bad.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(msg), "401") {
		t.Errorf("wrong token: %v %s", err, msg)
	}
}
