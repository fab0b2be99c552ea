package check

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/service"
)

// The tests here run a real nats-server with the configuration a deployment ships (the
// Kubernetes ConfigMap, or compose's command line and file), its passwords set as the
// deployment sets them, and connect as each service does (the user and password of its
// NATS_URL). Each user then does what its service does, through nats.go's JetStream API
// as the services call it (provisioning every stream and bucket, its consumers, its
// publishes, subscriptions, key-value reads and writes, acknowledgements), which must
// all work; and tries what natsRefusals lists plus the like through the same API, which
// the server must refuse.

// natsDeployment is what a deployment gives the server and its clients.
type natsDeployment struct {
	opts    *server.Options   // parsed with the deployment's environment
	clients map[string]string // service -> its NATS_URL, with its real password
}

// natsDeploymentOf reads a build: the StatefulSet's configuration, with the passwords of
// the Secret where the build holds it (dev) and fresh ones where the operator creates
// it (prod), and each service's NATS_URL expanded as the kubelet would.
func natsDeploymentOf(t *testing.T, b *build) *natsDeployment {
	t.Helper()
	files, main, nc, err := natsServerFiles(b)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{}
	secret := func(name, key string) string {
		ref := name + "/" + key
		if v, ok := secrets[ref]; ok {
			return v
		}
		v := ""
		for _, s := range all[corev1.Secret](b) {
			if s.Name == name {
				if d, ok := s.Data[key]; ok {
					v = string(d)
				} else if d, ok := s.StringData[key]; ok {
					v = d
				}
			}
		}
		if v == "" { // what `openssl rand -hex 32` makes, as deploy/README.md says
			buf := make([]byte, 32)
			_, _ = rand.Read(buf)
			v = hex.EncodeToString(buf)
		}
		secrets[ref] = v
		return v
	}
	d := &natsDeployment{clients: map[string]string{}}
	if d.opts, err = loadNATSConfig(t.TempDir(), files, main, natsContainerEnv(nc, "nats-0", secret)); err != nil {
		t.Fatalf("nats.conf: %v", err)
	}
	for _, w := range workloads(b) {
		if w.kind != "Deployment" {
			continue
		}
		for _, c := range w.template.Spec.Containers {
			svc := serviceOf(c.Image)
			if svc == "" {
				continue
			}
			vals := map[string]string{}
			for _, e := range c.Env {
				switch {
				case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
					vals[e.Name] = secret(e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
				case e.ValueFrom == nil:
					v := e.Value
					for _, ref := range k8sVarRefs(v) {
						if x, ok := vals[ref]; ok {
							v = strings.ReplaceAll(v, "$("+ref+")", x)
						}
					}
					vals[e.Name] = v
				}
			}
			if u, ok := vals["NATS_URL"]; ok {
				d.clients[svc] = u
			} else {
				d.clients[svc] = containerEnv(b, w.namespace, &c)["NATS_URL"]
			}
		}
	}
	return d
}

// composeNATSDeployment reads docker-compose.yml as compose runs it with the variables
// unset: the local default passwords.
func composeNATSDeployment(t *testing.T) *natsDeployment {
	t.Helper()
	p := composeProject(t)
	d := &natsDeployment{clients: map[string]string{}}
	var err error
	if d.opts, err = composeNATSOptions(p); err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Services {
		if svc := serviceOf(s.Image); svc != "" && s.Environment["NATS_URL"] != nil {
			d.clients[svc] = *s.Environment["NATS_URL"]
		}
	}
	return d
}

// start runs the deployment's server alone on a free loopback port: no cluster, no
// monitoring port, its store in a temporary directory.
func (d *natsDeployment) start(t *testing.T) *server.Server {
	t.Helper()
	o := d.opts.Clone()
	o.ServerName, o.Host, o.Port, o.HTTPPort = "xsw-check", "127.0.0.1", -1, 0
	o.Cluster, o.Routes, o.RoutesStr = server.ClusterOpts{}, nil, ""
	o.StoreDir, o.PidFile = t.TempDir(), ""
	o.NoLog, o.NoSigs = true, true
	o.JetStream = true
	srv, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server: not ready after 10s")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

// at returns raw with its host and port replaced by the test server's.
func at(srv *server.Server, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	su, _ := url.Parse(srv.ClientURL())
	u.Host = su.Host
	return u.String()
}

// natsClient is one user's connection, which records the server's permission errors.
type natsClient struct {
	t    *testing.T
	who  string
	nc   *nats.Conn
	js   jetstream.JetStream
	mu   sync.Mutex
	errs []error
}

func dialNATS(t *testing.T, who, rawURL string) *natsClient {
	t.Helper()
	c := &natsClient{t: t, who: who}
	nc, err := nats.Connect(rawURL, nats.Name(who), nats.MaxReconnects(0),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.mu.Lock()
			c.errs = append(c.errs, err)
			c.mu.Unlock()
		}))
	if err != nil {
		t.Fatalf("%s: connect: %v", who, err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	if c.js, err = jetstream.New(nc, jetstream.WithDefaultTimeout(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	return c
}

// refusal returns a permission error the server sent since the client had recorded n
// errors and its last error was last, about subject (any when empty).
func (c *natsClient) refusal(n int, last error, subject string) error {
	about := func(err error) bool {
		return err != nil && errors.Is(err, nats.ErrPermissionViolation) &&
			(subject == "" || strings.Contains(err.Error(), `"`+subject+`"`))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, err := range c.errs[n:] {
		if about(err) {
			return err
		}
	}
	// The error callback runs asynchronously; the connection's last error is set
	// before the reply to a flush is read.
	if le := c.nc.LastError(); le != last && about(le) { //nolint:errorlint // whether the last error is a new one, not which error it is
		return le
	}
	return nil
}

// try runs f and returns its error and the permission error it drew about subject (any
// when empty), waiting grace after f for a late one. When the server refuses, f's
// context is cancelled at once rather than left to time out.
func (c *natsClient) try(f func(context.Context) error, subject string, grace time.Duration) (opErr, refused error) {
	c.mu.Lock()
	n := len(c.errs)
	c.mu.Unlock()
	last := c.nc.LastError()
	ctx, cancel := context.WithTimeout(c.t.Context(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	finished, deadline := false, time.Time{}
	for {
		if refused = c.refusal(n, last, subject); refused != nil {
			cancel()
			if !finished {
				opErr = <-done
			}
			return opErr, refused
		}
		if finished && !time.Now().Before(deadline) {
			return opErr, nil
		}
		select {
		case opErr = <-done:
			finished = true
			_ = c.nc.FlushTimeout(2 * time.Second)
			deadline = time.Now().Add(grace)
			done = nil
		case <-tick.C:
		}
	}
}

// can fails the test unless f works without a permission error.
func (c *natsClient) can(what string, f func(context.Context) error) {
	c.t.Helper()
	err, refused := c.try(f, "", 0)
	switch {
	case refused != nil:
		c.t.Errorf("%s cannot %s: %v", c.who, what, refused)
	case err != nil:
		c.t.Errorf("%s: %s: %v", c.who, what, err)
	}
}

// cannot fails the test unless the server refuses subject when f uses it.
func (c *natsClient) cannot(what, subject string, f func(context.Context) error) {
	c.t.Helper()
	// The server's refusal comes before its answer to the flush that follows f; the
	// grace is for a slow machine.
	if _, refused := c.try(f, subject, 100*time.Millisecond); refused == nil {
		c.t.Errorf("%s can %s (%s): NATS must refuse it", c.who, what, subject)
	}
}

// refuses tries each of natsRefusals(svc) with a raw publish or subscription.
func (c *natsClient) refuses(svc string) {
	c.t.Helper()
	for _, r := range natsRefusals(svc) {
		c.cannot(r.what, r.subject, func(ctx context.Context) error {
			if r.sub {
				sub, err := c.nc.QueueSubscribe(r.subject, events.QueueFetchers, func(*nats.Msg) {})
				if err == nil {
					defer sub.Unsubscribe()
				}
				return err
			}
			if strings.HasPrefix(r.subject, "$JS.API.") {
				_, err := c.nc.RequestWithContext(ctx, r.subject, []byte("{}"))
				return err
			}
			return c.nc.Publish(r.subject, []byte("{}"))
		})
	}
}

// natsTopology is the streams' and buckets' configuration of the shipped deployments
// (BG_JOB_MAX_AGE, SYNC_DEDUP_WINDOW, on one server).
var natsTopology = broker.Topology{Replicas: 1, RequestMaxAge: 24 * time.Hour, SyncedTTL: events.SyncedTTL(5 * time.Minute)}

// natsProvision creates or updates every stream and bucket as the indexer
// (service.StreamOwner) does at start.
func natsProvision(ctx context.Context, js jetstream.JetStream) error {
	return broker.Provision(ctx, js, natsTopology)
}

// natsStart provisions every stream and bucket as svc does at start (service.Core's
// Connect): the indexer creates or updates them, the others create what is missing and
// must find the rest as this version makes them.
func natsStart(ctx context.Context, svc string, js jetstream.JetStream) error {
	if svc == service.StreamOwner {
		return natsProvision(ctx, js)
	}
	return noDrift(broker.Ensure(ctx, js, natsTopology))
}

// noDrift turns what broker.Ensure found configured otherwise into an error.
func noDrift(drift []broker.Drift, err error) error {
	if err != nil {
		return err
	}
	if len(drift) > 0 {
		return fmt.Errorf("configured otherwise than this version says: %+v", drift)
	}
	return nil
}

// natsStreamConfig is a stream's configuration exactly as the services make it
// (platform/broker), on one file-stored replica.
func natsStreamConfig(s events.StreamSpec) jetstream.StreamConfig {
	return broker.StreamConfig(s, 1, jetstream.FileStorage)
}

// natsConsumer creates or updates a durable consumer exactly as the services do.
func natsConsumer(ctx context.Context, js jetstream.JetStream, spec events.ConsumerSpec) (jetstream.Consumer, error) {
	return broker.Consumer(ctx, js, spec)
}

// publish publishes data through JetStream with a de-duplication id, as broker.Publish.
func publish(js jetstream.JetStream, subject string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := js.Publish(ctx, subject, []byte(`{"v":2}`), jetstream.WithMsgID(subject+time.Now().String()))
		return err
	}
}

// kv opens a bucket.
func kv(ctx context.Context, js jetstream.JetStream, bucket string) (jetstream.KeyValue, error) {
	return js.KeyValue(ctx, bucket)
}

// watchAll reads a bucket's current values the way broker.Heartbeats and the gateway's
// site registry do, then stops watching.
func watchAll(ctx context.Context, js jetstream.JetStream, bucket string) error {
	b, err := kv(ctx, js, bucket)
	if err != nil {
		return err
	}
	w, err := b.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok || e == nil {
				return nil
			}
		}
	}
}

// notFound accepts a missing key or message: the permission is what is tried.
func notFound(err error) error {
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	return err
}

// exerciseNATS runs the deployment's server and has each service's user do what the
// service does, and try what it must not.
func exerciseNATS(t *testing.T, d *natsDeployment) {
	srv := d.start(t)
	for _, svc := range []string{"gateway", "fetcher", "indexer"} {
		if d.clients[svc] == "" {
			t.Fatalf("no NATS_URL for the %s", svc)
		}
	}
	var admin *natsClient
	for _, u := range d.opts.Users {
		if u.Username == "admin" {
			su, _ := url.Parse(srv.ClientURL())
			admin = dialNATS(t, "admin", (&url.URL{Scheme: "nats", User: url.UserPassword("admin", u.Password), Host: su.Host}).String())
		}
	}
	if admin == nil {
		t.Error("no NATS user admin for the operators")
		admin = dialNATS(t, "anyone", srv.ClientURL())
	}
	g := dialNATS(t, "gateway", at(srv, d.clients["gateway"]))
	f := dialNATS(t, "fetcher", at(srv, d.clients["fetcher"]))
	ix := dialNATS(t, "indexer", at(srv, d.clients["indexer"]))

	// Nobody gets in without the right password.
	wrong, _ := url.Parse(at(srv, d.clients["gateway"]))
	wrong.User = url.UserPassword("gateway", "not-the-password")
	for who, u := range map[string]string{"without a user": srv.ClientURL(), "with a wrong password": wrong.String()} {
		if nc, err := nats.Connect(u, nats.MaxReconnects(0), nats.Timeout(2*time.Second)); err == nil {
			nc.Close()
			t.Errorf("a client %s connects: NATS must ask for a user and its password", who)
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("a client %s: %v, want an authorization violation", who, err)
		}
	}

	provisionRounds(admin, g, f, ix)
	fetcherWorks(f)
	gatewayWorks(g)
	fetcherTakesWork(f)
	indexerWorks(ix)
	before := streamMsgs(admin)
	refusals(g, f, ix)
	if after := streamMsgs(admin); !maps.Equal(before, after) {
		t.Errorf("the refused operations changed what the streams hold: %v before, %v after", before, after)
	}
	ownerUpdates(g, f, ix)

	// Nothing above took anything it must not have: the streams are whole, and every
	// stream and bucket is as this version makes it.
	admin.can("find every stream and bucket as this version makes it", func(ctx context.Context) error {
		return noDrift(broker.Ensure(ctx, admin.js, natsTopology))
	})
	admin.can("find the streams whole", func(ctx context.Context) error {
		for _, name := range natsStreams() {
			if _, err := admin.js.Stream(ctx, name); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		s, err := admin.js.Stream(ctx, events.StreamEvents)
		if err != nil {
			return err
		}
		if s.CachedInfo().State.Msgs == 0 {
			return errors.New("XSW_EVENTS is empty")
		}
		return nil
	})
}

// provisionRounds has every service provision every stream and bucket as it does at
// start: each creates them all on an empty server (the first to start); when another
// did, the indexer updates them and the others find them as this version makes them.
func provisionRounds(admin, g, f, ix *natsClient) {
	for _, first := range []*natsClient{g, f, ix} {
		admin.can("delete every stream", func(ctx context.Context) error {
			names := admin.js.StreamNames(ctx)
			var all []string
			for n := range names.Name() {
				all = append(all, n)
			}
			for _, n := range all {
				if err := admin.js.DeleteStream(ctx, n); err != nil {
					return err
				}
			}
			return names.Err()
		})
		first.can("create every stream and bucket", func(ctx context.Context) error { return natsStart(ctx, first.who, first.js) })
		for _, other := range []*natsClient{g, f, ix} {
			if other != first {
				other.can("provision every stream and bucket after the "+first.who, func(ctx context.Context) error { return natsStart(ctx, other.who, other.js) })
			}
		}
	}
}

// The book the steps below work on.
const site, book = events.LegacySite, "1"

var key = events.Key(site, book)

// fetcherWorks: buckets, consumers, what it publishes, its RPC handlers.
func fetcherWorks(f *natsClient) {
	f.can("book a request slot (xsw_politeness: get, create, update)", func(ctx context.Context) error {
		b, err := kv(ctx, f.js, events.BucketPoliteness)
		if err != nil {
			return err
		}
		if _, err := b.Get(ctx, "site."+site); notFound(err) != nil {
			return err
		}
		rev, err := b.Create(ctx, "site."+site, []byte("slot"))
		if err != nil {
			return err
		}
		_, err = b.Update(ctx, "site."+site, []byte("slot2"), rev)
		return err
	})
	f.can("beat and describe its sites (xsw_fetchers, xsw_sites)", func(ctx context.Context) error {
		hb, err := kv(ctx, f.js, events.BucketFetchers)
		if err != nil {
			return err
		}
		if _, err := hb.Put(ctx, "fetcher-1", []byte("{}")); err != nil {
			return err
		}
		if _, err := hb.Put(ctx, "fetcher-2", []byte("{}")); err != nil {
			return err
		}
		if err := hb.Delete(ctx, "fetcher-2"); err != nil {
			return err
		}
		st, err := kv(ctx, f.js, events.BucketSites)
		if err != nil {
			return err
		}
		if _, err := st.Put(ctx, site, []byte("{}")); err != nil {
			return err
		}
		_, err = st.Get(ctx, site)
		return err
	})
	f.can("remember syncs, checkpoints and crawl progress (xsw_synced, xsw_checkpoints, xsw_crawls)", func(ctx context.Context) error {
		for _, bucket := range []string{events.BucketSynced, events.BucketCheckpoints, events.BucketCrawls} {
			b, err := kv(ctx, f.js, bucket)
			if err != nil {
				return err
			}
			if _, err := b.Get(ctx, key); notFound(err) != nil {
				return err
			}
			if _, err := b.Put(ctx, key, []byte("{}")); err != nil {
				return err
			}
		}
		return nil
	})
	f.can("claim, renew and release a sync (xsw_claims)", func(ctx context.Context) error {
		b, err := kv(ctx, f.js, events.BucketClaims)
		if err != nil {
			return err
		}
		rev, err := b.Create(ctx, "xsw.2", []byte("{}"))
		if err != nil {
			return err
		}
		if rev, err = b.Update(ctx, "xsw.2", []byte("{}"), rev); err != nil {
			return err
		}
		if err := b.Delete(ctx, "xsw.2", jetstream.LastRevision(rev)); err != nil {
			return err
		}
		_, err = b.Create(ctx, key, []byte("{}")) // held, for the gateway below
		return err
	})
	f.can("create its consumers (every lane of its site, the legacy ones, crawl)", func(ctx context.Context) error {
		specs := []events.ConsumerSpec{events.CrawlConsumer(time.Minute)}
		for _, l := range events.Lanes {
			specs = append(specs, events.FetcherConsumer(l, site, time.Minute, -1), events.LegacyFetcherConsumer(l, time.Minute, -1))
		}
		for _, s := range specs {
			if _, err := natsConsumer(ctx, f.js, s); err != nil {
				return fmt.Errorf("%s: %w", s.Durable, err)
			}
		}
		return nil
	})
	f.can("listen for new requests", func(context.Context) error {
		_, err := f.nc.Subscribe(events.SubjectRequestAll, func(*nats.Msg) {})
		return err
	})
	f.can("serve calls about its site (queue group fetchers)", func(context.Context) error {
		_, err := f.nc.QueueSubscribe(events.RPCSubject(events.SubjectRPCChapter, site), events.QueueFetchers, func(m *nats.Msg) {
			_ = m.Respond([]byte(`{"v":2}`))
		})
		return err
	})
	for _, subject := range []string{
		events.SubjectFetchedBook(site, book), events.SubjectFetchedTOC(site, book), events.SubjectFetchedChapter(site, book),
		events.SubjectFetchedCategories(site), events.SubjectJob(events.JobStarted, site, book), events.SubjectJob(events.JobFailed, site, book),
		events.SubjectDead(site, book), events.RequestSubject(events.LanePrefetch, site, "2"),
	} {
		f.can("publish "+subject, publish(f.js, subject))
	}
	f.can("count the lanes and the dead letters (metrics)", func(ctx context.Context) error {
		rs, err := f.js.Stream(ctx, events.StreamRequests)
		if err != nil {
			return err
		}
		for info := range rs.ListConsumers(ctx).Info() {
			_ = info
		}
		if _, err := rs.Info(ctx, jetstream.WithSubjectFilter(events.RequestSubjectLane(events.LaneRefresh))); err != nil {
			return err
		}
		ds, err := f.js.Stream(ctx, events.StreamDead)
		if err != nil {
			return err
		}
		_, err = ds.Info(ctx)
		return err
	})

}

// gatewayWorks: requests, crawls, dead letters, the dashboard, caches, calls.
func gatewayWorks(g *natsClient) {
	var requests, dead jetstream.Stream
	g.can("open the request and dead-letter streams", func(ctx context.Context) (err error) {
		if requests, err = g.js.Stream(ctx, events.StreamRequests); err != nil {
			return err
		}
		if dead, err = g.js.Stream(ctx, events.StreamDead); err != nil {
			return err
		}
		_, err = requests.Info(ctx, jetstream.WithSubjectFilter(events.RequestSubjectLegacy("*", "*")))
		return err
	})
	if requests == nil || dead == nil {
		g.t.FailNow()
	}
	g.can("check a book (xsw_synced, xsw_claims: get, mark a claim a reader's)", func(ctx context.Context) error {
		synced, err := kv(ctx, g.js, events.BucketSynced)
		if err != nil {
			return err
		}
		if _, err := synced.Get(ctx, key); notFound(err) != nil {
			return err
		}
		claims, err := kv(ctx, g.js, events.BucketClaims)
		if err != nil {
			return err
		}
		e, err := claims.Get(ctx, key)
		if err != nil {
			return err
		}
		_, err = claims.Update(ctx, key, []byte(`{"interactive":true}`), e.Revision())
		return err
	})
	g.can("queue a request, look for a waiting one, drop an upgraded one, count the lanes", func(ctx context.Context) error {
		if _, err := requests.GetLastMsgForSubject(ctx, events.RequestSubject(events.LaneInteractive, site, book)); notFound(err) != nil {
			return err
		}
		if err := publish(g.js, events.RequestSubject(events.LaneInteractive, site, book))(ctx); err != nil {
			return err
		}
		if err := publish(g.js, events.RequestSubject(events.LaneManual, site, "3"))(ctx); err != nil {
			return err
		}
		if _, err := requests.GetLastMsgForSubject(ctx, events.RequestSubject(events.LaneInteractive, site, book)); err != nil {
			return err
		}
		if err := requests.Purge(ctx, jetstream.WithPurgeSubject(events.RequestSubject(events.LanePrefetch, site, "2"))); err != nil {
			return err
		}
		lister := requests.ListConsumers(ctx)
		for range lister.Info() {
		}
		return lister.Err()
	})
	g.can("read the fetchers' heartbeats and the sites (watch xsw_fetchers, xsw_sites)", func(ctx context.Context) error {
		if err := watchAll(ctx, g.js, events.BucketFetchers); err != nil {
			return err
		}
		if err := watchAll(ctx, g.js, events.BucketSites); err != nil {
			return err
		}
		st, err := kv(ctx, g.js, events.BucketSites)
		if err != nil {
			return err
		}
		_, err = st.Get(ctx, site)
		return err
	})
	g.can("queue a crawl and follow it (xsw_crawls, XSW_CRAWLS)", func(ctx context.Context) error {
		if err := publish(g.js, "xsw.crawl.crawl-1")(ctx); err != nil {
			return err
		}
		crawls, err := kv(ctx, g.js, events.BucketCrawls)
		if err != nil {
			return err
		}
		if _, err := crawls.Get(ctx, "crawl-1"); notFound(err) != nil {
			return err
		}
		keys, err := crawls.ListKeys(ctx)
		if err != nil {
			return err
		}
		for range keys.Keys() {
		}
		cs, err := g.js.Stream(ctx, events.StreamCrawls)
		if err != nil {
			return err
		}
		_, err = cs.GetLastMsgForSubject(ctx, "xsw.crawl.crawl-1")
		return err
	})
	g.can("list, look up, replay and delete dead letters", func(ctx context.Context) error {
		if _, err := dead.Info(ctx); err != nil {
			return err
		}
		cons, err := g.js.OrderedConsumer(ctx, events.StreamDead, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectDeadAll}})
		if err != nil {
			return err
		}
		batch, err := cons.Fetch(10, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return err
		}
		for range batch.Messages() {
		}
		msg, err := dead.GetLastMsgForSubject(ctx, events.SubjectDead(site, book))
		if err != nil {
			return err
		}
		if err := dead.Purge(ctx, jetstream.WithPurgeSubject(events.SubjectDeadLegacy(book))); err != nil {
			return err
		}
		return dead.DeleteMsg(ctx, msg.Sequence)
	})
	g.can("replay recent job events for the dashboard, and follow requests and jobs", func(ctx context.Context) error {
		for _, s := range []string{events.SubjectJobAll, events.SubjectRequestAll, events.SubjectIndexedAll, events.SubjectCacheAll,
			events.SubjectIndexed(site, book), events.SubjectJob(events.JobFailed, site, book)} {
			if _, err := g.nc.Subscribe(s, func(*nats.Msg) {}); err != nil {
				return err
			}
		}
		since := time.Now().Add(-time.Hour)
		cons, err := g.js.OrderedConsumer(ctx, events.StreamEvents, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{events.SubjectJobAll}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since,
		})
		if err != nil {
			return err
		}
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			return err
		}
		n := 0
		for range batch.Messages() {
			n++
		}
		if n == 0 {
			return errors.New("no job event read back")
		}
		return nil
	})
	g.can("tell the other gateways to drop a book, ask the indexer to purge texts, report reads", func(ctx context.Context) error {
		if err := g.nc.Publish(events.SubjectCacheInvalidate(site, book), []byte("{}")); err != nil {
			return err
		}
		if err := publish(g.js, events.SubjectPurgeBook(site, book))(ctx); err != nil {
			return err
		}
		return publish(g.js, events.SubjectReads)(ctx)
	})
	g.can("call the fetchers and get their reply", func(ctx context.Context) error {
		m, err := g.nc.RequestWithContext(ctx, events.RPCSubject(events.SubjectRPCChapter, site), []byte("{}"))
		if err != nil {
			return err
		}
		if string(m.Data) != `{"v":2}` {
			return fmt.Errorf("reply %q", m.Data)
		}
		return nil
	})

}

// fetcherTakesWork: the fetcher takes the work the gateway queued.
func fetcherTakesWork(f *natsClient) {
	f.can("take, keep and acknowledge a request; end a crawl", func(ctx context.Context) error {
		rc, err := natsConsumer(ctx, f.js, events.FetcherConsumer(events.LaneInteractive, site, time.Minute, -1))
		if err != nil {
			return err
		}
		m, err := rc.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			return err
		}
		if err := m.InProgress(); err != nil {
			return err
		}
		if err := m.DoubleAck(ctx); err != nil {
			return err
		}
		cc, err := natsConsumer(ctx, f.js, events.CrawlConsumer(time.Minute))
		if err != nil {
			return err
		}
		if m, err = cc.Next(jetstream.FetchMaxWait(2 * time.Second)); err != nil {
			return err
		}
		return m.TermWithReason("test")
	})

}

