package events

import (
	"strings"
	"time"
)

// Retention is a stream's retention policy.
type Retention string

// Retention policies, as JetStream names them.
const (
	RetainLimits    Retention = "limits"
	RetainWorkQueue Retention = "workqueue"
)

// StreamSpec describes a JetStream stream as data. platform/broker turns it into the
// server's configuration; tests and manifests read it from here.
type StreamSpec struct {
	Name      string
	Subjects  []string
	Retention Retention
	// MaxAge drops messages older than this (0: keep).
	MaxAge time.Duration
	// MaxMsgsPerSubject caps messages per subject (0: no cap). With DiscardNewPerSubject
	// a publish beyond the cap is refused, which is how a book waiting in a lane is never
	// queued twice.
	MaxMsgsPerSubject    int64
	DiscardNewPerSubject bool
	// Duplicates is the window in which a repeated Nats-Msg-Id is dropped.
	Duplicates time.Duration
	// MaxBytes caps the stream's size (0: no cap).
	MaxBytes int64
}

// ConsumerSpec describes a durable pull consumer.
type ConsumerSpec struct {
	Stream         string
	Durable        string
	FilterSubjects []string
	AckWait        time.Duration
	// MaxDeliver bounds deliveries (0: unbounded). The fetcher counts attempts itself and
	// dead-letters on its last one, so the server bound is only a backstop.
	MaxDeliver    int
	MaxAckPending int
	// DeliverNew starts a new consumer at the end of its stream rather than the
	// beginning: it sees what is published from its creation on.
	DeliverNew bool
}

// KVSpec describes a JetStream key-value bucket.
type KVSpec struct {
	Bucket  string
	TTL     time.Duration // 0: keep
	History uint8
}

// Stream names.
const (
	// StreamRequests holds waiting book requests, one subject per lane and book.
	StreamRequests = "XSW_REQUESTS"
	// StreamEvents holds everything fetched, the job lifecycle events and the commands
	// to the indexer, in publication order: the indexer consumes all of it.
	StreamEvents = "XSW_EVENTS"
	// StreamIndexed holds the indexer's announcements.
	StreamIndexed = "XSW_INDEXED"
	// StreamCrawls holds waiting whole-category crawls.
	StreamCrawls = "XSW_CRAWLS"
	// StreamDead holds requests that gave up, the newest per book.
	StreamDead = "XSW_DEAD"
	// StreamWebhooks holds the webhook deliveries waiting or being retried, one subject
	// per receiver (WebhookStream). Only the indexer's webhook notifier uses it, and
	// provisions it when webhooks are configured; it is not in Streams.
	StreamWebhooks = "XSW_WEBHOOKS"
)

// SubjectWebhookAll matches every webhook delivery: xsw.webhook.<receiver>, where the
// receiver is a hash of its URL (the URL itself, which may hold a secret, is in no
// subject).
const SubjectWebhookAll = "xsw.webhook.>"

// SubjectWebhook is the subject of the deliveries to one receiver.
func SubjectWebhook(receiver string) string { return "xsw.webhook." + receiver }

// Key-value buckets.
const (
	// BucketPoliteness holds the cluster-wide reservation of the next source request.
	BucketPoliteness = "xsw_politeness"
	// BucketFetchers holds one heartbeat per live fetcher process.
	BucketFetchers = "xsw_fetchers"
	// BucketSites holds one SiteInfo per configured site, under the site id, written by
	// the fetchers that serve it.
	BucketSites = "xsw_sites"
	// BucketSynced maps a book's Key to the time its last sync completed.
	BucketSynced = "xsw_synced"
	// BucketCheckpoints holds, under each book's Key, the fetchers' checkpoint of its last full sync
	// (table-of-contents shape, newest chapter, page validators) for incremental resyncs.
	BucketCheckpoints = "xsw_checkpoints"
	// BucketLeases holds leadership leases (the indexers' refresh scheduler and notifier,
	// the fetcher exporting the cluster's gauges): a lease not renewed within LeaseTTL
	// expires and another replica takes over.
	BucketLeases = "xsw_leases"
	// BucketCrawls holds each crawl's progress under its id.
	BucketCrawls = "xsw_crawls"
	// BucketClaims holds, under a book's Key, the claim of the one job syncing it now,
	// cluster-wide (a SyncClaim); see ClaimTTL. Under Key + ".reader" a fetcher that hands a
	// job back while a reader waits for it leaves a short-lived mark, which the next claim
	// of the book takes, so that the retry runs at reader priority.
	BucketClaims = "xsw_claims"
)

