package notify

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secret = "s3cret"

// received is one request a receiver got.
type received struct {
	header http.Header
	body   []byte
	n      Notification
}

// receiver is a webhook endpoint that answers with the statuses of answer in turn (200
// once they run out) and records what it got.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	answer []int
	hold   chan struct{} // when set, every request waits for it to close
}

func newReceiver(t *testing.T, answer ...int) *receiver {
	t.Helper()
	r := &receiver{answer: answer}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.hold != nil {
			select {
			case <-r.hold:
			case <-req.Context().Done():
				return
			}
		}
		body, _ := io.ReadAll(req.Body)
		var n Notification
		if err := json.Unmarshal(body, &n); err != nil {
			t.Errorf("body %s: %v", body, err)
		}
		r.mu.Lock()
		r.got = append(r.got, received{header: req.Header.Clone(), body: body, n: n})
		status := http.StatusOK
		if len(r.answer) > 0 {
			status, r.answer = r.answer[0], r.answer[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// startDispatcher runs a dispatcher to urls until the test ends.
func startDispatcher(t *testing.T, cfg DispatchConfig) (*Dispatcher, *prometheus.Registry) {
	t.Helper()
	if cfg.Secret == "" {
		cfg.Secret = secret
	}
	if cfg.RetryBase == 0 {
		cfg.RetryBase, cfg.RetryMax = 5*time.Millisecond, 20*time.Millisecond
	}
	reg := prometheus.NewRegistry()
	d, err := NewDispatcher(cfg, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = d.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return d, reg
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDeliveryIsSignedAndRetriedAfterA500(t *testing.T) {
	rcv := newReceiver(t, http.StatusInternalServerError)
	d, _ := startDispatcher(t, DispatchConfig{URLs: []string{rcv.URL}})
	at := time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)
	if !d.Send(Notification{ID: "job.failed:42-1", Type: TypeJobFailed, At: at, Data: JobFailed{BookID: "42", JobID: "42-1", Error: "gone"}}) {
		t.Fatal("Send refused")
	}
	eventually(t, "the retry after the 500", func() bool { return len(rcv.requests()) == 2 })
	for i, r := range rcv.requests() {
		if !Verify([]byte(secret), r.body, r.header.Get(HeaderSignature)) {
			t.Errorf("attempt %d: signature %q does not verify", i+1, r.header.Get(HeaderSignature))
		}
		if Verify([]byte("another secret"), r.body, r.header.Get(HeaderSignature)) {
			t.Errorf("attempt %d: signature verifies with another secret", i+1)
		}
		for h, want := range map[string]string{
			HeaderEventID: "job.failed:42-1", HeaderEvent: TypeJobFailed, HeaderTimestamp: strconv.FormatInt(at.Unix(), 10),
			HeaderAttempt: strconv.Itoa(i + 1), "Content-Type": "application/json",
		} {
			if got := r.header.Get(h); got != want {
				t.Errorf("attempt %d: %s = %q, want %q", i+1, h, got, want)
			}
		}
		if r.n.ID != "job.failed:42-1" || r.n.Type != TypeJobFailed || !r.n.At.Equal(at) {
			t.Errorf("attempt %d: body %s", i+1, r.body)
		}
	}
	// The signature is over the exact body: a receiver that re-encodes would fail.
	if r := rcv.requests()[0]; Verify([]byte(secret), append(r.body, ' '), r.header.Get(HeaderSignature)) {
		t.Error("a changed body verifies")
	}
	eventually(t, "delivered counted", func() bool { return testutil.ToFloat64(d.deliveries.WithLabelValues("delivered")) == 1 })
}

func TestDeliveryGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answer   []int
		attempts int
	}{
		{"refused by a 4xx", []int{http.StatusBadRequest}, 1},
		{"out of attempts", []int{503, 503, 503, 503}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcv := newReceiver(t, tc.answer...)
			d, _ := startDispatcher(t, DispatchConfig{URLs: []string{rcv.URL}, Attempts: 3})
			d.Send(Notification{ID: "x", Type: TypeCircuitOpened, At: time.Now()})
			eventually(t, "the delivery counted as failed", func() bool { return testutil.ToFloat64(d.deliveries.WithLabelValues("failed")) == 1 })
			if got := len(rcv.requests()); got != tc.attempts {
				t.Errorf("%d attempts, want %d", got, tc.attempts)
			}
		})
	}
}

// TestFullQueueDropsWithoutBlocking holds the receiver: Send keeps returning at once,
// drops what the queue cannot take and counts it, and a second URL is not held up.
func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	slow, fast := newReceiver(t), newReceiver(t)
	slow.hold = make(chan struct{})
	d, _ := startDispatcher(t, DispatchConfig{URLs: []string{slow.URL, fast.URL}, Buffer: 2, Timeout: 5 * time.Second})
	const sent = 10
	began := time.Now()
	for i := range sent {
		d.Send(Notification{ID: strconv.Itoa(i), Type: TypeJobFailed, At: time.Now()})
		// Let the fast URL's goroutine keep up, so that only the slow one overflows.
		eventually(t, "fast receiver", func() bool { return len(fast.requests()) == i+1 })
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("sending took %v", took)
	}
	// The slow URL holds one in flight and two queued; the rest were dropped.
	if got := testutil.ToFloat64(d.dropped); got != sent-3 {
		t.Errorf("dropped = %v, want %d", got, sent-3)
	}
	close(slow.hold)
	eventually(t, "the slow receiver's backlog", func() bool { return len(slow.requests()) == 3 })
}

func TestRecent(t *testing.T) {
	r := newRecent(2)
	r.add("a")
	r.add("b")
	r.add("a")
	if !r.has("a") || !r.has("b") {
		t.Fatal("lost a key before the set was full")
	}
	r.add("c")
	if r.has("a") || !r.has("b") || !r.has("c") {
		t.Errorf("after c: a %v b %v c %v, want the oldest (a) forgotten", r.has("a"), r.has("b"), r.has("c"))
	}
}

func TestRedact(t *testing.T) {
	if got := redact("https://user:pw@hooks.example.org/x?token=abc"); got != "https://hooks.example.org/x" {
		t.Errorf("redact = %q", got)
	}
}
