package fetcher

import (
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/service"
	"github.com/xswtw/xsw/platform/service/servicetest"
	"github.com/xswtw/xsw/services/fetcher/site"
	"github.com/xswtw/xsw/services/fetcher/site/xsw"
)

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	cfg, err := ConfigFromEnv(config.Map(nil))
	if err != nil {
		t.Fatal(err)
	}
	wantSources := config.Sources{{ID: "xsw", RateLimit: 2 * time.Second}}
	if cfg.Workers != 2 || cfg.MaxAttempts != 5 || cfg.SyncDedupWindow != 5*time.Minute || cfg.ShutdownTimeout != 5*time.Second ||
		cfg.InsecureTLS || cfg.ReplicaID == "" || cfg.HealthAddr != ":8001" || cfg.Adapters != nil || len(cfg.Sources) != 1 || cfg.Sources[0] != wantSources[0] {
		t.Errorf("defaults = %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate() of the defaults = %v", err)
	}
	cfg, err = ConfigFromEnv(config.Map(map[string]string{"BG_JOB_WORKERS": "4", "BG_JOB_RATE_LIMIT": "0.5", "BASE_URL": "http://m.xsw.tw"}))
	if err != nil || cfg.Workers != 4 || cfg.Sources[0] != (config.Source{ID: "xsw", URL: "http://m.xsw.tw", RateLimit: 500 * time.Millisecond}) {
		t.Errorf("cfg = %+v, err = %v", cfg, err)
	}
	for key, val := range map[string]string{
		"BG_JOB_WORKERS": "0", "BG_JOB_RATE_LIMIT": "fast", "BASE_URL": "ftp://x", "BG_JOB_MAX_ATTEMPTS": "0",
		"NATS_REPLICAS": "2", "FETCHER_ID": "a.b", "HTTP_TIMEOUT": "0", "SOURCES": "Bad.Site", "SOURCE_XSW_RATE_LIMIT": "-1",
		"SOURCE_XSW_URL": "m.xsw.tw",
	} {
		_, err := ConfigFromEnv(config.Map(map[string]string{key: val}))
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s=%s: err = %v, want it named", key, val, err)
		}
	}
}

// TestUserAgentMustBeHonest: USER_AGENT must name the project and must not pass for a
// browser; unset, the default (which does both) is used.
func TestUserAgentMustBeHonest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ua string
		ok       bool
	}{
		{"unset", "", true},
		{"the project's with a contact", "xsw-precache/1.0 (+mailto:ops@example.org)", true},
		{"named in capitals", "XSW mirror of example.org (+https://example.org/bot)", true},
		{"anonymous", "curl/8.5.0", false},
		{"a browser's", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36", false},
		{"a browser's naming the project", "Mozilla/5.0 (compatible; xsw-precache/1.0)", false},
		{"a browser's in lower case", "mozilla/5.0 xsw", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ConfigFromEnv(config.Map(map[string]string{"USER_AGENT": tt.ua}))
			if tt.ok && err != nil {
				t.Errorf("USER_AGENT=%q: %v", tt.ua, err)
			}
			if !tt.ok && (err == nil || !strings.Contains(err.Error(), "USER_AGENT")) {
				t.Errorf("USER_AGENT=%q: err = %v, want it refused and named", tt.ua, err)
			}
		})
	}
}

// TestSharedVariablesRefused: the fetcher refuses a bad value of a variable every
// service reads with the same error as the others, the core's.
func TestSharedVariablesRefused(t *testing.T) {
	t.Parallel()
	servicetest.Refusals(t, func(getenv func(string) string) (service.Core, error) {
		cfg, err := ConfigFromEnv(getenv)
		return cfg.Core, err
	})
}

// toyAdapter is an adapter of another site, for the registry: m.xsw.tw's parsers under
// another id.
func toyAdapter() site.Adapter {
	info := xsw.Info()
	info.ID, info.Name, info.DefaultBaseURL = "toy", "Toy", "http://toy.example"
	return site.Adapter{Info: info, New: func(base *url.URL) (site.Source, error) { return toySource{xsw.New(base)}, nil }}
}

type toySource struct{ *xsw.Source }

func (toySource) Info() site.Info { return toyAdapter().Info }

func TestSitesWithoutAdapterAreRefused(t *testing.T) {
	t.Parallel()
	withToy := Builtin()
	if err := withToy.Add(toyAdapter()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		env      map[string]string
		adapters site.Registry
		wantErr  []string // parts of the error; none: valid
	}{
		{name: "built-in", env: map[string]string{"SOURCES": "xsw"}},
		{name: "both built-in", env: map[string]string{"SOURCES": "xsw,czbooks"}},
		{name: "unknown site", env: map[string]string{"SOURCES": "xsw,nosuch"}, wantErr: []string{"SOURCES", `"nosuch"`, "known: [czbooks xsw]"}},
		{name: "unknown default site", env: map[string]string{"SOURCES": "nosuch"}, wantErr: []string{"SOURCES", `"nosuch"`, "known: [czbooks xsw]"}},
		{name: "added adapter", env: map[string]string{"SOURCES": "toy,xsw", "BASE_URL": "http://127.0.0.1:9"}, adapters: withToy},
		{name: "unknown among added", env: map[string]string{"SOURCES": "xsw,nosuch"}, adapters: withToy, wantErr: []string{`"nosuch"`, "known: [czbooks toy xsw]"}},
		{name: "empty registry", env: map[string]string{"SOURCES": "xsw"}, adapters: site.Registry{}, wantErr: []string{`"xsw"`, "known: []"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// ConfigFromEnv leaves adapters to Validate: the caller may add some.
			cfg, err := ConfigFromEnv(config.Map(tt.env))
			if err != nil {
				t.Fatalf("ConfigFromEnv = %v", err)
			}
			cfg.Adapters = tt.adapters
			err = cfg.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Errorf("Validate() = %v", err)
				}
				return
			}
			if !errors.Is(err, site.ErrUnknownSite) {
				t.Fatalf("Validate() = %v, want an unknown site", err)
			}
			for _, part := range tt.wantErr {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("Validate() = %q, want it to name %s", err, part)
				}
			}
			// Run refuses to start with it.
			if err := Run(t.Context(), cfg, slog.New(slog.DiscardHandler)); !errors.Is(err, site.ErrUnknownSite) {
				t.Errorf("Run = %v, want the unknown site", err)
			}
		})
	}
}

func TestBuiltin(t *testing.T) {
	t.Parallel()
	r := Builtin()
	if got := r.Names(); strings.Join(got, " ") != "czbooks xsw" {
		t.Fatalf("Builtin().Names() = %v, want [czbooks xsw]", got)
	}
	// Each call is a registry of its own.
	if err := r.Add(toyAdapter()); err != nil {
		t.Fatal(err)
	}
	if got := Builtin().Names(); len(got) != 2 {
		t.Errorf("a registry added to changed Builtin(): %v", got)
	}
}
