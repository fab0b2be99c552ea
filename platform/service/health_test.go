package service_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/xswtw/xsw/buildinfo"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/logtest"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/platform/service"
	"github.com/xswtw/xsw/platform/testkit"
)

// get returns the status and body of GET url (0 when it cannot connect).
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHealth connects a core to a real JetStream server, serves its health listener,
// and follows /readyz through the server's shutdown; /metrics carries the build.
func TestHealth(t *testing.T) {
	ns := natstest.Start(t)
	c, err := service.FromEnv(config.Map(map[string]string{"NATS_URL": ns.URL, "FETCHER_HEALTH_ADDR": "127.0.0.1:0", "FETCHER_ID": "f1"}), fetcherSpec)
	if err != nil {
		t.Fatal(err)
	}
	nc, js, err := c.Connect(t.Context(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if nc.Opts.Name != "xsw-fetcher-f1" {
		t.Errorf("connection name %q, want xsw-fetcher-f1", nc.Opts.Name)
	}
	if _, err := js.Stream(t.Context(), events.StreamRequests); err != nil {
		t.Errorf("the streams are not provisioned: %v", err)
	}
	reg, err := c.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := c.ListenHealth()
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	var logs logtest.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- service.ServeHealth(ctx, ln, service.NATSReady(nc), reg, slog.New(slog.NewTextHandler(&logs, nil)))
	}()

	for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ready\n"} {
		if code, body := get(t, base+path); code != http.StatusOK || body != want {
			t.Errorf("GET %s = %d %q, want 200 %q", path, code, body, want)
		}
	}
	in := buildinfo.Get()
	_, body := get(t, base+"/metrics")
	if want := `xsw_build_info{goversion="` + in.GoVersion + `",revision="` + in.Revision + `",service="fetcher",version="` + in.Version + `"} 1`; !strings.Contains(body, want) {
		t.Errorf("metrics lack %s:\n%s", want, body)
	}

	ns.Shutdown()
	testkit.Eventually(t, 10*time.Second, "/readyz 503 with NATS gone", func() bool {
		code, body := get(t, base+"/readyz")
		return code == http.StatusServiceUnavailable && body == "not ready\n"
	})
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz with NATS gone: %d, want 200", code)
	}
	if !strings.Contains(logs.String(), "not ready") || !strings.Contains(logs.String(), "nats") {
		t.Errorf("the reason is not logged:\n%s", logs.String())
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeHealth = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeHealth did not return after its context ended")
	}
	if code, _ := get(t, base+"/healthz"); code != 0 {
		t.Errorf("the listener still answers after ServeHealth returned: %d", code)
	}
}

// TestListenHealthNamesTheVariable: an address taken is reported under its variable.
func TestListenHealthNamesTheVariable(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	c := service.Core{Spec: fetcherSpec, HealthAddr: taken.Addr().String()}
	if _, err := c.ListenHealth(); err == nil || !strings.HasPrefix(err.Error(), "FETCHER_HEALTH_ADDR: ") {
		t.Errorf("ListenHealth on a taken address = %v, want an error naming FETCHER_HEALTH_ADDR", err)
	}
}

// TestConnectUnreachable: provisioning against no server fails within its bound, the
// error naming NATS without its password.
func TestConnectUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := service.Core{Spec: fetcherSpec, NATSURL: "nats://fetcher:s3cret@" + addr, NATSReplicas: 1, ReplicaID: "f1"}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, _, err = c.Connect(ctx, slog.New(slog.DiscardHandler))
	if err == nil || !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "nats") {
		t.Fatalf("Connect to nowhere = %v", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error shows the password: %v", err)
	}
}

// TestMetricsShared: two services' cores register their build-info metric in one
// registry, as the all-in-one's parts do; a core with none gets a registry of its own.
func TestMetricsShared(t *testing.T) {
	own, err := service.Core{Spec: service.Spec{Name: "indexer"}}.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	shared, err := service.Core{Spec: service.Spec{Name: "gateway"}, Registry: own}.Metrics()
	if err != nil || shared != own {
		t.Fatalf("Metrics with a registry = %p, %v; want that registry", shared, err)
	}
	mfs, err := own.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var services []string
	for _, mf := range mfs {
		if mf.GetName() == "xsw_build_info" {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "service" {
						services = append(services, l.GetValue())
					}
				}
			}
		}
	}
	if strings.Join(services, ",") != "gateway,indexer" {
		t.Errorf("xsw_build_info services %v, want gateway and indexer", services)
	}
	if _, err := (service.Core{Spec: service.Spec{Name: "gateway"}, Registry: own}).Metrics(); err == nil {
		t.Error("a second gateway registered its build-info metric in the same registry")
	}
}
