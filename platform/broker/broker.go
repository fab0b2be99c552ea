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

// replicasAndStorage returns the replica count (at least 1) and the storage of t.
func (t Topology) replicasAndStorage() (int, jetstream.StorageType) {
	if t.Memory {
		return max(t.Replicas, 1), jetstream.MemoryStorage
	}
	return max(t.Replicas, 1), jetstream.FileStorage
}

// bucketConfig turns a bucket spec into JetStream's configuration.
func bucketConfig(b events.KVSpec, replicas int, storage jetstream.StorageType) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: b.Bucket, TTL: b.TTL, History: b.History, Storage: storage, Replicas: replicas}
}

// Provision creates or updates every stream and bucket of the events contract. It is
// idempotent. It changes the limits of existing streams, which needs STREAM.UPDATE: of
// the services' NATS users only the indexer's may (deploy/k8s/base/config/nats-auth.conf);
// the gateway and the fetchers call Ensure.
func Provision(ctx context.Context, js jetstream.JetStream, t Topology) error {
	replicas, storage := t.replicasAndStorage()
	for _, s := range events.Streams(t.RequestMaxAge) {
		if _, err := js.CreateOrUpdateStream(ctx, StreamConfig(s, replicas, storage)); err != nil {
			return fmt.Errorf("provision stream %s: %w", s.Name, err)
		}
	}
	for _, b := range events.Buckets(t.SyncedTTL) {
		if _, err := js.CreateOrUpdateKeyValue(ctx, bucketConfig(b, replicas, storage)); err != nil {
			return fmt.Errorf("provision bucket %s: %w", b.Bucket, err)
		}
	}
	return nil
}

// Drift is a stream or bucket that Ensure found configured otherwise than Topology
// says, and left as it is.
type Drift struct {
	// Stream is the stream's name (KV_<bucket> for a bucket).
	Stream string
	// Differs says what differs, each as "<field> <found>, want <wanted>".
	Differs []string
}

// Ensure creates every stream and bucket of the events contract that is missing, and
// changes none that exists: it returns those whose subjects, limits, retention, storage
// or replicas differ from t's, for Provision (the indexer) to update. It needs only
// STREAM.INFO and STREAM.CREATE, which the server answers for an existing stream without
// changing it (an error when the configuration differs).
func Ensure(ctx context.Context, js jetstream.JetStream, t Topology) ([]Drift, error) {
	replicas, storage := t.replicasAndStorage()
	var drift []Drift
	check := func(want jetstream.StreamConfig, create func(context.Context) error) error {
		got, created, err := ensureStream(ctx, js, want.Name, create)
		if err != nil {
			return err
		}
		if d := differences(want, got); !created && len(d) > 0 {
			drift = append(drift, Drift{Stream: want.Name, Differs: d})
		}
		return nil
	}
	for _, s := range events.Streams(t.RequestMaxAge) {
		want := StreamConfig(s, replicas, storage)
		err := check(want, func(ctx context.Context) error {
			_, err := js.CreateStream(ctx, want)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("ensure stream %s: %w", s.Name, err)
		}
	}
	for _, b := range events.Buckets(t.SyncedTTL) {
		cfg := bucketConfig(b, replicas, storage)
		err := check(kvStreamConfig(cfg), func(ctx context.Context) error {
			_, err := js.CreateKeyValue(ctx, cfg)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("ensure bucket %s: %w", b.Bucket, err)
		}
	}
	return drift, nil
}

// ensureStream returns the configuration of the stream name, creating it with create
// when it is missing (created is then true). A stream another client created meanwhile
// is read back.
func ensureStream(ctx context.Context, js jetstream.JetStream, name string, create func(context.Context) error) (cfg jetstream.StreamConfig, created bool, err error) {
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		err = create(ctx)
		if err == nil {
			return jetstream.StreamConfig{}, true, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return jetstream.StreamConfig{}, false, err
		}
		s, err = js.Stream(ctx, name)
	}
	if err != nil {
		return jetstream.StreamConfig{}, false, err
	}
	return s.CachedInfo().Config, false, nil
}

// kvStreamConfig is the stream configuration nats.go makes of a bucket's (jetstream's
// prepareKeyValueConfig), as far as differences compares it.
func kvStreamConfig(b jetstream.KeyValueConfig) jetstream.StreamConfig {
	dup := 2 * time.Minute
	if b.TTL > 0 && b.TTL < dup {
		dup = b.TTL
	}
	return jetstream.StreamConfig{
		Name:              "KV_" + b.Bucket,
		Subjects:          []string{"$KV." + b.Bucket + ".>"},
		MaxMsgsPerSubject: int64(max(b.History, 1)),
		MaxAge:            b.TTL,
		Storage:           b.Storage,
		Replicas:          b.Replicas,
		AllowRollup:       true,
		DenyDelete:        true,
		Duplicates:        dup,
		Discard:           jetstream.DiscardNew,
	}
}

// differences lists what of got, a stream's configuration on the server, differs from
// want: its subjects, limits, retention, discard policy, storage, replicas, duplicate
// window (when want sets one) and the flags that lock it. A limit of 0 is the server's
// -1, none.
func differences(want, got jetstream.StreamConfig) []string {
	var out []string
	diff := func(field string, w, g any) {
		if w != g {
			out = append(out, fmt.Sprintf("%s %v, want %v", field, g, w))
		}
	}
	limit := func(v int64) int64 {
		if v == 0 {
			return -1
		}
		return v
	}
	ws, gs := slices.Sorted(slices.Values(want.Subjects)), slices.Sorted(slices.Values(got.Subjects))
	if !slices.Equal(ws, gs) {
		out = append(out, fmt.Sprintf("subjects %v, want %v", gs, ws))
	}
	diff("retention", want.Retention, got.Retention)
	diff("max_consumers", limit(int64(want.MaxConsumers)), limit(int64(got.MaxConsumers)))
	diff("max_msgs", limit(want.MaxMsgs), limit(got.MaxMsgs))
	diff("max_bytes", limit(want.MaxBytes), limit(got.MaxBytes))
	diff("max_age", want.MaxAge, got.MaxAge)
	diff("max_msgs_per_subject", limit(want.MaxMsgsPerSubject), limit(got.MaxMsgsPerSubject))
	diff("max_msg_size", limit(int64(want.MaxMsgSize)), limit(int64(got.MaxMsgSize)))
	diff("discard", want.Discard, got.Discard)
	diff("discard_new_per_subject", want.DiscardNewPerSubject, got.DiscardNewPerSubject)
	diff("storage", want.Storage, got.Storage)
	diff("replicas", max(want.Replicas, 1), max(got.Replicas, 1))
	if want.Duplicates > 0 {
		diff("duplicate_window", want.Duplicates, got.Duplicates)
	}
	diff("sealed", want.Sealed, got.Sealed)
	diff("deny_delete", want.DenyDelete, got.DenyDelete)
	diff("deny_purge", want.DenyPurge, got.DenyPurge)
	diff("allow_rollup_hdrs", want.AllowRollup, got.AllowRollup)
	return out
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
