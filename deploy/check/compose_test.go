package check

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// composeEnv is the environment docker compose would run with: the file requires
// XSW_ADMIN_TOKEN (${XSW_ADMIN_TOKEN:?...}) and defaults the rest.
var composeEnv = map[string]string{"XSW_ADMIN_TOKEN": "test-token"}

// loadCompose loads docker-compose.yml with compose-spec's loader, which interpolates,
// validates against the compose specification's schema and normalises, with the
// services of profiles as well as those of none.
func loadCompose(ctx context.Context, root string, env map[string]string, profiles ...string) (*types.Project, error) {
	return loader.LoadWithContext(ctx, types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml")}},
		Environment: env,
	}, loader.WithProfiles(profiles))
}

// checkCompose holds the rules for docker-compose.yml: NATS with JetStream on a volume
// and Postgres on a volume, both health-checked; the migration as a one-shot `indexer
// migrate` that the database users wait for; every xsw service built from its
// Dockerfile, given only variables it reads and the same sites as the others (each
// built into the fetcher), health-checked on its /readyz with the probe its image
// carries, restarted, hardened, and given time to drain; a fetcher given a memory limit
// fits the pages it may hold in it (memory_test.go); two fetchers.
func checkCompose(root string, p *types.Project, all map[string]vars, embeddedNATS string) error {
	var errs []error
	fail := func(svc, format string, args ...any) {
		errs = append(errs, fmt.Errorf("service %s: "+format, append([]any{svc}, args...)...))
	}
	images := map[string]*dockerfile{}
	bySites := map[string][]string{} // the sites in force: the services given them
	var migrations []string          // the one-shot services running `migrate`
	for name, s := range p.Services {
		if slices.Equal(s.Command, types.ShellCommand{"migrate"}) {
			migrations = append(migrations, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		s := p.Services[name]
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeVolume && v.Source != "" {
				if _, ok := p.Volumes[v.Source]; !ok {
					fail(name, "volume %s is not declared", v.Source)
				}
			}
		}
		program := ""
		if s.Build != nil {
			rel := path.Clean(filepath.ToSlash(s.Build.Dockerfile))
			ctx, _ := filepath.Rel(root, s.Build.Context)
			if ctx != "." {
				fail(name, "build context %s: the Dockerfiles build from the repository root", ctx)
			}
			args := map[string]string{}
			for k, v := range s.Build.Args {
				if v != nil {
					args[k] = *v
				}
			}
			d, err := parseDockerfile(root, rel, args)
			if err != nil {
				fail(name, "%v", err)
				continue
			}
			images[name] = d
			program = d.program
			for _, k := range slices.Sorted(maps.Keys(args)) {
				if !slices.Contains(d.declared, k) {
					fail(name, "build argument %s: %s declares no such ARG (Docker ignores it)", k, rel)
				}
			}
			if svc := serviceOf(s.Image); svc != "" && svc != program {
				fail(name, "image %s is built from %s, which runs %q", s.Image, d, program)
			}
		} else {
			program = serviceOf(s.Image)
		}

		if program == "" {
			errs = append(errs, checkComposeInfra(name, s, embeddedNATS)...)
			continue
		}
		v := all[program]
		env := map[string]string{}
		for k, val := range s.Environment {
			if !v.allows(k) {
				fail(name, "%s is not a variable %s reads (it reads %v)", k, program, v.names())
			}
			if val != nil {
				env[k] = *val
			}
		}
		if s.User != "" {
			uid, _, _ := strings.Cut(s.User, ":")
			if uid == "0" || uid == "root" {
				fail(name, "runs as root")
			}
		}
		if !s.ReadOnly {
			fail(name, "read_only is not set (the Kubernetes manifests use a read-only root filesystem)")
		}
		if !slices.Contains(s.CapDrop, "ALL") {
			fail(name, "cap_drop does not drop ALL")
		}

		sites, siteErrs := checkSites(env, v, !slices.Contains(migrations, name))
		for _, err := range siteErrs {
			fail(name, "%v", err)
		}
		if slices.Contains(migrations, name) {
			if program != "indexer" {
				fail(name, "runs migrate, but is not the indexer")
			}
			if s.Restart != types.RestartPolicyNo && s.Restart != types.RestartPolicyOnFailure && s.Restart != "" {
				fail(name, "a one-shot migration restarts %q", s.Restart)
			}
			if !dependsOn(s, "postgres", types.ServiceConditionHealthy) {
				fail(name, "does not wait for a healthy postgres")
			}
			continue
		}

		if sites != "" {
			bySites[sites] = append(bySites[sites], "service "+name)
		}
		if program == "fetcher" {
			for _, err := range checkAdapters(sites) {
				fail(name, "%v", err)
			}
			if lim := composeMemLimit(s); lim > 0 {
				if err := checkFetcherMemory(env, sites, "the memory limit "+inMiB(lim), lim); err != nil {
					fail(name, "%v", err)
				}
			}
		}
		switch s.Restart {
		case types.RestartPolicyAlways, types.RestartPolicyUnlessStopped, types.RestartPolicyOnFailure:
		default:
			fail(name, "restart policy %q; a service restarts", s.Restart)
		}
		if !dependsOn(s, "nats", types.ServiceConditionHealthy) {
			fail(name, "does not wait for a healthy nats")
		}
		if v.allows("DATABASE_URL") && !slices.ContainsFunc(migrations, func(m string) bool { return dependsOn(s, m, types.ServiceConditionCompletedSuccessfully) }) {
			fail(name, "reads DATABASE_URL but does not wait for the migration to complete")
		}
		if sd, ok := env["SHUTDOWN_TIMEOUT"]; ok {
			d, err := parseDuration(sd)
			grace := 10 * time.Second // Docker's default
			if s.StopGracePeriod != nil {
				grace = time.Duration(*s.StopGracePeriod)
			}
			if err != nil || grace <= d {
				fail(name, "stop_grace_period (%s) must exceed SHUTDOWN_TIMEOUT (%s) to drain", grace, sd)
			}
		}
		if got := setting(env, v, "NATS_REPLICAS"); got != "1" {
			fail(name, "NATS_REPLICAS=%q, but compose runs one NATS server", got)
		}

		hc := s.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 3 || hc.Test[0] != "CMD" {
			fail(name, "no exec-form health check (the image has no shell)")
			continue
		}
		if d := images[name]; d != nil && !slices.Contains(d.files(), hc.Test[1]) {
			fail(name, "the health check runs %s, which %s does not put in the image", hc.Test[1], d.rel)
		}
		u, err := url.Parse(hc.Test[len(hc.Test)-1])
		want, perr := addrPort(setting(env, v, services[program]))
		switch {
		case err != nil || perr != nil:
			fail(name, "health check %q or %s: %v %v", hc.Test, services[program], err, perr)
		case u.Path != "/readyz":
			fail(name, "the health check asks %s, want /readyz", u.Path)
		case u.Port() != fmt.Sprint(want):
			fail(name, "the health check asks port %s, but %s listens on %d (%s)", u.Port(), program, want, services[program])
		}
	}
	if err := sameSites(bySites); err != nil {
		errs = append(errs, err)
	}
	if len(migrations) != 1 {
		errs = append(errs, fmt.Errorf("%d services run `indexer migrate`, want one", len(migrations)))
	}
	if f, ok := p.Services["fetcher"]; !ok || f.GetScale() != 2 {
		errs = append(errs, errors.New("the fetchers do not run two replicas"))
	}
	return errors.Join(errs...)
}

// composeMemLimit returns a service's memory limit in bytes, the lower of mem_limit and
// deploy.resources.limits.memory; 0 when it has none.
func composeMemLimit(s types.ServiceConfig) int64 {
	lim := int64(s.MemLimit)
	if s.Deploy != nil && s.Deploy.Resources.Limits != nil {
		if d := int64(s.Deploy.Resources.Limits.MemoryBytes); d > 0 && (lim <= 0 || d < lim) {
			lim = d
		}
	}
	return lim
}

// checkComposeInfra holds the rules for the services other than xsw's: NATS, Postgres,
// and the profile observability's Prometheus and Grafana.
func checkComposeInfra(name string, s types.ServiceConfig, embeddedNATS string) []error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("service %s: "+format, append([]any{name}, args...)...))
	}
	if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) == 0 {
		fail("no health check")
	}
	if s.Restart == "" || s.Restart == types.RestartPolicyNo {
		fail("restart policy %q", s.Restart)
	}
	if !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Type == types.VolumeTypeVolume }) {
		fail("keeps its data in no volume")
	}
	switch {
	case strings.HasPrefix(s.Image, "nats:"):
		if err := checkNATSImage(s.Image, embeddedNATS); err != nil {
			fail("%v", err)
		}
		if !slices.ContainsFunc(s.Command, func(a string) bool { return a == "-js" || a == "--jetstream" }) {
			fail("JetStream is not enabled (--jetstream)")
		}
		if i := slices.IndexFunc(s.Command, func(a string) bool { return a == "-sd" || a == "--store_dir" }); i < 0 || i+1 >= len(s.Command) ||
			!slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == s.Command[i+1] }) {
			fail("the JetStream store (--store_dir) is not on a volume")
		}
	case strings.HasPrefix(s.Image, "postgres:"):
		if imageTag(s.Image) == "" || imageTag(s.Image) == "latest" {
			fail("image %q has no pinned tag", s.Image)
		}
	case strings.HasPrefix(s.Image, prometheusImage+":"):
		if err := checkPrometheusImage(s.Image); err != nil {
			fail("%v", err)
		}
	case strings.HasPrefix(s.Image, grafanaImage+":"):
		if err := checkGrafanaImage(s.Image); err != nil {
			fail("%v", err)
		}
	default:
		fail("image %q is neither an xsw service, NATS, Postgres, Prometheus nor Grafana", s.Image)
	}
	return errs
}

func dependsOn(s types.ServiceConfig, on, condition string) bool {
	d, ok := s.DependsOn[on]
	return ok && d.Condition == condition
}

func composeProject(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadCompose(t.Context(), mustRoot(t), composeEnv)
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return p
}

func TestCompose(t *testing.T) {
	root := mustRoot(t)
	base, obs := composeProjects(t, root)
	for name, p := range map[string]*types.Project{"default": base, observabilityProfile: obs} {
		t.Run(name, func(t *testing.T) {
			if err := checkCompose(root, p, serviceVars(t), embeddedNATS(t)); err != nil {
				for _, e := range unwrap(err) {
					t.Error(e)
				}
			}
		})
	}
}

func TestComposeRequiresAdminToken(t *testing.T) {
	_, err := loadCompose(t.Context(), mustRoot(t), nil)
	wantError(t, err, "XSW_ADMIN_TOKEN")
}
