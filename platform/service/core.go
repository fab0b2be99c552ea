// Package service is what every xsw service (gateway, fetcher, indexer) shares: the core
// of its configuration, read from the environment once and checked by one rule per
// variable (NATS and the streams it provisions, the sites, shutdown, the replica's name,
// logging, the health listener), and what a service starts from it: its logger, its NATS
// connection with the pipeline's streams provisioned, its metrics registry with the
// xsw_build_info metric, its health listener, and its command line (-h, --version).
//
// Each service's Config embeds a Core; its ConfigFromEnv calls FromEnv with the Spec
// naming the service and its own variables, and its Validate calls Core.Validate.
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/logging"
	"github.com/xswtw/xsw/platform/metrics"
)

// Defaults of the variables every service reads.
const (
	DefaultNATSURL         = "nats://127.0.0.1:4222"
	DefaultRequestMaxAge   = 24 * time.Hour
	DefaultSyncDedupWindow = 5 * time.Minute
	DefaultShutdownTimeout = 5 * time.Second
)

// maxReplicaID bounds a replica id: it names NATS keys and subjects.
const maxReplicaID = 128

// provisionTimeout bounds the provisioning of the streams and buckets at start.
const provisionTimeout = 30 * time.Second

// Spec names a service and the variables that are its own.
type Spec struct {
	// Name is the service: "gateway", "fetcher" or "indexer". It labels the service's
	// xsw_build_info metric and names its NATS connection.
	Name string
	// IDVar is the variable that names the replica ("FETCHER_ID"); "" when the id is
	// always generated.
	IDVar string
	// HealthVar is the variable of the health listener's address ("FETCHER_HEALTH_ADDR")
	// and HealthDefault its default (":8001"); HealthVar is "" for a service that answers
	// its probes itself (the gateway, on its API's address).
	HealthVar, HealthDefault string
}

// Core is the part of a service's configuration that every service shares. FromEnv
// fills it; the comment of each field names its variable and default.
type Core struct {
	// Spec names the service and its own variables. It is not read from the environment.
	Spec Spec
	// NATSURL is the NATS server or cluster (NATS_URL, DefaultNATSURL): comma-separated
	// nats://, tls://, ws:// or wss:// URLs with a host, each carrying the service's
	// credentials when the server asks for them (nats://user:password@host:4222, the
	// password percent-encoded where it is not URL-safe, or nats://token@host:4222).
	// Errors and logs never show a password or token.
	NATSURL string
	// NATSReplicas is the replica count of the streams and buckets the service
	// provisions: 1 for a single server, 3 or 5 for a cluster (NATS_REPLICAS, 1).
	NATSReplicas int
	// RequestMaxAge expires book requests that waited longer; 0 keeps them until they
	// are handled (BG_JOB_MAX_AGE, 24h).
	RequestMaxAge time.Duration
	// SyncDedupWindow: a book synced more recently is not synced again unless forced; 0
	// switches this off. The synced bucket keeps its entries for max(1h, window)
	// (SYNC_DEDUP_WINDOW, 5m).
	SyncDedupWindow time.Duration
	// Sources are the configured sites, the default first (SOURCES, "xsw"), with each
	// one's base URL (SOURCE_<SITE>_URL; BASE_URL for the default site) and interval
	// between requests (SOURCE_<SITE>_RATE_LIMIT, BG_JOB_RATE_LIMIT, 2s): see
	// config.ReadSources.
	Sources config.Sources
	// ShutdownTimeout bounds the graceful shutdown: the work in flight gets this long to
	// finish (SHUTDOWN_TIMEOUT, 5s; more than 0).
	ShutdownTimeout time.Duration
	// ReplicaID names this replica in what it publishes and stores (Spec.IDVar, by
	// default the host name and a random suffix): letters, digits, '-' and '_', at most
	// 128 of them.
	ReplicaID string
	// LogLevel and LogFormat configure the logger (LOG_LEVEL: debug, info, warn or error,
	// default info; LOG_FORMAT: text or json, default text).
	LogLevel, LogFormat string
	// HealthAddr is where /healthz, /readyz and /metrics are served (Spec.HealthVar,
	// Spec.HealthDefault); "" for a service without a health listener.
	HealthAddr string
	// Registry receives the service's metrics. It is not read from the environment: nil
	// gives the service a registry of its own (see Metrics); the all-in-one passes the
	// one it shares between its parts.
	Registry *prometheus.Registry
}

