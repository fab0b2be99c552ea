// Command fetcher runs one fetcher process: see package fetcher.
package main

import (
	"fmt"
	"os"

	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/services/fetcher"
)

func main() {
	ctx, stop, logger, err := config.Boot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fetcher:", err)
		os.Exit(1)
	}
	defer stop()
	cfg, err := fetcher.ConfigFromEnv(os.Getenv)
	if err != nil {
		logger.Error("configuration", "err", err)
		os.Exit(1)
	}
	if err := fetcher.Run(ctx, cfg, logger); err != nil {
		logger.Error("fetcher failed", "err", err)
		os.Exit(1)
	}
}
