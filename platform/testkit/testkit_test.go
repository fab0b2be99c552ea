package testkit

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a testing.TB whose Fatalf records the message and ends the goroutine, as
// the testing package's does.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls Eventually with r in a goroutine of its own, so that Fatalf can end it.
func run(r *recorder, timeout time.Duration, cond func() bool) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		Eventually(r, timeout, "the condition", cond)
	}()
	<-done
}

func TestEventually(t *testing.T) {
	t.Run("holds at once", func(t *testing.T) {
		r := &recorder{TB: t}
		var calls atomic.Int32
		run(r, time.Second, func() bool { calls.Add(1); return true })
		if r.msg != "" || calls.Load() != 1 {
			t.Errorf("failed %q after %d calls, want no failure after 1", r.msg, calls.Load())
		}
	})
	t.Run("holds later", func(t *testing.T) {
		r := &recorder{TB: t}
		var calls atomic.Int32
		run(r, 5*time.Second, func() bool { return calls.Add(1) == 5 })
		if r.msg != "" || calls.Load() != 5 {
			t.Errorf("failed %q after %d calls, want no failure after 5", r.msg, calls.Load())
		}
	})
	t.Run("never holds", func(t *testing.T) {
		r := &recorder{TB: t}
		began := time.Now()
		run(r, 200*time.Millisecond, func() bool { return false })
		if took := time.Since(began); took < 200*time.Millisecond {
			t.Errorf("gave up after %v, before the timeout", took)
		}
		if !strings.Contains(r.msg, "timed out after 200ms waiting for the condition") {
			t.Errorf("failure %q, want it to say what it waited for and how long", r.msg)
		}
	})
}
