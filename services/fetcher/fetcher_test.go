package fetcher

import (
	"strings"
	"testing"
	"time"

	"github.com/xswtw/xsw/platform/config"
)

func TestConfigFromEnv(t *testing.T) {
	cfg, err := ConfigFromEnv(config.Map(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Workers != 2 || cfg.RateLimit != 2*time.Second || cfg.BaseURL != "https://m.xsw.tw" || cfg.MaxAttempts != 5 ||
		cfg.DedupWindow != 5*time.Minute || cfg.ShutdownTimeout != 5*time.Second || cfg.InsecureTLS || cfg.FetcherID == "" {
		t.Errorf("defaults = %+v", cfg)
	}
	cfg, err = ConfigFromEnv(config.Map(map[string]string{"BG_JOB_WORKERS": "4", "BG_JOB_RATE_LIMIT": "0.5", "BASE_URL": "http://m.xsw.tw"}))
	if err != nil || cfg.Workers != 4 || cfg.RateLimit != 500*time.Millisecond || cfg.BaseURL != "http://m.xsw.tw" {
		t.Errorf("cfg = %+v, err = %v", cfg, err)
	}
	for key, val := range map[string]string{
		"BG_JOB_WORKERS": "0", "BG_JOB_RATE_LIMIT": "fast", "BASE_URL": "ftp://x", "BG_JOB_MAX_ATTEMPTS": "0",
		"NATS_REPLICAS": "2", "FETCHER_ID": "a.b", "HTTP_TIMEOUT": "0",
	} {
		_, err := ConfigFromEnv(config.Map(map[string]string{key: val}))
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s=%s: err = %v, want it named", key, val, err)
		}
	}
}
