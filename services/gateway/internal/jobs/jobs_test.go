package jobs_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/logging"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	site = "xsw"
	book = "1721851"
)

func newManager(t *testing.T) (*jobs.Manager, *natstest.Server) {
	t.Helper()
	ns := natstest.Start(t)
	m, err := jobs.New(t.Context(), ns.JS, 5*time.Minute, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	return m, ns
}

// waitingRequests returns the requests stored for a book of the site xsw, by lane.
func waitingRequests(t *testing.T, ns *natstest.Server, bookID string) map[events.Lane]events.BookRequested {
	t.Helper()
	return waitingSiteRequests(t, ns, site, bookID)
}

// waitingSiteRequests returns the requests stored for a book, by lane.
func waitingSiteRequests(t *testing.T, ns *natstest.Server, site, bookID string) map[events.Lane]events.BookRequested {
	t.Helper()
	s, err := ns.JS.Stream(t.Context(), events.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	out := map[events.Lane]events.BookRequested{}
	for _, l := range events.Lanes {
		msg, err := s.GetLastMsgForSubject(t.Context(), events.RequestSubject(l, site, bookID))
		if err != nil {
			continue
		}
		var r events.BookRequested
		if err := events.Decode(msg.Data, &r); err != nil {
			t.Fatal(err)
		}
		out[l] = r
	}
	return out
}

func streamMsgs(t *testing.T, ns *natstest.Server) uint64 {
	t.Helper()
	s, err := ns.JS.Stream(t.Context(), events.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// putHeartbeat writes a heartbeat of fetcher id syncing the books active (events.Key
// of each, or a bare id of the site xsw).
func putHeartbeat(t *testing.T, ns *natstest.Server, id string, workers int, active ...string) {
	t.Helper()
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketFetchers)
	if err != nil {
		t.Fatal(err)
	}
	hb := events.FetcherHeartbeat{Header: events.Header{Version: events.Version}, FetcherID: id, Workers: workers,
		StartedAt: time.Now(), At: time.Now(), Circuit: "closed", Active: []events.ActiveJob{}}
	for i, key := range active {
		s, b, _ := events.SplitKey(key)
		hb.Active = append(hb.Active, events.ActiveJob{JobID: events.JobID(s, b, uint64(i+1)), Site: s, BookID: b, Lane: events.LanePrefetch, Attempt: 1, StartedAt: time.Now()})
	}
	data, err := events.Encode(&hb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), id, data); err != nil {
		t.Fatal(err)
	}
}

// putSynced records, as the fetchers do, that a book of the site xsw was synced at at.
func putSynced(t *testing.T, ns *natstest.Server, bookID string, at time.Time) {
	t.Helper()
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketSynced)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), events.Key(site, bookID), events.SyncedValue(at)); err != nil {
		t.Fatal(err)
	}
}

func manual(force bool) jobs.Request {
	return jobs.Request{Site: site, BookID: book, Lane: events.LaneManual, Priority: 10, Force: force, Reason: "admin"}
}

func prefetch() jobs.Request {
	return jobs.Request{Site: site, BookID: book, Lane: events.LanePrefetch, Priority: 0, Reason: "category 1 page 1"}
}

func request(t *testing.T, m *jobs.Manager, r jobs.Request, want jobs.Status) {
	t.Helper()
	got, err := m.Request(t.Context(), r)
	if err != nil {
		t.Fatalf("Request(%+v): %v", r, err)
	}
	if got != want {
		t.Fatalf("Request(%s in %s, force %v) = %s, want %s", r.BookID, r.Lane, r.Force, got, want)
	}
}

func TestRequestStatuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, m *jobs.Manager, ns *natstest.Server)
		req   jobs.Request
		want  jobs.Status
		// wantLanes lists the lanes the book waits in afterwards.
		wantLanes []events.Lane
	}{
		{"fresh book", nil, manual(false), jobs.Queued, []events.Lane{events.LaneManual}},
		{"waiting in the same lane", func(t *testing.T, m *jobs.Manager, _ *natstest.Server) {
			request(t, m, manual(false), jobs.Queued)
		}, manual(false), jobs.AlreadyQueued, []events.Lane{events.LaneManual}},
		{"waiting in a higher lane", func(t *testing.T, m *jobs.Manager, _ *natstest.Server) {
			request(t, m, manual(false), jobs.Queued)
		}, prefetch(), jobs.AlreadyQueued, []events.Lane{events.LaneManual}},
		{"synced a minute ago", func(t *testing.T, _ *jobs.Manager, ns *natstest.Server) {
			putSynced(t, ns, book, time.Now().Add(-time.Minute))
		}, manual(false), jobs.RecentlySynced, nil},
		{"synced an hour ago", func(t *testing.T, _ *jobs.Manager, ns *natstest.Server) {
			putSynced(t, ns, book, time.Now().Add(-time.Hour))
		}, manual(false), jobs.Queued, []events.Lane{events.LaneManual}},
		{"forced past a recent sync", func(t *testing.T, _ *jobs.Manager, ns *natstest.Server) {
			putSynced(t, ns, book, time.Now().Add(-time.Minute))
		}, manual(true), jobs.Queued, []events.Lane{events.LaneManual}},
		{"a fetcher is syncing it", func(t *testing.T, _ *jobs.Manager, ns *natstest.Server) {
			putHeartbeat(t, ns, "fetcher-a", 2, "99", book)
		}, manual(false), jobs.AlreadySyncing, nil},
		{"a fetcher is syncing another site's book of that id", func(t *testing.T, _ *jobs.Manager, ns *natstest.Server) {
			putHeartbeat(t, ns, "fetcher-a", 2, events.Key("toy", book))
		}, manual(false), jobs.Queued, []events.Lane{events.LaneManual}},
		{"another site's book of that id was synced a minute ago", func(t *testing.T, _ *jobs.Manager, ns *natstest.Server) {
			kv, err := ns.JS.KeyValue(t.Context(), events.BucketSynced)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kv.Put(t.Context(), events.Key("toy", book), events.SyncedValue(time.Now().Add(-time.Minute))); err != nil {
				t.Fatal(err)
			}
		}, manual(false), jobs.Queued, []events.Lane{events.LaneManual}},
		{"another site's book of that id is waiting", func(t *testing.T, m *jobs.Manager, _ *natstest.Server) {
			r := manual(false)
			r.Site = "toy"
			request(t, m, r, jobs.Queued)
		}, manual(false), jobs.Queued, []events.Lane{events.LaneManual}},
		{"forced while syncing", func(t *testing.T, _ *jobs.Manager, ns *natstest.Server) {
			putHeartbeat(t, ns, "fetcher-a", 2, book)
		}, manual(true), jobs.AlreadySyncing, nil},
		{"forced and already forced", func(t *testing.T, m *jobs.Manager, _ *natstest.Server) {
			request(t, m, manual(true), jobs.Queued)
		}, manual(true), jobs.AlreadyQueued, []events.Lane{events.LaneManual}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, ns := newManager(t)
			if tt.setup != nil {
				tt.setup(t, m, ns)
			}
			request(t, m, tt.req, tt.want)
			got := waitingRequests(t, ns, book)
			var lanes []events.Lane
			for _, l := range events.Lanes {
				if _, ok := got[l]; ok {
					lanes = append(lanes, l)
				}
			}
			if !slices.Equal(lanes, tt.wantLanes) {
				t.Errorf("book waits in %v, want %v", lanes, tt.wantLanes)
			}
		})
	}
}

