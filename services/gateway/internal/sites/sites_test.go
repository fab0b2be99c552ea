package sites

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/platform/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var sources = config.Sources{
	{ID: "xsw", URL: "", RateLimit: 2 * time.Second},
	{ID: "toy", URL: "https://toy.example", RateLimit: 500 * time.Millisecond},
}

func bucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	ns := natstest.Start(t)
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketSites)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func describe(t *testing.T, kv jetstream.KeyValue, info events.SiteInfo) {
	t.Helper()
	info.Header = events.Header{Version: events.Version}
	if info.State == "" {
		info.State = events.SiteOK
	}
	info.At = time.Now()
	data, err := events.Encode(&info)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), info.ID, data); err != nil {
		t.Fatal(err)
	}
}

// run keeps r current until the test ends.
func run(t *testing.T, r *Registry) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

func TestConfiguredSites(t *testing.T) {
	t.Parallel()
	r := New(sources, nil, slog.New(slog.DiscardHandler))
	if r.Default() != "xsw" || !reflect.DeepEqual(r.IDs(), []string{"xsw", "toy"}) {
		t.Errorf("default %q, ids %v", r.Default(), r.IDs())
	}
	for site, want := range map[string]bool{"xsw": true, "toy": true, "czbooks": false, "": false, "XSW": false} {
		if got := r.Known(site); got != want {
			t.Errorf("Known(%q) = %v, want %v", site, got, want)
		}
	}
}

func TestCheckBook(t *testing.T) {
	t.Parallel()
	kv := bucket(t)
	r := New(sources, kv, slog.New(slog.DiscardHandler))
	// Without a description, only the contract's checks can be made.
	for _, tt := range []struct {
		site, id string
		want     error
	}{
		{"czbooks", "1", ErrUnknownSite},
		{"xsw", "1.2", ErrBadID},
		{"xsw", "", ErrBadID},
		{"xsw", "1000005", ErrUndescribed},
		{"xsw", "01000005", ErrUndescribed},
	} {
		if err := r.CheckBook(t.Context(), tt.site, tt.id); !errors.Is(err, tt.want) {
			t.Errorf("CheckBook(%s, %q) = %v, want %v", tt.site, tt.id, err, tt.want)
		}
	}

	describe(t, kv, events.SiteInfo{ID: "xsw", BookIDPattern: `[1-9][0-9]*`, CategoryIDPattern: `[1-9][0-9]?`})
	describe(t, kv, events.SiteInfo{ID: "toy", BookIDPattern: `[a-z0-9]+`})
	r.now = func() time.Time { return time.Now().Add(time.Minute) } // past the throttle of direct reads
	tests := []struct {
		what, site, id string
		want           error
	}{
		{"book", "xsw", "1000005", nil},
		{"book", "xsw", "01000005", ErrNotCanonical},
		{"book", "xsw", "0", ErrNotCanonical},
		{"book", "xsw", "12a", ErrNotCanonical},
		{"book", "xsw", "a1000005", ErrNotCanonical}, // the pattern matches the whole id
		{"book", "xsw", "10000051a", ErrNotCanonical},
		{"book", "toy", "cr382b", nil},
		{"book", "toy", "CR382B", ErrNotCanonical},
		{"book", "toy", "1000005", nil},
		{"category", "xsw", "7", nil},
		{"category", "xsw", "100", ErrNotCanonical},
		{"category", "xsw", "07", ErrNotCanonical},
		{"category", "toy", "any-slug_1", nil}, // no category pattern: any valid id
		{"category", "toy", "a b", ErrBadID},
	}
	for _, tt := range tests {
		check := r.CheckBook
		if tt.what == "category" {
			check = r.CheckCategory
		}
		if err := check(t.Context(), tt.site, tt.id); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("check %s %s %q = %v, want %v", tt.what, tt.site, tt.id, err, tt.want)
		}
	}
}

// TestDirectReadsAreThrottled checks that a site nobody described is read from the
// bucket at most once per retryRead.
func TestDirectReadsAreThrottled(t *testing.T) {
	t.Parallel()
	kv := bucket(t)
	r := New(sources, kv, slog.New(slog.DiscardHandler))
	now := time.Now()
	r.now = func() time.Time { return now }
	if err := r.CheckBook(t.Context(), "xsw", "1"); !errors.Is(err, ErrUndescribed) {
		t.Fatalf("CheckBook = %v", err)
	}
	describe(t, kv, events.SiteInfo{ID: "xsw", BookIDPattern: `[0-9]+`})
	if err := r.CheckBook(t.Context(), "xsw", "1"); !errors.Is(err, ErrUndescribed) {
		t.Errorf("CheckBook within retryRead of the last read = %v, want it not to read again", err)
	}
	now = now.Add(retryRead)
	if err := r.CheckBook(t.Context(), "xsw", "1"); err != nil {
		t.Errorf("CheckBook after retryRead = %v, want the description read", err)
	}
}

