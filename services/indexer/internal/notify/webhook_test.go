package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/logtest"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/platform/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secret = "s3cret"

// received is one request a receiver got and the status it answered.
type received struct {
	header http.Header
	body   []byte
	n      Notification
	status int
}

// receiver is a webhook endpoint that answers with the statuses of answer in turn (200
// once they run out, or 503 while down) and records what it got.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	answer []int
	down   bool
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
		status := http.StatusOK
		switch {
		case r.down:
			status = http.StatusServiceUnavailable
		case len(r.answer) > 0:
			status, r.answer = r.answer[0], r.answer[1:]
		}
		r.got = append(r.got, received{header: req.Header.Clone(), body: body, n: n, status: status})
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

func (r *receiver) setDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

// testDispatchConfig fills in what the tests leave out: the secret and short retries.
func testDispatchConfig(cfg DispatchConfig) DispatchConfig {
	if cfg.Secret == "" {
		cfg.Secret = secret
	}
	if cfg.RetryBase == 0 {
		cfg.RetryBase, cfg.RetryMax = 5*time.Millisecond, 20*time.Millisecond
	}
	cfg.pollWait = 100 * time.Millisecond
	return cfg
}

// runDispatcher runs a dispatcher to cfg.URLs over js, logging to logger, until the
// returned stop is called (and at the end of the test).
func runDispatcher(t *testing.T, js jetstream.JetStream, cfg DispatchConfig, logger *slog.Logger) (*Dispatcher, func()) {
	t.Helper()
	d, err := NewDispatcher(t.Context(), js, testDispatchConfig(cfg), prometheus.NewRegistry(), logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = d.Run(ctx)
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return d, stop
}

// startDispatcher runs a dispatcher to cfg.URLs until the test ends.
func startDispatcher(t *testing.T, js jetstream.JetStream, cfg DispatchConfig) *Dispatcher {
	t.Helper()
	d, _ := runDispatcher(t, js, cfg, slog.New(slog.DiscardHandler))
	return d
}

func outcomes(d *Dispatcher) float64 {
	return testutil.ToFloat64(d.deliveries.WithLabelValues("delivered")) + testutil.ToFloat64(d.deliveries.WithLabelValues("failed"))
}

func TestDeliveryIsSignedAndRetriedAfterA500(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	rcv := newReceiver(t, http.StatusInternalServerError)
	d := startDispatcher(t, ns.JS, DispatchConfig{URLs: []string{rcv.URL}})
	at := time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)
	if err := d.Send(t.Context(), Notification{ID: "job.failed:42-1", Type: TypeJobFailed, At: at, Data: JobFailed{BookID: "42", JobID: "42-1", Error: "gone"}}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the retry after the 500", func() bool { return len(rcv.requests()) == 2 })
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
	testkit.Eventually(t, 10*time.Second, "delivered counted", func() bool { return testutil.ToFloat64(d.deliveries.WithLabelValues("delivered")) == 1 })
}

func TestDeliveryGivesUp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		answer   []int
		attempts int
	}{
		{"refused by a 4xx", []int{http.StatusBadRequest}, 1},
		{"out of attempts", []int{503, 503, 503, 503}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := natstest.Start(t)
			rcv := newReceiver(t, tc.answer...)
			d := startDispatcher(t, ns.JS, DispatchConfig{URLs: []string{rcv.URL}, Attempts: 3})
			if err := d.Send(t.Context(), Notification{ID: "x", Type: TypeCircuitOpened, At: time.Now()}); err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, 10*time.Second, "the delivery counted as failed", func() bool { return testutil.ToFloat64(d.deliveries.WithLabelValues("failed")) == 1 })
			if got := len(rcv.requests()); got != tc.attempts {
				t.Errorf("%d attempts, want %d", got, tc.attempts)
			}
		})
	}
}