// TestPrefetchOutcomeIsRemembered checks that a prefetch request's outcome answers the
// same book's next prefetch requests for a moment without asking JetStream, and only
// those: after the moment, or for another lane, the stream is asked again.
func TestPrefetchOutcomeIsRemembered(t *testing.T) {
	t.Parallel()
	m, ns := newManager(t)
	now := time.Now()
	jobs.SetClock(m, func() time.Time { return now })
	request(t, m, prefetch(), jobs.Queued)
	// Purged behind the manager's back: a moment later, a prefetch does not look.
	s, err := ns.JS.Stream(t.Context(), events.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(t.Context()); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	request(t, m, prefetch(), jobs.AlreadyQueued)
	if got := streamMsgs(t, ns); got != 0 {
		t.Fatalf("%d requests stored, want none", got)
	}
	// Other lanes and forced prefetches always ask.
	request(t, m, manual(false), jobs.Queued)
	// Later, a prefetch asks again (later than the publish de-duplication window too,
	// which would otherwise find the first request's id).
	now = now.Add(events.DuplicateWindow)
	if err := s.Purge(t.Context()); err != nil {
		t.Fatal(err)
	}
	request(t, m, prefetch(), jobs.Queued)
	if got := waitingRequests(t, ns, book); len(got) != 1 {
		t.Errorf("book waits in %d lanes, want the prefetch lane only", len(got))
	}
}

// TestUpgrade checks that a request in a higher lane moves a waiting book up: stored in
// the higher lane, purged from the lower one, so it is served once.
func TestUpgrade(t *testing.T) {
	t.Parallel()
	m, ns := newManager(t)
	request(t, m, prefetch(), jobs.Queued)
	request(t, m, manual(false), jobs.Queued)
	got := waitingRequests(t, ns, book)
	if _, ok := got[events.LanePrefetch]; ok {
		t.Error("book still waits in the prefetch lane after the upgrade")
	}
	if r, ok := got[events.LaneManual]; !ok || r.Priority != 10 {
		t.Errorf("manual lane holds %+v", got[events.LaneManual])
	}
	request(t, m, jobs.Request{Site: site, BookID: book, Lane: events.LaneInteractive, Priority: jobs.InteractivePriority, Reason: "reader"}, jobs.Queued)
	got = waitingRequests(t, ns, book)
	if len(got) != 1 {
		t.Errorf("book waits in %d lanes, want only interactive: %+v", len(got), got)
	}
	if _, ok := got[events.LaneInteractive]; !ok {
		t.Error("book does not wait in the interactive lane")
	}
	if n := streamMsgs(t, ns); n != 1 {
		t.Errorf("stream holds %d requests, want 1", n)
	}
}

// TestForceReplacesUnforced checks that a forced request is not swallowed by an unforced
// one waiting in its lane (the fetcher would skip that one as recently synced).
func TestForceReplacesUnforced(t *testing.T) {
	t.Parallel()
	m, ns := newManager(t)
	request(t, m, manual(false), jobs.Queued)
	request(t, m, jobs.Request{Site: site, BookID: book, Lane: events.LanePrefetch, Force: true, Reason: "admin"}, jobs.Queued)
	got := waitingRequests(t, ns, book)
	r, ok := got[events.LaneManual]
	if len(got) != 1 || !ok || !r.Force {
		t.Errorf("waiting = %+v, want one forced request in the manual lane", got)
	}
}

func TestConcurrentRequestsStoreOne(t *testing.T) {
	t.Parallel()
	m, ns := newManager(t)
	const n = 50
	statuses := make([]jobs.Status, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { statuses[i], errs[i] = m.Request(context.Background(), manual(false)) })
	}
	wg.Wait()
	queued := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		switch statuses[i] {
		case jobs.Queued:
			queued++
		case jobs.AlreadyQueued:
		default:
			t.Errorf("request %d: %s", i, statuses[i])
		}
	}
	if queued != 1 {
		t.Errorf("%d requests report queued, want 1", queued)
	}
	if got := streamMsgs(t, ns); got != 1 {
		t.Errorf("stream holds %d requests, want 1", got)
	}
}

