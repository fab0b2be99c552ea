package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/natstest"
)

// TestRequestDedup checks the first two dedup layers on a real JetStream server: the same
// request published twice is stored once (Nats-Msg-Id), and a book already waiting in a
// lane is refused a second entry (per-subject limit).
func TestRequestDedup(t *testing.T) {
	ns := natstest.Start(t)
	ctx := t.Context()
	at := time.Now()
	r := events.NewBookRequested("1721851", events.LanePrefetch, 0, false, "test", at)
	a1, err := broker.Publish(ctx, ns.JS, r.Subject(), r.MsgID(), &r)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := broker.Publish(ctx, ns.JS, r.Subject(), r.MsgID(), &r)
	if err != nil {
		t.Fatal(err)
	}
	if !a2.Duplicate || a1.Sequence != a2.Sequence {
		t.Errorf("second publish: duplicate=%v seq %d vs %d", a2.Duplicate, a2.Sequence, a1.Sequence)
	}
	later := events.NewBookRequested("1721851", events.LanePrefetch, 0, false, "test", at.Add(10*time.Minute))
	_, err = broker.Publish(ctx, ns.JS, later.Subject(), later.MsgID(), &later)
	if !broker.IsSubjectFull(err) {
		t.Errorf("second request for a waiting book: err = %v, want a per-subject limit refusal", err)
	}
	other := events.NewBookRequested("1721851", events.LaneManual, 10, false, "test", at)
	if _, err := broker.Publish(ctx, ns.JS, other.Subject(), other.MsgID(), &other); err != nil {
		t.Errorf("same book in another lane: %v", err)
	}
	info, err := ns.JS.Stream(ctx, events.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	si, err := info.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if si.State.Msgs != 2 {
		t.Errorf("stream holds %d requests, want 2", si.State.Msgs)
	}
}

func TestProvisionIsIdempotent(t *testing.T) {
	ns := natstest.Start(t)
	if err := broker.Provision(t.Context(), ns.JS, broker.Topology{RequestMaxAge: time.Hour, SyncedTTL: time.Hour}); err != nil {
		t.Fatalf("second Provision: %v", err)
	}
}
