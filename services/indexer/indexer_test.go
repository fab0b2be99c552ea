package indexer_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/logging"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/platform/pgtest"
	"github.com/xswtw/xsw/platform/testkit"
	"github.com/xswtw/xsw/services/indexer"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func status(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRun runs the whole service against an embedded JetStream and a fresh schema: it
// migrates, indexes the syncs of two sites' books of one id as two books and announces
// each on its own subject, answers its probes and stops cleanly.
func TestRun(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	dsn := pgtest.Schema(t)
	addr := freeAddr(t)
	cfg, err := indexer.ConfigFromEnv(config.Map(map[string]string{
		"DATABASE_URL":        dsn,
		"NATS_URL":            ns.URL,
		"INDEXER_HEALTH_ADDR": addr,
		"SOURCES":             "xsw,czbooks",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := indexer.Migrate(t.Context(), cfg, logging.Discard()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- indexer.Run(ctx, cfg, logging.Discard()) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	sub, err := ns.Conn.SubscribeSync(events.SubjectIndexedAll)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	// The same book id on two sites, synced at the same time: two books.
	at := time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)
	chapters := map[string]int{"xsw": 3, "czbooks": 2}
	for site, n := range chapters {
		job := events.JobID(site, "7", 1)
		book := events.BookFetched{Header: events.Header{Version: events.Version}, JobID: job, Site: site, BookID: "7",
			Book: events.BookMeta{Name: "書 of " + site}, FetchedAt: at}
		page := events.TOCPageFetched{Header: events.Header{Version: events.Version}, JobID: job, Site: site, BookID: "7",
			Page: 1, TotalPages: 1, FetchedAt: at}
		for k := 1; k <= n; k++ {
			page.Chapters = append(page.Chapters, events.ChapterRef{Number: k, ChapterID: strconv.Itoa(100 + k), Title: "t", URL: "u"})
		}
		done7 := events.JobEvent{Header: events.Header{Version: events.Version}, Kind: events.JobCompleted, JobID: job, Site: site,
			BookID: "7", Lane: events.LaneInteractive, Attempt: 1, StartedAt: at, At: at.Add(time.Second), Chapters: n, TOCPages: 1}
		for _, p := range []struct {
			subject string
			payload events.Payload
		}{
			{events.SubjectFetchedBook(site, "7"), &book},
			{events.SubjectFetchedTOC(site, "7"), &page},
			{done7.Subject(), &done7},
		} {
			if _, err := broker.Publish(t.Context(), ns.JS, p.subject, "", p.payload); err != nil {
				t.Fatal(err)
			}
		}
	}

	pool, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for site, n := range chapters {
		testkit.Eventually(t, 15*time.Second, site+"'s sync indexed", func() bool {
			var got int
			err := pool.QueryRow(context.Background(), `SELECT count(*) FROM chapters c JOIN books b ON b.site = c.site AND b.id = c.book_id
				WHERE b.site = $1 AND b.id = '7' AND b.chapter_total = $2`, site, n).Scan(&got)
			return err == nil && got == n
		})
	}
	complete := map[string]bool{}
	for len(complete) < 2 {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("announcements: %v (complete: %v)", err, complete)
		}
		var ev events.BookIndexed
		if err := events.Decode(m.Data, &ev); err != nil || m.Subject != events.SubjectIndexed(ev.Site, "7") {
			t.Fatalf("announcement %+v on %s: %v", ev, m.Subject, err)
		}
		if ev.Complete && ev.Chapters == chapters[ev.Site] {
			complete[ev.Site] = true
		}
	}
	testkit.Eventually(t, 15*time.Second, "/healthz", func() bool { return status("http://"+addr+"/healthz") == http.StatusOK })
	if got := status("http://" + addr + "/readyz"); got != http.StatusOK {
		t.Errorf("/readyz = %d, want 200", got)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil after cancel", err)
		}
		done <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestRunFailsWithoutDatabase(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	cfg, err := indexer.ConfigFromEnv(config.Map(map[string]string{
		"DATABASE_URL":        "postgres://postgres@" + freeAddr(t) + "/xsw?sslmode=disable&connect_timeout=2",
		"NATS_URL":            ns.URL,
		"INDEXER_HEALTH_ADDR": freeAddr(t),
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := indexer.Run(t.Context(), cfg, logging.Discard()); err == nil {
		t.Error("Run with an unreachable database returned nil")
	}
}
