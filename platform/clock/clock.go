// Package clock holds the one way the services wait: for a while, or until their
// context ends, whichever comes first.
package clock

import (
	"context"
	"time"
)

// Sleep waits for d or until ctx ends, and reports whether d elapsed. A d of zero or less
// does not wait.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
