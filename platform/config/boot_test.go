package config

import (
	"syscall"
	"testing"
	"time"
)

func TestBoot(t *testing.T) {
	t.Setenv("LOG_LEVEL", "loud")
	if _, _, _, err := Boot(); err == nil {
		t.Error("Boot with LOG_LEVEL=loud: no error")
	}
	t.Setenv("LOG_LEVEL", "debug")
	ctx, stop, logger, err := Boot()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if logger == nil || !logger.Enabled(ctx, -4) {
		t.Error("the logger does not log at debug level")
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Error("the context did not end at SIGTERM")
	}
}
