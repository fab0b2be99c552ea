package lease

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestOneHolderAtATime(t *testing.T) {
	ns := natstest.Start(t)
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketLeases)
	if err != nil {
		t.Fatal(err)
	}
	a, b := New(kv, "job", "a"), New(kv, "job", "b")
	holds := func(step string, l *Lease, want bool) {
		t.Helper()
		if got := l.Hold(t.Context()); got != want {
			t.Fatalf("%s: %s holds the lease: %v, want %v", step, l.holder, got, want)
		}
	}
	release := func(l *Lease) {
		t.Helper()
		if err := l.Release(t.Context()); err != nil {
			t.Fatalf("%s releases: %v", l.holder, err)
		}
	}
	holds("a free lease", a, true)
	holds("a's lease", b, false)
	holds("a renews", a, true)
	release(b) // b does not hold it: nothing changes
	holds("after b released what it does not hold", b, false)
	holds("after b released what it does not hold", a, true)
	release(a)
	holds("a gave it up", b, true)
	holds("b's lease", a, false)
	holds("another key", New(kv, "another-job", "a"), true)
	release(b)
	release(b) // twice: nothing to give up
	holds("b gave it up", a, true)
}