func TestRejectsInvalid(t *testing.T) {
	t.Parallel()
	m, ns := newManager(t)
	for _, r := range []jobs.Request{
		{Site: site, BookID: "12.a", Lane: events.LaneManual},
		{Site: site, BookID: "", Lane: events.LaneManual},
		{Site: "", BookID: book, Lane: events.LaneManual},
		{Site: "X-Y", BookID: book, Lane: events.LaneManual},
		{Site: site, BookID: book, Lane: "urgent"},
	} {
		if _, err := m.Request(t.Context(), r); !errors.Is(err, events.ErrInvalid) {
			t.Errorf("Request(%+v) = %v, want ErrInvalid", r, err)
		}
	}
	if n := streamMsgs(t, ns); n != 0 {
		t.Errorf("%d requests stored", n)
	}
}

// TestCheckRefuses checks that a request the check refuses queues nothing and says why.
func TestCheckRefuses(t *testing.T) {
	t.Parallel()
	m, ns := newManager(t)
	errSpelling := errors.New("not the site's spelling")
	var asked []string
	m.SetCheck(func(_ context.Context, site, id string) error {
		asked = append(asked, site+"/"+id)
		if id == "01721851" {
			return errSpelling
		}
		return nil
	})
	for _, lane := range events.Lanes {
		_, err := m.Request(t.Context(), jobs.Request{Site: site, BookID: "01721851", Lane: lane, Force: lane == events.LaneManual, Reason: "test"})
		if !errors.Is(err, jobs.ErrRefused) || !errors.Is(err, errSpelling) {
			t.Errorf("lane %s: Request = %v, want ErrRefused wrapping the check's error", lane, err)
		}
	}
	if n := streamMsgs(t, ns); n != 0 {
		t.Fatalf("%d requests stored for a refused book", n)
	}
	request(t, m, manual(false), jobs.Queued)
	if len(asked) != len(events.Lanes)+1 || asked[len(asked)-1] != "xsw/1721851" {
		t.Errorf("check asked %v", asked)
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	m, ns := newManager(t)
	s, err := m.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s.QueueSize != 0 || s.Fetchers != 0 || s.Running() || len(s.Active) != 0 {
		t.Errorf("empty Stats = %+v", s)
	}
	for _, id := range []string{"1", "2", "3"} {
		request(t, m, jobs.Request{Site: site, BookID: id, Lane: events.LanePrefetch, Reason: "test"}, jobs.Queued)
	}
	request(t, m, jobs.Request{Site: site, BookID: "4", Lane: events.LaneManual, Priority: 10, Reason: "test"}, jobs.Queued)
	putHeartbeat(t, ns, "fetcher-a", 2, "77")
	putHeartbeat(t, ns, "fetcher-b", 3, "78", events.Key("toy", "78"))

	s, err = m.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s.QueueSize != 4 || s.ByLane[events.LanePrefetch] != 3 || s.ByLane[events.LaneManual] != 1 {
		t.Errorf("queue = %d %v, want 4 (3 prefetch, 1 manual)", s.QueueSize, s.ByLane)
	}
	slices.SortFunc(s.Active, func(a, b jobs.Book) int { return strings.Compare(a.Site+a.ID, b.Site+b.ID) })
	want := []jobs.Book{{Site: "toy", ID: "78"}, {Site: "xsw", ID: "77"}, {Site: "xsw", ID: "78"}}
	if s.Workers != 5 || s.Fetchers != 2 || !s.Running() || !slices.Equal(s.Active, want) {
		t.Errorf("fetchers: %+v", s)
	}

	// With the prefetch lane's consumer in place, a request it has taken (in flight) no
	// longer counts as waiting.
	c, err := broker.Consumer(t.Context(), ns.JS, events.FetcherConsumer(events.LanePrefetch, "xsw", time.Minute, 5))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range batch.Messages() {
	}
	s, err = m.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s.ByLane[events.LanePrefetch] != 2 || s.QueueSize != 3 {
		t.Errorf("after one delivery: queue = %d %v, want 3 (2 prefetch)", s.QueueSize, s.ByLane)
	}
}

// TestRequestsCarryKnownState: unforced requests carry what the database holds, so the
// fetcher can resync incrementally; a forced one walks the whole book.
func TestRequestsCarryKnownState(t *testing.T) {
	t.Parallel()
	m, ns := newManager(t)
	m.SetKnown(func(_ context.Context, s, id string) (*events.KnownBook, error) {
		if s != site || id != book {
			t.Errorf("known state of %s/%s asked", s, id)
		}
		return &events.KnownBook{Chapters: 42, LastChapterID: "900042"}, nil
	})
	request(t, m, prefetch(), jobs.Queued)
	got := waitingRequests(t, ns, book)[events.LanePrefetch]
	if got.Known == nil || got.Known.Chapters != 42 || got.Known.LastChapterID != "900042" {
		t.Errorf("prefetch request known = %+v, want the database's state", got.Known)
	}
	request(t, m, manual(true), jobs.Queued)
	if forced := waitingRequests(t, ns, book)[events.LaneManual]; forced.Known != nil {
		t.Errorf("forced request carries known state %+v, want none", forced.Known)
	}
}

// TestLegacyRequestsCount: requests a build before site-qualified books left waiting on
// their bare-id subjects are m.xsw.tw's. The book is not queued twice in their lane, and
// an upgrade to a higher lane drops them as it drops any request it supersedes.
func TestLegacyRequestsCount(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	for _, id := range []string{book, "1000001"} {
		v1 := `{"version":1,"book_id":"` + id + `","lane":"prefetch","priority":0,"requested_at":"` + time.Now().UTC().Format(time.RFC3339Nano) + `"}`
		if _, err := ns.JS.Publish(t.Context(), events.RequestSubjectLegacy(events.LanePrefetch, id), []byte(v1)); err != nil {
			t.Fatal(err)
		}
	}
	m, err := jobs.New(t.Context(), ns.JS, 5*time.Minute, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	request(t, m, prefetch(), jobs.AlreadyQueued)
	request(t, m, manual(false), jobs.Queued)
	if n := streamMsgs(t, ns); n != 2 {
		t.Errorf("stream holds %d requests, want 2 (the new manual one and the other book's legacy one)", n)
	}
	s, err := ns.JS.Stream(t.Context(), events.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLastMsgForSubject(t.Context(), events.RequestSubjectLegacy(events.LanePrefetch, book)); err == nil {
		t.Error("the superseded legacy request still waits")
	}
}

// TestClaimedBookIsAlreadySyncing: a job holding the book's claim (before any heartbeat
// lists it) makes a request already_syncing, and a reader's request marks the claim so
// that the job books its remaining requests as a reader's.
func TestClaimedBookIsAlreadySyncing(t *testing.T) {
	t.Parallel()
	m, ns := newManager(t)
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketClaims)
	if err != nil {
		t.Fatal(err)
	}
	claim := events.SyncClaim{Header: events.Header{Version: events.Version}, JobID: "xsw." + book + "-7", Fetcher: "f1", Lane: events.LanePrefetch, At: time.Now()}
	b, _ := events.Encode(&claim)
	if _, err := kv.Create(t.Context(), events.Key(site, book), b); err != nil {
		t.Fatal(err)
	}
	request(t, m, manual(false), jobs.AlreadySyncing)
	read := func() events.SyncClaim {
		t.Helper()
		e, err := kv.Get(t.Context(), events.Key(site, book))
		if err != nil {
			t.Fatal(err)
		}
		var c events.SyncClaim
		if err := events.Decode(e.Value(), &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if read().Interactive {
		t.Error("a manual request marked the claim as a reader's")
	}
	reader := jobs.Request{Site: site, BookID: book, Lane: events.LaneInteractive, Priority: jobs.InteractivePriority, Reason: "reader"}
	request(t, m, reader, jobs.AlreadySyncing)
	if c := read(); !c.Interactive || c.JobID != claim.JobID {
		t.Errorf("after a reader's request the claim is %+v, want the job's, marked interactive", c)
	}
	if got := waitingRequests(t, ns, book); len(got) != 0 {
		t.Errorf("requests stored for a book being synced: %v", got)
	}
}
