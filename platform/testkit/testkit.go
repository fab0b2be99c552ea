// Package testkit holds the helpers every module's tests share that need no NATS or
// Postgres (natstest and pgtest hold those).
package testkit

import (
	"testing"
	"time"
)

// Polling intervals of Eventually: it looks again soon at first, then less often.
const (
	firstPoll = 5 * time.Millisecond
	maxPoll   = 100 * time.Millisecond
)

// Eventually polls cond until it holds, failing the test with what it was waiting for
// when timeout passes first. It polls every 5ms at first, backing off to every 100ms, so
// that a quick condition is seen at once and a slow one (an HTTP call, a query) is not
// hammered.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := firstPoll
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(wait)
		wait = min(2*wait, maxPoll)
	}
}
