package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/testkit"
)

// streamLeader names the cluster node that leads stream and checks that the stream has
// three replicas.
func (r *rig) streamLeader(stream string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := r.js.Stream(ctx, stream)
	if err != nil {
		return "", err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.Config.Replicas != 3 || info.Cluster == nil {
		return "", fmt.Errorf("stream %s: %d replicas, want 3", stream, info.Config.Replicas)
	}
	return info.Cluster.Leader, nil
}

// TestClusterNodeKilled runs the pipeline on a three-node NATS cluster, every stream and
// bucket with three replicas, and kills the node leading the request stream with SIGKILL
// while 200 books sync. The other two elect new leaders, the services reconnect to them,
// and every book ends fully indexed, each with one job in its history. The killed node,
// started again, catches up and reports healthy.
func TestClusterNodeKilled(t *testing.T) {
	t.Parallel()
	r := newRig(t, options{natsNodes: 3, site: []string{"-categories", "2", "-books", "100", "-chapters", "20..80", "-latency", "5ms"},
		fetchers: 2})
	ids := r.site.ids(t, 0)
	if len(ids) != 200 {
		t.Fatalf("the site has %d books, want 200", len(ids))
	}
	r.request(ids)
	leader, err := r.streamLeader(events.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 60*time.Second, "a quarter of the books indexed", func() bool {
		var n int
		_ = r.db.QueryRow(context.Background(), `SELECT count(*) FROM books WHERE synced_at IS NOT NULL`).Scan(&n)
		return n >= 50
	})
	var victim *natsNode
	for _, n := range r.nats {
		if n.name == leader {
			victim = n
		}
	}
	if victim == nil {
		t.Fatalf("no node named %q leads %s", leader, events.StreamRequests)
	}
	victim.Kill()
	t.Logf("killed %s, leader of %s, with %d refs indexed", victim.name, events.StreamRequests, r.indexedRefs())
	testkit.Eventually(t, 30*time.Second, "a new leader", func() bool {
		l, err := r.streamLeader(events.StreamRequests)
		return err == nil && l != "" && l != victim.name
	})

	r.settleAll(t, ids, 3*time.Minute)
	for _, p := range append(r.fetchers, r.indexer) {
		if !p.Running() {
			t.Errorf("%s exited when a NATS node died: %v", p.Name, p.Err())
		}
	}
	victim.Restart()
	victim.waitReady(t)
}
