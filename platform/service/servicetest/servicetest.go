// Package servicetest holds the bad values of the variables every service shares, with
// the error the core gives each, so that each service's tests can show it refuses them
// the same way (Refusals) and the core's tests can prove each rule.
package servicetest

import (
	"strings"
	"testing"

	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/service"
)

// Case is one bad value of a shared variable and the error it gets.
type Case struct {
	// Var and Value make the environment of the case (Var alone is set).
	Var, Value string
	// Want is the error's text: it names Var, and shows no secret.
	Want string
}

// Shared are the bad values of the variables every service reads, one or more per rule.
var Shared = []Case{
	{"NATS_URL", "http://127.0.0.1:4222", `NATS_URL: want comma-separated nats://, tls://, ws:// or wss:// URLs with a host, got "http://127.0.0.1:4222"`},
	{"NATS_URL", "127.0.0.1:4222", `NATS_URL: want comma-separated nats://, tls://, ws:// or wss:// URLs with a host, got "127.0.0.1:4222"`},
	{"NATS_URL", "nats://gateway:s3cret@nats:4222,nats://", `NATS_URL: want comma-separated nats://, tls://, ws:// or wss:// URLs with a host, got "nats://gateway:xxxxx@nats:4222,nats://"`},
	{"NATS_REPLICAS", "2", `NATS_REPLICAS: want 1, 3 or 5, got 2`},
	{"NATS_REPLICAS", "three", `NATS_REPLICAS="three": want an integer`},
	{"BG_JOB_MAX_AGE", "-1h", `BG_JOB_MAX_AGE: want 0 (no limit) or more, got -1h0m0s`},
	{"BG_JOB_MAX_AGE", "forever", `BG_JOB_MAX_AGE="forever": want a duration ("30s", "5m") or a number of seconds`},
	{"SYNC_DEDUP_WINDOW", "-5m", `SYNC_DEDUP_WINDOW: want 0 (off) or more, got -5m0s`},
	{"SYNC_DEDUP_WINDOW", "soon", `SYNC_DEDUP_WINDOW="soon": want a duration ("30s", "5m") or a number of seconds`},
	{"SHUTDOWN_TIMEOUT", "0", `SHUTDOWN_TIMEOUT: want more than 0, got 0s`},
	{"SHUTDOWN_TIMEOUT", "-2s", `SHUTDOWN_TIMEOUT: want more than 0, got -2s`},
	{"SHUTDOWN_TIMEOUT", "never", `SHUTDOWN_TIMEOUT="never": want a duration ("30s", "5m") or a number of seconds`},
	{"LOG_LEVEL", "loud", `LOG_LEVEL="loud": want debug, info, warn or error`},
	{"LOG_FORMAT", "xml", `LOG_FORMAT="xml": want text or json`},
	{"SOURCES", "xsw,Bad.Site", `SOURCES="bad.site": want site ids of a lowercase letter then letters and digits`},
	{"BASE_URL", "ftp://reader:s3cret@m.xsw.tw", `SOURCE_XSW_URL (or BASE_URL): want an http(s) URL with a host`},
	{"SOURCE_XSW_RATE_LIMIT", "-1", `SOURCE_XSW_RATE_LIMIT: want seconds >= 0, got -1s`},
	{"BG_JOB_RATE_LIMIT", "fast", `BG_JOB_RATE_LIMIT="fast": want a duration ("30s", "5m") or a number of seconds`},
}

// Own are the bad values of the variables spec names for its service (its replica id,
// its health listener), with the error the core gives each.
func Own(spec service.Spec) []Case {
	var out []Case
	if spec.IDVar != "" {
		for _, v := range []string{"a.b", "fetcher 1", "x>", strings.Repeat("x", 129)} {
			out = append(out, Case{spec.IDVar, v,
				spec.IDVar + `: want 1 to 128 letters, digits, '-' or '_' (it names NATS keys and subjects), got "` + v + `"`})
		}
	}
	if spec.HealthVar != "" {
		out = append(out, Case{spec.HealthVar, "8001", spec.HealthVar + `: want host:port or :port, got "8001"`})
	}
	return out
}

// Refusals checks that a service refuses every bad value of Shared and of Own with the
// core's error. fromEnv is the service's ConfigFromEnv, returning the core of its Config;
// with an empty environment it must succeed (its Spec tells Own what to try).
func Refusals(t *testing.T, fromEnv func(getenv func(string) string) (service.Core, error)) {
	t.Helper()
	core, err := fromEnv(config.Map(nil))
	if err != nil {
		t.Fatalf("the defaults are refused: %v", err)
	}
	for _, c := range append(append([]Case{}, Shared...), Own(core.Spec)...) {
		t.Run(c.Var+"="+c.Value, func(t *testing.T) {
			_, err := fromEnv(config.Map(map[string]string{c.Var: c.Value}))
			if err == nil || !strings.Contains(err.Error(), c.Want) {
				t.Errorf("%s=%q: err = %v\nwant the core's %q", c.Var, c.Value, err, c.Want)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("%s: the error shows the password: %v", c.Var, err)
			}
		})
	}
}
