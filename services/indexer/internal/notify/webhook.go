package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"

	platformmetrics "github.com/xswtw/xsw/platform/metrics"
)

// Headers of a delivery.
const (
	// HeaderSignature carries "sha256=" and the hex HMAC-SHA256 of the body, keyed with
	// the shared secret.
	HeaderSignature = "X-Xsw-Signature"
	// HeaderEventID carries the notification's id, the same on every attempt: receivers
	// drop repeats by it.
	HeaderEventID = "X-Xsw-Event-Id"
	// HeaderEvent carries the notification's type.
	HeaderEvent = "X-Xsw-Event"
	// HeaderTimestamp carries the notification's time in Unix seconds (also in the
	// signed body, as "at").
	HeaderTimestamp = "X-Xsw-Timestamp"
	// HeaderAttempt numbers the delivery attempt, from 1.
	HeaderAttempt = "X-Xsw-Delivery-Attempt"
)

// Sign returns the value of HeaderSignature for body.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether signature is body's signature with secret, comparing in
// constant time: what a receiver does.
func Verify(secret, body []byte, signature string) bool {
	return hmac.Equal([]byte(signature), []byte(Sign(secret, body)))
}

// DispatchConfig configures a Dispatcher.
type DispatchConfig struct {
	// URLs receive every notification (WEBHOOK_URLS).
	URLs []string
	// Secret keys the signature of every delivery (WEBHOOK_SECRET).
	Secret string
	// Attempts bounds the deliveries of one notification to one URL (default 6).
	Attempts int
	// RetryBase is the first delay between attempts; it doubles up to RetryMax
	// (defaults 1s and 1m), with jitter.
	RetryBase, RetryMax time.Duration
	// Buffer is how many notifications may wait for each URL; past it new ones are
	// dropped and counted (default 256).
	Buffer int
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration
}

func (c *DispatchConfig) defaults() {
	if c.Attempts < 1 {
		c.Attempts = 6
	}
	if c.RetryBase <= 0 {
		c.RetryBase = time.Second
	}
	if c.RetryMax < c.RetryBase {
		c.RetryMax = max(time.Minute, c.RetryBase)
	}
	if c.Buffer < 1 {
		c.Buffer = 256
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
}

// delivery is one encoded notification on its way to the URLs.
type delivery struct {
	n    Notification
	body []byte
}

// Dispatcher delivers notifications to the webhook URLs from goroutines of its own, one
// per URL with a bounded queue each, so that a slow or dead receiver delays nobody: Send
// never blocks, and drops (and counts) what a full queue cannot take.
type Dispatcher struct {
	cfg    DispatchConfig
	client *http.Client
	queues []chan delivery // one per URL
	logger *slog.Logger

	deliveries *prometheus.CounterVec
	dropped    prometheus.Counter

	mu     sync.Mutex
	drops  int
	closed bool
}

// NewDispatcher returns a dispatcher to cfg.URLs with its metrics registered in reg.
func NewDispatcher(cfg DispatchConfig, reg prometheus.Registerer, logger *slog.Logger) (*Dispatcher, error) {
	cfg.defaults()
	d := &Dispatcher{
		cfg:    cfg,
		client: &http.Client{Timeout: cfg.Timeout},
		logger: logger.With("part", "webhooks"),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xsw_indexer_webhook_deliveries_total",
			Help: "Webhook deliveries by result: delivered (a 2xx answer), or failed after every attempt or refused (another 4xx).",
		}, []string{"result"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xsw_indexer_webhook_dropped_total",
			Help: "Webhook deliveries dropped because their URL's queue was full.",
		}),
	}
	d.deliveries.WithLabelValues("delivered")
	d.deliveries.WithLabelValues("failed")
	for range cfg.URLs {
		d.queues = append(d.queues, make(chan delivery, cfg.Buffer))
	}
	return d, platformmetrics.Register(reg, d.deliveries, d.dropped)
}

