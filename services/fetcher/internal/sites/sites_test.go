package sites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/platform/testkit"
	"github.com/xswtw/xsw/services/fetcher/internal/politeness"
	"github.com/xswtw/xsw/services/fetcher/internal/source"
	"github.com/xswtw/xsw/services/fetcher/site"
	"github.com/xswtw/xsw/services/fetcher/site/xsw"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// other is a second site for the registry: m.xsw.tw's parsers under another id.
type other struct{ *xsw.Source }

func (other) Info() site.Info {
	i := xsw.Info()
	i.ID, i.Name = "other", "Other"
	return i
}

func registry(t *testing.T) site.Registry {
	t.Helper()
	r := site.Registry{}
	if err := r.Add(xsw.Adapter()); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(site.Adapter{Info: other{}.Info(), New: func(base *url.URL) (site.Source, error) { return other{xsw.New(base)}, nil }}); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSitesHaveTheirOwnBudget throttles one of two sites: its interval grows and its
// state says so, while the other site keeps its interval, in the shared bucket too.
func TestSitesHaveTheirOwnBudget(t *testing.T) {
	ns := natstest.Start(t)
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketPoliteness)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	asked := map[string]int{}
	throttling := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer throttling.Close()
	fine := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html></html>")) }))
	defer fine.Close()
	set, err := Open(t.Context(), kv, Config{
		Sources: config.Sources{
			{ID: "xsw", URL: throttling.URL, RateLimit: 100 * time.Millisecond},
			{ID: "other", URL: fine.URL, RateLimit: 300 * time.Millisecond},
		},
		Adapters: registry(t),
		Client:   source.Config{Timeout: 2 * time.Second},
		Observe: func(site string, status int, _ time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			asked[site+" "+http.StatusText(status)]++
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(set.IDs(), ","); got != "xsw,other" || set.Default().ID != "xsw" {
		t.Fatalf("sites %s, default %s; want xsw,other and xsw", got, set.Default().ID)
	}
	xs, _ := set.Get("xsw")
	ot, _ := set.Get("other")
	if _, err := xs.Client.Get(t.Context(), xs.Source.HomeURL(), politeness.Interactive); err == nil {
		t.Fatal("a 429 was no error")
	}
	if _, err := ot.Client.Get(t.Context(), ot.Source.HomeURL(), politeness.Interactive); err != nil {
		t.Fatal(err)
	}
	for _, st := range set.All() {
		if err := st.Limiter.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if got := xs.Limiter.Snapshot().Interval; got != 200*time.Millisecond {
		t.Errorf("throttled site's interval %v, want 200ms (twice its own)", got)
	}
	if got := ot.Limiter.Snapshot().Interval; got != 300*time.Millisecond {
		t.Errorf("other site's interval %v, want its own 300ms", got)
	}
	if got := xs.Info("f", time.Now()); got.State != events.SiteThrottled || got.RateInterval != 0.1 || got.Interval != 0.2 {
		t.Errorf("throttled site info %+v", got)
	}
	if got := ot.Info("f", time.Now()); got.State != events.SiteOK || got.Interval != 0.3 || got.Name != "Other" || got.BaseURL != fine.URL {
		t.Errorf("other site info %+v", got)
	}
	// Each books under its own key.
	for key, factor := range map[string]string{LimiterKey("xsw"): `"factor":2`, LimiterKey("other"): `"factor":1`} {
		e, err := kv.Get(t.Context(), key)
		if err != nil {
			t.Fatalf("no entry %s: %v", key, err)
		}
		if !strings.Contains(string(e.Value()), factor) {
			t.Errorf("entry %s = %s, want %s", key, e.Value(), factor)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if asked["xsw Too Many Requests"] != 1 || asked["other OK"] != 1 || len(asked) != 2 {
		t.Errorf("observed %v, want one 429 of xsw and one 200 of other", asked)
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		sources config.Sources
		want    string
	}{
		{"unknown site", config.Sources{{ID: "xsw"}, {ID: "czbooks"}}, `no adapter for site "czbooks" (known: [other xsw])`},
		{"bad base", config.Sources{{ID: "xsw", URL: "ftp://m.xsw.tw"}}, `site xsw: the base URL is not an http(s) URL`},
		{"nothing", nil, "no site"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(t.Context(), nil, Config{Sources: tt.sources, Adapters: registry(t)})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open = %v, want an error with %q", err, tt.want)
			}
		})
	}
	_, err := Open(t.Context(), nil, Config{Sources: config.Sources{{ID: "czbooks"}}, Adapters: registry(t)})
	if !errors.Is(err, site.ErrUnknownSite) {
		t.Errorf("Open = %v, want site.ErrUnknownSite", err)
	}
}

func TestDefaultBaseURL(t *testing.T) {
	t.Parallel()
	set, err := Open(t.Context(), nil, Config{Sources: config.Sources{{ID: "xsw"}}, Adapters: registry(t)})
	if err != nil {
		t.Fatal(err)
	}
	if got := set.Default().Client.Base().String(); got != xsw.DefaultBaseURL {
		t.Errorf("base %s, want the adapter's default %s", got, xsw.DefaultBaseURL)
	}
	if got := set.Default().Source.HomeURL(); got != xsw.DefaultBaseURL+"/" {
		t.Errorf("home %s", got)
	}
}

// TestUpgradeKeepsTheLegacyBooking: m.xsw.tw's bookings were kept under its host before
// sites had ids. A slow-down the site asked for then survives the upgrade; another
// site's key is never seeded from it, and an existing site key is left alone.
func TestUpgradeKeepsTheLegacyBooking(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketPoliteness)
	if err != nil {
		t.Fatal(err)
	}
	legacy := `{"next":0,"factor":8,"failures":0,"open_until":0,"opens":0}`
	if _, err := kv.Put(t.Context(), "host.m_xsw_tw", []byte(legacy)); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), "host.127_0_0_1_9", []byte(legacy)); err != nil {
		t.Fatal(err)
	}
	set, err := Open(t.Context(), kv, Config{
		Sources:  config.Sources{{ID: "xsw", URL: "https://m.xsw.tw", RateLimit: time.Second}, {ID: "other", URL: "http://127.0.0.1:9", RateLimit: time.Second}},
		Adapters: registry(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(t.Context(), LimiterKey("xsw"))
	if err != nil || string(e.Value()) != legacy {
		t.Fatalf("xsw's booking %v, %v; want the legacy one", e, err)
	}
	if _, err := kv.Get(t.Context(), LimiterKey("other")); err == nil {
		t.Error("another site's booking was seeded from a legacy key")
	}
	xs, _ := set.Get("xsw")
	if err := xs.Limiter.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := xs.Limiter.Snapshot().Interval; got != 8*time.Second {
		t.Errorf("interval after the upgrade %v, want the legacy slow-down (8 × 1s)", got)
	}
	// A second start leaves the site's own booking alone.
	if _, err := kv.Put(t.Context(), "host.m_xsw_tw", []byte(strings.Replace(legacy, `"factor":8`, `"factor":16`, 1))); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.Context(), kv, Config{Sources: config.Sources{{ID: "xsw", URL: "https://m.xsw.tw"}}, Adapters: registry(t)}); err != nil {
		t.Fatal(err)
	}
	if e, _ := kv.Get(t.Context(), LimiterKey("xsw")); string(e.Value()) != legacy {
		t.Errorf("xsw's booking rewritten from the legacy key: %s", e.Value())
	}
}

// TestProberEndsARefusal: a site refuses us and no work is queued for it. The probers of
// two fetchers ask its home page at most once per cooldown between them, and once the
// site lets us in again the refusal ends for both, with no request from anyone else.
func TestProberEndsARefusal(t *testing.T) {
	const cooldown = 300 * time.Millisecond
	ns := natstest.Start(t)
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketPoliteness)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var asked []time.Time
	var paths []string
	refusing := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		asked, paths = append(asked, time.Now()), append(paths, r.URL.Path)
		if refusing {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte("<html></html>"))
	}))
	defer srv.Close()
	open := func() *Set {
		t.Helper()
		set, err := Open(t.Context(), kv, Config{
			Sources:    config.Sources{{ID: "xsw", URL: srv.URL, RateLimit: 10 * time.Millisecond}},
			Adapters:   registry(t),
			Politeness: politeness.Config{Cooldown: cooldown, MaxCooldown: cooldown},
			Client:     source.Config{Timeout: 2 * time.Second},
		})
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	fetchers := []*Set{open(), open()}
	// A reader's request is refused: the site refuses us, and the set says so at once.
	first := fetchers[0].Default()
	if _, err := first.Client.Get(t.Context(), first.Source.BookURL("1"), politeness.Interactive); !errors.Is(err, politeness.ErrRefused) {
		t.Fatalf("first request = %v, want the refusal", err)
	}
	select {
	case <-fetchers[0].Changed():
	default:
		t.Error("the set did not say that a site started refusing us")
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, set := range fetchers {
		if err := set.Default().Limiter.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = set.Probe(ctx, slog.New(slog.DiscardHandler)) })
	}
	defer func() { cancel(); wg.Wait() }()

	// The site goes on refusing for a few cooldowns, then lets us in.
	testkit.Eventually(t, 3*time.Second, "three requests to the refusing site", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(asked) >= 3
	})
	mu.Lock()
	refusing = false
	mu.Unlock()
	for i, set := range fetchers {
		testkit.Eventually(t, 5*time.Second, fmt.Sprintf("fetcher %d to see the refusal end", i), func() bool {
			return set.Default().Limiter.Refresh(t.Context()) == nil && set.Default().Limiter.Refused() == ""
		})
		if got := set.Default().Info("f", time.Now()).State; got != events.SiteOK {
			t.Errorf("fetcher %d reports the site %s, want ok", i, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(asked); i++ {
		if gap := asked[i].Sub(asked[i-1]); gap < cooldown*9/10 {
			t.Errorf("requests %d and %d to the refusing site %v apart, want at most one per cooldown (%v)", i-1, i, gap.Round(time.Millisecond), cooldown)
		}
	}
	for i, p := range paths[1:] {
		if p != "/" {
			t.Errorf("probe %d asked for %s, want the home page", i+1, p)
		}
	}
	t.Logf("%d requests: %v", len(asked), paths)
}
