package jobs_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
)

// bury publishes a dead letter for a book of the site xsw, as a fetcher does when a
// request gives up.
func bury(t *testing.T, ns *natstest.Server, bookID string, lane events.Lane, priority int, died time.Time) {
	t.Helper()
	burySite(t, ns, site, bookID, lane, priority, died)
}

func burySite(t *testing.T, ns *natstest.Server, site, bookID string, lane events.Lane, priority int, died time.Time) {
	t.Helper()
	req := events.NewBookRequested(site, bookID, lane, priority, false, "test", died.Add(-time.Hour))
	dl := events.DeadLetter{Header: events.Header{Version: events.Version}, Request: req, JobID: bookID + "-9",
		Attempts: 5, Error: "source: 503", DiedAt: died}
	if _, err := broker.Publish(t.Context(), ns.JS, events.SubjectDead(site, bookID), "", &dl); err != nil {
		t.Fatal(err)
	}
}

func deadCount(t *testing.T, m *jobs.Manager) int {
	t.Helper()
	_, n, err := m.DeadLetters(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	m, ns := newManager(t)
	if got, n, err := m.DeadLetters(t.Context(), 10); err != nil || n != 0 || len(got) != 0 {
		t.Fatalf("no letters: %v %d %v", got, n, err)
	}
	at := time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)
	bury(t, ns, "1", events.LanePrefetch, 0, at)
	bury(t, ns, "2", events.LaneManual, 10, at.Add(2*time.Minute))
	bury(t, ns, "3", events.LaneRefresh, 0, at.Add(time.Minute))
	bury(t, ns, "1", events.LaneInteractive, 100, at.Add(3*time.Minute)) // the newest per book replaces the older
	burySite(t, ns, "toy", "1", events.LanePrefetch, 0, at.Add(90*time.Second))
	if _, err := ns.JS.Publish(t.Context(), events.SubjectDead("toy", "4"), []byte("{not json")); err != nil {
		t.Fatal(err)
	}

	got, n, err := m.DeadLetters(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 || len(got) != 5 {
		t.Fatalf("%d letters (total %d), want 5", len(got), n)
	}
	wantOrder := []string{"xsw/1", "xsw/2", "toy/1", "xsw/3", "toy/4"} // newest death first; the unreadable one has none
	for i, dl := range got {
		if dl.Site+"/"+dl.BookID != wantOrder[i] {
			t.Errorf("letter %d is book %s/%s, want %s", i, dl.Site, dl.BookID, wantOrder[i])
		}
	}
	if dl := got[0]; dl.Lane != events.LaneInteractive || dl.Priority != 100 || dl.JobID != "1-9" || dl.Attempts != 5 ||
		dl.Error != "source: 503" || !dl.DiedAt.Equal(at.Add(3*time.Minute)) || dl.Seq == 0 {
		t.Errorf("newest letter %+v", dl)
	}
	if dl := got[4]; !dl.Unreadable || dl.Error == "" || dl.Site != "toy" || dl.BookID != "4" {
		t.Errorf("unreadable letter %+v, want toy's book 4 read from its subject", dl)
	}
	if got, _, _ := m.DeadLetters(t.Context(), 2); len(got) != 2 || got[0].BookID != "1" {
		t.Errorf("limit 2: %+v", got)
	}
	s, err := m.Stats(t.Context())
	if err != nil || s.DeadLetters != 5 {
		t.Errorf("Stats.DeadLetters = %d, %v, want 5", s.DeadLetters, err)
	}
}

func TestReplay(t *testing.T) {
	t.Parallel()
	m, ns := newManager(t)
	at := time.Now().UTC()
	bury(t, ns, book, events.LaneManual, 7, at)
	putSynced(t, ns, book, at) // a replay is forced past the recently-synced check
	burySite(t, ns, "toy", book, events.LanePrefetch, 0, at)
	r, err := m.Replay(t.Context(), site, book)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != jobs.Queued || r.Site != site || r.Lane != events.LaneManual || r.Priority != 7 || r.JobID != book+"-9" {
		t.Errorf("Replay = %+v", r)
	}
	req, ok := waitingRequests(t, ns, book)[events.LaneManual]
	if !ok || !req.Force || req.Priority != 7 || req.Site != site {
		t.Errorf("replayed request %+v (found %v), want forced, priority 7, in the manual lane", req, ok)
	}
	if n := deadCount(t, m); n != 1 {
		t.Errorf("%d dead letters after the replay, want 1 (the other site's book)", n)
	}
	if _, err := m.Replay(t.Context(), site, book); !errors.Is(err, jobs.ErrNoDeadLetter) {
		t.Errorf("second Replay = %v, want ErrNoDeadLetter", err)
	}
	if r, err := m.Replay(t.Context(), "toy", book); err != nil || r.Site != "toy" || r.Status != jobs.Queued {
		t.Errorf("Replay of the other site's book = %+v, %v", r, err)
	}
	if _, ok := waitingSiteRequests(t, ns, "toy", book)[events.LanePrefetch]; !ok {
		t.Error("the other site's book is not requested again")
	}

	// The request is already waiting: the letter goes all the same.
	bury(t, ns, book, events.LaneManual, 7, at)
	if r, err := m.Replay(t.Context(), site, book); err != nil || r.Status != jobs.AlreadyQueued {
		t.Errorf("Replay of a waiting book = %+v, %v", r, err)
	}
	if n := deadCount(t, m); n != 0 {
		t.Errorf("%d dead letters, want 0", n)
	}
}

func TestReplayUnreadable(t *testing.T) {
	t.Parallel()
	m, ns := newManager(t)
	if _, err := ns.JS.Publish(t.Context(), events.SubjectDead(site, "5"), []byte("{")); err != nil {
		t.Fatal(err)
	}
	r, err := m.Replay(t.Context(), site, "5")
	if err != nil || r.Status != jobs.Queued || r.Lane != events.LaneManual {
		t.Errorf("Replay = %+v, %v; want queued in the manual lane", r, err)
	}
}

// TestReplayLegacy replays a dead letter written before books were site-qualified: a
// version 1 payload on the subject with the bare id is the legacy site's book.
func TestReplayLegacy(t *testing.T) {
	t.Parallel()
	m, ns := newManager(t)
	legacy := []byte(`{"version":1,"request":{"version":1,"book_id":"31","lane":"prefetch","priority":0,` +
		`"requested_at":"2026-01-21T11:00:00Z","force":false},"job_id":"31-4","attempts":5,"error":"source: 503",` +
		`"died_at":"2026-01-21T12:00:00Z"}`)
	if _, err := ns.JS.Publish(t.Context(), "xsw.dead.31", legacy); err != nil {
		t.Fatal(err)
	}
	letters, _, err := m.DeadLetters(t.Context(), 0)
	if err != nil || len(letters) != 1 || letters[0].Site != events.LegacySite || letters[0].BookID != "31" || letters[0].Unreadable {
		t.Fatalf("letters %+v, %v; want the legacy site's book 31", letters, err)
	}
	r, err := m.Replay(t.Context(), events.LegacySite, "31")
	if err != nil || r.Status != jobs.Queued || r.JobID != "31-4" {
		t.Fatalf("Replay = %+v, %v", r, err)
	}
	if _, ok := waitingRequests(t, ns, "31")[events.LanePrefetch]; !ok {
		t.Error("the legacy letter's book is not requested again")
	}
	if n := deadCount(t, m); n != 0 {
		t.Errorf("%d dead letters left", n)
	}
}

// TestReplayRefused checks that a letter whose book the check refuses stays: Replay
// says why, ReplayAll reports it refused and replays the others.
func TestReplayRefused(t *testing.T) {
	t.Parallel()
	m, ns := newManager(t)
	m.SetCheck(func(_ context.Context, _, id string) error {
		if strings.HasPrefix(id, "0") {
			return errors.New("not the site's spelling")
		}
		return nil
	})
	at := time.Now().UTC()
	bury(t, ns, "01000005", events.LaneInteractive, 100, at)
	bury(t, ns, "1000005", events.LaneInteractive, 100, at.Add(time.Second))
	if _, err := m.Replay(t.Context(), site, "01000005"); !errors.Is(err, jobs.ErrRefused) {
		t.Errorf("Replay = %v, want ErrRefused", err)
	}
	got, left, err := m.ReplayAll(t.Context())
	if err != nil || len(got) != 2 || left != 1 {
		t.Fatalf("ReplayAll = %+v, %d left, %v; want 2 letters, 1 left", got, left, err)
	}
	if got[0].BookID != "01000005" || got[0].Status != jobs.Refused || got[1].BookID != "1000005" || got[1].Status != jobs.Queued {
		t.Errorf("ReplayAll = %+v", got)
	}
	if n := streamMsgs(t, ns); n != 1 {
		t.Errorf("%d requests stored, want the canonical book's only", n)
	}
}

func TestReplayAll(t *testing.T) {
	t.Parallel()
	m, ns := newManager(t)
	at := time.Now().UTC()
	for i, id := range []string{"1", "2", "3"} {
		bury(t, ns, id, events.LanePrefetch, 0, at.Add(time.Duration(i)*time.Second))
	}
	request(t, m, jobs.Request{Site: site, BookID: "2", Lane: events.LanePrefetch, Reason: "test"}, jobs.Queued)
	got, left, err := m.ReplayAll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if left != 0 || len(got) != 3 {
		t.Fatalf("replayed %d, %d left; want 3 and 0", len(got), left)
	}
	statuses := map[string]jobs.Status{}
	for _, r := range got {
		statuses[r.BookID] = r.Status
	}
	want := map[string]jobs.Status{"1": jobs.Queued, "2": jobs.Queued, "3": jobs.Queued}
	// Book 2 waits unforced in the prefetch lane: the forced replay takes its place.
	for id, st := range want {
		if statuses[id] != st {
			t.Errorf("book %s: %s, want %s", id, statuses[id], st)
		}
	}
	if got[0].BookID != "1" {
		t.Errorf("replayed %s first, want the oldest death (1)", got[0].BookID)
	}
	for _, id := range []string{"1", "2", "3"} {
		if r, ok := waitingRequests(t, ns, id)[events.LanePrefetch]; !ok || !r.Force {
			t.Errorf("book %s: request %+v (found %v), want forced", id, r, ok)
		}
	}
}

// recordSubjects records, in order, the subjects of what is published on the server from
// now on: commands to the indexer and book requests.
func recordSubjects(t *testing.T, ns *natstest.Server) func() []string {
	t.Helper()
	msgs := make(chan *nats.Msg, 64)
	for _, subject := range []string{events.SubjectCommandAll, events.SubjectRequestAll} {
		sub, err := ns.Conn.ChanSubscribe(subject, msgs)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	if err := ns.Conn.Flush(); err != nil {
		t.Fatal(err)
	}
	var got []string
	return func() []string {
		for {
			select {
			case m := <-msgs:
				got = append(got, m.Subject)
			case <-time.After(200 * time.Millisecond):
				return slices.Clone(got)
			}
		}
	}
}

// acceptance returns the acceptance of a shrink stored for the book, if any.
func acceptance(t *testing.T, ns *natstest.Server, site, bookID string) (events.BookShrinkAccepted, bool) {
	t.Helper()
	s, err := ns.JS.Stream(t.Context(), events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetLastMsgForSubject(t.Context(), events.SubjectAcceptShrink(site, bookID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return events.BookShrinkAccepted{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var a events.BookShrinkAccepted
	if err := events.Decode(msg.Data, &a); err != nil {
		t.Fatal(err)
	}
	return a, true
}

func TestAcceptShrink(t *testing.T) {
	t.Parallel()
	m, ns := newManager(t)
	at := time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)
	bury(t, ns, book, events.LanePrefetch, 0, at)
	burySite(t, ns, "toy", book, events.LanePrefetch, 0, at) // another site's book
	putSynced(t, ns, book, time.Now())                       // forced past the recently-synced check
	published := recordSubjects(t, ns)

	r, err := m.AcceptShrink(t.Context(), site, book, "admin", at)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != jobs.Queued || r.Lane != events.LaneManual || r.Priority != events.DefaultManualPriority ||
		r.Letter == nil || r.Letter.JobID != book+"-9" {
		t.Errorf("AcceptShrink = %+v, letter %+v", r, r.Letter)
	}
	a, ok := acceptance(t, ns, site, book)
	if !ok || a.Site != site || a.BookID != book || a.Reason != "admin" || !a.AcceptedAt.Equal(at) {
		t.Errorf("acceptance %+v (found %v)", a, ok)
	}
	req, ok := waitingRequests(t, ns, book)[events.LaneManual]
	if !ok || !req.Force || req.Priority != events.DefaultManualPriority {
		t.Errorf("request %+v (found %v), want forced in the manual lane", req, ok)
	}
	want := []string{events.SubjectAcceptShrink(site, book), events.RequestSubject(events.LaneManual, site, book)}
	if got := published(); !slices.Equal(got, want) {
		t.Errorf("published %q, want the acceptance, then the request: %q", got, want)
	}
	if n := deadCount(t, m); n != 1 {
		t.Errorf("%d dead letters, want 1 (the other site's book)", n)
	}

	// Without a dead letter: accepted and requested all the same (the request waits).
	r, err = m.AcceptShrink(t.Context(), site, book, "admin", at.Add(time.Minute))
	if err != nil || r.Letter != nil || r.Status != jobs.AlreadyQueued {
		t.Errorf("AcceptShrink without a letter = %+v, %v", r, err)
	}
	if a, _ := acceptance(t, ns, site, book); !a.AcceptedAt.Equal(at.Add(time.Minute)) {
		t.Errorf("second acceptance %+v not published", a)
	}
}

// TestAcceptShrinkRefused checks that a book the check refuses is refused before
// anything is published, and keeps its letter.
func TestAcceptShrinkRefused(t *testing.T) {
	t.Parallel()
	m, ns := newManager(t)
	m.SetCheck(func(context.Context, string, string) error { return errors.New("not the site's spelling") })
	bury(t, ns, "01000005", events.LaneManual, 10, time.Now())
	if _, err := m.AcceptShrink(t.Context(), site, "01000005", "admin", time.Now()); !errors.Is(err, jobs.ErrRefused) {
		t.Errorf("AcceptShrink = %v, want ErrRefused", err)
	}
	if _, ok := acceptance(t, ns, site, "01000005"); ok {
		t.Error("the acceptance of a refused book was published")
	}
	if n, left := streamMsgs(t, ns), deadCount(t, m); n != 0 || left != 1 {
		t.Errorf("%d requests, %d dead letters; want none and the letter", n, left)
	}
}

func TestPurgeLane(t *testing.T) {
	t.Parallel()
	m, ns := newManager(t)
	for _, id := range []string{"1", "2", "3"} {
		request(t, m, jobs.Request{Site: site, BookID: id, Lane: events.LanePrefetch, Reason: "test"}, jobs.Queued)
	}
	request(t, m, jobs.Request{Site: site, BookID: "4", Lane: events.LaneManual, Priority: 10, Reason: "test"}, jobs.Queued)
	n, err := m.PurgeLane(t.Context(), events.LanePrefetch)
	if err != nil || n != 3 {
		t.Fatalf("PurgeLane = %d, %v; want 3", n, err)
	}
	if got := streamMsgs(t, ns); got != 1 {
		t.Errorf("%d requests left, want the manual one", got)
	}
	if n, err := m.PurgeLane(t.Context(), events.LanePrefetch); err != nil || n != 0 {
		t.Errorf("second PurgeLane = %d, %v", n, err)
	}
	if _, err := m.PurgeLane(t.Context(), events.Lane("urgent")); !errors.Is(err, events.ErrInvalid) {
		t.Errorf("PurgeLane(urgent) = %v, want ErrInvalid", err)
	}
	// Within the duplicate window the same request is the one that was purged (its
	// Nats-Msg-Id is known); a forced one is new.
	request(t, m, jobs.Request{Site: site, BookID: "1", Lane: events.LanePrefetch, Reason: "test"}, jobs.AlreadyQueued)
	request(t, m, jobs.Request{Site: site, BookID: "1", Lane: events.LanePrefetch, Force: true, Reason: "test"}, jobs.Queued)
}

func TestStatsPoliteness(t *testing.T) {
	t.Parallel()
	m, ns := newManager(t)
	s, err := m.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s.RateInterval != nil || s.Circuit != nil {
		t.Errorf("no fetcher: interval %v circuit %v, want nil", s.RateInterval, s.Circuit)
	}
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketFetchers)
	if err != nil {
		t.Fatal(err)
	}
	for _, hb := range []events.FetcherHeartbeat{
		{FetcherID: "a", Interval: 2, Circuit: "closed"},
		{FetcherID: "b", Interval: 8, Circuit: "half-open"},
		{FetcherID: "c", Interval: 4, Circuit: "closed"},
	} {
		hb.Header = events.Header{Version: events.Version}
		hb.At = time.Now()
		data, err := events.Encode(&hb)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(t.Context(), hb.FetcherID, data); err != nil {
			t.Fatal(err)
		}
	}
	s, err = m.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s.RateInterval == nil || *s.RateInterval != 8 || s.Circuit == nil || *s.Circuit != "half-open" {
		t.Errorf("interval %v circuit %v, want 8 and half-open", s.RateInterval, s.Circuit)
	}
	hbs, err := m.Fetchers(t.Context())
	if err != nil || len(hbs) != 3 || hbs[0].FetcherID != "a" || hbs[2].FetcherID != "c" {
		t.Errorf("Fetchers = %+v, %v", hbs, err)
	}
}

// TestOperatorActsAreNotDuplicates: a request the fetchers took and failed on leaves its
// id in the request stream's de-duplication window for minutes. An operator's replay of
// the letter it left, and an acceptance of its shrink after that, are each asked for
// again; only a second replay of the same letter is the same request.
func TestOperatorActsAreNotDuplicates(t *testing.T) {
	t.Parallel()
	m, ns := newManager(t)
	putSynced(t, ns, book, time.Now())
	taken := func() { // the fetchers took every waiting request
		t.Helper()
		s, err := ns.JS.Stream(t.Context(), events.StreamRequests)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Purge(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	bury(t, ns, book, events.LaneManual, events.DefaultManualPriority, time.Now())
	if r, err := m.Replay(t.Context(), site, book); err != nil || r.Status != jobs.Queued {
		t.Fatalf("first replay = %+v, %v; want queued", r, err)
	}
	taken()
	bury(t, ns, book, events.LaneManual, events.DefaultManualPriority, time.Now()) // it died again
	if r, err := m.Replay(t.Context(), site, book); err != nil || r.Status != jobs.Queued {
		t.Errorf("replay of the newer letter = %+v, %v; want queued", r, err)
	}
	taken()
	if r, err := m.AcceptShrink(t.Context(), site, book, "admin", time.Now()); err != nil || r.Status != jobs.Queued {
		t.Errorf("acceptance right after a replay = %+v, %v; want its sync queued", r, err)
	}
	if _, ok := waitingRequests(t, ns, book)[events.LaneManual]; !ok {
		t.Error("no request waits after the acceptance")
	}
}

// TestAcceptShrinkWhileSyncing: a sync under way when the operator accepts may complete
// before the acceptance reaches the indexer, so the acceptance's own sync is queued
// behind it rather than answered already_syncing.
func TestAcceptShrinkWhileSyncing(t *testing.T) {
	t.Parallel()
	m, ns := newManager(t)
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketClaims)
	if err != nil {
		t.Fatal(err)
	}
	claim := events.SyncClaim{Header: events.Header{Version: events.Version}, JobID: "xsw." + book + "-7", Fetcher: "f1", Lane: events.LaneRefresh, At: time.Now()}
	b, _ := events.Encode(&claim)
	if _, err := kv.Create(t.Context(), events.Key(site, book), b); err != nil {
		t.Fatal(err)
	}
	r, err := m.AcceptShrink(t.Context(), site, book, "admin", time.Now())
	if err != nil || r.Status != jobs.Queued {
		t.Fatalf("AcceptShrink while the book syncs = %+v, %v; want its sync queued", r, err)
	}
	if req, ok := waitingRequests(t, ns, book)[events.LaneManual]; !ok || !req.Force {
		t.Errorf("request %+v (found %v), want a forced one in the manual lane", req, ok)
	}
}