// Send queues n for every URL without waiting. It reports false when n could not be
// encoded or some URL's queue was full (that delivery is dropped and counted).
func (d *Dispatcher) Send(n Notification) bool {
	body, err := json.Marshal(n)
	if err != nil {
		d.logger.Error("notification not encodable", "type", n.Type, "id", n.ID, "err", err)
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	ok := true
	for i, q := range d.queues {
		select {
		case q <- delivery{n: n, body: body}:
		default:
			ok = false
			d.dropped.Inc()
			d.drops++
			if d.drops == 1 || d.drops%100 == 0 {
				d.logger.Warn("webhook queue full; notification dropped", "url", redact(d.cfg.URLs[i]), "type", n.Type,
					"id", n.ID, "dropped_so_far", d.drops)
			}
		}
	}
	return ok
}

// Run delivers until ctx ends; what is still queued or being retried then is dropped.
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i, q := range d.queues {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case dl := <-q:
					d.deliver(ctx, d.cfg.URLs[i], dl)
				}
			}
		})
	}
	wg.Wait()
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	return nil
}

// errStatus is an answer that was not a success.
type errStatus struct{ code int }

func (e errStatus) Error() string {
	return "answered " + strconv.Itoa(e.code) + " " + http.StatusText(e.code)
}

// deliver posts dl to target, retrying with exponential backoff on network errors, 408,
// 429 and 5xx (honouring a Retry-After of up to RetryMax), until it succeeds, another
// status refuses it, or the attempts run out.
func (d *Dispatcher) deliver(ctx context.Context, target string, dl delivery) {
	sig := Sign([]byte(d.cfg.Secret), dl.body)
	attempt := 0
	post := func() (struct{}, error) {
		attempt++
		actx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(actx, http.MethodPost, target, bytes.NewReader(dl.body))
		if err != nil {
			return struct{}{}, backoff.Permanent(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "xsw-webhook/1")
		req.Header.Set(HeaderEvent, dl.n.Type)
		req.Header.Set(HeaderEventID, dl.n.ID)
		req.Header.Set(HeaderTimestamp, strconv.FormatInt(dl.n.At.Unix(), 10))
		req.Header.Set(HeaderAttempt, strconv.Itoa(attempt))
		req.Header.Set(HeaderSignature, sig)
		resp, err := d.client.Do(req)
		if err != nil {
			return struct{}{}, err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		code := resp.StatusCode
		switch {
		case code >= 200 && code < 300:
			return struct{}{}, nil
		case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 &&
				time.Duration(s)*time.Second <= d.cfg.RetryMax {
				return struct{}{}, fmt.Errorf("%w: %w", errStatus{code}, backoff.RetryAfter(s))
			}
			return struct{}{}, errStatus{code}
		case code == http.StatusRequestTimeout || code >= 500:
			return struct{}{}, errStatus{code}
		}
		return struct{}{}, backoff.Permanent(errStatus{code})
	}
	_, err := backoff.Retry(ctx, post,
		backoff.WithBackOff(&backoff.ExponentialBackOff{
			InitialInterval: d.cfg.RetryBase, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: d.cfg.RetryMax,
		}),
		backoff.WithMaxTries(uint(d.cfg.Attempts)),
		backoff.WithMaxElapsedTime(0))
	log := d.logger.With("url", redact(target), "type", dl.n.Type, "id", dl.n.ID, "attempts", attempt)
	switch {
	case err == nil:
		d.deliveries.WithLabelValues("delivered").Inc()
		log.Info("webhook delivered")
	case ctx.Err() != nil:
		log.Warn("webhook delivery cut short by shutdown", "err", err)
	default:
		d.deliveries.WithLabelValues("failed").Inc()
		var es errStatus
		log.Warn("webhook delivery failed", "err", err, "refused", errors.As(err, &es) && es.code < 500 && es.code != 408 && es.code != 429)
	}
}

// redact drops the user information and query of a URL for the logs: webhook URLs often
// carry a token.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
