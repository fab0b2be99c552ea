package check

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// services maps each deployable service (its directory under services/, its image
// xsw-<name>) to the variable naming the address of its HTTP endpoints: probes and
// health checks must use that port.
var services = map[string]string{
	"gateway": "HTTP_ADDR",
	"fetcher": "FETCHER_HEALTH_ADDR",
	"indexer": "INDEXER_HEALTH_ADDR",
}

// runtimeVars are read by the Go runtime, not by a service's configuration.
var runtimeVars = map[string]bool{"GOMEMLIMIT": true, "GOMAXPROCS": true, "GOGC": true, "GODEBUG": true}

const configImport = "github.com/xswtw/xsw/platform/config"

// readerMethods are platform/config.Reader's accessors; each takes the variable's name first.
var readerMethods = map[string]bool{"String": true, "Int": true, "Float": true, "Bool": true, "Duration": true, "List": true}

// vars holds the environment variables one program reads, each with its literal default
// ("" when it has none or it is not a string literal). A name holding siteToken is a
// per-site variable's pattern (SOURCE_<SITE>_URL; see sources_test.go).
type vars map[string]string

// allows reports whether a program reading v may be given the variable name.
func (v vars) allows(name string) bool {
	if _, ok := v[name]; ok || runtimeVars[name] {
		return !strings.Contains(name, siteToken)
	}
	_, ok := v.siteOf(name)
	return ok
}

func (v vars) names() []string {
	out := make([]string, 0, len(v))
	for k := range v {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

var scanVarsOnce = sync.OnceValues(func() (map[string]vars, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	// Every command starts with config.Boot, which reads the logging variables.
	boot, err := scanVars(filepath.Join(root, "platform", "config"))
	if err != nil {
		return nil, err
	}
	out := map[string]vars{}
	for svc := range services {
		v, err := scanVars(filepath.Join(root, "services", svc))
		if err != nil {
			return nil, err
		}
		maps.Copy(v, boot)
		out[svc] = v
	}
	// The all-in-one reads what the three services read, plus its own.
	aio := maps.Clone(boot)
	for _, dir := range []string{"services/gateway", "services/fetcher", "services/indexer", "dev/allinone", "dev/cmd/xsw"} {
		v, err := scanVars(filepath.Join(root, dir))
		if err != nil {
			return nil, err
		}
		for k, d := range v {
			aio[k] = d
		}
	}
	out["xsw"] = aio
	return out, nil
})

// serviceVars returns, per service (and "xsw" for the all-in-one), the variables its Go
// source reads.
func serviceVars(t *testing.T) map[string]vars {
	t.Helper()
	v, err := scanVarsOnce()
	if err != nil {
		t.Fatalf("scan the services' configuration: %v", err)
	}
	return v
}

// scanVars finds every environment variable the non-test Go files under dir read: the
// names passed to a platform/config Reader (r.String("NAME", "default"), r.Int, ...)
// and to os.Getenv or a getenv function, and, where they call config.ReadSources, the
// variables of the source sites. A Reader call whose name is not a string literal is an
// error rather than a variable silently missed.
func scanVars(dir string) (vars, error) {
	out := vars{}
	sites := false
	fset := token.NewFileSet()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != dir && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		calls, err := scanFile(fset, f, out)
		sites = sites || calls
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	if sites {
		sv, err := sourceVarsOnce()
		if err != nil {
			return nil, fmt.Errorf("scan %s: it calls config.%s: %w", dir, readSources, err)
		}
		for k, d := range sv {
			if out[k] == "" {
				out[k] = d
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("scan %s: no environment variable found; has the configuration moved?", dir)
	}
	return out, nil
}

// scanFile adds the variables f reads to out, and reports whether it calls
// config.ReadSources.
func scanFile(fset *token.FileSet, f *ast.File, out vars) (readsSites bool, err error) {
	osName, cfgName := "", ""
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		name := filepath.Base(p)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		switch p {
		case "os":
			osName = name
		case configImport:
			cfgName = name
		}
	}

	// The identifiers bound to config.NewReader(...) in this file.
	readers := map[string]bool{}
	isNewReader := func(e ast.Expr) bool {
		call, ok := e.(*ast.CallExpr)
		if !ok || cfgName == "" {
			return false
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "NewReader" {
			return false
		}
		x, ok := sel.X.(*ast.Ident)
		return ok && x.Name == cfgName
	}
	bind := func(lhs []ast.Expr, rhs []ast.Expr) {
		for i, r := range rhs {
			if i < len(lhs) && isNewReader(r) {
				if id, ok := lhs[i].(*ast.Ident); ok {
					readers[id.Name] = true
				}
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			bind(n.Lhs, n.Rhs)
		case *ast.ValueSpec:
			lhs := make([]ast.Expr, len(n.Names))
			for i, id := range n.Names {
				lhs[i] = id
			}
			bind(lhs, n.Values)
		}
		return true
	})

	var errs []error
	if cfgName != "" {
		ast.Inspect(f, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == readSources {
					if x, ok := sel.X.(*ast.Ident); ok && x.Name == cfgName {
						readsSites = true
					}
				}
			}
			return true
		})
	}
	literal := func(call *ast.CallExpr, i int) (string, bool) {
		if i >= len(call.Args) {
			return "", false
		}
		lit, ok := call.Args[i].(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(lit.Value)
		return s, err == nil
	}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		var what string
		switch fun := call.Fun.(type) {
		case *ast.SelectorExpr:
			x, ok := fun.X.(*ast.Ident)
			switch {
			case !ok:
				return true
			case readers[x.Name] && readerMethods[fun.Sel.Name]:
				what = x.Name + "." + fun.Sel.Name
			case osName != "" && x.Name == osName && fun.Sel.Name == "Getenv":
				what = "os.Getenv"
			default:
				return true
			}
		case *ast.Ident:
			if fun.Name != "getenv" {
				return true
			}
			what = "getenv"
		default:
			return true
		}
		name, ok := literal(call, 0)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: %s with a name that is not a string literal: the check cannot see which variable it reads",
				fset.Position(call.Pos()), what))
			return true
		}
		def, _ := literal(call, 1)
		if old, seen := out[name]; !seen || old == "" {
			out[name] = def
		}
		return true
	})
	if len(errs) > 0 {
		return readsSites, errs[0]
	}
	return readsSites, nil
}

