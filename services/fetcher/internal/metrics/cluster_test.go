package metrics

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/natstest"
)

// clusterGauges are the gauges that describe the whole cluster.
var clusterGauges = []string{"xsw_fetcher_queue_size", "xsw_fetcher_dead_letters"}

// samples gathers reg's series of the named metric, by their labels' values ("" for a
// series without labels).
func samples(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			key := ""
			for _, l := range m.GetLabel() {
				key += l.GetValue()
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}

// exportsCluster reports whether reg exports the cluster's gauges with the bus's
// values: 2 prefetch requests waiting, 1 dead letter.
func exportsCluster(t *testing.T, reg *prometheus.Registry) bool {
	t.Helper()
	return samples(t, reg, "xsw_fetcher_queue_size")["prefetch"] == 2 && samples(t, reg, "xsw_fetcher_dead_letters")[""] == 1
}

// exportsNoCluster checks that reg exports no series of the cluster's gauges, not even
// zeros, and still exports the fetcher's own.
func exportsNoCluster(t *testing.T, reg *prometheus.Registry, who string) {
	t.Helper()
	for _, name := range clusterGauges {
		if s := samples(t, reg, name); len(s) != 0 {
			t.Fatalf("%s exports %s %v without holding the lease", who, name, s)
		}
	}
	if s := samples(t, reg, "xsw_fetcher_jobs_in_flight"); len(s) != 1 {
		t.Fatalf("%s does not export its own jobs in flight: %v", who, s)
	}
}

// watch runs m.Watch as the fetcher named holder until the returned stop is called (or
// the test ends).
func watch(t *testing.T, m *Fetcher, ns *natstest.Server, holder string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Watch(ctx, ns.JS, holder, 10*time.Millisecond, slog.New(slog.DiscardHandler)) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch of %s = %v", holder, err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestOneFetcherExportsTheClusterGauges runs two fetchers' metrics against one JetStream:
// only the holder of the lease exports the queue and the dead letters, so that their sum
// over the fetchers is the truth; when it stops, the other takes over.
func TestOneFetcherExportsTheClusterGauges(t *testing.T) {
	ns := natstest.Start(t)
	for _, l := range events.Lanes {
		if _, err := broker.Consumer(t.Context(), ns.JS, events.FetcherConsumer(l, "xsw", time.Minute, -1)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"1000001", "1000002"} {
		r := events.NewBookRequested("xsw", id, events.LanePrefetch, 0, false, "test", time.Now())
		if _, err := broker.Publish(t.Context(), ns.JS, r.Subject(), r.MsgID(), &r); err != nil {
			t.Fatal(err)
		}
	}
	r := events.NewBookRequested("xsw", "1000003", events.LaneManual, 10, false, "test", time.Now())
	dl := events.DeadLetter{Header: events.Header{Version: events.Version}, Request: r, JobID: "xsw.1000003-1", Attempts: 1, Error: "gone", DiedAt: time.Now()}
	if _, err := broker.Publish(t.Context(), ns.JS, dl.Subject(), "", &dl); err != nil {
		t.Fatal(err)
	}

	a, regA := newFetcher(t, "closed")
	b, regB := newFetcher(t, "closed")
	exportsNoCluster(t, regA, "a fetcher not watching")
	stopA := watch(t, a, ns, "fetcher-a")
	eventually(t, "fetcher-a to export the cluster's gauges", func() bool { return exportsCluster(t, regA) })

	watch(t, b, ns, "fetcher-b")
	// However many times fetcher-b tries for the lease, it exports nothing of the
	// cluster's while fetcher-a holds it.
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		exportsNoCluster(t, regB, "fetcher-b")
		if !exportsCluster(t, regA) {
			t.Fatal("fetcher-a stopped exporting the cluster's gauges while it holds the lease")
		}
	}

	stopA()
	exportsNoCluster(t, regA, "fetcher-a, stopped,")
	eventually(t, "fetcher-b to take over", func() bool { return exportsCluster(t, regB) })
	exportsNoCluster(t, regA, "fetcher-a, stopped,")
}

// eventually polls cond until it holds, failing the test after 10 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
