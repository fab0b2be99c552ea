package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/testkit"
	"github.com/xswtw/xsw/services/gateway/internal/testdb"
)

// bury publishes a dead letter of an xsw book, as a fetcher does when a request gives up.
func (e *env) bury(bookID string, lane events.Lane, priority int, died time.Time) {
	e.t.Helper()
	e.burySite("xsw", bookID, lane, priority, died)
}

// burySite is bury for a book of site.
func (e *env) burySite(site, bookID string, lane events.Lane, priority int, died time.Time) {
	e.t.Helper()
	req := events.NewBookRequested(site, bookID, lane, priority, false, "test", died.Add(-time.Hour))
	dl := events.DeadLetter{Header: events.Header{Version: events.Version}, Request: req, JobID: bookID + "-3",
		Attempts: 5, Error: "fetch book home: source answered 503", DiedAt: died}
	if _, err := broker.Publish(e.t.Context(), e.ns.JS, dl.Subject(), "", &dl); err != nil {
		e.t.Fatal(err)
	}
}

func TestAdminDeadLetters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.admin(http.MethodGet, "/xsw/api/admin/jobs/dead")
	expect(t, r, http.StatusOK)
	if string(r.body) != `{"dead_letters":[],"total":0}` {
		t.Errorf("no letters: %s", r.body)
	}
	at := time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)
	e.bury("11", events.LanePrefetch, 0, at)
	e.bury("12", events.LaneManual, 10, at.Add(time.Minute))
	if _, err := e.ns.JS.Publish(t.Context(), events.SubjectDead("xsw", "13"), []byte("garbage")); err != nil {
		t.Fatal(err)
	}

	r = e.admin(http.MethodGet, "/xsw/api/admin/jobs/dead")
	expect(t, r, http.StatusOK)
	var got struct {
		Total       int              `json:"total"`
		DeadLetters []map[string]any `json:"dead_letters"`
	}
	r.decode(t, &got)
	if got.Total != 3 || len(got.DeadLetters) != 3 {
		t.Fatalf("letters %s", r.body)
	}
	want := map[string]any{"book_id": "12", "lane": "manual", "priority": 10.0, "error": "fetch book home: source answered 503",
		"attempts": 5.0, "died_at": "2026-01-21T12:01:00Z", "job_id": "12-3"}
	for k, v := range want {
		if got.DeadLetters[0][k] != v {
			t.Errorf("newest letter %s = %v, want %v", k, got.DeadLetters[0][k], v)
		}
	}
	if u := got.DeadLetters[2]; u["book_id"] != "13" || u["lane"] != nil || u["died_at"] != nil || u["error"] == "" {
		t.Errorf("unreadable letter %v", u)
	}
	r = e.admin(http.MethodGet, "/xsw/api/admin/jobs/dead?limit=1")
	r.decode(t, &got)
	if got.Total != 3 || len(got.DeadLetters) != 1 {
		t.Errorf("limit=1: %s", r.body)
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=x"} {
		expect(t, e.admin(http.MethodGet, "/xsw/api/admin/jobs/dead"+q), http.StatusBadRequest)
	}
}

func (e *env) deadLeft() uint64 {
	e.t.Helper()
	s, err := e.ns.JS.Stream(e.t.Context(), events.StreamDead)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State.Msgs
}

func TestAdminReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.bury("21", events.LaneManual, 7, time.Now())
	r := e.admin(http.MethodPost, "/xsw/api/admin/jobs/dead/21/replay")
	expect(t, r, http.StatusOK)
	if string(r.body) != `{"status":"queued","site":"xsw","book_id":"21","lane":"manual","priority":7,"force":true,"job_id":"21-3"}` {
		t.Errorf("replay %s", r.body)
	}
	if req, ok := e.waiting("21")[events.LaneManual]; !ok || !req.Force || req.Priority != 7 {
		t.Errorf("replayed request %+v (found %v)", req, ok)
	}
	if n := e.deadLeft(); n != 0 {
		t.Errorf("%d dead letters left", n)
	}
	r = e.admin(http.MethodPost, "/xsw/api/admin/jobs/dead/21/replay")
	expect(t, r, http.StatusNotFound)
	if !strings.Contains(r.detail(t), "no dead letter") {
		t.Errorf("detail %q", r.detail(t))
	}
	expect(t, e.admin(http.MethodPost, "/xsw/api/admin/jobs/dead/2x/replay"), http.StatusBadRequest)
}

