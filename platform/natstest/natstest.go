// Package natstest starts an embedded NATS server with JetStream for one test, with the
// pipeline's streams and buckets provisioned.
package natstest

import (
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/natsembed"
)

// Server is a running test server and a connection to it.
type Server struct {
	*server.Server
	URL  string
	Conn *nats.Conn
	JS   jetstream.JetStream
}

// Start runs a server on a free loopback port with its store in t.TempDir(), provisions
// the topology and stops everything when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, broker.Topology{RequestMaxAge: 24 * time.Hour, SyncedTTL: time.Hour})
}

// StartWith is Start with a chosen topology.
func StartWith(t testing.TB, topo broker.Topology) *Server {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	nc, js, err := broker.Connect(srv.ClientURL(), t.Name(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(nc.Close)
	if err := broker.Provision(t.Context(), js, topo); err != nil {
		t.Fatalf("natstest: %v", err)
	}
	return &Server{Server: srv, URL: srv.ClientURL(), Conn: nc, JS: js}
}
