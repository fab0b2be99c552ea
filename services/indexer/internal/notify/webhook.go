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
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/clock"
	platformmetrics "github.com/xswtw/xsw/platform/metrics"
)

// Headers of a delivery.
const (
	// HeaderSignature carries "sha256=" and the hex HMAC-SHA256 of the body, keyed with
	// the shared secret.
	HeaderSignature = "X-Xsw-Signature"
	// HeaderEventID carries the notification's id, the same on every attempt, after a
	// restart too: the idempotency key by which receivers drop repeats (delivery is at
	// least once).
	HeaderEventID = "X-Xsw-Event-Id"
	// HeaderEvent carries the notification's type.
	HeaderEvent = "X-Xsw-Event"
	// HeaderTimestamp carries the notification's time in Unix seconds (also in the
	// signed body, as "at").
	HeaderTimestamp = "X-Xsw-Timestamp"
	// HeaderAttempt numbers the delivery attempt, from 1.
	HeaderAttempt = "X-Xsw-Delivery-Attempt"
)

// Headers of a queued delivery in events.StreamWebhooks.
const (
	queueHeaderID        = "Xsw-Event-Id"
	queueHeaderType      = "Xsw-Event"
	queueHeaderTimestamp = "Xsw-Timestamp"
)

// Errors of Send.
var (
	// ErrQueueFull: a receiver's queue was full, and the notification was dropped for it
	// and counted. Sending it again would not help.
	ErrQueueFull = errors.New("webhook queue full; notification dropped")
	// ErrNotQueued: the queue could not be reached. The notification may be sent again:
	// a repeat within events.DuplicateWindow is queued once per receiver.
	ErrNotQueued = errors.New("notification not queued")
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
	// Attempts bounds the attempts of one delivery (default 6).
	Attempts int
	// RetryBase is the first delay between attempts; it doubles up to RetryMax
	// (defaults 1s and 1m), with jitter.
	RetryBase, RetryMax time.Duration
	// Buffer is how many deliveries may wait (or be retried) for each URL; past it the
	// new ones are dropped and counted (default 256).
	Buffer int
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration
	// MaxAge gives up a delivery still not made after this long, whatever its attempts
	// (default 24h). The queue expires deliveries an hour older than that: those of a
	// URL no longer configured.
	MaxAge time.Duration
	// Replicas of the queue's stream (NATS_REPLICAS, default 1).
	Replicas int
	// pollWait is how long a receiver's loop waits for a delivery before looking again
	// (default 1s; shutdown waits for it).
	pollWait time.Duration
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
	if c.MaxAge <= 0 {
		c.MaxAge = 24 * time.Hour
	}
	if c.Replicas < 1 {
		c.Replicas = 1
	}
	if c.pollWait <= 0 {
		c.pollWait = time.Second
	}
}

// endpoint is one webhook URL and its queue.
type endpoint struct {
	url string
	// id is the first 12 hex digits of the URL's SHA-256: the last token of its queue's
	// subject and of its consumer's name.
	id string
	// name is how logs name it: receiverName.
	name string
	cons jetstream.Consumer
}

// receiverName names a webhook URL in logs and errors: its scheme and host and, after a
// "#", the first 12 hex digits of the URL's SHA-256, never its path, query or user
// information, which often hold a token.
func receiverName(raw string) string {
	id := receiverID(raw)
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "webhook#" + id
	}
	return u.Scheme + "://" + u.Host + "#" + id
}

func receiverID(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:6])
}

// Dispatcher delivers notifications to the webhook URLs. Send puts one delivery per URL
// in that URL's queue, a subject of events.StreamWebhooks, which survives a restart;
// Run delivers each URL's queue in order, one delivery at a time, from a durable
// consumer every replica shares, so that a slow or dead receiver delays nobody else and
// a delivery waiting for its next attempt is made by whichever replica runs then.
type Dispatcher struct {
	cfg       DispatchConfig
	js        jetstream.JetStream
	client    *http.Client
	receivers []*endpoint
	logger    *slog.Logger

	deliveries *prometheus.CounterVec
	dropped    prometheus.Counter

	mu    sync.Mutex
	drops int
}