// indexerWorks: the event stream, announcements, refreshes, leases, webhooks.
func indexerWorks(ix *natsClient) {
	ix.can("consume the events (indexer, notifier): acknowledge, hand back, terminate", func(ctx context.Context) error {
		cons, err := natsConsumer(ctx, ix.js, events.IndexerConsumer())
		if err != nil {
			return err
		}
		if _, err := natsConsumer(ctx, ix.js, events.NotifierConsumer()); err != nil {
			return err
		}
		batch, err := cons.Fetch(3, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return err
		}
		var msgs []jetstream.Msg
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if len(msgs) < 3 {
			return fmt.Errorf("read %d events, want 3", len(msgs))
		}
		if err := msgs[0].DoubleAck(ctx); err != nil {
			return err
		}
		if err := msgs[1].NakWithDelay(time.Second); err != nil {
			return err
		}
		return msgs[2].TermWithReason("test")
	})
	ix.can("announce a book, dead-letter a sync it refused, queue a refresh, count the refresh lane", func(ctx context.Context) error {
		if err := publish(ix.js, events.SubjectIndexed(site, book))(ctx); err != nil {
			return err
		}
		if err := publish(ix.js, events.SubjectDead(site, book))(ctx); err != nil {
			return err
		}
		if err := publish(ix.js, events.RequestSubject(events.LaneRefresh, site, book))(ctx); err != nil {
			return err
		}
		rs, err := ix.js.Stream(ctx, events.StreamRequests)
		if err != nil {
			return err
		}
		if _, err := rs.Info(ctx, jetstream.WithSubjectFilter(events.RequestSubjectLane(events.LaneRefresh))); err != nil {
			return err
		}
		lister := rs.ListConsumers(ctx)
		for range lister.Info() {
		}
		return lister.Err()
	})
	ix.can("lead (xsw_leases: get, create, update, put, delete) and read the heartbeats", func(ctx context.Context) error {
		b, err := kv(ctx, ix.js, events.BucketLeases)
		if err != nil {
			return err
		}
		if _, err := b.Get(ctx, "refresh"); notFound(err) != nil {
			return err
		}
		rev, err := b.Create(ctx, "refresh", []byte("indexer-0"))
		if err != nil {
			return err
		}
		if _, err := b.Update(ctx, "refresh", []byte("indexer-0"), rev); err != nil {
			return err
		}
		if _, err := b.Put(ctx, "notifier.state", []byte("{}")); err != nil {
			return err
		}
		if err := b.Delete(ctx, "refresh"); err != nil {
			return err
		}
		return watchAll(ctx, ix.js, events.BucketFetchers)
	})
	ix.can("queue and deliver a webhook (XSW_WEBHOOKS)", func(ctx context.Context) error {
		if _, err := ix.js.CreateOrUpdateStream(ctx, natsStreamConfig(events.WebhookStream(100, 25*time.Hour))); err != nil {
			return err
		}
		cons, err := ix.js.CreateOrUpdateConsumer(ctx, events.StreamWebhooks, jetstream.ConsumerConfig{
			Durable: "webhook-r1", FilterSubject: events.SubjectWebhook("r1"), AckPolicy: jetstream.AckExplicitPolicy,
			MaxAckPending: 1, InactiveThreshold: 25 * time.Hour,
		})
		if err != nil {
			return err
		}
		msg := nats.NewMsg(events.SubjectWebhook("r1"))
		msg.Data = []byte("{}")
		if _, err := ix.js.PublishMsg(ctx, msg, jetstream.WithMsgID("r1:1")); err != nil {
			return err
		}
		m, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			return err
		}
		return m.DoubleAck(ctx)
	})

}