// FromEnv reads the core of spec's service through getenv (os.Getenv in main, a map in
// tests). Its error names every variable it could not parse; Validate checks the values.
func FromEnv(getenv func(string) string, spec Spec) (Core, error) {
	r := config.NewReader(getenv)
	c := Core{
		Spec:            spec,
		NATSURL:         r.String("NATS_URL", DefaultNATSURL),
		NATSReplicas:    r.Int("NATS_REPLICAS", 1),
		RequestMaxAge:   r.Duration("BG_JOB_MAX_AGE", DefaultRequestMaxAge),
		SyncDedupWindow: r.Duration("SYNC_DEDUP_WINDOW", DefaultSyncDedupWindow),
		Sources:         config.ReadSources(r, events.ValidSiteID),
		ShutdownTimeout: r.Duration("SHUTDOWN_TIMEOUT", DefaultShutdownTimeout),
		LogLevel:        r.String("LOG_LEVEL", "info"),
		LogFormat:       r.String("LOG_FORMAT", "text"),
	}
	if spec.IDVar != "" {
		c.ReplicaID = r.String(spec.IDVar, "")
	}
	if c.ReplicaID == "" {
		c.ReplicaID = NewReplicaID(spec.Name)
	}
	if spec.HealthVar != "" {
		c.HealthAddr = r.String(spec.HealthVar, spec.HealthDefault)
	}
	return c, r.Err()
}

// Validate reports every value of the core that cannot work, each error naming its
// variable. The rules are the same for every service.
func (c Core) Validate() error {
	idVar := c.Spec.IDVar
	if idVar == "" {
		idVar = "replica id"
	}
	errs := []error{
		CheckNATSURL(c.NATSURL),
		config.Check(c.NATSReplicas == 1 || c.NATSReplicas == 3 || c.NATSReplicas == 5, "NATS_REPLICAS",
			"want 1, 3 or 5, got %d", c.NATSReplicas),
		config.Check(c.RequestMaxAge >= 0, "BG_JOB_MAX_AGE", "want 0 (no limit) or more, got %s", c.RequestMaxAge),
		config.Check(c.SyncDedupWindow >= 0, "SYNC_DEDUP_WINDOW", "want 0 (off) or more, got %s", c.SyncDedupWindow),
		c.Sources.Validate(),
		config.Check(c.ShutdownTimeout > 0, "SHUTDOWN_TIMEOUT", "want more than 0, got %s", c.ShutdownTimeout),
		config.Check(validReplicaID(c.ReplicaID), idVar,
			"want 1 to %d letters, digits, '-' or '_' (it names NATS keys and subjects), got %q", maxReplicaID, c.ReplicaID),
		checkLogging(c.LogLevel, c.LogFormat),
	}
	if c.Spec.HealthVar != "" {
		_, _, err := net.SplitHostPort(c.HealthAddr)
		errs = append(errs, config.Check(err == nil, c.Spec.HealthVar, "want host:port or :port, got %q", c.HealthAddr))
	}
	return errors.Join(errs...)
}

// CheckNATSURL is the rule of NATS_URL: one or more comma-separated nats://, tls://,
// ws:// or wss:// URLs, each with a host. Its error shows the value without passwords
// or tokens.
func CheckNATSURL(list string) error {
	ok := strings.TrimSpace(list) != ""
	for _, raw := range strings.Split(list, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.Host == "" || (u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss") {
			ok = false
		}
	}
	return config.Check(ok, "NATS_URL", "want comma-separated nats://, tls://, ws:// or wss:// URLs with a host, got %q",
		broker.RedactURL(list))
}

// checkLogging checks LOG_LEVEL and LOG_FORMAT as the logger reads them.
func checkLogging(level, format string) error {
	_, levelErr := logging.New(io.Discard, level, "")
	_, formatErr := logging.New(io.Discard, "", format)
	return errors.Join(levelErr, formatErr)
}

