package service_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/logtest"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/platform/service"
)

// TestOnlyTheStreamOwnerUpdates: a release that keeps requests for another age (here
// BG_JOB_MAX_AGE) finds the request stream as the last one made it. A fetcher leaves it
// as it is and warns, naming the stream and what differs; the indexer updates it.
func TestOnlyTheStreamOwnerUpdates(t *testing.T) {
	ns := natstest.Start(t) // requests kept 24h
	maxAge := func() time.Duration {
		t.Helper()
		s, err := ns.JS.Stream(t.Context(), events.StreamRequests)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config.MaxAge
	}
	for _, tc := range []struct {
		spec       service.Spec
		wantMaxAge time.Duration
		wantWarn   bool
	}{
		{fetcherSpec, 24 * time.Hour, true},
		{service.Spec{Name: "gateway"}, 24 * time.Hour, true},
		{service.Spec{Name: service.StreamOwner, HealthVar: "INDEXER_HEALTH_ADDR", HealthDefault: ":8002"}, 12 * time.Hour, false},
	} {
		c, err := service.FromEnv(config.Map(map[string]string{"NATS_URL": ns.URL, "BG_JOB_MAX_AGE": "12h"}), tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		var logs logtest.Buffer
		nc, _, err := c.Connect(t.Context(), slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatalf("%s: %v", tc.spec.Name, err)
		}
		nc.Close()
		if got := maxAge(); got != tc.wantMaxAge {
			t.Errorf("after the %s connected, requests are kept %s, want %s", tc.spec.Name, got, tc.wantMaxAge)
		}
		warned := strings.Contains(logs.String(), "level=WARN") &&
			strings.Contains(logs.String(), "stream="+events.StreamRequests) &&
			strings.Contains(logs.String(), `differs="max_age 24h0m0s, want 12h0m0s"`)
		if warned != tc.wantWarn {
			t.Errorf("%s: warned about the request stream = %v, want %v; logs:\n%s", tc.spec.Name, warned, tc.wantWarn, logs.String())
		}
	}
}
