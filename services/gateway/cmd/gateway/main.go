// Command gateway serves the xsw HTTP API (see package gateway).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/logging"
	"github.com/xswtw/xsw/services/gateway"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := config.LoadDotEnv(""); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
	logger, err := logging.New(os.Stderr, os.Getenv("LOG_LEVEL"), os.Getenv("LOG_FORMAT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
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