// validReplicaID reports whether id can name a replica: 1 to maxReplicaID letters,
// digits, '-' or '_'.
func validReplicaID(id string) bool {
	if id == "" || len(id) > maxReplicaID {
		return false
	}
	for _, r := range id {
		if !replicaRune(r) {
			return false
		}
	}
	return true
}

func replicaRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
}

// NewReplicaID returns a fresh replica id: the host name (fallback when it has none),
// every character an id may not hold replaced by '-', and a random suffix, so that two
// processes on one host are told apart.
func NewReplicaID(fallback string) string {
	host, _ := os.Hostname()
	if host == "" {
		host = fallback
	}
	host = strings.Map(func(r rune) rune {
		if replicaRune(r) {
			return r
		}
		return '-'
	}, host)
	var b [3]byte
	_, _ = rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	if room := maxReplicaID - len(suffix) - 1; len(host) > room {
		host = host[:room]
	}
	return strings.Trim(host+"-"+suffix, "-")
}

// Topology says how the service provisions the streams and buckets it shares with the
// others.
func (c Core) Topology() broker.Topology {
	return broker.Topology{
		Replicas:      c.NATSReplicas,
		RequestMaxAge: c.RequestMaxAge,
		SyncedTTL:     events.SyncedTTL(c.SyncDedupWindow),
	}
}

// Logger builds the logger LogLevel and LogFormat ask for, writing to w.
func (c Core) Logger(w io.Writer) (*slog.Logger, error) {
	return logging.New(w, c.LogLevel, c.LogFormat)
}

// Boot starts a service's process once its configuration is read: it builds the logger
// (writing to w) and returns a context that ends at SIGINT or SIGTERM, with the function
// that stops listening for them.
func (c Core) Boot(w io.Writer) (context.Context, context.CancelFunc, *slog.Logger, error) {
	logger, err := c.Logger(w)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	return ctx, stop, logger, nil
}

// StreamOwner is the service that brings existing streams and buckets to its version's
// configuration (broker.Provision) when it starts: the indexer, which owns the pipeline's
// schema, in Postgres and in NATS alike. The others create what is missing and report
// what differs (broker.Ensure): their NATS users may not change a stream's limits
// (deploy/k8s/base/config/nats-auth.conf).
const StreamOwner = "indexer"

// Connect connects to NATS as this replica ("xsw-<service>-<replica id>"), reconnecting
// forever, and provisions the pipeline's streams and buckets (Topology) within 30
// seconds: the StreamOwner creates or updates them, any other service creates those
// missing and logs a warning for each that is configured otherwise, which it leaves as
// it is. Close the connection when done. Its errors show NATSURL without passwords.
func (c Core) Connect(ctx context.Context, logger *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, js, err := broker.Connect(c.NATSURL, "xsw-"+c.Spec.Name+"-"+c.ReplicaID, logger)
	if err != nil {
		return nil, nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, provisionTimeout)
	defer cancel()
	var drift []broker.Drift
	if c.Spec.Name == StreamOwner {
		err = broker.Provision(pctx, js, c.Topology())
	} else {
		drift, err = broker.Ensure(pctx, js, c.Topology())
	}
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("nats %s: %w", broker.RedactURL(c.NATSURL), err)
	}
	for _, d := range drift {
		logger.Warn("nats stream configured otherwise than this version says; left as it is for the indexer to update at its start",
			"stream", d.Stream, "differs", strings.Join(d.Differs, "; "))
	}
	return nc, js, nil
}

// Metrics returns the registry the service registers its metrics in, Registry or, when
// nil, a new one with the Go runtime and process collectors, with the service's
// xsw_build_info{version,revision,goversion,service} registered in it.
func (c Core) Metrics() (*prometheus.Registry, error) {
	reg := c.Registry
	if reg == nil {
		var err error
		if reg, err = metrics.NewRegistry(); err != nil {
			return nil, err
		}
	}
	if err := metrics.Register(reg, metrics.BuildInfo(c.Spec.Name)); err != nil {
		return nil, err
	}
	return reg, nil
}
