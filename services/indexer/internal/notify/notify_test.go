package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/platform/testkit"
)

// startNotifier runs a notifier for replica id, sending to d, until the returned stop is
// called (and at the end of the test).
func startNotifier(t *testing.T, js jetstream.JetStream, d Sender, id string, threshold int) (stop func()) {
	t.Helper()
	return startNotifierWith(t, js, d, Config{Threshold: threshold, ReplicaID: id})
}

// startNotifierWith is startNotifier with a chosen configuration, which checks and
// renews its lease often unless told otherwise.
func startNotifierWith(t *testing.T, js jetstream.JetStream, d Sender, cfg Config) (stop func()) {
	t.Helper()
	if cfg.CheckEvery == 0 {
		cfg.CheckEvery = 20 * time.Millisecond
	}
	if cfg.RenewEvery == 0 {
		cfg.RenewEvery = 50 * time.Millisecond
	}
	n, err := New(t.Context(), js, d, cfg, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = n.Run(ctx)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func publishJob(t *testing.T, js jetstream.JetStream, kind events.JobKind, site, book string, attempt int) {
	t.Helper()
	e := events.JobEvent{Header: events.Header{Version: events.Version}, Kind: kind, JobID: events.JobID(site, book, 7), Site: site, BookID: book,
		Lane: events.LanePrefetch, Attempt: attempt, Fetcher: "f1", At: time.Now(), Error: "source: not found", Permanent: true, Dead: true}
	if _, err := broker.Publish(t.Context(), js, e.Subject(), e.MsgID(), &e); err != nil {
		t.Fatal(err)
	}
}

// count counts the notifications of type typ received, and those with id when given.
func count(r *receiver, typ, id string) int {
	n := 0
	for _, got := range r.requests() {
		if got.n.Type == typ && (id == "" || got.n.ID == id) {
			n++
		}
	}
	return n
}

func TestFailedJobAnnouncedOncePerJob(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	rcv := newReceiver(t)
	d := startDispatcher(t, ns.JS, DispatchConfig{URLs: []string{rcv.URL}})
	startNotifier(t, ns.JS, d, "indexer-a", 1000)

	publishJob(t, ns.JS, events.JobFailed, "xsw", "1000001", 1)
	publishJob(t, ns.JS, events.JobCompleted, "xsw", "1000002", 1)
	publishJob(t, ns.JS, events.JobFailed, "xsw", "1000001", 2) // the same job again: announced already
	// Another site's book of the same id: another job.
	publishJob(t, ns.JS, events.JobFailed, "czbooks", "1000001", 3)
	publishJob(t, ns.JS, events.JobFailed, "xsw", "1000003", 1)
	testkit.Eventually(t, 10*time.Second, "the last failed job announced", func() bool { return count(rcv, TypeJobFailed, "job.failed:xsw.1000003-7") == 1 })
	if got := count(rcv, TypeJobFailed, ""); got != 3 {
		t.Errorf("%d job.failed notifications, want 3 (one per failed job of a site)", got)
	}
	for i, want := range []struct{ id, site string }{{"job.failed:xsw.1000001-7", "xsw"}, {"job.failed:czbooks.1000001-7", "czbooks"}} {
		r := rcv.requests()[i]
		data := r.n.Data.(map[string]any)
		if r.n.ID != want.id || data["site"] != want.site || data["book_id"] != "1000001" || data["job_id"] != want.site+".1000001-7" ||
			data["error"] != "source: not found" || data["permanent"] != true || data["lane"] != "prefetch" {
			t.Errorf("notification %d: %s %v, want %s of site %s", i, r.n.ID, data, want.id, want.site)
		}
	}
}

func TestConditionsAnnouncedOncePerChange(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	ctx := t.Context()
	if _, err := broker.Consumer(ctx, ns.JS, events.FetcherConsumer(events.LanePrefetch, "xsw", time.Minute, -1)); err != nil {
		t.Fatal(err)
	}
	fetchers, err := ns.JS.KeyValue(ctx, events.BucketFetchers)
	if err != nil {
		t.Fatal(err)
	}
	beat := func(circuit string) {
		t.Helper()
		hb := events.FetcherHeartbeat{Header: events.Header{Version: events.Version}, FetcherID: "f1", Workers: 2,
			Interval: 2, Circuit: circuit, At: time.Now()}
		b, err := events.Encode(&hb)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fetchers.Put(ctx, hb.FetcherID, b); err != nil {
			t.Fatal(err)
		}
	}
	request := func(books ...string) {
		t.Helper()
		for _, id := range books {
			r := events.NewBookRequested(events.LegacySite, id, events.LanePrefetch, 0, false, "test", time.Now())
			if _, err := broker.Publish(ctx, ns.JS, r.Subject(), r.MsgID(), &r); err != nil {
				t.Fatal(err)
			}
		}
	}
	rcv := newReceiver(t)
	d := startDispatcher(t, ns.JS, DispatchConfig{URLs: []string{rcv.URL}})
	beat("closed")
	stopA := startNotifier(t, ns.JS, d, "indexer-a", 3)

	request("1000001", "1000002", "1000003", "1000004")
	testkit.Eventually(t, 10*time.Second, "queue.above_threshold", func() bool { return count(rcv, TypeQueueAbove, "") == 1 })
	request("1000005", "1000006") // still above: nothing new to say
	beat("open")
	testkit.Eventually(t, 10*time.Second, "circuit.opened", func() bool { return count(rcv, TypeCircuitOpened, "") == 1 })
	beat("half-open") // the probe has not succeeded yet: still open
	// A new leader takes over what was announced: it announces nothing again.
	stopA()
	startNotifier(t, ns.JS, d, "indexer-b", 3)
	beat("closed")
	testkit.Eventually(t, 10*time.Second, "circuit.closed", func() bool { return count(rcv, TypeCircuitClosed, "") == 1 })

	requests, err := ns.JS.Stream(ctx, events.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	if err := requests.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "queue.below_threshold", func() bool { return count(rcv, TypeQueueBelow, "") == 1 })
	beat("open")
	testkit.Eventually(t, 10*time.Second, "circuit.opened again", func() bool { return count(rcv, TypeCircuitOpened, "") == 2 })

	if got := count(rcv, TypeQueueAbove, ""); got != 1 {
		t.Errorf("%d queue.above_threshold notifications, want 1", got)
	}
	if got := count(rcv, TypeQueueBelow, ""); got != 1 {
		t.Errorf("%d queue.below_threshold notifications, want 1", got)
	}
	for _, r := range rcv.requests() {
		data := r.n.Data.(map[string]any)
		switch r.n.Type {
		case TypeQueueAbove:
			if data["lane"] != "prefetch" || data["waiting"] != 4.0 || data["threshold"] != 3.0 {
				t.Errorf("queue.above_threshold data = %v", data)
			}
		case TypeCircuitOpened, TypeCircuitClosed:
			// The heartbeats of a fetcher older than the sites report xsw's circuit.
			if data["site"] != "xsw" || !strings.HasPrefix(r.n.ID, r.n.Type+":xsw:") {
				t.Errorf("%s %s data = %v, want xsw's", r.n.Type, r.n.ID, data)
			}
		}
	}
}

func TestOneReplicaNotifies(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	ctx := t.Context()
	fetchers, err := ns.JS.KeyValue(ctx, events.BucketFetchers)
	if err != nil {
		t.Fatal(err)
	}
	hb := events.FetcherHeartbeat{Header: events.Header{Version: events.Version}, FetcherID: "f1", Circuit: "open", At: time.Now()}
	b, _ := events.Encode(&hb)
	rcv := newReceiver(t)
	d := startDispatcher(t, ns.JS, DispatchConfig{URLs: []string{rcv.URL}})
	startNotifier(t, ns.JS, d, "indexer-a", 1)
	startNotifier(t, ns.JS, d, "indexer-b", 1)
	if _, err := fetchers.Put(ctx, hb.FetcherID, b); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "circuit.opened", func() bool { return count(rcv, TypeCircuitOpened, "") == 1 })
	// Another change, announced after both replicas checked the circuit many times.
	for _, id := range []string{"1000001", "1000002"} {
		r := events.NewBookRequested(events.LegacySite, id, events.LaneManual, 10, false, "test", time.Now())
		if _, err := broker.Publish(ctx, ns.JS, r.Subject(), r.MsgID(), &r); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 10*time.Second, "queue.above_threshold", func() bool { return count(rcv, TypeQueueAbove, "") == 1 })
	publishJob(t, ns.JS, events.JobFailed, "xsw", "1000003", 1)
	testkit.Eventually(t, 10*time.Second, "job.failed", func() bool { return count(rcv, TypeJobFailed, "") == 1 })
	if got := count(rcv, TypeCircuitOpened, ""); got != 1 {
		t.Errorf("%d circuit.opened notifications from two replicas, want 1", got)
	}
	if got := count(rcv, TypeQueueAbove, ""); got != 1 {
		t.Errorf("%d queue.above_threshold notifications from two replicas, want 1", got)
	}
}

// TestCircuitPerSite: each site's circuit is announced on its own, from what every live
// fetcher reports of it.
func TestCircuitPerSite(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	ctx := t.Context()
	fetchers, err := ns.JS.KeyValue(ctx, events.BucketFetchers)
	if err != nil {
		t.Fatal(err)
	}
	beat := func(fetcher string, states map[string]string) {
		t.Helper()
		hb := events.FetcherHeartbeat{Header: events.Header{Version: events.Version}, FetcherID: fetcher, Circuit: "closed", At: time.Now()}
		for _, site := range slices.Sorted(maps.Keys(states)) {
			hb.Sites = append(hb.Sites, events.SiteInfo{Header: hb.Header, ID: site, BookIDPattern: ".+", State: states[site], Interval: 2, At: time.Now()})
		}
		b, err := events.Encode(&hb)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fetchers.Put(ctx, fetcher, b); err != nil {
			t.Fatal(err)
		}
	}
	// circuitIDs spells the circuit notifications received, in order: their type, the
	// site their id names and the site of their data.
	circuitIDs := func(r *receiver) []string {
		var out []string
		for _, got := range r.requests() {
			if got.n.Type == TypeCircuitOpened || got.n.Type == TypeCircuitClosed {
				id, _, _ := strings.Cut(strings.TrimPrefix(got.n.ID, got.n.Type+":"), ":")
				out = append(out, got.n.Type+":"+id+":"+got.n.Data.(map[string]any)["site"].(string))
			}
		}
		return out
	}
	rcv := newReceiver(t)
	d := startDispatcher(t, ns.JS, DispatchConfig{URLs: []string{rcv.URL}})
	beat("f1", map[string]string{"xsw": events.SiteOK, "czbooks": events.SiteCircuitOpen})
	startNotifier(t, ns.JS, d, "indexer-a", 1000)
	testkit.Eventually(t, 10*time.Second, "czbooks' circuit opened", func() bool { return len(circuitIDs(rcv)) == 1 })
	// Another fetcher finds xsw refusing us; czbooks is still open for f1.
	beat("f2", map[string]string{"xsw": events.SiteRefused, "czbooks": events.SiteOK})
	testkit.Eventually(t, 10*time.Second, "xsw's circuit opened", func() bool { return len(circuitIDs(rcv)) == 2 })
	beat("f1", map[string]string{"xsw": events.SiteThrottled, "czbooks": events.SiteOK})
	testkit.Eventually(t, 10*time.Second, "czbooks' circuit closed", func() bool { return len(circuitIDs(rcv)) == 3 })
	beat("f2", map[string]string{"xsw": events.SiteOK, "czbooks": events.SiteOK})
	testkit.Eventually(t, 10*time.Second, "xsw's circuit closed", func() bool { return len(circuitIDs(rcv)) == 4 })

	want := []string{
		"circuit.opened:czbooks:czbooks", "circuit.opened:xsw:xsw",
		"circuit.closed:czbooks:czbooks", "circuit.closed:xsw:xsw",
	}
	if got := circuitIDs(rcv); !slices.Equal(got, want) {
		t.Errorf("circuit notifications %v, want %v", got, want)
	}
	for _, r := range rcv.requests() {
		if r.n.Type != TypeCircuitOpened || r.n.Data.(map[string]any)["site"] != "xsw" {
			continue
		}
		fs := r.n.Data.(map[string]any)["fetchers"].([]any)
		if len(fs) != 2 || fs[1].(map[string]any)["circuit"] != events.SiteRefused {
			t.Errorf("xsw's circuit.opened fetchers = %v, want both, f2 refused", fs)
		}
	}
}

// TestDeliverySurvivesRestart: a failed job is announced to a receiver that is down; the
// notifier and the dispatcher stop while the delivery waits for its next attempt, and
// those started next make it, with the same idempotency key, once the receiver is up.
func TestDeliverySurvivesRestart(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	rcv := newReceiver(t)
	rcv.setDown(true)
	cfg := DispatchConfig{URLs: []string{rcv.URL}, Attempts: 100, RetryBase: 200 * time.Millisecond, RetryMax: 400 * time.Millisecond}
	d1, stopDispatcher := runDispatcher(t, ns.JS, cfg, slog.New(slog.DiscardHandler))
	stopNotifier := startNotifier(t, ns.JS, d1, "indexer-a", 1000)
	publishJob(t, ns.JS, events.JobFailed, "xsw", "1000001", 1)
	testkit.Eventually(t, 10*time.Second, "two failed attempts", func() bool { return len(rcv.requests()) >= 2 })
	stopNotifier()
	stopDispatcher()
	before := len(rcv.requests())

	d := startDispatcher(t, ns.JS, cfg)
	startNotifier(t, ns.JS, d, "indexer-a", 1000)
	testkit.Eventually(t, 10*time.Second, "an attempt after the restart", func() bool { return len(rcv.requests()) > before })
	rcv.setDown(false)
	testkit.Eventually(t, 10*time.Second, "the delivery", func() bool { return testutil.ToFloat64(d.deliveries.WithLabelValues("delivered")) == 1 })
	const key = "job.failed:xsw.1000001-7"
	reqs := rcv.requests()
	ok, last := 0, 0
	for i, r := range reqs {
		if got := r.header.Get(HeaderEventID); got != key || r.n.ID != key {
			t.Errorf("attempt %d: %s %s, want the idempotency key %s", i+1, HeaderEventID, got, key)
		}
		if !Verify([]byte(secret), r.body, r.header.Get(HeaderSignature)) {
			t.Errorf("attempt %d: signature does not verify", i+1)
		}
		// An attempt cut short by the stop may not have reached the receiver.
		if n, _ := strconv.Atoi(r.header.Get(HeaderAttempt)); n <= last {
			t.Errorf("attempt %d: %s = %d after %d", i+1, HeaderAttempt, n, last)
		} else {
			last = n
		}
		if r.status == 200 {
			ok++
		}
	}
	if ok != 1 || reqs[len(reqs)-1].status != 200 {
		t.Errorf("%d deliveries answered 200, want 1, the last", ok)
	}
}

// TestBurstOfFailuresAggregated: 50 jobs failing at once make five job.failed
// notifications and one (or a few) jobs.failed listing the others; a failure after the
// burst is announced on its own again, as ever.
func TestBurstOfFailuresAggregated(t *testing.T) {
	ns := natstest.Start(t)
	rcv := newReceiver(t)
	d := startDispatcher(t, ns.JS, DispatchConfig{URLs: []string{rcv.URL}})
	const window = 2 * time.Second
	startNotifierWith(t, ns.JS, d, Config{Threshold: 1000, ReplicaID: "indexer-a", BurstWindow: window})
	const burst = 50
	for i := range burst {
		publishJob(t, ns.JS, events.JobFailed, []string{"xsw", "czbooks"}[i%2], strconv.Itoa(2000000+i), 1)
	}
	// books counts the failed jobs every notification received names.
	books := func() map[string]int {
		seen := map[string]int{}
		for _, r := range rcv.requests() {
			var body struct {
				Data json.RawMessage `json:"data"`
			}
			_ = json.Unmarshal(r.body, &body)
			switch r.n.Type {
			case TypeJobFailed:
				var j JobFailed
				_ = json.Unmarshal(body.Data, &j)
				seen[j.JobID]++
			case TypeJobsFailed:
				var js JobsFailed
				_ = json.Unmarshal(body.Data, &js)
				for _, j := range js.Jobs {
					seen[j.JobID]++
				}
			}
		}
		return seen
	}
	testkit.Eventually(t, 10*time.Second, "every failed job announced", func() bool { return len(books()) == burst })
	for job, n := range books() {
		if n != 1 {
			t.Errorf("job %s announced %d times", job, n)
		}
	}
	single, many := count(rcv, TypeJobFailed, ""), count(rcv, TypeJobsFailed, "")
	if single != 5 || many < 1 || many > 3 {
		t.Errorf("%d job.failed and %d jobs.failed notifications for a burst of %d, want 5 and one or a few", single, many, burst)
	}
	for _, r := range rcv.requests() {
		if r.n.Type != TypeJobsFailed {
			continue
		}
		var body struct {
			Data JobsFailed `json:"data"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatal(err)
		}
		jf := body.Data
		if jf.Count != len(jf.Jobs) || jf.Omitted != 0 || jf.Sites["xsw"]+jf.Sites["czbooks"] != jf.Count ||
			!strings.HasPrefix(r.n.ID, TypeJobsFailed+":"+jf.Jobs[0].JobID+"+") || r.header.Get(HeaderEventID) != r.n.ID ||
			!Verify([]byte(secret), r.body, r.header.Get(HeaderSignature)) {
			t.Errorf("jobs.failed %s: %+v", r.n.ID, jf)
		}
		if j := jf.Jobs[0]; j.Error != "source: not found" || j.BookID == "" || j.Lane != events.LanePrefetch {
			t.Errorf("jobs.failed lists %+v", j)
		}
	}

	// After the burst, a failure is a job.failed of its own again.
	time.Sleep(window)
	publishJob(t, ns.JS, events.JobFailed, "xsw", "3000000", 1)
	testkit.Eventually(t, 10*time.Second, "the failure after the burst", func() bool { return count(rcv, TypeJobFailed, "job.failed:xsw.3000000-7") == 1 })
	if got := count(rcv, TypeJobsFailed, ""); got != many {
		t.Errorf("%d jobs.failed after a lone failure, want %d", got, many)
	}
}

// TestAggregateLimits: a burst lists MaxListed jobs and counts the rest.
func TestAggregateLimits(t *testing.T) {
	t.Parallel()
	n := &Notifier{cfg: Config{BurstAfter: 2, BurstWindow: time.Minute}}
	now := time.Now()
	for i, want := range []bool{false, false, true} {
		if got := n.inBurst(now.Add(time.Duration(i) * time.Second)); got != want {
			t.Errorf("failure %d: in a burst %v, want %v", i+1, got, want)
		}
	}
	if n.inBurst(now.Add(2 * time.Minute)) {
		t.Error("a failure after the window is still in the burst")
	}
	for i := range MaxListed + 7 {
		n.gather(JobFailed{Site: "xsw", JobID: strconv.Itoa(i), FailedAt: now.Add(time.Duration(i) * time.Second)}, nil)
	}
	d := n.burst.data
	if d.Count != MaxListed+7 || len(d.Jobs) != MaxListed || d.Omitted != 7 || d.Sites["xsw"] != MaxListed+7 ||
		!d.FirstFailedAt.Equal(now) || !d.LastFailedAt.Equal(now.Add(time.Duration(MaxListed+6)*time.Second)) {
		t.Errorf("burst %+v", d)
	}
}

// flakySender refuses its first notification of each type as not queued (the queue
// could not be reached), then passes everything to next, recording what it was given.
type flakySender struct {
	next    Sender
	mu      sync.Mutex
	refused map[string]bool
	seen    []Notification
}

func (f *flakySender) Send(ctx context.Context, nt Notification) error {
	f.mu.Lock()
	f.seen = append(f.seen, nt)
	first := !f.refused[nt.Type]
	f.refused[nt.Type] = true
	f.mu.Unlock()
	if first {
		return fmt.Errorf("%w: the queue did not answer", ErrNotQueued)
	}
	return f.next.Send(ctx, nt)
}

// TestConditionSentAgainKeepsItsID: a change announced but not queued is sent again at
// the next check as the same notification, so a receiver that got it can tell.
func TestConditionSentAgainKeepsItsID(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	ctx := t.Context()
	if _, err := broker.Consumer(ctx, ns.JS, events.FetcherConsumer(events.LanePrefetch, "xsw", time.Minute, -1)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"1000001", "1000002", "1000003", "1000004"} {
		r := events.NewBookRequested(events.LegacySite, id, events.LanePrefetch, 0, false, "test", time.Now())
		if _, err := broker.Publish(ctx, ns.JS, r.Subject(), r.MsgID(), &r); err != nil {
			t.Fatal(err)
		}
	}
	rcv := newReceiver(t)
	f := &flakySender{next: startDispatcher(t, ns.JS, DispatchConfig{URLs: []string{rcv.URL}}), refused: map[string]bool{}}
	startNotifier(t, ns.JS, f, "indexer-a", 3)
	testkit.Eventually(t, 10*time.Second, "queue.above_threshold delivered", func() bool { return count(rcv, TypeQueueAbove, "") == 1 })
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, nt := range f.seen {
		if nt.Type == TypeQueueAbove {
			ids = append(ids, nt.ID)
		}
	}
	if len(ids) < 2 || ids[0] != ids[len(ids)-1] {
		t.Errorf("the lane's change was sent as %v, want the refused notification sent again with its id", ids)
	}
}
