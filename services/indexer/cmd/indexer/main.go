// Command indexer runs the xsw indexer: it writes what fetchers publish into Postgres.
//
// Usage:
//
//	indexer           run the service until SIGINT or SIGTERM
//	indexer migrate   apply the database migrations and exit
//
// Configuration comes from the environment and a .env file; see indexer.Config.
package main

import (
	"fmt"
	"os"

	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/services/indexer"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	ctx, stop, logger, err := config.Boot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "indexer:", err)
		return 1
	}
	defer stop()
	cfg, err := indexer.ConfigFromEnv(os.Getenv)
	if err != nil {
		logger.Error("indexer: configuration", "err", err)
		return 1
	}

	switch {
	case len(args) == 0:
		err = indexer.Run(ctx, cfg, logger)
	case len(args) == 1 && args[0] == "migrate":
		err = indexer.Migrate(ctx, cfg, logger)
	default:
		fmt.Fprintln(os.Stderr, "usage: indexer [migrate]")
		return 2
	}
	if err != nil {
		logger.Error("indexer failed", "err", err)
		return 1
	}
	return 0
}
