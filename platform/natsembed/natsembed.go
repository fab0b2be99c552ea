// Package natsembed runs a NATS server with JetStream inside the process, for the
// all-in-one binary, benchmarks and tests. The service binaries never import it: they
// connect to a NATS server of their own (package broker), and a check in deploy/check
// keeps the server out of their builds.
package natsembed

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure an in-process NATS server with JetStream.
type Options struct {
	// StoreDir is where JetStream keeps its files.
	StoreDir string
	// Host and Port to listen on; Host defaults to the loopback address; Port -1 picks a
	// free port, 0 means the default 4222.
	Host string
	Port int
	// ServerName names the server (default "xsw-embedded").
	ServerName string
}

// Start starts a NATS server with JetStream in this process and waits until it accepts
// connections. Call Shutdown and WaitForShutdown on the result to stop it.
func Start(opts Options) (*server.Server, error) {
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.ServerName == "" {
		opts.ServerName = "xsw-embedded"
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: opts.ServerName,
		Host:       opts.Host,
		Port:       opts.Port,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		// Table-of-contents pages of huge books stay well under this; it is NATS's default.
		MaxPayload: 1 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded nats: not ready after 10s")
	}
	return srv, nil
}
