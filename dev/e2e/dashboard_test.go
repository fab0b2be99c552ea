package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/xswtw/xsw/dev/sitesim"
	"github.com/xswtw/xsw/platform/testkit"
)

// chromium finds the browser. Without one the test fails in CI (CI is set there, and
// `make test` installs Chromium) and is skipped, saying why, on a developer's machine.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium found (looked for chromium, chromium-browser, google-chrome); " +
		"`make test` installs it (dev/scripts/ensure-chromium.sh), or: apt-get install -y chromium"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// artifacts is where the test keeps its screenshots: ARTIFACTS_DIR, else
// dev/e2e/artifacts (git-ignored).
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ARTIFACTS_DIR")
	if dir == "" {
		dir = "artifacts"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is a headless Chromium driven by chromedp, with the errors its page logged.
type browser struct {
	t    *testing.T
	ctx  context.Context
	dir  string
	done chan struct{} // closed when the console reader stops

	mu     sync.Mutex
	errors []string // uncaught exceptions and console errors of the page
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := chromium(t)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1360, 1100),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true), // containers have a small /dev/shm
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b := &browser{t: t, ctx: ctx, dir: artifacts(t), done: make(chan struct{})}
	if err := chromedp.Do(ctx); err != nil { // starts the browser and opens the tab
		cancel()
		cancelAlloc()
		t.Fatalf("start %s: %v", exe, err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		defer close(b.done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				b.mu.Lock()
				b.errors = append(b.errors, string(m.Type)+": "+m.Text)
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-b.done
		cancelAlloc()
	})
	return b
}

// do runs steps with a bound; on failure it keeps a screenshot and the page's text.
func (b *browser) do(what string, timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
		text, _ := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("body")))
		b.t.Fatalf("%s: %v\npage:\n%s", what, err, text)
	}
}

// text returns the text of the first element sel selects.
func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// screenshot keeps the whole page as <dir>/<name>.png.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Errorf("keep screenshot: %v", err)
		return
	}
	b.t.Logf("screenshot %s", path)
}

