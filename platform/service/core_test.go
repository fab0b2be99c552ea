package service_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/service"
	"github.com/xswtw/xsw/platform/service/servicetest"
)

var fetcherSpec = service.Spec{Name: "fetcher", IDVar: "FETCHER_ID", HealthVar: "FETCHER_HEALTH_ADDR", HealthDefault: ":8001"}

// core reads and validates the core of spec from env.
func core(env map[string]string, spec service.Spec) (service.Core, error) {
	c, err := service.FromEnv(config.Map(env), spec)
	if err != nil {
		return c, err
	}
	return c, c.Validate()
}

func TestFromEnvDefaults(t *testing.T) {
	c, err := core(nil, fetcherSpec)
	if err != nil {
		t.Fatal(err)
	}
	if c.ReplicaID == "" {
		t.Error("no replica id generated")
	}
	want := service.Core{
		Spec: fetcherSpec, NATSURL: "nats://127.0.0.1:4222", NATSReplicas: 1, RequestMaxAge: 24 * time.Hour,
		SyncDedupWindow: 5 * time.Minute, Sources: config.Sources{{ID: "xsw", RateLimit: 2 * time.Second}},
		ShutdownTimeout: 5 * time.Second, ReplicaID: c.ReplicaID, LogLevel: "info", LogFormat: "text", HealthAddr: ":8001",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults\n got %+v\nwant %+v", c, want)
	}
	// A service without a health listener or replica variable reads neither.
	c, err = core(map[string]string{"FETCHER_ID": "f1", "FETCHER_HEALTH_ADDR": ":9"}, service.Spec{Name: "gateway"})
	if err != nil || c.HealthAddr != "" || c.ReplicaID == "f1" {
		t.Errorf("gateway core: health %q, id %q, %v", c.HealthAddr, c.ReplicaID, err)
	}
}

func TestFromEnv(t *testing.T) {
	c, err := core(map[string]string{
		"NATS_URL": "nats://fetcher:pw@n0:4222, tls://n1:4222", "NATS_REPLICAS": "3", "BG_JOB_MAX_AGE": "3600",
		"SYNC_DEDUP_WINDOW": "2h", "SHUTDOWN_TIMEOUT": "1.5", "LOG_LEVEL": "debug", "LOG_FORMAT": "json",
		"FETCHER_ID": "fetcher-7d9c_x1", "FETCHER_HEALTH_ADDR": "127.0.0.1:9001", "SOURCES": "czbooks,xsw",
	}, fetcherSpec)
	if err != nil {
		t.Fatal(err)
	}
	if c.NATSURL != "nats://fetcher:pw@n0:4222, tls://n1:4222" || c.NATSReplicas != 3 || c.RequestMaxAge != time.Hour ||
		c.SyncDedupWindow != 2*time.Hour || c.ShutdownTimeout != 1500*time.Millisecond || c.LogLevel != "debug" ||
		c.LogFormat != "json" || c.ReplicaID != "fetcher-7d9c_x1" || c.HealthAddr != "127.0.0.1:9001" ||
		c.Sources.Default() != "czbooks" {
		t.Errorf("core = %+v", c)
	}
	topo := c.Topology()
	if topo.Replicas != 3 || topo.RequestMaxAge != time.Hour || topo.SyncedTTL != 2*time.Hour {
		t.Errorf("topology = %+v", topo)
	}
}

// TestRules proves each shared variable's rule: its bad values get exactly the error
// servicetest promises every service gives, naming the variable and showing no secret.
func TestRules(t *testing.T) {
	for _, c := range append(append([]servicetest.Case{}, servicetest.Shared...), servicetest.Own(fetcherSpec)...) {
		t.Run(c.Var+"="+c.Value, func(t *testing.T) {
			_, err := core(map[string]string{c.Var: c.Value}, fetcherSpec)
			if err == nil || err.Error() != c.Want {
				t.Errorf("err = %v\nwant %s", err, c.Want)
			}
		})
	}
}

// TestAccepted: the edges of each rule that work are taken.
func TestAccepted(t *testing.T) {
	for _, env := range []map[string]string{
		{"NATS_URL": "nats://a:4222,tls://b:4222, ws://c:80 ,wss://d"},
		{"NATS_URL": "nats://s3cr3t-token@nats:4222"},
		{"NATS_REPLICAS": "3"},
		{"NATS_REPLICAS": "5"},
		{"BG_JOB_MAX_AGE": "0"},
		{"SYNC_DEDUP_WINDOW": "0"},
		{"SHUTDOWN_TIMEOUT": "1ms"},
		{"LOG_LEVEL": "WARN", "LOG_FORMAT": "JSON"},
		{"FETCHER_ID": strings.Repeat("x", 128)},
		{"FETCHER_HEALTH_ADDR": ":0"},
	} {
		if _, err := core(env, fetcherSpec); err != nil {
			t.Errorf("%v: %v", env, err)
		}
	}
}

// TestValidateNamesEveryBadVariable: several bad values are all reported at once.
func TestValidateNamesEveryBadVariable(t *testing.T) {
	_, err := core(map[string]string{"NATS_REPLICAS": "2", "SHUTDOWN_TIMEOUT": "0", "FETCHER_ID": "a.b"}, fetcherSpec)
	for _, name := range []string{"NATS_REPLICAS", "SHUTDOWN_TIMEOUT", "FETCHER_ID"} {
		if err == nil || !strings.Contains(err.Error(), name+":") {
			t.Errorf("err = %v, want it to name %s", err, name)
		}
	}
}

func TestNewReplicaID(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		id := service.NewReplicaID("gateway")
		if seen[id] {
			t.Fatalf("NewReplicaID repeated %q", id)
		}
		seen[id] = true
		c := service.Core{Spec: service.Spec{Name: "gateway"}, NATSURL: service.DefaultNATSURL, NATSReplicas: 1,
			Sources: config.Sources{{ID: "xsw"}}, ShutdownTimeout: time.Second, ReplicaID: id}
		if err := c.Validate(); err != nil {
			t.Errorf("a generated id is refused: %v", err)
		}
	}
}
