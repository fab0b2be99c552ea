package broker_test

import (
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/natsembed"
)

// emptyServer runs an embedded JetStream server with nothing provisioned and returns a
// connection to it.
func emptyServer(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	nc, js, err := broker.Connect(srv.ClientURL(), t.Name(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return js
}

var topo = broker.Topology{RequestMaxAge: 24 * time.Hour, SyncedTTL: time.Hour}

// streamNames are the streams of every stream and bucket of the events contract.
func streamNames() []string {
	var names []string
	for _, s := range events.Streams(0) {
		names = append(names, s.Name)
	}
	for _, b := range events.Buckets(0) {
		names = append(names, "KV_"+b.Bucket)
	}
	return names
}

// driftOf returns the drift reported for stream, or nil.
func driftOf(drift []broker.Drift, stream string) []string {
	for _, d := range drift {
		if d.Stream == stream {
			return d.Differs
		}
	}
	return nil
}

// TestEnsureCreatesWhatIsMissing: on an empty server Ensure creates every stream and
// bucket; Ensure and Provision make them alike, so that neither finds the other's
// different.
func TestEnsureCreatesWhatIsMissing(t *testing.T) {
	t.Parallel()
	js := emptyServer(t)
	ctx := t.Context()
	drift, err := broker.Ensure(ctx, js, topo)
	if err != nil || len(drift) > 0 {
		t.Fatalf("Ensure on an empty server = %v, %v; want every stream created", drift, err)
	}
	for _, name := range streamNames() {
		if _, err := js.Stream(ctx, name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if drift, err := broker.Ensure(ctx, js, topo); err != nil || len(drift) > 0 {
		t.Errorf("Ensure over Ensure = %v, %v; want nothing different", drift, err)
	}
	if err := broker.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	if drift, err := broker.Ensure(ctx, js, topo); err != nil || len(drift) > 0 {
		t.Errorf("Ensure over Provision = %v, %v; want nothing different", drift, err)
	}

	// A fresh server provisioned by Provision first reads the same to Ensure.
	js2 := emptyServer(t)
	if err := broker.Provision(ctx, js2, topo); err != nil {
		t.Fatal(err)
	}
	if drift, err := broker.Ensure(ctx, js2, topo); err != nil || len(drift) > 0 {
		t.Errorf("Ensure over a fresh Provision = %v, %v; want nothing different", drift, err)
	}
}

// TestEnsureChangesNothing: streams and buckets whose limits were changed (a stream
// shrunk to one message, a bucket capped, requests kept for another age) are reported
// and left as they are, their messages kept; Provision restores them.
func TestEnsureChangesNothing(t *testing.T) {
	t.Parallel()
	js := emptyServer(t)
	ctx := t.Context()
	if err := broker.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := js.Publish(ctx, events.SubjectIndexed("xsw", string(rune('1'+i))), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	shrink := func(name string, f func(*jetstream.StreamConfig)) {
		t.Helper()
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		f(&cfg)
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatalf("update %s: %v", name, err)
		}
	}
	// As an operator would, or a user allowed STREAM.UPDATE.
	shrink(events.StreamIndexed, func(c *jetstream.StreamConfig) { c.MaxMsgs = 10 })
	shrink("KV_"+events.BucketClaims, func(c *jetstream.StreamConfig) { c.MaxBytes = 1 << 20 })

	other := topo
	other.RequestMaxAge = time.Hour
	drift, err := broker.Ensure(ctx, js, other)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		events.StreamIndexed:        "max_msgs 10, want -1",
		"KV_" + events.BucketClaims: "max_bytes 1048576, want -1",
		events.StreamRequests:       "max_age 24h0m0s, want 1h0m0s",
	}
	for stream, differs := range want {
		if got := driftOf(drift, stream); !slices.Contains(got, differs) {
			t.Errorf("drift of %s = %q, want %q", stream, got, differs)
		}
	}
	if len(drift) != len(want) {
		t.Errorf("drift = %+v, want %d streams", drift, len(want))
	}
	check := func(name string, f func(jetstream.StreamConfig) bool) {
		t.Helper()
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if !f(s.CachedInfo().Config) {
			t.Errorf("%s: configuration %+v", name, s.CachedInfo().Config)
		}
	}
	check(events.StreamRequests, func(c jetstream.StreamConfig) bool { return c.MaxAge == 24*time.Hour })
	check(events.StreamIndexed, func(c jetstream.StreamConfig) bool { return c.MaxMsgs == 10 })

	if err := broker.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	if drift, err := broker.Ensure(ctx, js, topo); err != nil || len(drift) > 0 {
		t.Errorf("Ensure after Provision = %v, %v; want nothing different", drift, err)
	}
	s, err := js.Stream(ctx, events.StreamIndexed)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 5 {
		t.Errorf("%s holds %d messages, want the 5 published", events.StreamIndexed, n)
	}
}

// TestEnsureRace: services starting at once on an empty server, one of them configured
// otherwise: all succeed, and what the others created is reported to the odd one, or
// the other way round, never changed.
func TestEnsureRace(t *testing.T) {
	t.Parallel()
	js := emptyServer(t)
	other := topo
	other.RequestMaxAge = time.Hour
	topos := []broker.Topology{topo, topo, other}
	drifts := make([][]broker.Drift, len(topos))
	errs := make([]error, len(topos))
	var wg sync.WaitGroup
	for i, tp := range topos {
		wg.Go(func() { drifts[i], errs[i] = broker.Ensure(t.Context(), js, tp) })
	}
	wg.Wait()
	reported := 0
	for i := range topos {
		if errs[i] != nil {
			t.Errorf("Ensure %d: %v", i, errs[i])
		}
		for _, d := range drifts[i] {
			if d.Stream != events.StreamRequests || !strings.HasPrefix(strings.Join(d.Differs, ";"), "max_age") {
				t.Errorf("Ensure %d reports %+v", i, d)
			}
			reported++
		}
	}
	if reported == 0 {
		t.Error("no Ensure reported the request stream made with another maximum age")
	}
}