// repoRoot is the repository root: this package lives in deploy/check.
func repoRoot() (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		return "", fmt.Errorf("repository root %s: %w", root, err)
	}
	return root, nil
}

func mustRoot(t *testing.T) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestServiceVars(t *testing.T) {
	all := serviceVars(t)
	// What the README's configuration table says each service reads; every one reads the
	// source sites.
	sites := []string{"SOURCES", "SOURCE_XSW_URL", "SOURCE_CZBOOKS_RATE_LIMIT", "BASE_URL", "BG_JOB_RATE_LIMIT"}
	want := map[string][]string{
		"gateway": {"NATS_URL", "NATS_REPLICAS", "DATABASE_URL", "HTTP_ADDR", "XSW_ADMIN_TOKEN", "SHUTDOWN_TIMEOUT", "LOG_LEVEL", "LOG_FORMAT"},
		"fetcher": {"NATS_URL", "NATS_REPLICAS", "FETCHER_HEALTH_ADDR", "SHUTDOWN_TIMEOUT", "LOG_LEVEL", "LOG_FORMAT"},
		"indexer": {"NATS_URL", "NATS_REPLICAS", "DATABASE_URL", "INDEXER_HEALTH_ADDR", "SHUTDOWN_TIMEOUT", "LOG_LEVEL", "LOG_FORMAT"},
		"xsw":     {"DATA_DIR", "HTTP_ADDR", "DATABASE_URL"},
	}
	for svc, names := range want {
		for _, n := range append(names, sites...) {
			if !all[svc].allows(n) {
				t.Errorf("%s: the scan did not find %s (found %v)", svc, n, all[svc].names())
			}
		}
	}
	if all["fetcher"].allows("DATABASE_URL") {
		t.Errorf("fetcher reads DATABASE_URL: the manifests keep the database away from it")
	}
	for svc, addrVar := range services {
		if all[svc][addrVar] == "" {
			t.Errorf("%s: no literal default for %s", svc, addrVar)
		}
	}
}

func TestScanVarsRejectsComputedNames(t *testing.T) {
	dir := t.TempDir()
	src := `package x

import "github.com/xswtw/xsw/platform/config"

const name = "FOO"

func f(getenv func(string) string) {
	r := config.NewReader(getenv)
	_ = r.String(name, "")
}
`
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := scanVars(dir); err == nil || !strings.Contains(err.Error(), "not a string literal") {
		t.Errorf("scanVars = %v, want an error about a non-literal name", err)
	}
}
