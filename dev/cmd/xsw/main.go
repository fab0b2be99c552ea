// Command xsw runs the whole pipeline in one process.
//
//	xsw            run against BASE_URL (default https://m.xsw.tw)
//	xsw demo       run against a simulated site served in-process
//	xsw migrate    create the database if missing, apply migrations, exit
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/xswtw/xsw/dev/allinone"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/database"
	"github.com/xswtw/xsw/services/indexer"
)

const usage = `usage: xsw [run|demo|migrate]

  run      run gateway, fetcher and indexer with embedded NATS (default)
  demo     the same against a simulated source site, served in-process
  migrate  create the database if missing, apply migrations and exit

Configuration comes from the environment and an optional .env file; see README.md.`

func main() {
	ctx, stop, logger, err := config.Boot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "xsw:", err)
		os.Exit(1)
	}
	defer stop()
	cmd := "run"
	if len(os.Args) > 1 {
		cmd = os.Args[1]
	}
	switch cmd {
	case "run", "demo":
		err = allinone.Run(ctx, allinone.Options{Getenv: os.Getenv, Demo: cmd == "demo"}, logger)
	case "migrate":
		err = migrate(ctx, logger)
	case "-h", "--help", "help":
		fmt.Println(usage)
		return
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		logger.Error("xsw failed", "err", err)
		os.Exit(1)
	}
}

func migrate(ctx context.Context, logger *slog.Logger) error {
	if os.Getenv("DATABASE_URL") == "" {
		os.Setenv("DATABASE_URL", database.DefaultURL)
	}
	cfg, err := indexer.ConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	return indexer.Migrate(ctx, cfg, logger)
}
