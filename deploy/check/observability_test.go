package check

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/discovery/dns"
	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
	"sigs.k8s.io/yaml"
)

// observabilityProfile is docker-compose.yml's profile of Prometheus and Grafana.
const observabilityProfile = "observability"

// The images of the profile.
const (
	prometheusImage = "prom/prometheus"
	grafanaImage    = "grafana/grafana"
)

// Where the images read their configuration.
const (
	prometheusDefaultConfig = "/etc/prometheus/prometheus.yml"
	prometheusDefaultListen = ":9090"
	grafanaDatasources      = "/etc/grafana/provisioning/datasources"
	grafanaDashboards       = "/etc/grafana/provisioning/dashboards"
)

// dashboardFile is the xsw dashboard.
const dashboardFile = "deploy/grafana/xsw-dashboard.json"

const prometheusModule = "github.com/prometheus/prometheus"

var testedPrometheusOnce = sync.OnceValues(func() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "deploy", "go.mod")
	data, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	f, err := modfile.ParseLax(p, data, nil)
	if err != nil {
		return "", err
	}
	for _, r := range f.Require {
		if r.Mod.Path == prometheusModule {
			return prometheusRelease(r.Mod.Version)
		}
	}
	return "", fmt.Errorf("%s does not require %s", p, prometheusModule)
})

// prometheusRelease maps the Go module's version to the release it is: v0.314.0 is
// Prometheus v3.14.0.
func prometheusRelease(module string) (string, error) {
	parts := strings.Split(strings.TrimPrefix(semver.Canonical(module), "v"), ".")
	if len(parts) != 3 || parts[0] != "0" {
		return "", fmt.Errorf("%s %s: not a v0.MMM.P module version", prometheusModule, module)
	}
	mm, err := strconv.Atoi(parts[1])
	if err != nil || mm < 100 {
		return "", fmt.Errorf("%s %s: not a v0.MMM.P module version", prometheusModule, module)
	}
	return fmt.Sprintf("v%d.%d.%s", mm/100, mm%100, parts[2]), nil
}

// checkPrometheusImage reports a Prometheus image other than the release whose parsers
// the checks load the configuration and the rules with.
func checkPrometheusImage(image string) error {
	want, err := testedPrometheusOnce()
	if err != nil {
		return err
	}
	if tag := imageTag(image); tag != want {
		return fmt.Errorf("image %q: the checks parse the configuration and rules with Prometheus %s (deploy/go.mod); run that release", image, want)
	}
	return nil
}

// checkGrafanaImage reports a Grafana image without a full release tag.
func checkGrafanaImage(image string) error {
	tag := imageTag(image)
	if !semver.IsValid("v"+tag) || strings.Count(tag, ".") != 2 || strings.Contains(tag, "-") {
		return fmt.Errorf("image %q: pin a release (12.x.y), not %q", image, tag)
	}
	return nil
}

// bindSource returns where on this machine a service's container path p is, through its
// bind mounts (the deepest that holds p).
func bindSource(s types.ServiceConfig, p string) (string, bool) {
	best, host := -1, ""
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		t := path.Clean(v.Target)
		if (p == t || strings.HasPrefix(p, t+"/")) && len(t) > best {
			best, host = len(t), filepath.Join(v.Source, filepath.FromSlash(strings.TrimPrefix(p, t)))
		}
	}
	return host, best >= 0
}

// flagValue returns the value of a --name=value or --name value argument, or def.
func flagValue(args []string, name, def string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return def
}

// serviceByImage returns the name of the project's service running image (any tag).
func serviceByImage(p *types.Project, image string) (string, bool) {
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		if repo, _, _ := strings.Cut(p.Services[name].Image, ":"); repo == image {
			return name, true
		}
	}
	return "", false
}

