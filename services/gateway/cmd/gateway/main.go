// Command gateway serves the xsw HTTP API (see package gateway).
package main

import (
	"fmt"
	"os"

	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/services/gateway"
)

func main() {
	ctx, stop, logger, err := config.Boot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
	defer stop()
	cfg, err := gateway.ConfigFromEnv(os.Getenv)
	if err == nil {
		err = gateway.Run(ctx, cfg, logger)
	}
	if err != nil {
		logger.Error("gateway failed", "err", err)
		stop()
		os.Exit(1)
	}
}
