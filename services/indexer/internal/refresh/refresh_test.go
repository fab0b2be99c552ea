package refresh

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/platform/pgtest"
	"github.com/xswtw/xsw/services/indexer/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type env struct {
	db  *pgxpool.Pool
	ns  *natstest.Server
	kv  jetstream.KeyValue
	now time.Time
}

func setup(t *testing.T) *env {
	t.Helper()
	db, _ := pgtest.Pool(t)
	if err := store.Migrate(t.Context(), db, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	ns := natstest.Start(t)
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketLeases)
	if err != nil {
		t.Fatal(err)
	}
	return &env{db: db, ns: ns, kv: kv, now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (e *env) scheduler(id string, cfg Config) *Scheduler {
	s := New(e.db, e.ns.JS, e.kv, id, cfg, slog.New(slog.DiscardHandler))
	s.now = func() time.Time { return e.now }
	return s
}

type book struct {
	site     string // "" for xsw
	id       string
	finished bool
	checked  time.Duration // before now; 0: never checked
	reads    int64
	readAgo  time.Duration // 0: never read
}

func (e *env) insert(t *testing.T, books ...book) {
	t.Helper()
	for _, b := range books {
		var checked, readAt *time.Time
		if b.checked > 0 {
			c := e.now.Add(-b.checked)
			checked = &c
		}
		if b.readAgo > 0 {
			r := e.now.Add(-b.readAgo)
			readAt = &r
		}
		site := b.site
		if site == "" {
			site = events.LegacySite
		}
		_, err := e.db.Exec(t.Context(), `
			INSERT INTO books (site, id, name, finished, checked_at, read_count, read_at, last_chapter_id)
			VALUES ($1, $2, 'book', $3, $4, $5, $6, '900')`, site, b.id, b.finished, checked, b.reads, readAt)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// takeQueued consumes every waiting refresh request, as fetchers would, and returns them.
func (e *env) takeQueued(t *testing.T) []events.BookRequested {
	t.Helper()
	c, err := e.ns.JS.CreateOrUpdateConsumer(t.Context(), events.StreamRequests, jetstream.ConsumerConfig{
		Durable: "test-refresh", FilterSubject: events.RequestSubjectLane(events.LaneRefresh), AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []events.BookRequested
	for {
		batch, err := c.FetchNoWait(500)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var r events.BookRequested
			if err := events.Decode(m.Data(), &r); err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
			if err := m.DoubleAck(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if n == 0 {
			return out
		}
	}
}

var cfg = Config{Interval: 6 * time.Hour, FinishedInterval: 7 * 24 * time.Hour, BudgetPerHour: 100, Sites: []string{events.LegacySite}}

func TestDueBooksMostReadAndOldestFirst(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.insert(t,
		book{id: "1", checked: 7 * time.Hour},                      // due
		book{id: "2", checked: time.Hour},                          // fresh
		book{id: "3", finished: true, checked: 8 * 24 * time.Hour}, // due: finished, a week
		book{id: "4", finished: true, checked: 24 * time.Hour},     // fresh: finished
		book{id: "5", checked: 4 * time.Hour, readAgo: time.Hour},  // due: read today, half the interval
		book{id: "6"}, // due: never checked
		book{id: "7", checked: 10 * time.Hour, reads: 100},             // due, most read
		book{id: "8", checked: 4 * time.Hour, readAgo: 48 * time.Hour}, // fresh: read long ago
	)
	s := e.scheduler("a", cfg)
	n, err := s.Tick(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Queued books are not queued again while they wait.
	e.insert(t, book{id: "9", checked: 9 * time.Hour})
	if n, err := s.Tick(t.Context()); err != nil || n != 1 {
		t.Errorf("second tick queued %d (%v), want only the new book", n, err)
	}
	got := e.takeQueued(t)
	var ids []string
	for _, r := range got {
		ids = append(ids, r.BookID)
		if r.Site != events.LegacySite || r.Lane != events.LaneRefresh || r.Known == nil || r.Known.LastChapterID != "900" || r.Force {
			t.Errorf("request %+v: want refresh lane, not forced, with the known state", r)
		}
	}
	// Most read first, then oldest checked (never checked first); then the later one.
	want := "7,6,3,1,5,9"
	if strings.Join(ids, ",") != want || n != 5 {
		t.Errorf("queued %d then 1: %v, want %s", n, ids, want)
	}
}

// TestBudgetHoldsOverSimulatedHours runs two simulated hours a minute at a time with far
// more due books than the budget allows, completing every queued job at once as a fetcher
// would (one request each): no hour ever exceeds the budget, and the budget is used.
func TestBudgetHoldsOverSimulatedHours(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var books []book
	for i := 1; i <= 400; i++ {
		books = append(books, book{id: strconv.Itoa(i), checked: 7 * time.Hour})
	}
	e.insert(t, books...)
	const budget = 60
	s := e.scheduler("a", Config{Interval: 6 * time.Hour, FinishedInterval: 7 * 24 * time.Hour, BudgetPerHour: budget, Sites: cfg.Sites})
	var sent []time.Time
	start := e.now
	for minute := 0; minute < 120; minute++ {
		if _, err := s.Tick(t.Context()); err != nil {
			t.Fatal(err)
		}
		for i, r := range e.takeQueued(t) {
			sent = append(sent, e.now)
			_, err := e.db.Exec(t.Context(), `
				INSERT INTO job_history (job_id, site, book_id, lane, status, attempts, finished_at, requests)
				VALUES ($1, $2, $3, 'refresh', 'completed', 1, $4, 1)`, fmt.Sprintf("%s-%d-%d", r.BookID, minute, i), r.Site, r.BookID, e.now)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.db.Exec(t.Context(), `UPDATE books SET checked_at = $1 WHERE site = $2 AND id = $3`, e.now, r.Site, r.BookID); err != nil {
				t.Fatal(err)
			}
		}
		e.now = e.now.Add(time.Minute)
	}
	sort.Slice(sent, func(i, j int) bool { return sent[i].Before(sent[j]) })
	worst := 0
	for i := range sent {
		j := i
		for j < len(sent) && sent[j].Sub(sent[i]) < time.Hour {
			j++
		}
		worst = max(worst, j-i)
	}
	t.Logf("%d refresh requests over %v with a budget of %d/h; most in any hour: %d", len(sent), e.now.Sub(start), budget, worst)
	if worst > budget {
		t.Errorf("%d refresh requests within one hour, budget %d", worst, budget)
	}
	if len(sent) < 2*budget*9/10 {
		t.Errorf("only %d refresh requests in two hours, want the budget (%d/h) used", len(sent), budget)
	}
}

// TestOnlyConfiguredSites: books of the configured sites are refreshed, each requested
// under its own site and with its own known state, also when two sites share an id;
// books of a site no longer configured are not.
func TestOnlyConfiguredSites(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.insert(t,
		book{id: "7", checked: 7 * time.Hour, reads: 3},
		book{site: "czbooks", id: "7", checked: 8 * time.Hour, reads: 2},
		book{site: "czbooks", id: "cr382b", checked: 9 * time.Hour, reads: 1},
		book{site: "gone", id: "7", checked: 10 * time.Hour, reads: 100},
	)
	if _, err := e.db.Exec(t.Context(), `INSERT INTO chapters (site, book_id, num, chapter_id, title, url)
		SELECT 'czbooks', '7', n, 'c' || n, 't', 'u' FROM generate_series(1, 4) AS n`); err != nil {
		t.Fatal(err)
	}
	sites := cfg
	sites.Sites = []string{events.LegacySite, "czbooks"}
	if n, err := e.scheduler("a", sites).Tick(t.Context()); err != nil || n != 3 {
		t.Fatalf("queued %d (%v), want 3", n, err)
	}
	var got []string
	for _, r := range e.takeQueued(t) {
		got = append(got, fmt.Sprintf("%s:%d", events.Key(r.Site, r.BookID), r.Known.Chapters))
	}
	if want := "xsw.7:0,czbooks.7:4,czbooks.cr382b:0"; strings.Join(got, ",") != want {
		t.Errorf("queued %v, want %s", got, want)
	}

	// No site configured: nothing is refreshed.
	none := cfg
	none.Sites = nil
	e.now = e.now.Add(24 * time.Hour)
	if n, err := e.scheduler("a", none).Tick(t.Context()); err != nil || n != 0 {
		t.Errorf("queued %d (%v) with no site configured", n, err)
	}
}

func TestOneLeaderAtATime(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a, b := e.scheduler("a", cfg), e.scheduler("b", cfg)
	if !a.lead(t.Context()) {
		t.Fatal("first replica did not take the free lease")
	}
	if b.lead(t.Context()) {
		t.Fatal("second replica leads while the first holds the lease")
	}
	if !a.lead(t.Context()) {
		t.Fatal("leader could not renew its lease")
	}
	// The leader stops: it gives the lease up, and the other takes over at once.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.Run(ctx)
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-done
	if !b.lead(t.Context()) {
		t.Fatal("second replica could not lead after the first stopped")
	}
}

func TestTickFollowsTheShortestInterval(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name               string
		interval, finished time.Duration
		want               time.Duration
	}{
		{"defaults", 6 * time.Hour, 7 * 24 * time.Hour, time.Minute},
		{"a few minutes", 3 * time.Minute, 7 * 24 * time.Hour, 45 * time.Second},
		{"a few seconds", 4 * time.Second, 7 * 24 * time.Hour, time.Second},
		{"half a minute", 30 * time.Second, 7 * 24 * time.Hour, 7500 * time.Millisecond},
		{"shorter than the floor", 500 * time.Millisecond, 7 * 24 * time.Hour, time.Second},
		{"finished books more often", 6 * time.Hour, 40 * time.Second, 20 * time.Second},
		{"finished interval unset", 20 * time.Second, 0, 5 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			c.Interval, c.FinishedInterval = tt.interval, tt.finished
			if got := New(nil, nil, nil, "a", c, slog.New(slog.DiscardHandler)).cfg.Tick; got != tt.want {
				t.Errorf("tick %v, want %v", got, tt.want)
			}
		})
	}
	c := cfg
	c.Tick = 5 * time.Minute
	if got := New(nil, nil, nil, "a", c, slog.New(slog.DiscardHandler)).cfg.Tick; got != c.Tick {
		t.Errorf("tick %v, want the configured %v", got, c.Tick)
	}
}

// TestShortIntervalRefreshesEveryRound runs the scheduler on the real clock with an
// interval of 4s, and acts as the fetchers and the indexer would: it takes each refresh
// request and records a new check of the book at once. The book is asked for each time it
// is due again, every 4 to 5 seconds: not once a minute, nor once per request-id window
// (two minutes), which would drop the requests of one book that fall inside it.
func TestShortIntervalRefreshesEveryRound(t *testing.T) {
	e := setup(t)
	e.now = time.Now()
	e.insert(t, book{id: "1", checked: time.Hour})
	short := cfg
	short.Interval = 4 * time.Second
	s := New(e.db, e.ns.JS, e.kv, "a", short, slog.New(slog.DiscardHandler))
	c, err := e.ns.JS.CreateOrUpdateConsumer(t.Context(), events.StreamRequests, jetstream.ConsumerConfig{
		Durable: "test-refresh", FilterSubject: events.RequestSubjectLane(events.LaneRefresh), AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()

	const want, within = 3, 14 * time.Second
	start := time.Now()
	var asked []time.Time
	for len(asked) < want && time.Since(start) < within {
		batch, err := c.Fetch(1, jetstream.FetchMaxWait(250*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			var r events.BookRequested
			if err := events.Decode(m.Data(), &r); err != nil {
				t.Fatal(err)
			}
			if r.BookID != "1" || r.Lane != events.LaneRefresh {
				t.Fatalf("request %+v, want book 1 in the refresh lane", r)
			}
			at := time.Now()
			asked = append(asked, at)
			if _, err := e.db.Exec(t.Context(), `UPDATE books SET checked_at = $1 WHERE id = '1'`, at); err != nil {
				t.Fatal(err)
			}
			if err := m.DoubleAck(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
	}
	var gaps []time.Duration
	for i := 1; i < len(asked); i++ {
		gaps = append(gaps, asked[i].Sub(asked[i-1]).Round(time.Millisecond))
	}
	t.Logf("asked for %d times in %v, %v apart", len(asked), time.Since(start).Round(time.Millisecond), gaps)
	if len(asked) < want {
		t.Errorf("book asked for %d times in %v with an interval of %v, want at least %d", len(asked), within, short.Interval, want)
	}
	for _, g := range gaps {
		// Asked for again only once due: the interval after the check, which followed
		// the request.
		if g < short.Interval-time.Millisecond {
			t.Errorf("book asked for again %v after the last request, before its interval of %v", g, short.Interval)
		}
	}
}

// TestOneRequestPerRound: a round of refresh (one check of the book) is asked for once,
// even when two replicas both queue it (the lease changing hands) after its request was
// taken; the next round, after a new check, is asked for even seconds later, inside the
// request-id window.
func TestOneRequestPerRound(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.insert(t, book{id: "1", checked: 5 * time.Second})
	short := cfg
	short.Interval = 4 * time.Second
	a, b := e.scheduler("a", short), e.scheduler("b", short)
	if n, err := a.Tick(t.Context()); err != nil || n != 1 {
		t.Fatalf("first tick queued %d (%v), want the due book", n, err)
	}
	if got := len(e.takeQueued(t)); got != 1 {
		t.Fatalf("%d requests taken, want 1", got)
	}
	// The request was taken but the book not checked yet: the same round.
	if n, err := b.Tick(t.Context()); err != nil || n != 0 {
		t.Errorf("another replica queued the same round again: %d (%v)", n, err)
	}
	// Checked now, due again 5s later: a new round.
	if _, err := e.db.Exec(t.Context(), `UPDATE books SET checked_at = $1 WHERE id = '1'`, e.now); err != nil {
		t.Fatal(err)
	}
	e.now = e.now.Add(5 * time.Second)
	if n, err := a.Tick(t.Context()); err != nil || n != 1 {
		t.Errorf("next round queued %d (%v), want the book again", n, err)
	}
	if got := e.takeQueued(t); len(got) != 1 || got[0].BookID != "1" {
		t.Errorf("took %+v, want the book's next round", got)
	}
}

// TestShrinkRefusedBookStaysDue: a stored, unfinished book of 20 chapters, checked 7
// hours ago, is synced; the site's page says the book is finished and lists none of its
// chapters. The store refuses the sync, and the book stays unfinished: the refresh
// scheduler asks for it again once the interval for unfinished books has passed since
// the attempt, not a week later.
func TestShrinkRefusedBookStaysDue(t *testing.T) {
	t.Parallel()
	e := setup(t)
	st := store.New(e.db)
	sync := func(job string, chapters int, finished bool, at time.Time) store.Result {
		t.Helper()
		h := events.Header{Version: events.Version}
		meta := &events.BookFetched{Header: h, JobID: job, Site: events.LegacySite, BookID: "1", FetchedAt: at,
			Book: events.BookMeta{Name: "book", Status: "連載中", Finished: finished, LastChapterID: fmt.Sprint(900 + chapters)}}
		if finished {
			meta.Book.Status = "全本"
		}
		toc := &events.TOCPageFetched{Header: h, JobID: job, Site: events.LegacySite, BookID: "1", Page: 1, TotalPages: 1, FetchedAt: at}
		for n := 1; n <= chapters; n++ {
			id := fmt.Sprint(900 + n)
			toc.Chapters = append(toc.Chapters, events.ChapterRef{Number: n, ChapterID: id, Title: id, URL: "https://m.xsw.tw/1/" + id + ".html"})
		}
		done := &events.JobEvent{Header: h, Kind: events.JobCompleted, JobID: job, Site: events.LegacySite, BookID: "1",
			Lane: events.LaneRefresh, Attempt: 1, StartedAt: at, At: at.Add(time.Second), Chapters: chapters, TOCPages: 1, Requests: 1}
		res, err := st.Apply(t.Context(), []events.Payload{meta, toc, done})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	sync("xsw.1-1", 20, false, e.now.Add(-7*time.Hour))
	attempt := e.now
	if res := sync("xsw.1-2", 0, true, attempt); len(res.Refused) == 0 {
		t.Fatalf("refusals %+v, want the sync refused", res.Refused)
	}

	s := e.scheduler("a", cfg)
	e.now = attempt.Add(time.Minute)
	if n, err := s.Tick(t.Context()); err != nil || n != 0 {
		t.Errorf("a minute after the attempt: queued %d (%v), want none: the attempt was a check", n, err)
	}
	e.now = attempt.Add(cfg.Interval + 2*time.Second)
	if n, err := s.Tick(t.Context()); err != nil || n != 1 {
		t.Errorf("the interval after the attempt: queued %d (%v), want the book again", n, err)
	}
	if got := e.takeQueued(t); len(got) != 1 || got[0].BookID != "1" || got[0].Known == nil || got[0].Known.Chapters != 20 {
		t.Errorf("took %+v, want book 1 with its 20 chapters known", got)
	}
}
