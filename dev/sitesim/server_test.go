package sitesim

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestConfig(t *testing.T) {
	t.Parallel()
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
	tests := []struct {
		name   string
		modify func(*Config)
		want   string // part of the error
	}{
		{"categories", func(c *Config) { c.Categories = 8 }, "categories"},
		{"czbooks categories", func(c *Config) { c.Site, c.Categories = SiteCzbooks, 8 }, "categories"},
		{"site", func(c *Config) { c.Site = "m.xsw.tw" }, "site"},
		{"chapters", func(c *Config) { c.MinChapters, c.MaxChapters = 10, 5 }, "chapters"},
		{"ratio", func(c *Config) { c.FinishedRatio = 1.5 }, "finished ratio"},
		{"latency", func(c *Config) { c.Latency = -time.Second }, "latency"},
		{"big book", func(c *Config) { c.BigBooks = map[string]int{"1000001": -1} }, "big book"},
		{"fault", func(c *Config) { c.Faults = []FaultRule{{Kind: "x"}} }, "fault rule 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.modify(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error about %q", err, tt.want)
			}
			_ = New(cfg) // clamps instead of failing
		})
	}

	s := New(Config{}) // zero counts take defaults
	if n := len(s.Books()); n != DefaultCategories*DefaultBooksPerCategory {
		t.Errorf("zero config: %d books", n)
	}
	for _, site := range []string{"", SiteXSW, SiteCzbooks} {
		if err := (Config{Site: site}).Validate(); err != nil {
			t.Errorf("site %q: Validate() = %v", site, err)
		}
	}
	if got := New(Config{Site: "bogus"}).Flavour(); got != SiteXSW {
		t.Errorf("unknown site becomes %q, want %q", got, SiteXSW)
	}
	fixed := Config{MinChapters: 7, MaxChapters: 7, Categories: 1, BooksPerCategory: 3}
	for _, b := range New(fixed).Books() {
		if b.ChapterCount != 7 {
			t.Errorf("fixed 7 chapters: book %s has %d", b.ID, b.ChapterCount)
		}
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	cfg := smallConfig()
	cfg.Latency, cfg.LatencyJitter = 60*time.Millisecond, 20*time.Millisecond
	srv := startServer(t, cfg)
	c := newClient(t)
	start := time.Now()
	get(t, c, srv.URL()+"/", 200)
	if d := time.Since(start); d < cfg.Latency {
		t.Errorf("answered in %v, latency %v", d, cfg.Latency)
	}
	start = time.Now()
	get(t, c, srv.URL()+"/_sim/health", 200)
	if d := time.Since(start); d >= cfg.Latency {
		t.Logf("control endpoint took %v (no latency expected)", d)
	}
}

// TestShutdownEndsHangs checks that a server with a request hanging in flight
// shuts down promptly and leaves no goroutine behind (TestMain checks).
func TestShutdownEndsHangs(t *testing.T) {
	cfg := smallConfig()
	cfg.Faults = []FaultRule{{Kind: FaultHang, Hang: time.Hour}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := Serve(ln, New(cfg))
	c := newClient(t)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for srv.Site().Count() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("request never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %v with a hang in flight", d)
	}
	<-errc // the hanging request ends one way or another
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(srv.URL(), "http://"), time.Second); err == nil {
		t.Error("listener still open after Shutdown")
	}
}
