// Package broker connects to NATS and provisions the streams, consumers and buckets the
// events package specifies. The embedded server of local runs and tests is package
// natsembed's.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
)

// Connect dials url with reconnection forever (a restarted server is found again) and
// returns the connection and its JetStream context. url may carry the credentials of a
// NATS user, nats://user:password@host:4222 (a password percent-encoded where it is not
// URL-safe; several servers comma-separated); no error or log line of Connect shows
// the password.
func Connect(url, name string, logger *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { logger.Info("nats reconnected", "url", RedactURL(c.ConnectedUrl())) }),
	)
	if err != nil {
		// nats.go's error may quote the URL (a parse error does), password and all.
		return nil, nil, &redactedError{msg: fmt.Sprintf("connect nats %s: %s", RedactURL(url), redactSecrets(url, err.Error())), err: err}
	}
	// JetStream's API answers slowly while a busy server creates file-backed streams;
	// five seconds (the default) is too tight on a loaded two-core machine.
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(15*time.Second))
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// RedactURL returns a NATS URL (or a comma-separated list of them) for logs and errors:
// the password of each replaced by xxxxx, and a token (user information without a
// password) too. It works on the text, so that a URL that does not parse is redacted all
// the same.
func RedactURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		if u, ok := splitUserinfo(p); ok && u.hasPass {
			parts[i] = u.scheme + u.user + ":xxxxx@" + u.rest
		} else if ok {
			parts[i] = u.scheme + "xxxxx@" + u.rest // a token
		}
	}
	return strings.Join(parts, ",")
}

// userinfo is one URL split at its user information.
type userinfo struct {
	scheme     string // with its ://, or empty
	user, pass string // for a token, user is the token
	hasPass    bool
	rest       string // host, port and the rest
}

// secret is the password, or the token.
func (u userinfo) secret() string {
	if u.hasPass {
		return u.pass
	}
	return u.user
}

// splitUserinfo splits one URL at its user information; ok is false when it has none.
func splitUserinfo(raw string) (u userinfo, ok bool) {
	s := strings.TrimSpace(raw)
	if i := strings.Index(s, "://"); i >= 0 {
		u.scheme, s = s[:i+3], s[i+3:]
	}
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return userinfo{}, false
	}
	u.user, u.pass, u.hasPass = strings.Cut(s[:at], ":")
	u.rest = s[at+1:]
	return u, true
}

// redactSecrets replaces in msg every URL of raw by its redacted form, and any password
// or token of raw that is left (as written or percent-decoded) by xxxxx.
func redactSecrets(raw, msg string) string {
	var secrets []string
	for _, p := range strings.Split(raw, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		msg = strings.ReplaceAll(msg, p, RedactURL(p))
		if u, ok := splitUserinfo(p); ok && u.secret() != "" {
			secrets = append(secrets, u.secret())
			if dec, err := neturl.PathUnescape(u.secret()); err == nil {
				secrets = append(secrets, dec)
			}
		}
	}
	// Longest first, so that no part of a secret is left behind by a shorter one.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return msg
}

// redactedError is an error whose text hides credentials; errors.Is and As still see
// the error it stands for.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Topology says how to provision the pipeline's streams and buckets.
type Topology struct {
	// Replicas of every stream and bucket (1 for a single server, 3 for a cluster).
	Replicas int
	// RequestMaxAge expires requests that waited longer (BG_JOB_MAX_AGE).
	RequestMaxAge time.Duration
	// SyncedTTL is how long a completed sync is remembered (at least the dedup window).
	SyncedTTL time.Duration
	// Memory keeps everything in memory instead of files (benchmarks only).
	Memory bool
}

// Provision creates or updates every stream and bucket of the events contract. It is
// idempotent and safe to call from every replica at start.
func Provision(ctx context.Context, js jetstream.JetStream, t Topology) error {
	if t.Replicas < 1 {
		t.Replicas = 1
	}
	storage := jetstream.FileStorage
	if t.Memory {
		storage = jetstream.MemoryStorage
	}
	for _, s := range events.Streams(t.RequestMaxAge) {
		if _, err := js.CreateOrUpdateStream(ctx, StreamConfig(s, t.Replicas, storage)); err != nil {
			return fmt.Errorf("provision stream %s: %w", s.Name, err)
		}
	}
	for _, b := range events.Buckets(t.SyncedTTL) {
		_, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: b.Bucket, TTL: b.TTL, History: b.History, Storage: storage, Replicas: t.Replicas,
		})
		if err != nil {
			return fmt.Errorf("provision bucket %s: %w", b.Bucket, err)
		}
	}
	return nil
}

// StreamConfig turns a spec into JetStream's configuration.
func StreamConfig(s events.StreamSpec, replicas int, storage jetstream.StorageType) jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{
		Name:                 s.Name,
		Subjects:             s.Subjects,
		Retention:            jetstream.LimitsPolicy,
		MaxAge:               s.MaxAge,
		MaxMsgsPerSubject:    s.MaxMsgsPerSubject,
		DiscardNewPerSubject: s.DiscardNewPerSubject,
		Duplicates:           s.Duplicates,
		Storage:              storage,
		Replicas:             replicas,
		MaxBytes:             s.MaxBytes,
	}
	if s.MaxBytes == 0 {
		cfg.MaxBytes = -1
	}
	if s.MaxMsgsPerSubject == 0 {
		cfg.MaxMsgsPerSubject = -1
	}
	if s.Retention == events.RetainWorkQueue {
		cfg.Retention = jetstream.WorkQueuePolicy
	}
	if s.DiscardNewPerSubject {
		cfg.Discard = jetstream.DiscardNew
	}
	return cfg
}

