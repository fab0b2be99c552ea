package check

import (
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// Packages a service binary must not link, and the binaries each one is kept out of.
const (
	// natsServerPkg is the NATS server (module github.com/nats-io/nats-server/v2): only
	// the all-in-one, benchmarks and tests embed one (platform/natsembed).
	natsServerPkg = "github.com/nats-io/nats-server/v2"
	// migrationsPkg is the migrations library: the indexer migrates, the gateway only
	// reads.
	migrationsPkg = "github.com/pressly/goose/v3"
)

// forbiddenDeps maps each service's main package to the package paths (and everything
// under them) its binary must not link.
var forbiddenDeps = map[string][]string{
	"./services/gateway/cmd/gateway": {natsServerPkg, migrationsPkg},
	"./services/fetcher/cmd/fetcher": {natsServerPkg},
	"./services/indexer/cmd/indexer": {natsServerPkg},
}

// forbidden returns the packages of deps that are one of prefixes or under one.
func forbidden(deps, prefixes []string) []string {
	var out []string
	for _, d := range deps {
		if slices.ContainsFunc(prefixes, func(p string) bool { return d == p || strings.HasPrefix(d, p+"/") }) {
			out = append(out, d)
		}
	}
	return out
}

// listDeps returns every package the main package pkg (relative to the repository root)
// links, as go list -deps reports them.
func listDeps(t *testing.T, root, pkg string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", pkg)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	return strings.Fields(string(out))
}

// TestServiceBinaryDeps: the gateway, fetcher and indexer binaries link no embedded NATS
// server, and the gateway no migrations library.
func TestServiceBinaryDeps(t *testing.T) {
	root := mustRoot(t)
	for pkg, deny := range forbiddenDeps {
		t.Run(pkg, func(t *testing.T) {
			deps := listDeps(t, root, pkg)
			if !slices.Contains(deps, "github.com/xswtw/xsw/platform/broker") {
				t.Fatalf("go list -deps %s does not list platform/broker: the check reads the wrong list (%d packages)", pkg, len(deps))
			}
			if bad := forbidden(deps, deny); len(bad) > 0 {
				t.Errorf("%s links %s", pkg, strings.Join(bad, ", "))
			}
		})
	}
}

// TestForbiddenDepsCatches: the check finds a forbidden package under a module path, and
// no package that only shares a prefix with one.
func TestForbiddenDepsCatches(t *testing.T) {
	deps := []string{"fmt", "github.com/nats-io/nats.go", "github.com/nats-io/nats-server/v2/server", "github.com/pressly/goose/v3",
		"github.com/nats-io/nats-server/v20/x"}
	got := fmt.Sprint(forbidden(deps, []string{natsServerPkg, migrationsPkg}))
	if want := "[github.com/nats-io/nats-server/v2/server github.com/pressly/goose/v3]"; got != want {
		t.Errorf("forbidden = %s, want %s", got, want)
	}
}