// TestDashboardInABrowser drives the operations page in headless Chromium against the
// all-in-one and the simulated site: sign in, watch a book go from queued to completed,
// and replay a dead letter with the page's button.
func TestDashboardInABrowser(t *testing.T) {
	began := time.Now()
	b := newBrowser(t)
	cfg := sitesim.DefaultConfig()
	cfg.Seed = 23
	cfg.Categories = 1
	cfg.BooksPerCategory = 26
	cfg.MinChapters, cfg.MaxChapters = 20, 80
	// One worker, so that a book can be seen waiting for it.
	s := start(t, cfg, map[string]string{"BG_JOB_WORKERS": "1", "BG_JOB_RATE_LIMIT": "0.01", "BG_JOB_MAX_ATTEMPTS": "2"})
	t.Logf("system up in %v", time.Since(began).Round(time.Millisecond))

	// Three books off the first listing page, which the listing below does not prefetch.
	var page2 []listed
	if resp := s.get(t, "/xsw/api/categories/1/books?page=2&bg_sync=false", &page2); resp.StatusCode != http.StatusOK || len(page2) < 3 {
		t.Fatalf("listing page 2: %d, %d books", resp.StatusCode, len(page2))
	}
	slow, waiting, broken := *page2[0].BookID, *page2[1].BookID, *page2[2].BookID

	// Sign in.
	b.do("open the page", 30*time.Second,
		chromedp.Navigate(s.GatewayURL+"/xsw/admin/"),
		chromedp.WaitVisible(chromedp.CSS("#login")),
	)
	b.screenshot("01-sign-in")
	b.do("sign in", 30*time.Second,
		chromedp.SendKeys(chromedp.CSS("#token"), s.AdminToken),
		chromedp.Click(chromedp.CSS("#sign-in")),
		chromedp.WaitVisible(chromedp.CSS("#board")),
		chromedp.WaitVisible(chromedp.CSS("#conn.live")),
		waitText("#fetchers-alive", "1"),
		waitText(`#lanes tr[data-lane="prefetch"] td:last-child`, "0"),
	)
	stored, err := chromedp.Run(b.ctx,
		chromedp.Evaluate[string](`sessionStorage.getItem('xsw-admin-token') + '|' + document.cookie + '|' + location.href`))
	if err != nil {
		t.Fatal(err)
	}
	if stored != s.AdminToken+"||"+s.GatewayURL+"/xsw/admin/" {
		t.Errorf("sessionStorage|cookie|url = %q: the token belongs in sessionStorage only", stored)
	}

	// Browsing fills the prefetch lane; the page follows it live.
	var books []listed
	if resp := s.get(t, "/xsw/api/categories/1/books?page=1", &books); resp.StatusCode != http.StatusOK {
		t.Fatalf("listing: %d", resp.StatusCode)
	}

	// A book whose first page hangs holds the only worker: the next book waits.
	if err := s.Site.AddFault(sitesim.FaultRule{Kind: sitesim.FaultHang, PathPrefix: "/" + slow + "/", Next: 1, Hang: 4 * time.Second}); err != nil {
		t.Fatal(err)
	}
	b.do("queue the slow book", 30*time.Second, syncBook(slow),
		chromedp.WaitVisible(css(`#inflight li[data-book="%s"]`, slow)))
	b.do("queue the next book", 30*time.Second, syncBook(waiting),
		chromedp.WaitVisible(css(`#jobs tr[data-book="%s"][data-state="queued"]`, waiting)))
	b.screenshot("02-book-queued")
	b.do("the queued book completes", 60*time.Second,
		chromedp.WaitVisible(css(`#jobs tr[data-book="%s"][data-state="completed"]`, waiting)))
	b.do("its steps", 5*time.Second, waitText(fmt.Sprintf(`#jobs tr[data-book="%s"] td.steps`, waiting), "queued → started → completed"))
	b.screenshot("03-book-completed")

	// Reading that book now is a pre-cache hit, twice (Postgres, then the gateway's
	// memory): the hit-rate card shows both.
	testkit.Eventually(t, 30*time.Second, "the completed book stored", func() bool {
		var n int
		err := s.db.QueryRow(t.Context(), `SELECT count(*) FROM books WHERE site = 'xsw' AND id = $1 AND name <> ''`, waiting).Scan(&n)
		return err == nil && n == 1
	})
	for range 2 {
		if resp := s.get(t, "/xsw/api/books/"+waiting, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("read book %s: %d", waiting, resp.StatusCode)
		}
	}
	b.do("the hit rate", 10*time.Second,
		waitText("#hit-rate", "100%"),
		waitText(`#reads tr[data-from="database"] td:last-child`, "1"),
		waitText(`#reads tr[data-from="memory"] td:last-child`, "1"),
		waitText(`#reads tr[data-from="waited"] td:last-child`, "0"),
		waitTextContains("#reads-detail", "of 2 book reads on this gateway in the last 10 min"),
	)

	// A book the site does not have fails for good and is dead-lettered.
	if err := s.Site.AddFault(sitesim.FaultRule{Kind: sitesim.FaultNotFound, PathPrefix: "/" + broken + "/"}); err != nil {
		t.Fatal(err)
	}
	b.do("a book fails for good", 60*time.Second, syncBook(broken),
		chromedp.WaitVisible(css(`#jobs tr[data-book="%s"][data-state="failed"]`, broken)),
		chromedp.WaitVisible(css(`#failures tr[data-book="%s"][data-kind="failed"]`, broken)),
		chromedp.WaitVisible(css(`#dead tr[data-dead="%s"] button.replay`, broken)),
		waitText("#dead-count", "1"),
	)
	b.do("its error", 5*time.Second, waitTextContains(fmt.Sprintf(`#failures tr[data-book="%s"] td.err`, broken), "not found"))
	b.screenshot("04-dead-letter")

	// The site has the book again: the replay button brings it in.
	if err := s.Site.SetFaults(); err != nil {
		t.Fatal(err)
	}
	b.do("replay the dead letter", 60*time.Second,
		chromedp.Click(css(`#dead tr[data-dead="%s"] button.replay`, broken)),
		chromedp.WaitVisible(css(`#jobs tr[data-book="%s"][data-state="completed"]`, broken)),
		chromedp.WaitNotPresent(css(`#dead tr[data-dead="%s"]`, broken)),
		waitText("#dead-count", "0"),
	)
	if result := b.text("#dead-result"); !strings.Contains(result, "Book xsw/"+broken+": queued") {
		t.Errorf("replay result = %q", result)
	}

	// Everything browsed is synced; the chart shows it.
	b.do("the prefetch lane drains", 90*time.Second,
		waitText(`#lanes tr[data-lane="prefetch"] td:last-child`, "0"),
		waitText("#inflight-count", "0"),
		chromedp.WaitVisible(chromedp.CSS("#chart svg rect.ok")),
	)
	b.screenshot("05-overview")

	// czbooks.net refuses us: the Sites panel says so, with the site's answer, beside
	// m.xsw.tw still served.
	b.do("both sites ok", 15*time.Second,
		chromedp.WaitVisible(chromedp.CSS(`#sites tr[data-site="xsw"][data-state="ok"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#sites tr[data-site="czbooks"][data-state="ok"]`)),
	)
	if err := s.Sims["czbooks"].Site().SetFaults(sitesim.FaultRule{Kind: sitesim.FaultRefuse}); err != nil {
		t.Fatal(err)
	}
	if resp := s.get(t, "/xsw/api/sites/czbooks/categories", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("categories of a site that refuses us: %d, want 503", resp.StatusCode)
	}
	b.do("czbooks refused", 20*time.Second,
		chromedp.WaitVisible(chromedp.CSS(`#sites tr[data-site="czbooks"][data-state="refused"]`)),
		waitTextContains(`#sites tr[data-site="czbooks"] td.detail`, "czbooks: refused, HTTP 403"),
		waitTextContains(`#sites tr[data-site="czbooks"] td.probe`, "next probe"),
		chromedp.WaitVisible(chromedp.CSS(`#sites tr[data-site="xsw"][data-state="ok"]`)),
	)
	b.screenshot("06-refused")

	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errors {
		t.Errorf("page error: %s", e)
	}
	t.Logf("browser test took %v", time.Since(began).Round(time.Millisecond))
}

