package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/xswtw/xsw/buildinfo"
)

func TestRegistriesAreIndependent(t *testing.T) {
	// Two instances in one process (the all-in-one, tests) each get their own registry
	// and may register the same metric names without colliding.
	for range 2 {
		reg, err := NewRegistry()
		if err != nil {
			t.Fatal(err)
		}
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: "xsw_test_things_total", Help: "Things."})
		if err := Register(reg, c); err != nil {
			t.Fatal(err)
		}
		c.Add(3)

		rec := httptest.NewRecorder()
		Handler(reg).ServeHTTP(rec, httptest.NewRequest("GET", Path, nil))
		body, _ := io.ReadAll(rec.Body)
		for _, want := range []string{"xsw_test_things_total 3", "go_goroutines ", "process_start_time_seconds "} {
			if !strings.Contains(string(body), want) {
				t.Errorf("metrics lack %q:\n%s", want, body)
			}
		}
	}
}

func TestRegisterReportsDuplicates(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "xsw_test_dup_total", Help: "Dup."}
	if err := Register(reg, prometheus.NewCounter(opts)); err != nil {
		t.Fatal(err)
	}
	if err := Register(reg, prometheus.NewCounter(opts)); err == nil {
		t.Error("registering a name twice succeeded")
	}
}

// TestBuildInfo registers the build-info metric of two services in one registry, as the
// all-in-one does, and reads both back with this binary's build in their labels.
func TestBuildInfo(t *testing.T) {
	reg, err := NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	if err := Register(reg, BuildInfo("gateway"), BuildInfo("fetcher")); err != nil {
		t.Fatal(err)
	}
	in := buildinfo.Get()
	want := ""
	for _, svc := range []string{"fetcher", "gateway"} {
		want += `xsw_build_info{goversion="` + in.GoVersion + `",revision="` + in.Revision + `",service="` + svc + `",version="` + in.Version + "\"} 1\n"
	}
	expo := "# HELP xsw_build_info The build of this service: always 1, its labels say which build it is.\n# TYPE xsw_build_info gauge\n" + want
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expo), BuildInfoName); err != nil {
		t.Error(err)
	}
	if err := Register(reg, BuildInfo("gateway")); err == nil {
		t.Error("a second build-info metric of one service was registered")
	}
}
