// Command gateway serves the xsw HTTP API (see package gateway).
//
// Usage:
//
//	gateway [-h | --help] [--version]
//
// Configuration comes from the environment and a .env file; see docs/configuration.md.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/service"
	"github.com/xswtw/xsw/services/gateway"
)

var command = service.Command{Name: "gateway", Usage: `usage: gateway [-h | --help] [--version]

Serves the xsw HTTP API (/xsw/api) on HTTP_ADDR (:8000) from Postgres and a memory cache,
asks the fetchers over NATS for what is fetched on demand and queues book requests on
NATS JetStream. /healthz, /readyz and /metrics are served on the same address. It stops
gracefully on SIGINT or SIGTERM.

Configuration comes from the environment and a .env file in the working directory:
HTTP_ADDR, DATABASE_URL, NATS_URL, XSW_ADMIN_TOKEN and the others that
docs/configuration.md lists with their defaults.

  -h, --help   print this help and exit
  --version    print the build and exit
`}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command: it returns the status to exit with.
func run(args []string, stdout, stderr io.Writer) int {
	rest, status, done := command.Parse(args, stdout, stderr)
	if done {
		return status
	}
	if len(rest) > 0 {
		return command.Fail(stderr, "unexpected argument %q", rest[0])
	}
	if err := config.LoadDotEnv(""); err != nil {
		fmt.Fprintln(stderr, "gateway:", err)
		return 1
	}
	cfg, err := gateway.ConfigFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(stderr, "gateway: configuration:", err)
		return 1
	}
	ctx, stop, logger, err := cfg.Boot(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "gateway:", err)
		return 1
	}
	defer stop()
	if err := gateway.Run(ctx, cfg, logger); err != nil {
		logger.Error("gateway failed", "err", err)
		return 1
	}
	return 0
}