// streamMsgs counts the messages of the streams without a short age limit, by stream.
func streamMsgs(admin *natsClient) map[string]uint64 {
	n := map[string]uint64{}
	admin.can("count the messages of the streams", func(ctx context.Context) error {
		for _, name := range []string{events.StreamEvents, events.StreamRequests, events.StreamDead, events.StreamCrawls, "KV_" + events.BucketPoliteness} {
			s, err := admin.js.Stream(ctx, name)
			if err != nil {
				return err
			}
			n[name] = s.CachedInfo().State.Msgs
		}
		return nil
	})
	return n
}

// shrinkByUpdate sets a stream's maximum to one message, as a user allowed STREAM.UPDATE
// could: the stream would drop all but its newest message.
func shrinkByUpdate(c *natsClient, name string) func(context.Context) error {
	return func(ctx context.Context) error {
		s, err := c.js.Stream(ctx, name)
		if err != nil {
			return err
		}
		cfg := s.CachedInfo().Config
		cfg.MaxMsgs = 1
		_, err = c.js.UpdateStream(ctx, cfg)
		return err
	}
}

// shrinkByCreate tries the same through STREAM.CREATE, which every service may send:
// the server must refuse to create an existing stream with another configuration
// ("stream name already in use", or for XSW_EVENTS, whose 4 GiB are reserved already
// under the Kubernetes server's 8 GB, "insufficient storage resources"), and leave it.
func shrinkByCreate(c *natsClient, name string) func(context.Context) error {
	return func(ctx context.Context) error {
		s, err := c.js.Stream(ctx, name)
		if err != nil {
			return err
		}
		cfg := s.CachedInfo().Config
		cfg.MaxMsgs = 1
		var apiErr *jetstream.APIError
		if _, err := c.js.CreateStream(ctx, cfg); !errors.As(err, &apiErr) {
			return fmt.Errorf("re-creating %s with other limits: %v, want the server's refusal", name, err)
		}
		if s, err = c.js.Stream(ctx, name); err != nil {
			return err
		}
		if n := s.CachedInfo().Config.MaxMsgs; n != -1 {
			return fmt.Errorf("%s holds at most %d messages after the refused re-creation, want no limit", name, n)
		}
		return nil
	}
}