// TestRedirectNotFollowed: a receiver that redirects fails the delivery, at once; the
// URL it redirects to never gets the body or its signature.
func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	second := newReceiver(t)
	var redirects int
	var mu sync.Mutex
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		redirects++
		mu.Unlock()
		http.Redirect(w, r, second.URL+"/elsewhere", http.StatusTemporaryRedirect)
	}))
	defer first.Close()
	d := startDispatcher(t, ns.JS, DispatchConfig{URLs: []string{first.URL}})
	if err := d.Send(t.Context(), Notification{ID: "x", Type: TypeCircuitOpened, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the delivery's outcome", func() bool { return outcomes(d) == 1 })
	if got := testutil.ToFloat64(d.deliveries.WithLabelValues("failed")); got != 1 {
		t.Errorf("failed = %v, want 1: a 3xx fails the delivery", got)
	}
	if n := len(second.requests()); n != 0 {
		t.Errorf("the redirect was followed: its target got %d requests", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if redirects != 1 {
		t.Errorf("%d attempts at the redirecting receiver, want 1", redirects)
	}
}

// TestLogsNeverShowURLSecrets delivers, is refused, redirected, finds no server and a
// full queue, at URLs that carry secrets in their path, query and user information: no
// log line shows any of them, and each names its receiver by scheme, host and hash.
func TestLogsNeverShowURLSecrets(t *testing.T) {
	ns := natstest.Start(t)
	ok, refusing := newReceiver(t), newReceiver(t, http.StatusBadRequest, http.StatusBadRequest)
	redirecting := httptest.NewServer(http.RedirectHandler("https://hooks.example/next", http.StatusFound))
	defer redirecting.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	withSecrets := func(base string) string {
		return strings.Replace(base, "http://", "http://user:pa55word@", 1) + "/T0001/B0002/SECRETxyz?token=abc"
	}
	urls := []string{withSecrets(ok.URL), withSecrets(refusing.URL), withSecrets(redirecting.URL), withSecrets(gone.URL)}
	var logs logtest.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// One delivery at a time per receiver, and the first waits 200ms for its retry at
	// the server that is gone: the second notification finds that queue full.
	d, _ := runDispatcher(t, ns.JS, DispatchConfig{URLs: urls, Attempts: 2, Buffer: 1, RetryBase: 200 * time.Millisecond,
		RetryMax: 200 * time.Millisecond}, logger)
	for _, id := range []string{"first", "second"} {
		if err := d.Send(t.Context(), Notification{ID: id, Type: TypeCircuitOpened, At: time.Now()}); err != nil && !errors.Is(err, ErrQueueFull) {
			t.Fatal(err)
		}
	}
	// Each notification is delivered, fails or is dropped, at each URL.
	testkit.Eventually(t, 10*time.Second, "every delivery's outcome", func() bool { return outcomes(d)+testutil.ToFloat64(d.dropped) == 2*float64(len(urls)) })
	out := logs.String()
	for _, secret := range []string{"T0001", "B0002", "SECRETxyz", "token", "user", "pa55word"} {
		if strings.Contains(out, secret) {
			t.Errorf("the logs show %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{"webhook delivered", "webhook delivery refused", "webhook delivery failed", "webhook queue full",
		"webhook attempt failed; retrying", "receiver=" + receiverName(urls[0])} {
		if !strings.Contains(out, want) {
			t.Errorf("the logs lack %q:\n%s", want, out)
		}
	}
	if name := receiverName(urls[0]); name != ok.URL+"#"+receiverID(urls[0]) || len(receiverID(urls[0])) != 12 {
		t.Errorf("receiver name %q", name)
	}
}

// TestFullQueueDropsWithoutBlocking holds the receiver: Send keeps returning at once,
// drops the newest deliveries when the queue is full and counts them, and a second URL
// is not held up.
func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	ns := natstest.Start(t)
	slow, fast := newReceiver(t), newReceiver(t)
	slow.hold = make(chan struct{})
	d := startDispatcher(t, ns.JS, DispatchConfig{URLs: []string{slow.URL, fast.URL}, Buffer: 2, Timeout: 5 * time.Second})
	const sent = 10
	began := time.Now()
	for i := range sent {
		if err := d.Send(t.Context(), Notification{ID: strconv.Itoa(i), Type: TypeJobFailed, At: time.Now()}); err != nil && !errors.Is(err, ErrQueueFull) {
			t.Fatal(err)
		}
		// Let the fast URL keep up, so that only the slow one overflows.
		testkit.Eventually(t, 10*time.Second, "fast receiver", func() bool { return len(fast.requests()) == i+1 })
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("sending took %v", took)
	}
	// The slow URL's queue holds two, the one in flight included; the rest were dropped.
	if got := testutil.ToFloat64(d.dropped); got != sent-2 {
		t.Errorf("dropped = %v, want %d", got, sent-2)
	}
	close(slow.hold)
	testkit.Eventually(t, 10*time.Second, "the slow receiver's backlog", func() bool { return len(slow.requests()) == 2 })
	if r := slow.requests(); r[0].n.ID != "0" || r[1].n.ID != "1" {
		t.Errorf("the slow receiver got %s and %s, want the oldest two, 0 and 1", r[0].n.ID, r[1].n.ID)
	}
}

// TestBoundedQueueSurvivesRestart: deliveries to a receiver that is down wait in the
// queue, at most Buffer of them (the newest refused and counted), and are made, oldest
// first, by a dispatcher started after the first stopped.
func TestBoundedQueueSurvivesRestart(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	rcv := newReceiver(t)
	rcv.setDown(true)
	cfg := DispatchConfig{URLs: []string{rcv.URL}, Buffer: 3, Attempts: 100, RetryBase: 100 * time.Millisecond, RetryMax: 200 * time.Millisecond}
	d1, stop := runDispatcher(t, ns.JS, cfg, slog.New(slog.DiscardHandler))
	full := 0
	for i := range 10 {
		err := d1.Send(t.Context(), Notification{ID: "n" + strconv.Itoa(i), Type: TypeCircuitOpened, At: time.Now()})
		switch {
		case errors.Is(err, ErrQueueFull):
			full++
		case err != nil:
			t.Fatal(err)
		}
	}
	if full != 7 || testutil.ToFloat64(d1.dropped) != 7 {
		t.Errorf("%d sends refused, %v dropped, want 7: the queue holds 3", full, testutil.ToFloat64(d1.dropped))
	}
	testkit.Eventually(t, 10*time.Second, "a failed attempt", func() bool { return len(rcv.requests()) >= 1 })
	stop()
	stream, err := ns.JS.Stream(t.Context(), events.StreamWebhooks)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Errorf("%d deliveries queued, want 3", info.State.Msgs)
	}

	rcv.setDown(false)
	d2 := startDispatcher(t, ns.JS, cfg)
	testkit.Eventually(t, 10*time.Second, "the queued deliveries after the restart", func() bool { return testutil.ToFloat64(d2.deliveries.WithLabelValues("delivered")) == 3 })
	var ids []string
	for _, r := range rcv.requests() {
		if r.status == http.StatusOK {
			ids = append(ids, r.n.ID)
		}
	}
	if strings.Join(ids, ",") != "n0,n1,n2" {
		t.Errorf("delivered %v, want n0, n1, n2", ids)
	}
}

func TestRecent(t *testing.T) {
	t.Parallel()
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

func TestReceiverName(t *testing.T) {
	t.Parallel()
	raw := "https://user:pw@hooks.example.org:8443/T0001/B0002/SECRETxyz?token=abc#frag"
	if got, want := receiverName(raw), "https://hooks.example.org:8443#"+receiverID(raw); got != want {
		t.Errorf("receiverName = %q, want %q", got, want)
	}
	if receiverID(raw) == receiverID("https://user:pw@hooks.example.org:8443/T0001/B0002/other") {
		t.Error("two URLs of a host share a name")
	}
}