// NewDispatcher provisions the queue and a consumer for each of cfg.URLs, and returns a
// dispatcher to them with its metrics registered in reg.
func NewDispatcher(ctx context.Context, js jetstream.JetStream, cfg DispatchConfig, reg prometheus.Registerer, logger *slog.Logger) (*Dispatcher, error) {
	cfg.defaults()
	d := &Dispatcher{
		cfg: cfg,
		js:  js,
		client: &http.Client{
			Timeout: cfg.Timeout,
			// A redirect is never followed: the answer is the receiver's, and a 3xx fails
			// the delivery. A webhook's body and signature go to the URL configured, and
			// to no other.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		logger: logger.With("part", "webhooks"),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xsw_indexer_webhook_deliveries_total",
			Help: "Webhook deliveries by result: delivered (a 2xx answer), or failed after every attempt, too old, or refused (a 3xx or another 4xx).",
		}, []string{"result"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xsw_indexer_webhook_dropped_total",
			Help: "Webhook deliveries dropped because their URL's queue was full.",
		}),
	}
	d.deliveries.WithLabelValues("delivered")
	d.deliveries.WithLabelValues("failed")
	spec := events.WebhookStream(int64(cfg.Buffer), cfg.MaxAge+time.Hour)
	if _, err := js.CreateOrUpdateStream(ctx, broker.StreamConfig(spec, cfg.Replicas, jetstream.FileStorage)); err != nil {
		return nil, fmt.Errorf("provision stream %s: %w", spec.Name, err)
	}
	for _, u := range cfg.URLs {
		r := &endpoint{url: u, id: receiverID(u), name: receiverName(u)}
		cons, err := js.CreateOrUpdateConsumer(ctx, events.StreamWebhooks, jetstream.ConsumerConfig{
			Durable:       "webhook-" + r.id,
			FilterSubject: events.SubjectWebhook(r.id),
			AckPolicy:     jetstream.AckExplicitPolicy,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			// An attempt of a replica that died is made again after this.
			AckWait: cfg.Timeout + 20*time.Second,
			// One delivery at a time, in order, while earlier ones wait for their next
			// attempt: the queue of one receiver, cluster-wide.
			MaxAckPending: 1,
			// The consumer of a URL no longer configured goes with its deliveries.
			InactiveThreshold: spec.MaxAge,
		})
		if err != nil {
			return nil, fmt.Errorf("consumer of webhook %s: %w", r.name, err)
		}
		r.cons = cons
		d.receivers = append(d.receivers, r)
	}
	return d, platformmetrics.Register(reg, d.deliveries, d.dropped)
}