// ClaimTTL is how long a book's claim in BucketClaims lasts without renewal: the job
// holding it renews it every third of that, so the claim of a fetcher that died is gone
// within ClaimTTL.
const ClaimTTL = time.Minute

// LeaseTTL is how long a lease in BucketLeases lasts without renewal; holders renew it
// at a third of that.
const LeaseTTL = 30 * time.Second

// DuplicateWindow is the de-duplication window of the request and event streams.
const DuplicateWindow = 2 * time.Minute

// RequestStream is the spec of StreamRequests. maxAge expires requests that waited too
// long (BG_JOB_MAX_AGE); 0 keeps them.
func RequestStream(maxAge time.Duration) StreamSpec {
	return StreamSpec{
		Name:                 StreamRequests,
		Subjects:             []string{SubjectRequestAll},
		Retention:            RetainWorkQueue,
		MaxAge:               maxAge,
		MaxMsgsPerSubject:    1,
		DiscardNewPerSubject: true,
		Duplicates:           DuplicateWindow,
	}
}

// EventStream is the spec of StreamEvents.
func EventStream() StreamSpec {
	return StreamSpec{
		Name:       StreamEvents,
		Subjects:   []string{SubjectFetchedAll, SubjectJobAll, SubjectCommandAll},
		Retention:  RetainLimits,
		MaxAge:     72 * time.Hour,
		Duplicates: DuplicateWindow,
		MaxBytes:   4 << 30,
	}
}

// CrawlStream is the spec of StreamCrawls: a work queue of crawl requests.
func CrawlStream() StreamSpec {
	return StreamSpec{
		Name:       StreamCrawls,
		Subjects:   []string{SubjectCrawlAll},
		Retention:  RetainWorkQueue,
		Duplicates: DuplicateWindow,
	}
}

// CrawlConsumer is the durable consumer of crawls shared by the fetchers.
func CrawlConsumer(ackWait time.Duration) ConsumerSpec {
	return ConsumerSpec{Stream: StreamCrawls, Durable: "crawl", FilterSubjects: []string{SubjectCrawlAll}, AckWait: ackWait, MaxAckPending: 100}
}

// IndexedStream is the spec of StreamIndexed. Gateways follow it live to drop cached
// copies; it keeps an hour for late readers and tools.
func IndexedStream() StreamSpec {
	return StreamSpec{
		Name:       StreamIndexed,
		Subjects:   []string{SubjectIndexedAll},
		Retention:  RetainLimits,
		MaxAge:     time.Hour,
		Duplicates: DuplicateWindow,
		MaxBytes:   256 << 20,
	}
}

// DeadStream is the spec of StreamDead.
func DeadStream() StreamSpec {
	return StreamSpec{
		Name:              StreamDead,
		Subjects:          []string{SubjectDeadAll},
		Retention:         RetainLimits,
		MaxMsgsPerSubject: 1,
		Duplicates:        DuplicateWindow,
	}
}

// WebhookStream is the spec of StreamWebhooks: a work queue of deliveries, at most
// perReceiver of them waiting or being retried for each receiver, where a new one is
// refused (the newest is dropped) when its receiver's queue is full, and 64 MiB in all.
// A delivery older than maxAge expires, delivered or not (0: kept).
func WebhookStream(perReceiver int64, maxAge time.Duration) StreamSpec {
	return StreamSpec{
		Name:                 StreamWebhooks,
		Subjects:             []string{SubjectWebhookAll},
		Retention:            RetainWorkQueue,
		MaxAge:               maxAge,
		MaxMsgsPerSubject:    perReceiver,
		DiscardNewPerSubject: true,
		Duplicates:           DuplicateWindow,
		MaxBytes:             64 << 20,
	}
}

// Streams lists every stream spec for provisioning.
func Streams(requestMaxAge time.Duration) []StreamSpec {
	return []StreamSpec{RequestStream(requestMaxAge), EventStream(), IndexedStream(), DeadStream(), CrawlStream()}
}

