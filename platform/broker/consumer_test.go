package broker_test

import (
	"testing"
	"time"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/natstest"
)

// TestDeliverNewConsumerSkipsThePast creates the notifier's consumer after a failure was
// published: it sees only what comes after, and keeps its place when created again.
func TestDeliverNewConsumerSkipsThePast(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	ctx := t.Context()
	publish := func(book string) {
		t.Helper()
		e := events.JobEvent{Header: events.Header{Version: events.Version}, Kind: events.JobFailed, JobID: book + "-1",
			Site: "xsw", BookID: book, Lane: events.LanePrefetch, At: time.Now(), Error: "gone"}
		if _, err := broker.Publish(ctx, ns.JS, e.Subject(), e.MsgID(), &e); err != nil {
			t.Fatal(err)
		}
	}
	publish("1000001")
	c, err := broker.Consumer(ctx, ns.JS, events.NotifierConsumer())
	if err != nil {
		t.Fatal(err)
	}
	publish("1000002")
	if _, err := broker.Consumer(ctx, ns.JS, events.NotifierConsumer()); err != nil {
		t.Fatalf("provisioning the consumer again: %v", err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumPending != 1 {
		t.Errorf("pending = %d, want 1 (only the failure published after the consumer)", info.NumPending)
	}
}