// css is a CSS selector built with fmt.Sprintf.
func css(format string, args ...any) chromedp.CSS { return chromedp.CSS(fmt.Sprintf(format, args...)) }

// syncBook queues a book with the page's sync form and waits for the answer. The form
// is submitted as its button would (requestSubmit fires the submit event) rather than
// with a mouse click: the live tables above it grow while the test runs, and a click at
// the coordinates measured a moment before could land elsewhere.
func syncBook(id string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Evaluate[chromedp.Void](`document.getElementById('sync-result').textContent = ''`),
		chromedp.SetValue(chromedp.CSS("#sync-book"), id),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('sync').requestSubmit(document.getElementById('sync-submit'))`),
		waitTextContains("#sync-result", "Book xsw/"+id+": "),
	)
}

// waitText waits until the element's text is want. The page redraws its tables as
// events arrive, so an element may vanish between finding and reading it: that is
// retried too.
func waitText(sel, want string) chromedp.Action[chromedp.Void] {
	return waitTextFunc(sel, want, func(got string) bool { return got == want })
}

// waitTextContains waits until the element's text contains want.
func waitTextContains(sel, want string) chromedp.Action[chromedp.Void] {
	return waitTextFunc(sel, want, func(got string) bool { return strings.Contains(got, want) })
}

func waitTextFunc(sel, want string, ok func(string) bool) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for {
			got, err := chromedp.Text(chromedp.CSS(sel))(ctx, t)
			if err == nil && ok(strings.TrimSpace(got)) {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s shows %q (%v), want %q: %w", sel, got, err, want, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}
