package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/dev/proctest"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/testkit"
)

// terminated is JetStream's advisory for a message a consumer terminated.
type terminated struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
	Reason     string `json:"reason"`
}

// poison is one message no consumer can use.
type poison struct {
	name, subject string
	data          []byte
}

// TestPoisonMessages publishes malformed and unknown-version messages straight onto
// the bus, ahead of good requests: book requests on every lane (broken JSON, version 2, an
// invalid lane, bytes that are not UTF-8), a crawl request of version 7, and events for
// the indexer (garbage, a version 2 table of contents, a job event without a version, a
// book's metadata on another book's subject, a subject no payload belongs on). Each is
// terminated at its first delivery with its reason (JetStream's terminated advisory says
// so), logged with its subject by the consumer and counted in its /metrics; none reaches
// the site or the database, nothing is redelivered, both processes keep running, and the
// good books requested behind the poison end fully indexed.
func TestPoisonMessages(t *testing.T) {
	t.Parallel()
	healthAddr := proctest.FreeAddr(t)
	r := newRig(t, options{
		site:     []string{"-categories", "1", "-books", "8", "-chapters", "41..60"},
		fetchers: 1, fetcherEnv: map[string]string{"FETCHER_HEALTH_ADDR": healthAddr},
	})
	ids := r.site.ids(t, 0)
	victims, good := ids[:4], ids[4:]

	var (
		mu          sync.Mutex
		advisories  []terminated
		advisoryErr error
	)
	sub, err := r.nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>", func(m *nats.Msg) {
		var a terminated
		err := json.Unmarshal(m.Data, &a)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			advisoryErr = fmt.Errorf("advisory on %s: %v", m.Subject, err)
			return
		}
		advisories = append(advisories, a)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	valid := events.NewBookRequested("xsw", victims[1], events.LaneManual, 10, false, "chaos", time.Now())
	valid.Version = 3
	v3request, _ := json.Marshal(valid)
	badLane := events.NewBookRequested("xsw", victims[2], events.LaneInteractive, 0, false, "chaos", time.Now())
	badLane.Lane = "urgent"
	badLaneRequest, _ := json.Marshal(badLane)
	toc := events.TOCPageFetched{Header: events.Header{Version: 3}, JobID: "xsw.999000001-1", Site: "xsw", BookID: "999000001", Page: 1, TotalPages: 1,
		Chapters: []events.ChapterRef{{Number: 1, ChapterID: "123456789", Title: "第1章", URL: r.site.url + "/999000001/123456789.html"}}, FetchedAt: time.Now()}
	v3toc, _ := json.Marshal(toc)
	other := events.BookFetched{Header: events.Header{Version: events.Version}, JobID: "xsw.999000003-1", Site: "xsw", BookID: "999000003",
		Book: events.BookMeta{Name: "冒名之書"}, FetchedAt: time.Now()}
	otherBook, _ := json.Marshal(other)
	unserved := events.NewBookRequested("nosuchsite", victims[0], events.LaneManual, 10, false, "chaos", time.Now())
	unservedRequest, _ := json.Marshal(unserved)

	requests := []poison{
		{"broken JSON", events.RequestSubject(events.LanePrefetch, "xsw", victims[0]), []byte(`{"version":1,"book_id":`)},
		{"version 3", events.RequestSubject(events.LaneManual, "xsw", victims[1]), v3request},
		{"invalid lane", events.RequestSubject(events.LaneInteractive, "xsw", victims[2]), badLaneRequest},
		{"not UTF-8", events.RequestSubject(events.LaneRefresh, "xsw", victims[3]), []byte("\xff\xfe\x00garbage\x80")},
	}
	crawls := []poison{{"crawl of version 7", "xsw.crawl.chaos-poison", []byte(`{"version":7,"crawl_id":"chaos-poison"}`)}}
	evs := []poison{
		{"garbage metadata", events.SubjectFetchedBook("xsw", "999000001"), []byte("\x00\x01 not an event")},
		{"version 3 table of contents", events.SubjectFetchedTOC("xsw", "999000001"), v3toc},
		{"job event without a version", events.SubjectJob(events.JobCompleted, "xsw", "999000001"), []byte(`{}`)},
		{"metadata on another book's subject", events.SubjectFetchedBook("xsw", "999000002"), otherBook},
		{"subject without a payload", "xsw.fetched.unheard_of.xsw.999000001", []byte(`{"version":2}`)},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Not poison: a request for a site no fetcher serves waits in its lane, untouched,
	// for a fetcher that does (none here).
	if _, err := r.js.Publish(ctx, unserved.Subject(), unservedRequest); err != nil {
		t.Fatalf("publish the unserved site's request: %v", err)
	}
	for _, group := range [][]poison{requests, crawls, evs} {
		for _, p := range group {
			if _, err := r.js.Publish(ctx, p.subject, p.data); err != nil {
				t.Fatalf("publish %s on %s: %v", p.name, p.subject, err)
			}
		}
	}
	r.request(good)
	r.settleAll(t, good, 60*time.Second)

	want := len(requests) + len(crawls) + len(evs)
	testkit.Eventually(t, 30*time.Second, fmt.Sprintf("%d terminated advisories", want), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(advisories) >= want
	})
	// Give a redelivery every chance to show itself: the fetcher retries within 200ms,
	// the indexer within a second.
	time.Sleep(2 * time.Second)
	mu.Lock()
	got := append([]terminated(nil), advisories...)
	if advisoryErr != nil {
		t.Error(advisoryErr)
	}
	mu.Unlock()
	byConsumer := map[string]int{}
	for _, a := range got {
		byConsumer[a.Stream+"/"+a.Consumer]++
		if a.Deliveries != 1 || a.Reason == "" {
			t.Errorf("terminated %s/%s seq %d at delivery %d with reason %q, want at the first with a reason",
				a.Stream, a.Consumer, a.StreamSeq, a.Deliveries, a.Reason)
		}
	}
	wantByConsumer := map[string]int{
		events.StreamCrawls + "/crawl":                                              len(crawls),
		events.StreamEvents + "/indexer":                                            len(evs),
		events.StreamRequests + "/fetch-" + string(events.LanePrefetch) + "-xsw":    1,
		events.StreamRequests + "/fetch-" + string(events.LaneManual) + "-xsw":      1,
		events.StreamRequests + "/fetch-" + string(events.LaneInteractive) + "-xsw": 1,
		events.StreamRequests + "/fetch-" + string(events.LaneRefresh) + "-xsw":     1,
	}
	if fmt.Sprint(byConsumer) != fmt.Sprint(wantByConsumer) {
		t.Errorf("terminated messages by stream/consumer %v, want %v", byConsumer, wantByConsumer)
	}

	// Nothing is left to deliver but the unserved site's request, and nothing waits for
	// an acknowledgement.
	for _, stream := range []string{events.StreamRequests, events.StreamCrawls} {
		s, err := r.js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]uint64{}
		if stream == events.StreamRequests {
			want[unserved.Subject()] = 1
		}
		if fmt.Sprint(info.State.Subjects) != fmt.Sprint(want) {
			t.Errorf("left in %s: %v, want %v", stream, info.State.Subjects, want)
		}
	}
	c, err := r.js.Consumer(ctx, events.StreamEvents, "indexer")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ci.NumPending != 0 || ci.NumAckPending != 0 || ci.NumRedelivered != 0 {
		t.Errorf("indexer consumer: %d pending, %d awaiting ack, %d redelivered; want none", ci.NumPending, ci.NumAckPending, ci.NumRedelivered)
	}

	// Counted.
	fm := metrics(t, healthAddr)
	if n := fm[`xsw_fetcher_poison_total{consumer="requests"}`]; n != float64(len(requests)) {
		t.Errorf("fetcher counted %v poison requests, want %d", n, len(requests))
	}
	if n := fm[`xsw_fetcher_poison_total{consumer="crawls"}`]; n != float64(len(crawls)) {
		t.Errorf("fetcher counted %v poison crawls, want %d", n, len(crawls))
	}
	if n := metrics(t, r.indexerAddr)["xsw_indexer_poison_total"]; n != float64(len(evs)) {
		t.Errorf("indexer counted %v poison events, want %d", n, len(evs))
	}

	// Logged, with the subject and the reason.
	checkLogged := func(p *proctest.Process, msg string, group []poison) {
		t.Helper()
		b, err := os.ReadFile(p.Log)
		if err != nil {
			t.Fatal(err)
		}
		for _, ps := range group {
			found := false
			for line := range strings.SplitSeq(string(b), "\n") {
				found = found || strings.Contains(line, msg) && strings.Contains(line, "subject="+ps.subject+" ") && strings.Contains(line, "err=")
			}
			if !found {
				t.Errorf("%s: no %q line with subject %s and its error in the %s log", ps.name, msg, ps.subject, p.Name)
			}
		}
	}
	checkLogged(r.fetchers[0], "poison request terminated", requests)
	checkLogged(r.fetchers[0], "poison crawl request terminated", crawls)
	checkLogged(r.indexer, "event terminated", evs)

	// Not acted upon: the poisoned requests never reached the site, the poison events
	// never reached the database.
	for _, q := range r.site.requests(t) {
		for _, id := range victims {
			if strings.HasPrefix(q.Path, "/"+id+"/") {
				t.Errorf("a poison request for book %s reached the site: %s", id, q.Path)
			}
		}
	}
	var books, jobs int
	if err := r.db.QueryRow(ctx, `SELECT (SELECT count(*) FROM books WHERE id = ANY($1)), (SELECT count(*) FROM job_history WHERE book_id = ANY($1))`,
		[]string{"999000001", "999000002", "999000003"}).Scan(&books, &jobs); err != nil {
		t.Fatal(err)
	}
	if books != 0 || jobs != 0 {
		t.Errorf("poison events wrote %d books and %d jobs, want none", books, jobs)
	}
	for _, p := range append([]*proctest.Process{r.indexer}, r.fetchers...) {
		if !p.Running() {
			t.Errorf("%s exited: %v", p.Name, p.Err())
		}
	}
}