// TestAdminAcceptShrink accepts the shrink of a stored book with a dead letter: the
// acceptance is on the event stream, then the forced request on the request stream, in
// that order, and the letter is gone.
func TestAdminAcceptShrink(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	testdb.InsertBook(t, e.pool, "51", "Fifty-one", true)
	testdb.InsertSiteBook(t, e.pool, "toy", "ab5", "Toy", true)
	e.bury("51", events.LanePrefetch, 0, time.Now())
	e.burySite("toy", "ab5", events.LanePrefetch, 0, time.Now())
	rec := e.record()
	before := time.Now().UTC()

	r := e.admin(http.MethodPost, "/xsw/api/admin/books/51/accept-shrink")
	expect(t, r, http.StatusOK)
	var got api.ShrinkAccepted
	r.decode(t, &got)
	if got.Status != "accepted" || got.Site != "xsw" || got.BookID != "51" || got.Requested != api.RequestQueued ||
		got.Lane != events.LaneManual || got.Priority != events.DefaultManualPriority || !got.Force ||
		!got.DeadLetterDeleted || got.JobID == nil || *got.JobID != "51-3" || got.AcceptedAt.Before(before) {
		t.Errorf("accept-shrink %s", r.body)
	}

	stream, err := e.ns.JS.Stream(t.Context(), events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(t.Context(), events.SubjectAcceptShrink("xsw", "51"))
	if err != nil {
		t.Fatalf("no acceptance on %s: %v", events.StreamEvents, err)
	}
	var cmd events.BookShrinkAccepted
	if err := events.Decode(msg.Data, &cmd); err != nil {
		t.Fatal(err)
	}
	if cmd.Site != "xsw" || cmd.BookID != "51" || cmd.Reason != "admin" || !cmd.AcceptedAt.Equal(got.AcceptedAt) {
		t.Errorf("acceptance %+v, answer accepted_at %s", cmd, got.AcceptedAt)
	}
	requests, err := e.ns.JS.Stream(t.Context(), events.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	reqMsg, err := requests.GetLastMsgForSubject(t.Context(), events.RequestSubject(events.LaneManual, "xsw", "51"))
	if err != nil {
		t.Fatalf("no request in the manual lane: %v", err)
	}
	var req events.BookRequested
	if err := events.Decode(reqMsg.Data, &req); err != nil {
		t.Fatal(err)
	}
	if !req.Force || req.Priority != events.DefaultManualPriority {
		t.Errorf("request %+v, want forced", req)
	}
	if reqMsg.Time.Before(msg.Time) {
		t.Errorf("request stored at %s, before the acceptance (%s)", reqMsg.Time, msg.Time)
	}
	want := []string{events.SubjectAcceptShrink("xsw", "51"), events.RequestSubject(events.LaneManual, "xsw", "51")}
	testkit.Eventually(t, 10*time.Second, "the acceptance, then the request, published", func() bool {
		return slices.Equal(rec.subjects(), want)
	})
	if n := e.deadLeft(); n != 1 {
		t.Errorf("%d dead letters left, want toy's", n)
	}

	// Another site's book, named by ?site=.
	r = e.admin(http.MethodPost, "/xsw/api/admin/books/ab5/accept-shrink?site=toy")
	expect(t, r, http.StatusOK)
	if r.decode(t, &got); got.Site != "toy" || got.BookID != "ab5" || !got.DeadLetterDeleted {
		t.Errorf("toy's accept-shrink %s", r.body)
	}
	if _, ok := e.waitingSite("toy", "ab5")[events.LaneManual]; !ok || e.deadLeft() != 0 {
		t.Errorf("toy's book not requested (%v), or %d letters left", ok, e.deadLeft())
	}

	// No letter left: accepted all the same; the forced request already waits.
	r = e.admin(http.MethodPost, "/xsw/api/admin/books/51/accept-shrink")
	expect(t, r, http.StatusOK)
	if r.decode(t, &got); got.Requested != api.RequestAlreadyQueued || got.DeadLetterDeleted || got.JobID != nil {
		t.Errorf("second accept-shrink %s", r.body)
	}
}

// TestAdminAcceptShrinkRefused checks that nothing is accepted, published or deleted for
// a malformed id, an unknown site, a book that is not stored, or a caller without the
// token.
func TestAdminAcceptShrinkRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	testdb.InsertBook(t, e.pool, "53", "Fifty-three", true)
	e.bury("52", events.LanePrefetch, 0, time.Now())
	e.bury("53", events.LanePrefetch, 0, time.Now())
	rec := e.record()
	for _, tc := range []struct {
		name, path string
		header     []string
		status     int
		detail     string
	}{
		{"not the site's spelling", "/xsw/api/admin/books/053/accept-shrink", nil, http.StatusBadRequest, "book_id \"053\" names no book"},
		{"not an id", "/xsw/api/admin/books/5.3/accept-shrink", nil, http.StatusBadRequest, "book_id must be 1 to 64 ASCII letters"},
		{"another site's spelling", "/xsw/api/admin/books/AB5/accept-shrink?site=toy", nil, http.StatusBadRequest, "it is not how site toy writes"},
		{"unknown site", "/xsw/api/admin/books/53/accept-shrink?site=nope", nil, http.StatusNotFound, "unknown site \"nope\""},
		{"not stored", "/xsw/api/admin/books/52/accept-shrink", nil, http.StatusNotFound, "book 52 of site xsw is not stored"},
		{"no token", "/xsw/api/admin/books/53/accept-shrink", []string{}, http.StatusUnauthorized, "admin endpoints need Authorization"},
		{"wrong token", "/xsw/api/admin/books/53/accept-shrink", []string{"Authorization", "Bearer nope"}, http.StatusUnauthorized, "admin endpoints need Authorization"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			header := tc.header
			if header == nil {
				header = []string{"Authorization", "Bearer " + adminToken}
			}
			r := e.request(http.MethodPost, tc.path, header...)
			expect(t, r, tc.status)
			if d := r.detail(t); !strings.Contains(d, tc.detail) {
				t.Errorf("detail %q, want %q", d, tc.detail)
			}
		})
	}
	if err := e.srv.Shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := rec.subjects(); len(got) != 0 {
		t.Errorf("published %v", got)
	}
	if n := e.deadLeft(); n != 2 {
		t.Errorf("%d dead letters left, want both", n)
	}
}

