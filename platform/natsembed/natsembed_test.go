package natsembed_test

import (
	"net"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/xswtw/xsw/platform/natsembed"
)

// TestStart starts a server, finds JetStream on it, and stops it.
func TestStart(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Port: -1, ServerName: "natsembed-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	if srv.Name() != "natsembed-test" {
		t.Errorf("server name %q, want natsembed-test", srv.Name())
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(); err != nil {
		t.Errorf("JetStream account info: %v", err)
	}
}

// TestListensOnLoopback: the embedded server (the all-in-one's, which has no users)
// takes connections on the loopback interface only, unless asked otherwise.
func TestListensOnLoopback(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	addr, ok := srv.Addr().(*net.TCPAddr)
	if !ok || !addr.IP.IsLoopback() {
		t.Errorf("embedded NATS listens on %v, want a loopback address", srv.Addr())
	}
}