// FetcherConsumer is the durable consumer of one lane and one site, shared by every
// fetcher replica that serves the site: "fetch-<lane>-<site>", on the lane's requests for
// the site's books. Each site has its own consumers so that a fetcher takes work for the
// site whose turn it is, never waiting behind another site's queue; a site no fetcher
// serves has no consumer, and its requests wait in the stream (to BG_JOB_MAX_AGE) for one
// that does.
func FetcherConsumer(l Lane, site string, ackWait time.Duration, maxDeliver int) ConsumerSpec {
	return ConsumerSpec{
		Stream:         StreamRequests,
		Durable:        "fetch-" + string(l) + "-" + site,
		FilterSubjects: []string{RequestSubjectLaneSite(l, site)},
		AckWait:        ackWait,
		MaxDeliver:     maxDeliver,
		MaxAckPending:  1000,
	}
}

// LegacyFetcherConsumer is the durable consumer of one lane's requests stored by a build
// before books were site-qualified (RequestSubjectLegacy: a bare book id, LegacySite's).
// It keeps the name the whole lane's consumer had then, "fetch-<lane>", narrowed to those
// subjects, so that a stream's old requests are still served after an upgrade; the
// fetchers serving LegacySite take them.
func LegacyFetcherConsumer(l Lane, ackWait time.Duration, maxDeliver int) ConsumerSpec {
	return ConsumerSpec{
		Stream:         StreamRequests,
		Durable:        "fetch-" + string(l),
		FilterSubjects: []string{"xsw.book.requested." + string(l) + ".*"},
		AckWait:        ackWait,
		MaxDeliver:     maxDeliver,
		MaxAckPending:  1000,
	}
}

// FetcherConsumerLane returns the lane of a consumer of StreamRequests named by
// FetcherConsumer or LegacyFetcherConsumer, and whether durable is one.
func FetcherConsumerLane(durable string) (Lane, bool) {
	rest, ok := strings.CutPrefix(durable, "fetch-")
	if !ok {
		return "", false
	}
	lane, site, qualified := strings.Cut(rest, "-")
	if qualified && !ValidSiteID(site) {
		return "", false
	}
	return Lane(lane), Lane(lane).Valid()
}

// IndexerConsumer is the durable consumer of the indexer over the whole of StreamEvents.
// It has no filter, so it also works on servers older than 2.10 (which allow at most one
// filter subject per consumer).
func IndexerConsumer() ConsumerSpec {
	return ConsumerSpec{
		Stream:        StreamEvents,
		Durable:       "indexer",
		AckWait:       30 * time.Second,
		MaxAckPending: 4096,
	}
}

// NotifierConsumer is the durable consumer of the indexer's webhook notifier: the jobs
// that failed for good, published since the consumer was first created (so that turning
// webhooks on does not announce three days of old failures). One filter subject, which
// servers older than 2.10 accept.
func NotifierConsumer() ConsumerSpec {
	return ConsumerSpec{
		Stream:         StreamEvents,
		Durable:        "notifier",
		FilterSubjects: []string{"xsw.job." + string(JobFailed) + ".>"},
		AckWait:        30 * time.Second,
		MaxAckPending:  1000,
		DeliverNew:     true,
	}
}

// Buckets lists every key-value bucket spec for provisioning. syncedTTL is how long a
// completed sync is remembered; it must be at least the sync de-duplication window.
func Buckets(syncedTTL time.Duration) []KVSpec {
	return []KVSpec{
		{Bucket: BucketPoliteness, History: 1},
		{Bucket: BucketFetchers, TTL: FetcherHeartbeatTTL, History: 1},
		{Bucket: BucketSites, History: 1},
		{Bucket: BucketSynced, TTL: syncedTTL, History: 1},
		{Bucket: BucketCheckpoints, History: 1},
		{Bucket: BucketLeases, TTL: LeaseTTL, History: 1},
		{Bucket: BucketCrawls, TTL: 7 * 24 * time.Hour, History: 1},
		{Bucket: BucketClaims, TTL: ClaimTTL, History: 1},
	}
}

// FetcherHeartbeatTTL is how long a fetcher's heartbeat counts; fetchers beat at a third
// of it.
const FetcherHeartbeatTTL = 15 * time.Second

// SyncedTTL is how long BucketSynced remembers a completed sync, given the sync
// de-duplication window: at least an hour, so that every service provisions the bucket
// alike whatever window it was given.
func SyncedTTL(window time.Duration) time.Duration { return max(time.Hour, window) }