// checkObservability holds the rules for docker-compose.yml's profile observability,
// given the project loaded without profiles (base) and with it (obs): Prometheus and
// Grafana run in the profile only; every bind mount's source exists; Prometheus' own
// loader accepts its configuration, which loads the rule file (alerts, which parses) and
// scrapes each running xsw service by DNS (type A records: every replica) on the port
// it listens on, at platform/metrics' path; Grafana is provisioned with a default
// Prometheus data source on the compose service and with the xsw dashboard (dashboard),
// whose queries use that data source.
func checkObservability(base, obs *types.Project, all map[string]vars, metricsPath, alerts, dashboard string) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, image := range []string{prometheusImage, grafanaImage} {
		if name, ok := serviceByImage(base, image); ok {
			fail("service %s (%s) starts without the profile %s", name, image, observabilityProfile)
		}
		name, ok := serviceByImage(obs, image)
		if !ok {
			fail("the profile %s runs no %s", observabilityProfile, image)
			continue
		}
		if !slices.Contains(obs.Services[name].Profiles, observabilityProfile) {
			fail("service %s is not in the profile %s", name, observabilityProfile)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(obs.Services)) {
		for _, v := range obs.Services[name].Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					fail("service %s: bind mount of %s: %v", name, v.Source, err)
				}
			}
		}
	}
	promName, ok := serviceByImage(obs, prometheusImage)
	if !ok {
		return errors.Join(errs...)
	}
	prom := obs.Services[promName]
	_, promPort, err := net.SplitHostPort(flagValue(prom.Command, "--web.listen-address", prometheusDefaultListen))
	if err != nil {
		fail("service %s: --web.listen-address: %v", promName, err)
	}
	errs = append(errs, checkPrometheusConfig(obs, promName, all, metricsPath, alerts)...)

	if grafName, ok := serviceByImage(obs, grafanaImage); ok {
		errs = append(errs, checkGrafana(obs, grafName, "http://"+net.JoinHostPort(promName, promPort), dashboard)...)
	}
	return errors.Join(errs...)
}

// checkPrometheusConfig loads the compose Prometheus' configuration with Prometheus' own
// loader and holds its rule files and scrape jobs to the project.
func checkPrometheusConfig(obs *types.Project, promName string, all map[string]vars, metricsPath, alerts string) []error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("service %s: "+format, append([]any{promName}, args...)...))
	}
	prom := obs.Services[promName]
	cfgPath := flagValue(prom.Command, "--config.file", prometheusDefaultConfig)
	host, ok := bindSource(prom, containerPath("/prometheus", cfgPath))
	if !ok {
		fail("its configuration %s is not mounted from the repository", cfgPath)
		return errs
	}
	cfg, err := config.LoadFile(host, false, slog.New(slog.DiscardHandler))
	if err != nil {
		fail("%v", err)
		return errs
	}

	// Rule files: relative ones are joined with the configuration's directory, which the
	// loader did with its directory here, the same files; absolute ones are container
	// paths.
	var rules []string
	hostDir := filepath.Dir(host)
	for _, pattern := range cfg.RuleFiles {
		p := pattern
		if !strings.HasPrefix(p, hostDir+string(filepath.Separator)) {
			if p, ok = bindSource(prom, pattern); !ok {
				fail("rule file %s is not mounted from the repository", pattern)
				continue
			}
		}
		m, err := filepath.Glob(p)
		if err != nil || len(m) == 0 {
			fail("rule file %s matches no file", pattern)
		}
		rules = append(rules, m...)
	}
	for _, r := range rules {
		if _, err := parseRules(r); err != nil {
			fail("%v", err)
		}
	}
	if !slices.Contains(rules, alerts) {
		fail("its configuration does not load %s", alertsFile)
	}

	scrapes, err := cfg.GetScrapeConfigs()
	if err != nil {
		fail("%v", err)
		return errs
	}
	for _, name := range slices.Sorted(maps.Keys(obs.Services)) {
		s := obs.Services[name]
		program := serviceOf(s.Image)
		if program == "" || slices.Equal(s.Command, types.ShellCommand{"migrate"}) {
			continue // not a service, or the one-shot migration
		}
		env := map[string]string{}
		for k, v := range s.Environment {
			if v != nil {
				env[k] = *v
			}
		}
		port, err := addrPort(setting(env, all[program], services[program]))
		if err != nil {
			fail("service %s: %s: %v", name, services[program], err)
			continue
		}
		found := false
		for _, sc := range scrapes {
			for _, sd := range sc.ServiceDiscoveryConfigs {
				switch sd := sd.(type) {
				case *dns.SDConfig:
					if !slices.Contains(sd.Names, name) {
						continue
					}
					switch {
					case sd.Type != "A" && sd.Type != "AAAA":
						fail("job %s looks %s up as %s records; compose's DNS answers A records, one per replica", sc.JobName, name, sd.Type)
					case sd.Port != int(port):
						fail("job %s scrapes %s on port %d, but it serves its metrics on %d (%s)", sc.JobName, name, sd.Port, port, services[program])
					case sc.MetricsPath != metricsPath:
						fail("job %s scrapes %s at %s, but it serves its metrics at %s", sc.JobName, name, sc.MetricsPath, metricsPath)
					default:
						found = true
					}
				case discovery.StaticConfig:
					for _, g := range sd {
						for _, t := range g.Targets {
							if h, _, _ := net.SplitHostPort(string(t["__address__"])); h == name {
								fail("job %s scrapes %s as a static target, which finds one replica; use dns_sd_configs", sc.JobName, name)
							}
						}
					}
				}
			}
		}
		if !found {
			fail("scrapes no %s: give it a job with dns_sd_configs of type A for the name %s, port %d, which finds every replica", name, name, port)
		}
	}
	return errs
}