// Send queues n for every URL, waiting only for the queue's acknowledgement. It returns
// an error wrapping ErrQueueFull when some URL's queue was full (n is dropped for it and
// counted), or ErrNotQueued when the queue could not take it for some URL.
func (d *Dispatcher) Send(ctx context.Context, n Notification) error {
	body, err := json.Marshal(n)
	if err != nil {
		d.logger.Error("notification not encodable", "type", n.Type, "id", n.ID, "err", err)
		return fmt.Errorf("encode notification %s: %w", n.ID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var errs []error
	for _, r := range d.receivers {
		msg := nats.NewMsg(events.SubjectWebhook(r.id))
		msg.Data = body
		msg.Header.Set(queueHeaderID, n.ID)
		msg.Header.Set(queueHeaderType, n.Type)
		msg.Header.Set(queueHeaderTimestamp, strconv.FormatInt(n.At.Unix(), 10))
		_, err := d.js.PublishMsg(ctx, msg, jetstream.WithMsgID(r.id+":"+n.ID))
		switch {
		case err == nil:
		case broker.IsSubjectFull(err):
			d.dropped.Inc()
			d.mu.Lock()
			d.drops++
			drops := d.drops
			d.mu.Unlock()
			if drops == 1 || drops%100 == 0 {
				d.logger.Warn("webhook queue full; notification dropped", "receiver", r.name, "type", n.Type,
					"id", n.ID, "dropped_so_far", drops)
			}
			errs = append(errs, fmt.Errorf("%s: %w", r.name, ErrQueueFull))
		default:
			errs = append(errs, fmt.Errorf("%w for %s: %w", ErrNotQueued, r.name, err))
		}
	}
	return errors.Join(errs...)
}

// Run delivers until ctx ends. An attempt cut short then is made again at the next
// start (by any replica); every delivery still waiting stays queued.
func (d *Dispatcher) Run(ctx context.Context) error {
	names := make([]string, len(d.receivers))
	for i, r := range d.receivers {
		names[i] = r.name
	}
	d.logger.Info("webhook dispatcher started", "receivers", names)
	var wg sync.WaitGroup
	for _, r := range d.receivers {
		wg.Go(func() { d.serve(ctx, r) })
	}
	wg.Wait()
	return nil
}

// serve makes the deliveries to r as they come due.
func (d *Dispatcher) serve(ctx context.Context, r *endpoint) {
	for ctx.Err() == nil {
		batch, err := r.cons.Fetch(1, jetstream.FetchMaxWait(d.cfg.pollWait))
		if err == nil {
			for msg := range batch.Messages() {
				d.attempt(ctx, r, msg)
			}
			err = batch.Error()
		}
		if err != nil && !errors.Is(err, jetstream.ErrNoMessages) && ctx.Err() == nil {
			d.logger.Warn("read webhook queue", "receiver", r.name, "err", err)
			clock.Sleep(ctx, time.Second)
		}
	}
}

// errStatus is an answer that was not a success.
type errStatus struct {
	code int
	// final: another attempt would be answered alike (a 3xx, a 4xx but 408 and 429).
	final bool
}

func (e errStatus) Error() string {
	if e.code == 0 {
		return "unusable URL"
	}
	return "answered " + strconv.Itoa(e.code) + " " + http.StatusText(e.code)
}

// attempt makes one attempt of the delivery msg to r. It acknowledges msg when done
// (delivered, refused, out of attempts or too old) and otherwise asks the queue to
// deliver it again after the backoff: exponential from RetryBase, doubling with jitter
// up to RetryMax, or a Retry-After of up to RetryMax.
func (d *Dispatcher) attempt(ctx context.Context, r *endpoint, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		d.logger.Error("webhook delivery unreadable; dropped", "receiver", r.name, "err", err)
		_ = msg.Term()
		return
	}
	h := msg.Headers()
	attempt := int(md.NumDelivered)
	log := d.logger.With("receiver", r.name, "type", h.Get(queueHeaderType), "id", h.Get(queueHeaderID), "attempt", attempt)
	if age := time.Since(md.Timestamp); age > d.cfg.MaxAge {
		d.done(msg)
		d.deliveries.WithLabelValues("failed").Inc()
		log.Warn("webhook delivery given up: too old", "age", age.Round(time.Second))
		return
	}
	retryAfter, err := d.post(ctx, r, msg.Data(), h, attempt)
	var es errStatus
	switch {
	case err == nil:
		d.done(msg)
		d.deliveries.WithLabelValues("delivered").Inc()
		log.Info("webhook delivered")
	case ctx.Err() != nil:
		_ = msg.NakWithDelay(d.cfg.RetryBase)
		log.Info("webhook attempt cut short by shutdown; the delivery stays queued", "err", err)
	case errors.As(err, &es) && es.final:
		d.done(msg)
		d.deliveries.WithLabelValues("failed").Inc()
		log.Warn("webhook delivery refused", "err", err)
	case attempt >= d.cfg.Attempts:
		d.done(msg)
		d.deliveries.WithLabelValues("failed").Inc()
		log.Warn("webhook delivery failed", "err", err)
	default:
		wait := d.backoff(attempt)
		if retryAfter > 0 && retryAfter <= d.cfg.RetryMax {
			wait = retryAfter
		}
		_ = msg.NakWithDelay(wait)
		log.Debug("webhook attempt failed; retrying", "err", err, "in", wait)
	}
}

// done takes a finished delivery out of the queue.
func (d *Dispatcher) done(msg jetstream.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = msg.DoubleAck(ctx) // when lost, the delivery is made again: at least once
}

// backoff is the wait after failed attempt number attempt.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	b := &backoff.ExponentialBackOff{
		InitialInterval: d.cfg.RetryBase, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: d.cfg.RetryMax,
	}
	b.Reset()
	var wait time.Duration
	for range min(attempt, 64) {
		wait = b.NextBackOff()
	}
	return wait
}

// post makes one attempt, returning an errStatus for an answer that was not a 2xx (with
// the Retry-After of a 429 or 503), or the error that got no answer, which never names
// the URL.
func (d *Dispatcher) post(ctx context.Context, r *endpoint, body []byte, h nats.Header, attempt int) (retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return 0, errStatus{final: true} // the URL was validated: not expected
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "xsw-webhook/1")
	req.Header.Set(HeaderEvent, h.Get(queueHeaderType))
	req.Header.Set(HeaderEventID, h.Get(queueHeaderID))
	req.Header.Set(HeaderTimestamp, h.Get(queueHeaderTimestamp))
	req.Header.Set(HeaderAttempt, strconv.Itoa(attempt))
	req.Header.Set(HeaderSignature, Sign([]byte(d.cfg.Secret), body))
	resp, err := d.client.Do(req)
	if err != nil {
		// A *url.Error quotes the whole URL, path and query.
		var ue *url.Error
		if errors.As(err, &ue) {
			return 0, fmt.Errorf("%s %s: %w", ue.Op, r.name, ue.Err)
		}
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return 0, nil
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			retryAfter = time.Duration(s) * time.Second
		}
		return retryAfter, errStatus{code: code}
	case code == http.StatusRequestTimeout || code >= 500:
		return 0, errStatus{code: code}
	}
	return 0, errStatus{code: code, final: true}
}
