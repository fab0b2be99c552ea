// Command indexer runs the xsw indexer: it writes what fetchers publish into Postgres.
//
// Usage:
//
//	indexer           run the service until SIGINT or SIGTERM
//	indexer migrate   apply the database migrations and exit
//	indexer --version print the build and exit
//
// Configuration comes from the environment and a .env file; see docs/configuration.md.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/service"
	"github.com/xswtw/xsw/services/indexer"
)

var command = service.Command{Name: "indexer", Usage: `usage: indexer [-h | --help] [--version] [migrate]

Runs the xsw indexer, the only writer of the book tables: it takes what the fetchers
publish on NATS JetStream and writes it into Postgres, announces every book it wrote,
schedules the refresh of stored books and prunes the job history. It serves /healthz,
/readyz and /metrics on INDEXER_HEALTH_ADDR (:8002) and stops gracefully on SIGINT or
SIGTERM.

  migrate      create the database if missing, apply the migrations and exit

Configuration comes from the environment and a .env file in the working directory:
DATABASE_URL, NATS_URL and the others that docs/configuration.md lists with their
defaults.

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
	migrate := len(rest) == 1 && rest[0] == "migrate"
	if len(rest) > 0 && !migrate {
		return command.Fail(stderr, "unexpected argument %q", rest[len(rest)-1])
	}
	if err := config.LoadDotEnv(""); err != nil {
		fmt.Fprintln(stderr, "indexer:", err)
		return 1
	}
	cfg, err := indexer.ConfigFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(stderr, "indexer: configuration:", err)
		return 1
	}
	ctx, stop, logger, err := cfg.Boot(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "indexer:", err)
		return 1
	}
	defer stop()
	if migrate {
		err = indexer.Migrate(ctx, cfg, logger)
	} else {
		err = indexer.Run(ctx, cfg, logger)
	}
	if err != nil {
		logger.Error("indexer failed", "err", err)
		return 1
	}
	return 0
}
