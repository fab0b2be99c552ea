package chaos

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/testkit"
)

// waiting is the number of sync requests stored in the request stream.
func (r *rig) waiting(t *testing.T) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := r.js.Stream(ctx, events.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestNATSRestart takes the NATS server down in the middle of a sync of 40 books, with
// SIGTERM (a rolling restart) or SIGKILL (a crash), and starts it again a few seconds
// later on the same port and store. The requests stored before are all there after, the
// services reconnect by themselves, and every book ends fully indexed, each with one job
// in its history.
func TestNATSRestart(t *testing.T) {
	t.Parallel()
	for _, crash := range []bool{false, true} {
		t.Run(map[bool]string{false: "stopped", true: "killed"}[crash], func(t *testing.T) {
			t.Parallel()
			testNATSRestart(t, crash)
		})
	}
}

func testNATSRestart(t *testing.T, crash bool) {
	r := newRig(t, options{site: []string{"-categories", "1", "-books", "40", "-chapters", "60..120", "-latency", "30ms"},
		fetchers: 2, gateway: true})
	ids := r.site.ids(t, 0)
	r.request(ids)
	testkit.Eventually(t, 30*time.Second, "syncs under way", func() bool { return r.indexedRefs() > 0 })
	// Freeze the fetchers so that what is stored cannot change while the server is down:
	// every request queued or taken but not yet acknowledged must be there after it.
	for _, f := range r.fetchers {
		if err := f.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	stored := r.waiting(t)
	node := r.nats[0]
	if crash {
		node.Kill()
	} else if !node.Stop(10 * time.Second) {
		t.Error("nats-server did not stop within 10s of SIGTERM")
	}
	time.Sleep(3 * time.Second)
	node.Restart()
	node.waitReady(t)
	if after := r.waiting(t); after != stored {
		t.Errorf("%d requests stored before the restart, %d after", stored, after)
	}
	t.Logf("nats-server restarted with %d requests stored, %d refs indexed", stored, r.indexedRefs())
	for _, f := range r.fetchers {
		if err := f.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}

	resumed := time.Now()
	r.settleAll(t, ids, 90*time.Second)
	t.Logf("every book indexed %v after the fetchers resumed", time.Since(resumed).Round(time.Millisecond))
	for _, p := range append(r.fetchers, r.indexer, r.gateway) {
		if !p.Running() {
			t.Errorf("%s exited across the NATS restart: %v", p.Name, p.Err())
		}
	}
	// The gateway reconnected too: it answers from the database and its job stats come
	// from JetStream.
	waitHTTP(t, r.gatewayURL+"/health", 30*time.Second)
}
