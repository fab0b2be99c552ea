// Command fetcher runs one fetcher process: see package fetcher.
//
// Usage:
//
//	fetcher [-h | --help] [--version]
//
// Configuration comes from the environment and a .env file; see docs/configuration.md.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/service"
	"github.com/xswtw/xsw/services/fetcher"
)

var command = service.Command{Name: "fetcher", Usage: `usage: fetcher [-h | --help] [--version]

Runs one xsw fetcher: it takes book requests from NATS JetStream, fetches the books from
their source sites under each site's cluster-wide politeness limit, publishes what it
found for the indexer, and answers the gateways' calls. It serves /healthz, /readyz and
/metrics on FETCHER_HEALTH_ADDR (:8001) and stops gracefully on SIGINT or SIGTERM.

Configuration comes from the environment and a .env file in the working directory:
NATS_URL, SOURCES, BG_JOB_WORKERS, BG_JOB_RATE_LIMIT and the others that
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
		fmt.Fprintln(stderr, "fetcher:", err)
		return 1
	}
	cfg, err := fetcher.ConfigFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(stderr, "fetcher: configuration:", err)
		return 1
	}
	ctx, stop, logger, err := cfg.Boot(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "fetcher:", err)
		return 1
	}
	defer stop()
	if err := fetcher.Run(ctx, cfg, logger); err != nil {
		logger.Error("fetcher failed", "err", err)
		return 1
	}
	return 0
}
