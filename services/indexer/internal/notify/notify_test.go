package notify

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/natstest"
)

// startNotifier runs a notifier for replica id, sending to d, until the returned stop is
// called (and at the end of the test).
func startNotifier(t *testing.T, js jetstream.JetStream, d Sender, id string, threshold int) (stop func()) {
	t.Helper()
	n, err := New(t.Context(), js, d, Config{Threshold: threshold, CheckEvery: 20 * time.Millisecond, ReplicaID: id,
		RenewEvery: 50 * time.Millisecond}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
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

func publishJob(t *testing.T, js jetstream.JetStream, kind events.JobKind, book string, attempt int) {
	t.Helper()
	e := events.JobEvent{Header: events.Header{Version: events.Version}, Kind: kind, JobID: book + "-7", BookID: book,
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
	ns := natstest.Start(t)
	rcv := newReceiver(t)
	d, _ := startDispatcher(t, DispatchConfig{URLs: []string{rcv.URL}})
	startNotifier(t, ns.JS, d, "indexer-a", 1000)

	publishJob(t, ns.JS, events.JobFailed, "1000001", 1)
	publishJob(t, ns.JS, events.JobCompleted, "1000002", 1)
	publishJob(t, ns.JS, events.JobFailed, "1000001", 2) // the same job again: announced already
	publishJob(t, ns.JS, events.JobFailed, "1000003", 1)
	eventually(t, "the second failed job announced", func() bool { return count(rcv, TypeJobFailed, "job.failed:1000003-7") == 1 })
	if got := count(rcv, TypeJobFailed, ""); got != 2 {
		t.Errorf("%d job.failed notifications, want 2 (one per failed job)", got)
	}
	r := rcv.requests()[0]
	data := r.n.Data.(map[string]any)
	if data["book_id"] != "1000001" || data["job_id"] != "1000001-7" || data["error"] != "source: not found" ||
		data["permanent"] != true || data["lane"] != "prefetch" {
		t.Errorf("job.failed data = %v", data)
	}
}

func TestConditionsAnnouncedOncePerChange(t *testing.T) {
	ns := natstest.Start(t)
	ctx := t.Context()
	if _, err := broker.Consumer(ctx, ns.JS, events.FetcherConsumer(events.LanePrefetch, time.Minute, -1)); err != nil {
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
			r := events.NewBookRequested(id, events.LanePrefetch, 0, false, "test", time.Now())
			if _, err := broker.Publish(ctx, ns.JS, r.Subject(), r.MsgID(), &r); err != nil {
				t.Fatal(err)
			}
		}
	}
	rcv := newReceiver(t)
	d, _ := startDispatcher(t, DispatchConfig{URLs: []string{rcv.URL}})
	beat("closed")
	stopA := startNotifier(t, ns.JS, d, "indexer-a", 3)

	request("1000001", "1000002", "1000003", "1000004")
	eventually(t, "queue.above_threshold", func() bool { return count(rcv, TypeQueueAbove, "") == 1 })
	request("1000005", "1000006") // still above: nothing new to say
	beat("open")
	eventually(t, "circuit.opened", func() bool { return count(rcv, TypeCircuitOpened, "") == 1 })
	beat("half-open") // the probe has not succeeded yet: still open
	// A new leader takes over what was announced: it announces nothing again.
	stopA()
	startNotifier(t, ns.JS, d, "indexer-b", 3)
	beat("closed")
	eventually(t, "circuit.closed", func() bool { return count(rcv, TypeCircuitClosed, "") == 1 })

	requests, err := ns.JS.Stream(ctx, events.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	if err := requests.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "queue.below_threshold", func() bool { return count(rcv, TypeQueueBelow, "") == 1 })
	beat("open")
	eventually(t, "circuit.opened again", func() bool { return count(rcv, TypeCircuitOpened, "") == 2 })

	if got := count(rcv, TypeQueueAbove, ""); got != 1 {
		t.Errorf("%d queue.above_threshold notifications, want 1", got)
	}
	if got := count(rcv, TypeQueueBelow, ""); got != 1 {
		t.Errorf("%d queue.below_threshold notifications, want 1", got)
	}
	for _, r := range rcv.requests() {
		if r.n.Type == TypeQueueAbove {
			data := r.n.Data.(map[string]any)
			if data["lane"] != "prefetch" || data["waiting"] != 4.0 || data["threshold"] != 3.0 {
				t.Errorf("queue.above_threshold data = %v", data)
			}
		}
	}
}

func TestOneReplicaNotifies(t *testing.T) {
	ns := natstest.Start(t)
	ctx := t.Context()
	fetchers, err := ns.JS.KeyValue(ctx, events.BucketFetchers)
	if err != nil {
		t.Fatal(err)
	}
	hb := events.FetcherHeartbeat{Header: events.Header{Version: events.Version}, FetcherID: "f1", Circuit: "open", At: time.Now()}
	b, _ := events.Encode(&hb)
	rcv := newReceiver(t)
	d, _ := startDispatcher(t, DispatchConfig{URLs: []string{rcv.URL}})
	startNotifier(t, ns.JS, d, "indexer-a", 1)
	startNotifier(t, ns.JS, d, "indexer-b", 1)
	if _, err := fetchers.Put(ctx, hb.FetcherID, b); err != nil {
		t.Fatal(err)
	}
	eventually(t, "circuit.opened", func() bool { return count(rcv, TypeCircuitOpened, "") == 1 })
	// Another change, announced after both replicas checked the circuit many times.
	for _, id := range []string{"1000001", "1000002"} {
		r := events.NewBookRequested(id, events.LaneManual, 10, false, "test", time.Now())
		if _, err := broker.Publish(ctx, ns.JS, r.Subject(), r.MsgID(), &r); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "queue.above_threshold", func() bool { return count(rcv, TypeQueueAbove, "") == 1 })
	publishJob(t, ns.JS, events.JobFailed, "1000003", 1)
	eventually(t, "job.failed", func() bool { return count(rcv, TypeJobFailed, "") == 1 })
	if got := count(rcv, TypeCircuitOpened, ""); got != 1 {
		t.Errorf("%d circuit.opened notifications from two replicas, want 1", got)
	}
	if got := count(rcv, TypeQueueAbove, ""); got != 1 {
		t.Errorf("%d queue.above_threshold notifications from two replicas, want 1", got)
	}
}