// grafanaDatasource is one data source of a Grafana provisioning file.
type grafanaDatasource struct {
	Name      string `json:"name"`
	UID       string `json:"uid"`
	Type      string `json:"type"`
	Access    string `json:"access"`
	URL       string `json:"url"`
	IsDefault bool   `json:"isDefault"`
	Editable  bool   `json:"editable"`
}

// provisioningFiles reads the YAML files of a Grafana provisioning directory (mounted
// at dir in the service) into T.
func provisioningFiles[T any](s types.ServiceConfig, dir string) ([]T, []error) {
	host, ok := bindSource(s, dir)
	if !ok {
		return nil, []error{fmt.Errorf("%s is not mounted from the repository", dir)}
	}
	entries, err := os.ReadDir(host)
	if err != nil {
		return nil, []error{err}
	}
	var out []T
	var errs []error
	for _, e := range entries {
		if e.IsDir() || (!strings.HasSuffix(e.Name(), ".yaml") && !strings.HasSuffix(e.Name(), ".yml")) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(host, e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var v T
		if err := yaml.UnmarshalStrict(data, &v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", filepath.Join(host, e.Name()), err))
			continue
		}
		out = append(out, v)
	}
	return out, errs
}

// checkGrafana holds Grafana's provisioning to the project: a default Prometheus data
// source at promURL, and a file provider of the xsw dashboard, whose data source
// references resolve to it.
func checkGrafana(obs *types.Project, name, promURL, dashboard string) []error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("service %s: "+format, append([]any{name}, args...)...))
	}
	s := obs.Services[name]
	dsFiles, ferrs := provisioningFiles[struct {
		APIVersion  int                 `json:"apiVersion"`
		Datasources []grafanaDatasource `json:"datasources"`
	}](s, grafanaDatasources)
	for _, err := range ferrs {
		fail("%v", err)
	}
	var prom *grafanaDatasource
	var uids []string
	for _, f := range dsFiles {
		for _, ds := range f.Datasources {
			uids = append(uids, ds.UID)
			if ds.Type == "prometheus" && ds.IsDefault {
				prom = &ds
			}
		}
	}
	switch {
	case prom == nil:
		fail("no default Prometheus data source is provisioned (%s)", grafanaDatasources)
	case strings.TrimSuffix(prom.URL, "/") != promURL:
		fail("the data source %s asks %s, but Prometheus is %s", prom.Name, prom.URL, promURL)
	}

	provFiles, ferrs := provisioningFiles[struct {
		APIVersion int `json:"apiVersion"`
		Providers  []struct {
			Name            string `json:"name"`
			Folder          string `json:"folder"`
			Type            string `json:"type"`
			DisableDeletion bool   `json:"disableDeletion"`
			AllowUIUpdates  bool   `json:"allowUiUpdates"`
			Options         struct {
				Path string `json:"path"`
			} `json:"options"`
		} `json:"providers"`
	}](s, grafanaDashboards)
	for _, err := range ferrs {
		fail("%v", err)
	}
	provided := false
	for _, f := range provFiles {
		for _, p := range f.Providers {
			if p.Type != "file" {
				continue
			}
			host, ok := bindSource(s, path.Join(p.Options.Path, filepath.Base(dashboard)))
			if !ok {
				continue
			}
			if same, err := sameFile(host, dashboard); err == nil && same {
				provided = true
			}
		}
	}
	if !provided {
		fail("no dashboard provider serves %s (a file provider whose path holds it, mounted from the repository)", dashboardFile)
	}
	if err := checkDashboardDatasources(dashboard, uids); err != nil {
		fail("%v", err)
	}
	if _, ok := s.DependsOn[promNameOf(promURL)]; !ok {
		fail("does not depend on %s", promNameOf(promURL))
	}
	return errs
}

func promNameOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

func sameFile(a, b string) (bool, error) {
	ia, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	ib, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(ia, ib), nil
}

// checkDashboardDatasources reports a data source reference of the dashboard that is
// neither one of uids nor its own variable of type datasource for Prometheus.
func checkDashboardDatasources(dashboard string, uids []string) error {
	data, err := os.ReadFile(dashboard)
	if err != nil {
		return err
	}
	var dash map[string]any
	if err := json.Unmarshal(data, &dash); err != nil {
		return fmt.Errorf("%s: %w", dashboard, err)
	}
	vars := map[string]bool{} // the dashboard's variables of type datasource, for Prometheus
	if tpl, ok := dash["templating"].(map[string]any); ok {
		list, _ := tpl["list"].([]any)
		for _, v := range list {
			if v, ok := v.(map[string]any); ok && v["type"] == "datasource" && v["query"] == "prometheus" {
				name, _ := v["name"].(string)
				vars["$"+name], vars["${"+name+"}"] = true, true
			}
		}
	}
	var errs []error
	var walk func(node any, where string)
	walk = func(node any, where string) {
		switch n := node.(type) {
		case map[string]any:
			for k, v := range n {
				if k == "datasource" {
					uid := ""
					switch ds := v.(type) {
					case string:
						uid = ds
					case map[string]any:
						uid, _ = ds["uid"].(string)
						if t, _ := ds["type"].(string); t != "" && t != "prometheus" && t != "grafana" && t != "datasource" {
							errs = append(errs, fmt.Errorf("%s: %s: a %s data source", dashboardFile, where, t))
						}
					}
					if uid != "" && !vars[uid] && !slices.Contains(uids, uid) && uid != "-- Grafana --" && uid != "grafana" {
						errs = append(errs, fmt.Errorf("%s: %s: data source %q is neither provisioned nor a Prometheus variable of the dashboard", dashboardFile, where, uid))
					}
					continue
				}
				walk(v, where+"."+k)
			}
		case []any:
			for i, v := range n {
				walk(v, fmt.Sprintf("%s[%d]", where, i))
			}
		}
	}
	walk(dash, "$")
	return errors.Join(errs...)
}

func composeProjects(t *testing.T, root string) (base, obs *types.Project) {
	t.Helper()
	base, err := loadCompose(t.Context(), root, composeEnv)
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	obs, err = loadCompose(t.Context(), root, composeEnv, observabilityProfile)
	if err != nil {
		t.Fatalf("load docker-compose.yml with the profile %s: %v", observabilityProfile, err)
	}
	return base, obs
}

func TestComposeObservability(t *testing.T) {
	root := mustRoot(t)
	base, obs := composeProjects(t, root)
	err := checkObservability(base, obs, serviceVars(t), metricsPath(t), filepath.Join(root, alertsFile), filepath.Join(root, dashboardFile))
	for _, e := range unwrap(err) {
		if e != nil {
			t.Error(e)
		}
	}
}