// ownerUpdates: an upgrade that keeps requests for another age, applied by the indexer
// (the provisioning identity, service.StreamOwner) as it starts; a gateway or fetcher
// of the old version starting meanwhile finds the stream changed and leaves it.
func ownerUpdates(g, f, ix *natsClient) {
	upgraded := natsTopology
	upgraded.RequestMaxAge = 12 * time.Hour
	maxAge := func(ctx context.Context, c *natsClient) (time.Duration, error) {
		s, err := c.js.Stream(ctx, events.StreamRequests)
		if err != nil {
			return 0, err
		}
		return s.CachedInfo().Config.MaxAge, nil
	}
	ix.can("change the limits of every stream and bucket (an upgrade: requests kept 12h)", func(ctx context.Context) error {
		if err := broker.Provision(ctx, ix.js, upgraded); err != nil {
			return err
		}
		if got, err := maxAge(ctx, ix); err != nil || got != 12*time.Hour {
			return fmt.Errorf("requests kept %s (%v) after the update, want 12h", got, err)
		}
		return nil
	})
	for _, c := range []*natsClient{g, f} {
		c.can("start on the old version, find the request stream changed and leave it", func(ctx context.Context) error {
			drift, err := broker.Ensure(ctx, c.js, natsTopology)
			if err != nil {
				return err
			}
			if len(drift) != 1 || drift[0].Stream != events.StreamRequests {
				return fmt.Errorf("found %+v configured otherwise, want the request stream's max_age", drift)
			}
			if got, err := maxAge(ctx, c); err != nil || got != 12*time.Hour {
				return fmt.Errorf("requests kept %s (%v), want the indexer's 12h", got, err)
			}
			return nil
		})
	}
	ix.can("change them back", func(ctx context.Context) error { return natsProvision(ctx, ix.js) })
}

