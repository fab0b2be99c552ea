package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/natstest"
)

// TestRequestDedup checks the first two dedup layers on a real JetStream server: the same
// request published twice is stored once (Nats-Msg-Id), and a book already waiting in a
// lane is refused a second entry (per-subject limit).
func TestRequestDedup(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	ctx := t.Context()
	at := time.Now()
	r := events.NewBookRequested("xsw", "1721851", events.LanePrefetch, 0, false, "test", at)
	a1, err := broker.Publish(ctx, ns.JS, r.Subject(), r.MsgID(), &r)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := broker.Publish(ctx, ns.JS, r.Subject(), r.MsgID(), &r)
	if err != nil {
		t.Fatal(err)
	}
	if !a2.Duplicate || a1.Sequence != a2.Sequence {
		t.Errorf("second publish: duplicate=%v seq %d vs %d", a2.Duplicate, a2.Sequence, a1.Sequence)
	}
	later := events.NewBookRequested("xsw", "1721851", events.LanePrefetch, 0, false, "test", at.Add(10*time.Minute))
	_, err = broker.Publish(ctx, ns.JS, later.Subject(), later.MsgID(), &later)
	if !broker.IsSubjectFull(err) {
		t.Errorf("second request for a waiting book: err = %v, want a per-subject limit refusal", err)
	}
	other := events.NewBookRequested("xsw", "1721851", events.LaneManual, 10, false, "test", at)
	if _, err := broker.Publish(ctx, ns.JS, other.Subject(), other.MsgID(), &other); err != nil {
		t.Errorf("same book in another lane: %v", err)
	}
	info, err := ns.JS.Stream(ctx, events.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	si, err := info.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if si.State.Msgs != 2 {
		t.Errorf("stream holds %d requests, want 2", si.State.Msgs)
	}
}

func TestProvisionIsIdempotent(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	if err := broker.Provision(t.Context(), ns.JS, broker.Topology{RequestMaxAge: time.Hour, SyncedTTL: time.Hour}); err != nil {
		t.Fatalf("second Provision: %v", err)
	}
}

// TestTermCutsTheReason terminates a message with a reason far over the limit, in
// Chinese, and reads the server's advisory: the reason arrives cut to at most 256 bytes
// on a character boundary, and the message is gone for good.
func TestTermCutsTheReason(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	ctx := t.Context()
	advisories, err := ns.Conn.SubscribeSync("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>")
	if err != nil {
		t.Fatal(err)
	}
	r := events.NewBookRequested("xsw", "1721851", events.LanePrefetch, 0, false, "test", time.Now())
	if _, err := broker.Publish(ctx, ns.JS, r.Subject(), r.MsgID(), &r); err != nil {
		t.Fatal(err)
	}
	cons, err := broker.Consumer(ctx, ns.JS, events.FetcherConsumer(events.LanePrefetch, "xsw", time.Minute, -1))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next()
	if err != nil {
		t.Fatal(err)
	}
	reason := errors.New("第1章 " + strings.Repeat("無法解析的頁面", 40))
	if err := broker.Term(msg, reason); err != nil {
		t.Fatal(err)
	}
	m, err := advisories.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var a struct {
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(m.Data, &a); err != nil {
		t.Fatal(err)
	}
	if len(a.Reason) == 0 || len(a.Reason) > 256 || !utf8.ValidString(a.Reason) || !strings.HasPrefix(reason.Error(), a.Reason) {
		t.Errorf("reason %q (%d bytes), want a prefix of the error of at most 256 bytes, valid UTF-8", a.Reason, len(a.Reason))
	}
	if _, err := cons.Next(jetstream.FetchMaxWait(300 * time.Millisecond)); err == nil {
		t.Error("the terminated message was delivered again")
	}
}

// TestLaneConsumersAfterUpgrade starts from a stream whose lane consumer took the whole
// lane (as before sites had consumers of their own), narrows it to the bare-id requests
// stored then, adds the sites' consumers beside it, and counts what waits in the lane.
func TestLaneConsumersAfterUpgrade(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	ctx := t.Context()
	l := events.LanePrefetch
	old := events.LegacyFetcherConsumer(l, time.Minute, -1)
	old.FilterSubjects = []string{events.RequestSubjectLane(l)}
	if _, err := broker.Consumer(ctx, ns.JS, old); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.JS.Publish(ctx, events.RequestSubjectLegacy(l, "1721851"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	for _, r := range []events.BookRequested{
		events.NewBookRequested("xsw", "42", l, 0, false, "test", time.Now()),
		events.NewBookRequested("czbooks", "cr382b", l, 0, false, "test", time.Now()),
		events.NewBookRequested("czbooks", "0481273", l, 0, false, "test", time.Now()),
		events.NewBookRequested("nosuchsite", "1", l, 0, false, "test", time.Now()),
	} {
		if _, err := broker.Publish(ctx, ns.JS, r.Subject(), r.MsgID(), &r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := broker.Consumer(ctx, ns.JS, events.FetcherConsumer(l, "xsw", time.Minute, -1)); err == nil {
		t.Fatal("a site's consumer was created beside the whole lane's on a work queue")
	}
	legacy, err := broker.Consumer(ctx, ns.JS, events.LegacyFetcherConsumer(l, time.Minute, -1))
	if err != nil {
		t.Fatalf("narrowing the lane's consumer: %v", err)
	}
	held := map[string]jetstream.Msg{}
	take := func(c jetstream.Consumer) {
		t.Helper()
		m, err := c.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		held[m.Subject()] = m
	}
	take(legacy)
	for _, site := range []string{"xsw", "czbooks"} {
		c, err := broker.Consumer(ctx, ns.JS, events.FetcherConsumer(l, site, time.Minute, -1))
		if err != nil {
			t.Fatal(err)
		}
		take(c)
	}
	want := []string{events.RequestSubjectLegacy(l, "1721851"), events.RequestSubject(l, "xsw", "42"), events.RequestSubject(l, "czbooks", "cr382b")}
	for _, s := range want {
		if held[s] == nil {
			t.Errorf("no consumer delivered %s (got %v)", s, slices.Collect(maps.Keys(held)))
		}
	}
	requests, err := ns.JS.Stream(ctx, events.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	// Five stored, three held by fetchers: czbooks' second book waits for its consumer;
	// the unserved site's has none.
	if n, err := broker.WaitingInLane(ctx, requests, l); err != nil || n != 1 {
		t.Errorf("waiting in %s: %d, %v; want 1", l, n, err)
	}
	if n, err := broker.StoredInLane(ctx, requests, l); err != nil || n != 5 {
		t.Errorf("stored in %s: %d, %v; want 5", l, n, err)
	}
}

// TestConnectWithCredentials connects as a NATS user with the password in the URL, as
// the deployments give it (NATS_URL=nats://<user>:<password>@nats:4222), to a server
// that requires it, and provisions through it; the URL the connection reports hides the
// password.
func TestConnectWithCredentials(t *testing.T) {
	t.Parallel()
	const password = "p@ss/w:rd%" // not URL-safe: percent-encoded in the URL
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		Users: []*server.User{{Username: "gateway", Password: password}},
	})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	su, _ := url.Parse(srv.ClientURL())

	u := (&url.URL{Scheme: "nats", User: url.UserPassword("gateway", password), Host: su.Host}).String()
	nc, js, err := broker.Connect(u, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if !nc.IsConnected() {
		t.Fatalf("not connected: %v", nc.LastError())
	}
	if err := broker.Provision(t.Context(), js, broker.Topology{RequestMaxAge: time.Hour, SyncedTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if got := nc.ConnectedUrlRedacted(); strings.Contains(got, "w:rd") || strings.Contains(got, "%40") {
		t.Errorf("ConnectedUrlRedacted() = %q shows the password", got)
	}

	// Without the password, the server refuses: the connection never comes up.
	anon, _, err := broker.Connect(srv.ClientURL(), "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if anon.IsConnected() {
		t.Error("connected without a password")
	}
}

// TestConnectErrorsHidePasswords: an error of Connect names the URL without its
// password or token, even when the URL does not parse (Go's parse error quotes it).
func TestConnectErrorsHidePasswords(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, secret string }{
		{"nats://gateway:s3cret@nats:notaport", "s3cret"},
		{"nats://gateway:s3/cr%40et@nats:4222", "s3/cr"},
		{"nats://tok3n@nats:x", "tok3n"},
		{"nats://nats-0:4222,nats://gateway:s3cret@nats-1:port", "s3cret"},
	} {
		_, _, err := broker.Connect(tc.url, "test", slog.New(slog.DiscardHandler))
		if err == nil {
			t.Errorf("Connect(%s): no error", broker.RedactURL(tc.url))
			continue
		}
		if strings.Contains(err.Error(), tc.secret) || strings.Contains(err.Error(), "cr@et") || !strings.Contains(err.Error(), "xxxxx") {
			t.Errorf("Connect error %q shows the password or token", err)
		}
		if errors.Unwrap(err) == nil {
			t.Errorf("Connect error %q wraps nothing: errors.Is cannot see nats.go's", err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"nats://nats:4222":                            "nats://nats:4222",
		"nats://gateway:s3cret@nats:4222":             "nats://gateway:xxxxx@nats:4222",
		"nats://gateway:$(NATS_PASSWORD)@nats:4222":   "nats://gateway:xxxxx@nats:4222",
		"nats://gateway:p@ss@nats:4222":               "nats://gateway:xxxxx@nats:4222",
		"nats://tok3n@nats:4222":                      "nats://xxxxx@nats:4222",
		"gateway:s3cret@nats:4222":                    "gateway:xxxxx@nats:4222",
		"nats://a:1@n0:4222, nats://a:1@n1:4222":      "nats://a:xxxxx@n0:4222,nats://a:xxxxx@n1:4222",
		"tls://gateway:s3cret@nats.example.org:4222/": "tls://gateway:xxxxx@nats.example.org:4222/",
	} {
		if got := broker.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