// Consumer creates or updates the durable pull consumer of spec and returns it.
func Consumer(ctx context.Context, js jetstream.JetStream, spec events.ConsumerSpec) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       spec.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       spec.AckWait,
		MaxDeliver:    spec.MaxDeliver,
		MaxAckPending: spec.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if spec.DeliverNew {
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	// One filter goes in the singular field, which servers before 2.10 understand.
	if len(spec.FilterSubjects) == 1 {
		cfg.FilterSubject = spec.FilterSubjects[0]
	} else {
		cfg.FilterSubjects = spec.FilterSubjects
	}
	c, err := js.CreateOrUpdateConsumer(ctx, spec.Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", spec.Durable, spec.Stream, err)
	}
	return c, nil
}

// Publish encodes p and publishes it to subject through JetStream with msgID as its
// de-duplication id, waiting for the stream's acknowledgement.
func Publish(ctx context.Context, js jetstream.JetStream, subject, msgID string, p events.Payload) (*jetstream.PubAck, error) {
	data, err := events.Encode(p)
	if err != nil {
		return nil, err
	}
	opts := []jetstream.PublishOpt{}
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	ack, err := js.Publish(ctx, subject, data, opts...)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", subject, err)
	}
	return ack, nil
}

// errCodeMaxMsgsPerSubject is JetStream's error code for a publish refused because the
// subject already holds its maximum (with DiscardNewPerSubject).
const errCodeMaxMsgsPerSubject = 10077

// maxTermReason bounds the reason Term sends: it travels in a header of the server's
// advisory, and an error may quote a whole page or payload.
const maxTermReason = 256

// Term terminates msg, which can never be handled, with reason's text as the reason the
// server's advisory reports, cut to maxTermReason bytes on a character boundary.
func Term(msg jetstream.Msg, reason error) error {
	s := reason.Error()
	if len(s) > maxTermReason {
		n := maxTermReason
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	return msg.TermWithReason(s)
}

// IsSubjectFull reports whether err is a publish refused because its subject already
// holds a message: for the request stream, the book is already waiting in that lane.
func IsSubjectFull(err error) bool {
	var apiErr *jetstream.APIError
	// The code is the server's for any store failure; the description tells this one
	// ("maximum messages per subject exceeded") from, say, a store closing on a leader
	// change, which is worth a retry.
	return errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeMaxMsgsPerSubject &&
		strings.Contains(strings.ToLower(apiErr.Description), "per subject")
}

// WaitingInLane counts the requests waiting in lane l of the request stream: the
// pending counts of the lane's consumers (one per site served, and the legacy one), or,
// while no fetcher has created any of them yet, the requests stored for the lane.
// Requests for a site no fetcher serves have no consumer and are not counted here once
// the lane has consumers (StoredInLane counts them).
func WaitingInLane(ctx context.Context, requests jetstream.Stream, l events.Lane) (int, error) {
	waiting, found := 0, false
	infos := requests.ListConsumers(ctx)
	for info := range infos.Info() {
		if lane, ok := events.FetcherConsumerLane(info.Name); ok && lane == l {
			waiting += int(info.NumPending)
			found = true
		}
	}
	if err := infos.Err(); err != nil {
		return 0, fmt.Errorf("consumers of %s: %w", events.StreamRequests, err)
	}
	if !found {
		return StoredInLane(ctx, requests, l)
	}
	return waiting, nil
}

// StoredInLane counts the requests of lane l in the request stream, waiting or held by
// a fetcher.
func StoredInLane(ctx context.Context, requests jetstream.Stream, l events.Lane) (int, error) {
	info, err := requests.Info(ctx, jetstream.WithSubjectFilter(events.RequestSubjectLane(l)))
	if err != nil {
		return 0, fmt.Errorf("count requests in lane %s: %w", l, err)
	}
	n := 0
	for _, msgs := range info.State.Subjects {
		n += int(msgs)
	}
	return n, nil
}

// Heartbeats reads the heartbeat of every live fetcher from the fetchers bucket. A
// heartbeat that does not decode is skipped and reported to skip (when not nil).
func Heartbeats(ctx context.Context, fetchers jetstream.KeyValue, skip func(key string, err error)) ([]events.FetcherHeartbeat, error) {
	w, err := fetchers.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", events.BucketFetchers, err)
	}
	defer func() { _ = w.Stop() }()
	var out []events.FetcherHeartbeat
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("read %s: %w", events.BucketFetchers, ctx.Err())
		case e, ok := <-w.Updates():
			if !ok || e == nil { // closed, or every current value delivered
				return out, nil
			}
			var h events.FetcherHeartbeat
			if err := events.Decode(e.Value(), &h); err != nil {
				if skip != nil {
					skip(e.Key(), err)
				}
				continue
			}
			out = append(out, h)
		}
	}
}