func TestAdminReplayAll(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.admin(http.MethodPost, "/xsw/api/admin/jobs/dead/replay_all")
	expect(t, r, http.StatusOK)
	if string(r.body) != `{"book_ids":[],"remaining":0,"replayed":0,"statuses":{}}` {
		t.Errorf("nothing to replay: %s", r.body)
	}
	now := time.Now()
	e.bury("31", events.LanePrefetch, 0, now)
	e.bury("32", events.LaneRefresh, 0, now.Add(time.Second))
	e.putHeartbeat("fetcher-a", 1, "32") // being synced already
	r = e.admin(http.MethodPost, "/xsw/api/admin/jobs/dead/replay_all")
	expect(t, r, http.StatusOK)
	if string(r.body) != `{"book_ids":["31","32"],"remaining":0,"replayed":2,"statuses":{"already_syncing":1,"queued":1}}` {
		t.Errorf("replay_all %s", r.body)
	}
	if n := e.deadLeft(); n != 0 {
		t.Errorf("%d dead letters left", n)
	}
}

func TestAdminPurgeLane(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, p := range []string{"/xsw/api/admin/jobs/sync/41?priority=0", "/xsw/api/admin/jobs/sync/42?priority=0", "/xsw/api/admin/jobs/sync/43"} {
		expect(t, e.admin(http.MethodPost, p), http.StatusOK)
	}
	r := e.admin(http.MethodPost, "/xsw/api/admin/jobs/purge?lane=prefetch")
	expect(t, r, http.StatusOK)
	if string(r.body) != `{"dropped":2,"lane":"prefetch","status":"purged"}` {
		t.Errorf("purge %s", r.body)
	}
	if n := e.stored(); n != 1 {
		t.Errorf("%d requests left, want the manual one", n)
	}
	for _, q := range []string{"", "?lane=", "?lane=urgent", "?lane=PREFETCH"} {
		r := e.admin(http.MethodPost, "/xsw/api/admin/jobs/purge"+q)
		expect(t, r, http.StatusBadRequest)
		if !strings.Contains(r.detail(t), "interactive, manual, prefetch, refresh") {
			t.Errorf("%s: detail %q", q, r.detail(t))
		}
	}
}

