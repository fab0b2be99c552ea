// Command xsw runs the whole pipeline in one process.
//
//	xsw            run against BASE_URL (default https://m.xsw.tw)
//	xsw demo       run against a simulated site served in-process
//	xsw migrate    create the database if missing, apply migrations, exit
//	xsw --version  print the build and exit
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/xswtw/xsw/dev/allinone"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/database"
	"github.com/xswtw/xsw/platform/service"
	"github.com/xswtw/xsw/services/indexer"
)

var command = service.Command{Name: "xsw", Usage: `usage: xsw [-h | --help] [--version] [run|demo|migrate]

  run      run gateway, fetcher and indexer with embedded NATS (default)
  demo     the same against a simulated source site, served in-process
  migrate  create the database if missing, apply migrations and exit

  -h, --help   print this help and exit
  --version    print the build and exit

Configuration comes from the environment and an optional .env file; see docs/configuration.md.`}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command: it returns the status to exit with.
func run(args []string, stdout, stderr io.Writer) int {
	rest, status, done := command.Parse(args, stdout, stderr)
	if done {
		return status
	}
	cmd := "run"
	switch {
	case len(rest) > 1:
		return command.Fail(stderr, "unexpected argument %q", rest[1])
	case len(rest) == 1:
		cmd = rest[0]
	}
	if cmd == "help" {
		fmt.Fprintln(stdout, command.Usage)
		return 0
	}
	if cmd != "run" && cmd != "demo" && cmd != "migrate" {
		return command.Fail(stderr, "unknown command %q", cmd)
	}
	ctx, stop, logger, err := config.Boot()
	if err != nil {
		fmt.Fprintln(stderr, "xsw:", err)
		return 1
	}
	defer stop()
	if cmd == "migrate" {
		err = migrate(ctx, logger)
	} else {
		err = allinone.Run(ctx, allinone.Options{Getenv: os.Getenv, Demo: cmd == "demo"}, logger)
	}
	if err != nil {
		logger.Error("xsw failed", "err", err)
		return 1
	}
	return 0
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
