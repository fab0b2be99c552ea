package httpapi

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/testkit"
	"github.com/xswtw/xsw/services/gateway/internal/catalog"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
	"github.com/xswtw/xsw/services/gateway/internal/testdb"
)

// replica starts a second gateway API on the environment's NATS server (its own
// connection, as another process would have) and database.
func (e *env) replica(name string) *env {
	e.t.Helper()
	nc, js := e.connect(name)
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	jm, err := jobs.New(e.t.Context(), js, 5*time.Minute, logger)
	if err != nil {
		e.t.Fatal(err)
	}
	reg := e.registry(js, logger)
	jm.SetCheck(reg.CheckBook)
	cfg := testConfig()
	cfg.Replica = name
	srv, err := New(cfg, nc, catalog.New(e.pool), jm, reg, logger)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if err := srv.Shutdown(5 * time.Second); err != nil {
			e.t.Errorf("Shutdown %s: %v", name, err)
		}
	})
	return &env{t: e.t, ns: e.ns, pool: e.pool, srv: srv, sites: reg, logs: e.logs}
}

// TestReplicasCoherent runs two gateway replicas on one NATS server and one database:
// each caches a book; an index announcement, then an admin invalidation sent to one of
// them, make both serve what Postgres holds.
func TestReplicasCoherent(t *testing.T) {
	t.Parallel()
	a := newEnv(t)
	b := a.replica("gateway-b")
	testdb.InsertBook(t, a.pool, "9", "First", true)
	name := func(e *env) string {
		r := e.get("/xsw/api/books/9")
		expect(t, r, http.StatusOK)
		var bk api.Book
		r.decode(t, &bk)
		return bk.Name
	}
	both := func(want string) func() bool {
		return func() bool { return name(a) == want && name(b) == want }
	}
	if !both("First")() {
		t.Fatal("replicas do not serve the stored book")
	}

	testdb.Exec(t, a.pool, `UPDATE books SET name = 'Second' WHERE id = '9'`)
	if name(a) != "First" || name(b) != "First" {
		t.Fatal("a replica did not cache the book")
	}
	a.indexed("9", 0, false) // the indexer announces what it wrote
	testkit.Eventually(t, 10*time.Second, "both replicas to serve the indexed book", both("Second"))

	testdb.Exec(t, a.pool, `UPDATE books SET name = 'Third' WHERE id = '9'`)
	if name(a) != "Second" || name(b) != "Second" {
		t.Fatal("a replica did not cache the book again")
	}
	expect(t, a.admin(http.MethodPost, "/xsw/api/admin/cache/invalidate/9"), http.StatusOK)
	if name(a) != "Third" {
		t.Error("the replica that was asked still serves its copy")
	}
	testkit.Eventually(t, 10*time.Second, "the other replica to drop its copy", both("Third"))

	testdb.Exec(t, a.pool, `UPDATE books SET name = 'Fourth' WHERE id = '9'`)
	expect(t, b.admin(http.MethodPost, "/xsw/api/admin/cache/clear"), http.StatusOK)
	testkit.Eventually(t, 10*time.Second, "both replicas to drop everything", both("Fourth"))
}

// connect opens another connection to the environment's NATS server, closed when the
// test ends.
func (e *env) connect(name string) (*nats.Conn, jetstream.JetStream) {
	e.t.Helper()
	nc, js, err := broker.Connect(e.ns.URL, name, slog.New(slog.DiscardHandler))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	return nc, js
}

// TestReconnectDropsCache checks that a replica forgets everything it cached when its
// NATS connection comes back: announcements sent meanwhile never reached it.
func TestReconnectDropsCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	testdb.InsertBook(t, e.pool, "9", "Cached", true)
	expect(t, e.get("/xsw/api/books/9"), http.StatusOK)
	if e.srv.books.Len() != 1 {
		t.Fatal("book not cached")
	}
	reconnected := e.ns.Conn.Opts.ReconnectedCB
	if reconnected == nil {
		t.Fatal("no reconnect handler installed")
	}
	reconnected(e.ns.Conn)
	if n := e.srv.books.Len(); n != 0 {
		t.Errorf("%d entries cached after a reconnection, want 0", n)
	}
}