func TestAdminCacheClearAndInvalidate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	testdb.InsertBook(t, e.pool, "1", "One", true)
	testdb.InsertBook(t, e.pool, "2", "Two", true)
	e.serve(events.SubjectRPCCategories, func([]byte) events.Payload {
		return categoriesReply(events.Category{ID: "1", Name: "玄幻小說", URL: "u"})
	})
	expect(t, e.get("/xsw/api/books/1"), http.StatusOK)
	expect(t, e.get("/xsw/api/books/2"), http.StatusOK)
	expect(t, e.get("/xsw/api/categories"), http.StatusOK)

	r := e.admin(http.MethodPost, "/xsw/api/admin/cache/invalidate/1")
	expect(t, r, http.StatusOK)
	hasKeys(t, "invalidate", r.body, "status", "book_id", "entries", "replica")
	var inv map[string]any
	r.decode(t, &inv)
	if inv["status"] != "invalidated" || inv["book_id"] != "1" || inv["entries"] != 1.0 {
		t.Errorf("invalidate %s", r.body)
	}
	if _, ok := e.srv.books.Get(events.Key("xsw", "1"), "book"); ok {
		t.Error("book 1 still cached")
	}
	if _, ok := e.srv.books.Get(events.Key("xsw", "2"), "book"); !ok {
		t.Error("book 2 dropped too")
	}
	expect(t, e.admin(http.MethodPost, "/xsw/api/admin/cache/invalidate/x"), http.StatusBadRequest)

	r = e.admin(http.MethodPost, "/xsw/api/admin/cache/clear")
	expect(t, r, http.StatusOK)
	var cl map[string]any
	r.decode(t, &cl)
	if cl["status"] != "cleared" || cl["book_entries"] != 1.0 || cl["listing_entries"] != 1.0 || cl["replica"] == "" {
		t.Errorf("clear %s", r.body)
	}
	if e.srv.books.Len()+e.srv.listings.Len() != 0 {
		t.Error("entries left after clear")
	}
}

// onPurge plays the indexer for a purge command of bookID: once the command is on the
// event stream, it clears the texts and announces the book.
func (e *env) onPurge(bookID string) {
	e.t.Helper()
	done := make(chan struct{})
	e.t.Cleanup(func() { <-done })
	go func() {
		defer close(done)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			s, err := e.ns.JS.Stream(context.Background(), events.StreamEvents)
			if err != nil {
				e.t.Errorf("stream: %v", err)
				return
			}
			msg, err := s.GetLastMsgForSubject(context.Background(), events.SubjectPurgeBook("xsw", bookID))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			if err != nil {
				e.t.Errorf("look for the purge: %v", err)
				return
			}
			var cmd events.BookPurgeRequested
			if err := events.Decode(msg.Data, &cmd); err != nil {
				e.t.Errorf("purge command: %v", err)
				return
			}
			e.exec(`UPDATE chapters SET text = NULL, fetched_at = NULL WHERE book_id = $1 AND fetched_at <= $2`, bookID, cmd.RequestedAt)
			e.publishIndexed(bookID, 3, true)
			return
		}
		e.t.Errorf("no purge of book %s requested", bookID)
	}()
}

func TestAdminPurgeTexts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.InteractiveWait = 10 * time.Second })
	testdb.InsertBook(t, e.pool, "5", "Five", true)
	testdb.InsertChapters(t, e.pool, "5", 3)
	testdb.Exec(t, e.pool, `UPDATE chapters SET text = '舊文', fetched_at = now() - interval '1 minute' WHERE book_id = '5' AND num <= 2`)
	r := e.get("/xsw/api/books/5/chapters/1")
	expect(t, r, http.StatusOK)
	e.onPurge("5")

	r = e.admin(http.MethodDelete, "/xsw/api/admin/cache/chapters/5")
	expect(t, r, http.StatusOK)
	if string(r.body) != `{"book_id":"5","site":"xsw","status":"purged","texts_cleared":2}` {
		t.Errorf("purge %s", r.body)
	}
	if _, ok := e.srv.books.Get(events.Key("xsw", "5"), "text:1"); ok {
		t.Error("the cached text outlived the purge")
	}
	var left int
	if err := e.pool.QueryRow(t.Context(), `SELECT count(*) FROM chapters WHERE book_id = '5' AND text IS NOT NULL`).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d texts left, %v", left, err)
	}
}

func TestAdminPurgeTextsFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.admin(http.MethodDelete, "/xsw/api/admin/cache/chapters/6")
	expect(t, r, http.StatusNotFound)
	if !strings.Contains(r.detail(t), "not stored") {
		t.Errorf("detail %q", r.detail(t))
	}
	expect(t, e.admin(http.MethodDelete, "/xsw/api/admin/cache/chapters/abc"), http.StatusBadRequest)
	expect(t, e.admin(http.MethodPost, "/xsw/api/admin/cache/chapters/6"), http.StatusNotFound) // DELETE only

	// No indexer answers within the wait: 202, and the command waits on the stream.
	testdb.InsertBook(t, e.pool, "7", "Seven", true)
	r = e.admin(http.MethodDelete, "/xsw/api/admin/cache/chapters/7")
	expectAccepted(t, r)
	if string(r.body) != `{"book_id":"7","site":"xsw","status":"queued","texts_stored":0}` {
		t.Errorf("202 body %s", r.body)
	}
	s, err := e.ns.JS.Stream(t.Context(), events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLastMsgForSubject(t.Context(), events.SubjectPurgeBook("xsw", "7")); err != nil {
		t.Errorf("purge command not on the stream: %v", err)
	}
}

func TestAdminStatsOverview(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	testdb.InsertBook(t, e.pool, "1", "One", true)
	testdb.InsertChapters(t, e.pool, "1", 3)
	testdb.Exec(t, e.pool, `UPDATE chapters SET text = 'x' WHERE num = 1`)
	testdb.Exec(t, e.pool, `INSERT INTO job_history (job_id, site, book_id, lane, status, finished_at) VALUES
		('xsw.1-1', 'xsw', '1', 'prefetch', 'completed', now()), ('xsw.2-1', 'xsw', '2', 'prefetch', 'failed', now())`)
	e.putHeartbeat("fetcher-b", 2, "9")
	e.putHeartbeat("fetcher-a", 1)
	e.bury("8", events.LanePrefetch, 0, time.Now())
	expect(t, e.admin(http.MethodPost, "/xsw/api/admin/jobs/sync/4"), http.StatusOK)
	expect(t, e.get("/xsw/api/books/1"), http.StatusOK)

	r := e.admin(http.MethodGet, "/xsw/api/admin/stats")
	expect(t, r, http.StatusOK)
	hasKeys(t, "stats", r.body, "database", "cache", "jobs", "queue_by_lane", "dead_letters", "rate_interval_seconds", "circuit", "fetchers")
	var got api.AdminStats
	r.decode(t, &got)
	if got.Database.Books != 1 || got.Database.Chapters != 3 || got.Database.ChaptersWithContent != 1 {
		t.Errorf("database %+v", got.Database)
	}
	if got.Cache.BookEntries != 1 || got.Cache.TTLSeconds != 60 || got.Cache.ListingTTLSeconds != 60 || got.Cache.Replica == "" {
		t.Errorf("cache %+v", got.Cache)
	}
	if got.Jobs.QueueSize != 1 || got.Jobs.ActiveJobs != 1 || got.Jobs.CompletedCount != 1 || got.Jobs.FailedCount != 1 ||
		got.Jobs.Workers != 3 || !got.Jobs.Running || got.QueueByLane[events.LaneManual] != 1 || got.DeadLetters != 1 {
		t.Errorf("jobs %+v, lanes %v, dead %d", got.Jobs, got.QueueByLane, got.DeadLetters)
	}
	if got.RateInterval == nil || *got.RateInterval != 2 || got.Circuit == nil || *got.Circuit != "closed" {
		t.Errorf("politeness %v %v", got.RateInterval, got.Circuit)
	}
	if len(got.Fetchers) != 2 || got.Fetchers[0].FetcherID != "fetcher-a" || got.Fetchers[1].ActiveJobs != 1 ||
		got.Fetchers[1].ActiveJobIDs[0] != "9" || got.Fetchers[1].Interval != 2 || got.Fetchers[1].Circuit != "closed" || got.Fetchers[1].At == nil {
		t.Errorf("fetchers %+v", got.Fetchers)
	}

	e.pool.Close()
	r = e.admin(http.MethodGet, "/xsw/api/admin/stats")
	expect(t, r, http.StatusServiceUnavailable)
}