func TestRunFollowsTheBucket(t *testing.T) {
	t.Parallel()
	kv := bucket(t)
	describe(t, kv, events.SiteInfo{ID: "xsw", BookIDPattern: `[1-9][0-9]*`})
	describe(t, kv, events.SiteInfo{ID: "other", BookIDPattern: `.*`}) // not configured: ignored
	r := New(sources, kv, slog.New(slog.DiscardHandler))
	r.now = func() time.Time { return time.Unix(0, 0) } // no direct reads: only the watch
	r.tried = map[string]time.Time{"xsw": time.Unix(0, 0), "toy": time.Unix(0, 0)}
	run(t, r)
	testkit.Eventually(t, 10*time.Second, "the description of xsw", func() bool { return r.CheckBook(t.Context(), "xsw", "12") == nil })
	r.mu.RLock()
	compiled, other := r.sites["xsw"].book, r.sites["other"]
	r.mu.RUnlock()
	if other != nil {
		t.Error("a site outside SOURCES was recorded")
	}

	// A new state with the same patterns keeps the compiled ones.
	describe(t, kv, events.SiteInfo{ID: "xsw", BookIDPattern: `[1-9][0-9]*`, State: events.SiteThrottled})
	testkit.Eventually(t, 10*time.Second, "the new state", func() bool {
		s, _ := r.Get(t.Context(), "xsw")
		return s.State == events.SiteThrottled
	})
	r.mu.RLock()
	same := r.sites["xsw"].book == compiled
	r.mu.RUnlock()
	if !same {
		t.Error("an unchanged pattern was compiled again")
	}

	// A new pattern applies.
	describe(t, kv, events.SiteInfo{ID: "xsw", BookIDPattern: `[a-z]+`})
	testkit.Eventually(t, 10*time.Second, "the new pattern", func() bool { return errors.Is(r.CheckBook(t.Context(), "xsw", "12"), ErrNotCanonical) })

	// A pattern that does not compile leaves the site undescribed: nothing is fetched.
	describe(t, kv, events.SiteInfo{ID: "xsw", BookIDPattern: `[a-z`})
	testkit.Eventually(t, 10*time.Second, "the bad pattern", func() bool { return errors.Is(r.CheckBook(t.Context(), "xsw", "ab"), ErrUndescribed) })

	// A deleted description too.
	describe(t, kv, events.SiteInfo{ID: "xsw", BookIDPattern: `[a-z]+`})
	testkit.Eventually(t, 10*time.Second, "the good pattern", func() bool { return r.CheckBook(t.Context(), "xsw", "ab") == nil })
	if err := kv.Delete(t.Context(), "xsw"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the deletion", func() bool { return errors.Is(r.CheckBook(t.Context(), "xsw", "ab"), ErrUndescribed) })
}

func TestList(t *testing.T) {
	t.Parallel()
	kv := bucket(t)
	describe(t, kv, events.SiteInfo{ID: "toy", Name: "Toy Books", BaseURL: "https://toy.example:8443", BookIDPattern: `[a-z]+`,
		RateInterval: 0.5, Interval: 4, State: events.SiteThrottled})
	r := New(sources, kv, slog.New(slog.DiscardHandler))
	got := r.List(t.Context())
	want := []Site{
		{ID: "xsw", Name: "xsw", BaseURL: "", Default: true, State: StateUnknown, RateInterval: 2},
		{ID: "toy", Name: "Toy Books", BaseURL: "https://toy.example:8443", State: events.SiteThrottled, RateInterval: 0.5, Described: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List\n got %+v\nwant %+v", got, want)
	}
	if _, ok := r.Get(t.Context(), "czbooks"); ok {
		t.Error("Get of a site outside SOURCES")
	}
}

// TestConcurrentFirstChecksShareTheRead: a gateway that just started (its watch not
// caught up) and gets many requests at once reads a site's description once, and every
// one of them waits for that read rather than being told the site is undescribed.
func TestConcurrentFirstChecksShareTheRead(t *testing.T) {
	t.Parallel()
	kv := bucket(t)
	describe(t, kv, events.SiteInfo{ID: "xsw", BookIDPattern: `[0-9]+`})
	r := New(sources, kv, slog.New(slog.DiscardHandler))
	var wg sync.WaitGroup
	var undescribed atomic.Int32
	for range 50 {
		wg.Go(func() {
			if err := r.CheckBook(t.Context(), "xsw", "1"); err != nil {
				undescribed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := undescribed.Load(); n != 0 {
		t.Errorf("%d of 50 concurrent first checks failed, want none", n)
	}
}
