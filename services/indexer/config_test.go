package indexer_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/database"
	"github.com/xswtw/xsw/platform/service"
	"github.com/xswtw/xsw/platform/service/servicetest"
	"github.com/xswtw/xsw/services/indexer"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := indexer.ConfigFromEnv(config.Map(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := indexer.Config{
		Core: service.Core{
			Spec:            service.Spec{Name: "indexer", IDVar: "INDEXER_ID", HealthVar: "INDEXER_HEALTH_ADDR", HealthDefault: ":8002"},
			NATSURL:         "nats://127.0.0.1:4222",
			NATSReplicas:    1,
			RequestMaxAge:   24 * time.Hour,
			SyncDedupWindow: 5 * time.Minute,
			Sources:         config.Sources{{ID: "xsw", RateLimit: 2 * time.Second}},
			ShutdownTimeout: 5 * time.Second,
			LogLevel:        "info",
			LogFormat:       "text",
			HealthAddr:      ":8002",
		},
		DatabaseURL:             database.DefaultURL,
		BatchSize:               256,
		Writers:                 4,
		HistoryRetention:        7 * 24 * time.Hour,
		RefreshInterval:         6 * time.Hour,
		RefreshFinishedInterval: 7 * 24 * time.Hour,
		RefreshBudgetPerHour:    120,
		WebhookQueueThreshold:   1000,
	}
	if cfg.ReplicaID == "" {
		t.Error("no default INDEXER_ID")
	}
	want.ReplicaID = cfg.ReplicaID
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	cfg, err := indexer.ConfigFromEnv(config.Map(map[string]string{
		"DATABASE_URL":          "postgres://u:p@db:5432/xsw",
		"NATS_URL":              "nats://nats:4222",
		"INDEXER_BATCH_SIZE":    "64",
		"INDEXER_WRITERS":       "1",
		"JOB_HISTORY_RETENTION": "0",
		"INDEXER_HEALTH_ADDR":   "127.0.0.1:9000",
		"BG_JOB_MAX_AGE":        "3600",
		"SYNC_DEDUP_WINDOW":     "2h",
		"SHUTDOWN_TIMEOUT":      "1.5",
		"LOG_LEVEL":             "debug",
		"LOG_FORMAT":            "json",
		"SOURCES":               "czbooks, xsw",
		"BG_JOB_RATE_LIMIT":     "3",
		"SOURCE_XSW_RATE_LIMIT": "5",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if want := (config.Sources{{ID: "czbooks", RateLimit: 3 * time.Second}, {ID: "xsw", RateLimit: 5 * time.Second}}); !reflect.DeepEqual(cfg.Sources, want) {
		t.Errorf("sources %+v, want %+v", cfg.Sources, want)
	}
	if cfg.DatabaseURL != "postgres://u:p@db:5432/xsw" || cfg.NATSURL != "nats://nats:4222" || cfg.BatchSize != 64 || cfg.Writers != 1 ||
		cfg.HistoryRetention != 0 || cfg.HealthAddr != "127.0.0.1:9000" || cfg.RequestMaxAge != time.Hour ||
		cfg.SyncDedupWindow != 2*time.Hour || cfg.ShutdownTimeout != 1500*time.Millisecond ||
		cfg.LogLevel != "debug" || cfg.LogFormat != "json" {
		t.Errorf("config %+v", cfg)
	}
}

func TestConfigBadValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key, value string
	}{
		{"INDEXER_BATCH_SIZE", "many"},
		{"INDEXER_BATCH_SIZE", "0"},
		{"INDEXER_BATCH_SIZE", "5000"},
		{"INDEXER_WRITERS", "0"},
		{"INDEXER_WRITERS", "17"},
		{"JOB_HISTORY_RETENTION", "a week"},
		{"JOB_HISTORY_RETENTION", "-1h"},
		{"BG_JOB_MAX_AGE", "-5"},
		{"SYNC_DEDUP_WINDOW", "soon"},
		{"SHUTDOWN_TIMEOUT", "0"},
		{"INDEXER_HEALTH_ADDR", "8002"},
		{"DATABASE_URL", "postgres://host:notaport/db"},
		{"LOG_LEVEL", "loud"},
		{"LOG_FORMAT", "xml"},
		{"SOURCES", "Xsw!"},
		{"SOURCES", "xsw,xsw"},
		{"SOURCES", " , "},
		{"SOURCE_XSW_RATE_LIMIT", "-1"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			_, err := indexer.ConfigFromEnv(config.Map(map[string]string{tt.key: tt.value}))
			if err == nil || !strings.Contains(err.Error(), tt.key) {
				t.Errorf("err = %v, want one naming %s", err, tt.key)
			}
		})
	}
}

// TestSharedVariablesRefused: the indexer refuses a bad value of a variable every
// service reads with the same error as the others, the core's.
func TestSharedVariablesRefused(t *testing.T) {
	t.Parallel()
	servicetest.Refusals(t, func(getenv func(string) string) (service.Core, error) {
		cfg, err := indexer.ConfigFromEnv(getenv)
		return cfg.Core, err
	})
}
