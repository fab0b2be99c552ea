package broker_test

import (
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/natsembed"
)

// TestQueuedWorkSurvivesRestart stops the JetStream server with requests waiting and a
// politeness booking made, starts it again on the same store, and finds both.
func TestQueuedWorkSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	opts := natsembed.Options{StoreDir: dir, Port: port}
	url := "nats://127.0.0.1:" + strconv.Itoa(port)

	srv, err := natsembed.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	nc, js, err := broker.Connect(url, "restart", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx := t.Context()
	if err := broker.Provision(ctx, js, broker.Topology{RequestMaxAge: time.Hour, SyncedTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"1", "2", "3"} {
		r := events.NewBookRequested("xsw", id, events.LanePrefetch, 0, false, "t", time.Now())
		if _, err := broker.Publish(ctx, js, r.Subject(), r.MsgID(), &r); err != nil {
			t.Fatal(err)
		}
	}
	kv, err := js.KeyValue(ctx, events.BucketSynced)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "1", events.SyncedValue(time.Now())); err != nil {
		t.Fatal(err)
	}

	srv.Shutdown()
	srv.WaitForShutdown()
	srv, err = natsembed.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()

	// The same connection finds the server again by itself.
	deadline := time.Now().Add(10 * time.Second)
	for !nc.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatal("client did not reconnect")
		}
		time.Sleep(20 * time.Millisecond)
	}
	s, err := js.Stream(ctx, events.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Errorf("%d requests after restart, want 3", info.State.Msgs)
	}
	if _, err := kv.Get(ctx, "1"); err != nil {
		t.Errorf("synced mark lost in restart: %v", err)
	}
}
