package e2e

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xswtw/xsw/dev/sitesim"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/platform/pgtest"
	"github.com/xswtw/xsw/platform/testkit"
	"github.com/xswtw/xsw/services/indexer"
)

// bare is the infrastructure without fetchers or gateway: embedded JetStream, the
// simulated site, a fresh schema and an indexer in this process. Tests add fetcher
// processes of their own.
type bare struct {
	ns      *natstest.Server
	natsURL string
	site    *sitesim.Site
	siteURL string
	db      *pgxpool.Pool
}

func startBare(t *testing.T, cfg sitesim.Config) *bare {
	t.Helper()
	ns := natstest.Start(t)
	sim, err := sitesim.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	pool, dsn := pgtest.Pool(t)
	icfg, err := indexer.ConfigFromEnv(config.Map(map[string]string{
		"DATABASE_URL": dsn, "NATS_URL": ns.URL, "INDEXER_HEALTH_ADDR": "127.0.0.1:0",
	}))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := indexer.Migrate(t.Context(), icfg, logger); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := indexer.Run(ctx, icfg, logger); err != nil {
			t.Errorf("indexer: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return &bare{ns: ns, natsURL: ns.URL, site: sim.Site(), siteURL: sim.URL(), db: pool}
}

// waitAllSynced waits until every book in ids is fully indexed: metadata, and exactly the
// site's chapters, numbered 1..n with no gap.
func (b *bare) waitAllSynced(t *testing.T, ids []string, timeout time.Duration) {
	t.Helper()
	want := map[string]int{}
	for _, id := range ids {
		info, _ := b.site.Book(id)
		want[id] = info.ChapterCount
	}
	testkit.Eventually(t, timeout, "every book fully indexed", func() bool {
		return len(incomplete(t, b.db, want)) == 0
	})
}

// incomplete lists the books of want (id → chapter count) that are not fully indexed.
func incomplete(t *testing.T, db *pgxpool.Pool, want map[string]int) []string {
	t.Helper()
	var out []string
	for id, n := range want {
		var name string
		var count, maxNum int
		err := db.QueryRow(context.Background(), `
			SELECT b.name, (SELECT count(*) FROM chapters c WHERE c.book_id = b.id),
			       (SELECT coalesce(max(num), 0) FROM chapters c WHERE c.book_id = b.id)
			FROM books b WHERE b.id = $1 AND b.chapter_total = $2`, id, n).Scan(&name, &count, &maxNum)
		if err != nil || name == "" || count != n || maxNum != n {
			out = append(out, id)
		}
	}
	return out
}

// post sends an admin POST and decodes the JSON answer.
func (s *system) post(t *testing.T, path string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.GatewayURL+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("POST %s: %v", path, err)
		return 0
	}
	defer resp.Body.Close()
	if v != nil {
		_ = json.NewDecoder(resp.Body).Decode(v)
	}
	return resp.StatusCode
}
