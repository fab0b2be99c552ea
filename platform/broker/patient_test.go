package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/natstest"
)

// TestPublishPatiently publishes to a subject no stream takes yet, as during a leader
// election or a server restart, and creates the stream a little later: the patient
// publish waits for it and stores the message once; a plain publish fails at once.
func TestPublishPatiently(t *testing.T) {
	ns := natstest.Start(t)
	ctx := t.Context()
	r := events.NewBookRequested("xsw", "1721851", events.LanePrefetch, 0, false, "test", time.Now())
	const subject = "patient.test"
	if _, err := broker.Publish(ctx, ns.JS, subject, r.MsgID(), &r); !broker.Unavailable(err) {
		t.Fatalf("a plain publish with no stream: %v, want an unavailable bus", err)
	}

	created := make(chan error, 1)
	go func() {
		time.Sleep(700 * time.Millisecond)
		_, err := ns.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "PATIENT", Subjects: []string{subject}, Storage: jetstream.MemoryStorage})
		created <- err
	}()
	start := time.Now()
	ack, err := broker.PublishPatiently(ctx, ns.JS, subject, r.MsgID(), &r, 10*time.Second)
	if err != nil {
		t.Fatalf("patient publish: %v", err)
	}
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 700*time.Millisecond {
		t.Errorf("published after %v, before the stream existed", took)
	}
	if ack.Stream != "PATIENT" {
		t.Errorf("stored in %q", ack.Stream)
	}
	if _, err := broker.PublishPatiently(ctx, ns.JS, subject, r.MsgID(), &r, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	s, err := ns.JS.Stream(ctx, "PATIENT")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("the stream holds %d messages, want 1 (retries are de-duplicated by id)", info.State.Msgs)
	}
}

// TestPublishPatientlyGivesUp checks the bounds: patience runs out, a message without an
// id is never retried, and the caller's context ends the wait.
func TestPublishPatientlyGivesUp(t *testing.T) {
	ns := natstest.Start(t)
	ctx := t.Context()
	r := events.NewBookRequested("xsw", "1721851", events.LanePrefetch, 0, false, "test", time.Now())

	start := time.Now()
	_, err := broker.PublishPatiently(ctx, ns.JS, "nobody.listens", r.MsgID(), &r, time.Second)
	if !broker.Unavailable(err) {
		t.Fatalf("err = %v, want unavailable", err)
	}
	if took := time.Since(start); took < 700*time.Millisecond || took > 3*time.Second {
		t.Errorf("gave up after %v with a patience of 1s", took)
	}

	start = time.Now()
	if _, err := broker.PublishPatiently(ctx, ns.JS, "nobody.listens", "", &r, 10*time.Second); err == nil {
		t.Fatal("published without a stream")
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("a message without an id was retried for %v", took)
	}

	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(300*time.Millisecond, cancel)
	start = time.Now()
	if _, err := broker.PublishPatiently(cctx, ns.JS, "nobody.listens", r.MsgID(), &r, 10*time.Second); err == nil {
		t.Fatal("published after the context ended")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("kept trying %v after the context ended", took)
	}
}
