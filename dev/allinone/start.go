package allinone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Instance is an all-in-one started by Start: it runs in this process until Stop.
type Instance struct {
	Running
	cancel context.CancelFunc
	done   chan struct{} // closed when Run has returned; err is then set
	err    error
}

// Start runs the all-in-one in this process with opts, as Run does, and returns once it
// serves. opts.Ready is Start's own. ctx bounds the start only: once started, the
// all-in-one runs until Stop. When it stops or ctx ends before it is ready, Start stops
// it and says why.
func Start(ctx context.Context, opts Options, logger *slog.Logger) (*Instance, error) {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	in := &Instance{cancel: cancel, done: make(chan struct{})}
	ready := make(chan Running, 1)
	opts.Ready = func(r Running) { ready <- r }
	go func() {
		defer close(in.done)
		in.err = Run(runCtx, opts, logger)
	}()
	select {
	case in.Running = <-ready:
		return in, nil
	case <-in.done:
		cancel()
		if in.err == nil {
			return nil, errors.New("all-in-one stopped before it was ready")
		}
		return nil, fmt.Errorf("all-in-one stopped at start: %w", in.err)
	case <-ctx.Done():
		return nil, errors.Join(fmt.Errorf("all-in-one not ready: %w", ctx.Err()), in.Stop(30*time.Second))
	}
}

// Stop stops the all-in-one, waits up to timeout for it to finish, and returns Run's
// error.
func (in *Instance) Stop(timeout time.Duration) error {
	in.cancel()
	select {
	case <-in.done:
		return in.err
	case <-time.After(timeout):
		return fmt.Errorf("all-in-one did not stop within %v", timeout)
	}
}