// refusals: what each must not do, through the API the services use, and natsRefusals.
func refusals(g, f, ix *natsClient) {
	// No service but the indexer changes a stream's or a bucket's limits: the finding
	// that the fetcher user could shrink XSW_EVENTS from five messages to one.
	for _, c := range []*natsClient{g, f} {
		for _, name := range natsStreams() {
			c.cannot("shrink "+name+" by update", "$JS.API.STREAM.UPDATE."+name, shrinkByUpdate(c, name))
		}
		for _, name := range []string{events.StreamEvents, events.StreamRequests, "KV_" + events.BucketPoliteness} {
			c.can("try to shrink "+name+" by re-creating it, refused by the server", shrinkByCreate(c, name))
		}
	}
	g.cannot("publish a fetched event", events.SubjectFetchedBook(site, book), publish(g.js, events.SubjectFetchedBook(site, book)))
	g.cannot("publish a job event", events.SubjectJob(events.JobCompleted, site, book), publish(g.js, events.SubjectJob(events.JobCompleted, site, book)))
	g.cannot("purge the event stream", "$JS.API.STREAM.PURGE."+events.StreamEvents, func(ctx context.Context) error {
		s, err := g.js.Stream(ctx, events.StreamEvents)
		if err != nil {
			return err
		}
		return s.Purge(ctx)
	})
	g.cannot("book a request slot", "$KV.xsw_politeness.site.xsw", func(ctx context.Context) error {
		b, err := kv(ctx, g.js, events.BucketPoliteness)
		if err != nil {
			return err
		}
		_, err = b.Put(ctx, "site.xsw", []byte("0"))
		return err
	})
	f.cannot("purge the event stream", "$JS.API.STREAM.PURGE."+events.StreamEvents, func(ctx context.Context) error {
		s, err := f.js.Stream(ctx, events.StreamEvents)
		if err != nil {
			return err
		}
		return s.Purge(ctx)
	})
	f.cannot("purge a lane", "$JS.API.STREAM.PURGE."+events.StreamRequests, func(ctx context.Context) error {
		s, err := f.js.Stream(ctx, events.StreamRequests)
		if err != nil {
			return err
		}
		return s.Purge(ctx, jetstream.WithPurgeSubject(events.RequestSubjectLane(events.LaneInteractive)))
	})
	f.cannot("delete the request stream", "$JS.API.STREAM.DELETE."+events.StreamRequests, func(ctx context.Context) error {
		return f.js.DeleteStream(ctx, events.StreamRequests)
	})
	f.cannot("queue an interactive request", events.RequestSubject(events.LaneInteractive, site, "5"),
		publish(f.js, events.RequestSubject(events.LaneInteractive, site, "5")))
	ix.cannot("publish a fetched event", events.SubjectFetchedBook(site, book), publish(ix.js, events.SubjectFetchedBook(site, book)))
	ix.cannot("take the fetchers' work", "$JS.API.CONSUMER.CREATE."+events.StreamRequests+".peek", func(ctx context.Context) error {
		_, err := ix.js.CreateOrUpdateConsumer(ctx, events.StreamRequests, jetstream.ConsumerConfig{Durable: "peek", AckPolicy: jetstream.AckExplicitPolicy})
		return err
	})
	for c, svc := range map[*natsClient]string{g: "gateway", f: "fetcher", ix: "indexer"} {
		c.refuses(svc)
	}

}

func TestNATSAuthLive(t *testing.T) {
	for _, b := range builds(t) {
		t.Run(b.overlay, func(t *testing.T) { exerciseNATS(t, natsDeploymentOf(t, b)) })
	}
}

func TestComposeNATSAuthLive(t *testing.T) {
	exerciseNATS(t, composeNATSDeployment(t))
}
