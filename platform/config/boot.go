package config

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/xswtw/xsw/platform/logging"
)

// Boot starts a command's process: it loads the optional .env file, builds the logger
// LOG_LEVEL and LOG_FORMAT ask for, and returns a context that ends at SIGINT or SIGTERM,
// with the function that stops listening for them. On error nothing is left running.
func Boot() (context.Context, context.CancelFunc, *slog.Logger, error) {
	if err := LoadDotEnv(""); err != nil {
		return nil, nil, nil, err
	}
	logger, err := logging.New(os.Stderr, os.Getenv("LOG_LEVEL"), os.Getenv("LOG_FORMAT"))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("LOG_LEVEL, LOG_FORMAT: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	return ctx, stop, logger, nil
}