func TestPrometheusRelease(t *testing.T) {
	for in, want := range map[string]string{"v0.314.0": "v3.14.0", "v0.300.1": "v3.0.1", "v0.401.2": "v4.1.2"} {
		if got, err := prometheusRelease(in); err != nil || got != want {
			t.Errorf("prometheusRelease(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := prometheusRelease("v2.53.0"); err == nil {
		t.Errorf("prometheusRelease(v2.53.0): no error")
	}
}

// composeCopy copies docker-compose.yml and the files it mounts into a directory, edits
// them (file -> old -> new, each old present), and loads the copy without and with the
// profile.
func composeCopy(t *testing.T, edits map[string][2]string) (dir string, base, obs *types.Project) {
	t.Helper()
	root := mustRoot(t)
	dir = t.TempDir()
	for _, rel := range []string{"docker-compose.yml", "deploy/prometheus", "deploy/grafana", "deploy/k8s/base/config"} {
		src := filepath.Join(root, rel)
		info, err := os.Stat(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, rel)
		if info.IsDir() {
			err = os.CopyFS(dst, os.DirFS(src))
		} else {
			err = copyFile(src, dst, info.Mode())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for rel, e := range edits {
		p := filepath.Join(dir, rel)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), e[0]) {
			t.Fatalf("%s does not contain %q any more: update the test", rel, e[0])
		}
		if err := os.WriteFile(p, []byte(strings.Replace(string(data), e[0], e[1], 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base, obs = composeProjects(t, dir)
	return dir, base, obs
}

func TestComposeObservabilityCatches(t *testing.T) {
	v, mp := serviceVars(t), metricsPath(t)
	check := func(dir string, base, obs *types.Project) error {
		return checkObservability(base, obs, v, mp, filepath.Join(dir, alertsFile), filepath.Join(dir, dashboardFile))
	}
	if dir, base, obs := composeCopy(t, nil); check(dir, base, obs) != nil {
		t.Fatalf("the unbroken copy fails already: %v", check(dir, base, obs))
	}
	const promYML, compose = "deploy/prometheus/prometheus.yml", "docker-compose.yml"
	tests := []struct {
		name, file, old, new, want string
	}{
		{"Prometheus without the profile", compose, "    image: prom/prometheus:v3.14.0\n    profiles: [observability]\n", "    image: prom/prometheus:v3.14.0\n",
			"service prometheus (prom/prometheus) starts without the profile observability"},
		{"provisioning file missing", compose, "./deploy/grafana/provisioning/datasources:", "./deploy/grafana/provisioning/datasource:", "bind mount of"},
		{"misspelt setting", promYML, "  scrape_interval: 15s", "  scrape_intervall: 15s", "field scrape_intervall not found"},
		{"one replica found", promYML, "    dns_sd_configs:\n      - names: [fetcher]\n        type: A\n        port: 8001\n        refresh_interval: 30s\n",
			"    static_configs:\n      - targets: [\"fetcher:8001\"]\n", "job fetcher scrapes fetcher as a static target"},
		{"SRV records", promYML, "      - names: [gateway]\n        type: A\n", "      - names: [gateway]\n        type: SRV\n", "looks gateway up as SRV records"},
		{"wrong port", promYML, "port: 8002", "port: 8000", "job indexer scrapes indexer on port 8000, but it serves its metrics on 8002"},
		{"wrong path", promYML, "  - job_name: gateway\n    metrics_path: /metrics", "  - job_name: gateway\n    metrics_path: /metric", "at /metric, but"},
		{"service not scraped", promYML, "      - names: [indexer]", "      - names: [indexers]", "scrapes no indexer"},
		{"rules not loaded", promYML, "  - alerts.yaml", "  - alert.yaml", "rule file"},
		{"broken rule", alertsFile, "for: 10m", "for: 10 minutes", `unknown unit " minutes"`},
		{"data source elsewhere", "deploy/grafana/provisioning/datasources/prometheus.yaml", "http://prometheus:9090", "http://prometheus:9091", "asks http://prometheus:9091, but Prometheus is http://prometheus:9090"},
		{"dashboard not provisioned", "deploy/grafana/provisioning/dashboards/xsw.yaml", "path: /etc/grafana/dashboards", "path: /var/lib/grafana/dashboards", "no dashboard provider serves"},
		{"dashboard on another data source", dashboardFile, `"uid": "${datasource}"`, `"uid": "grafanacloud-prom"`, `data source "grafanacloud-prom"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, base, obs := composeCopy(t, map[string][2]string{tt.file: {tt.old, tt.new}})
			wantError(t, check(dir, base, obs), tt.want)
		})
	}

	// The profile's services under the compose rules.
	root, nats := mustRoot(t), embeddedNATS(t)
	for _, tt := range []struct {
		name    string
		breakIt func(p *types.Project)
		want    string
	}{
		{"Prometheus release drift", func(p *types.Project) {
			s := p.Services["prometheus"]
			s.Image = "prom/prometheus:v3.13.0"
			p.Services["prometheus"] = s
		}, `service prometheus: image "prom/prometheus:v3.13.0": the checks parse the configuration and rules with Prometheus v3.14.0`},
		{"floating Grafana", func(p *types.Project) {
			s := p.Services["grafana"]
			s.Image = "grafana/grafana:latest"
			p.Services["grafana"] = s
		}, `service grafana: image "grafana/grafana:latest": pin a release`},
		{"Grafana unchecked", func(p *types.Project) {
			s := p.Services["grafana"]
			s.HealthCheck = nil
			p.Services["grafana"] = s
		}, "service grafana: no health check"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, obs := composeProjects(t, root)
			if err := checkCompose(root, obs, v, nats); err != nil {
				t.Fatalf("the unbroken compose file fails already: %v", err)
			}
			tt.breakIt(obs)
			wantError(t, checkCompose(root, obs, v, nats), tt.want)
		})
	}
}
