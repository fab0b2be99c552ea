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

// serviceImport is the services' shared core: service.FromEnv reads the variables every
// service shares, and those a service.Spec names (specVarFields) for the service that
// writes the Spec.
const serviceImport = "github.com/xswtw/xsw/platform/service"

// specVarFields are the fields of a service.Spec that name a variable, with the field
// holding its default ("" when it has none).
var specVarFields = map[string]string{"IDVar": "", "HealthVar": "HealthDefault"}

// The variables service.FromEnv reads whatever the Spec, scanned once (coreVars).
var (
	coreVarsOnce sync.Once
	coreVarsRead vars
	coreVarsErr  error
)

// coreVars returns the variables service.FromEnv reads whatever the Spec.
func coreVars() (vars, error) {
	coreVarsOnce.Do(func() {
		root, err := repoRoot()
		if err != nil {
			coreVarsErr = err
			return
		}
		coreVarsRead, coreVarsErr = scanVars(filepath.Join(root, "platform", "service"))
	})
	return coreVarsRead, coreVarsErr
}

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
	// config.Boot, with which the all-in-one starts, reads the logging variables (the
	// services read them through service.FromEnv).
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
// and to os.Getenv or a getenv function; where they call config.ReadSources, the
// variables of the source sites; where they call service.FromEnv, the variables every
// service shares; and the variables a service.Spec they write names. A Reader call whose
// name is not a string literal (nor a Spec's field, see specVarFields) is an error rather
// than a variable silently missed.
func scanVars(dir string) (vars, error) {
	out := vars{}
	sites, core := false, false
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
		sites, core = sites || calls.sources, core || calls.core
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
	if core {
		cv, err := coreVars()
		if err != nil {
			return nil, fmt.Errorf("scan %s: it calls service.FromEnv: %w", dir, err)
		}
		for k, d := range cv {
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

// fileCalls says which readers of shared variables a file calls.
type fileCalls struct {
	sources bool // config.ReadSources
	core    bool // service.FromEnv
}

// scanFile adds the variables f reads, and those the service.Spec literals it writes
// name, to out, and reports whether it calls config.ReadSources and service.FromEnv.
func scanFile(fset *token.FileSet, f *ast.File, out vars) (calls fileCalls, err error) {
	osName, cfgName, svcName := "", "", ""
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
		case serviceImport:
			svcName = name
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
	if cfgName != "" || svcName != "" {
		ast.Inspect(f, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
					if x, ok := sel.X.(*ast.Ident); ok {
						calls.sources = calls.sources || cfgName != "" && x.Name == cfgName && sel.Sel.Name == readSources
						calls.core = calls.core || svcName != "" && x.Name == svcName && sel.Sel.Name == "FromEnv"
					}
				}
			}
			return true
		})
	}
	if svcName != "" {
		scanSpecs(f, svcName, out)
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
		if !ok && isSpecField(call.Args) {
			return true // named where the Spec is written
		}
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
		return calls, errs[0]
	}
	return calls, nil
}

// isSpecField reports whether a call's first argument is a service.Spec's variable
// field (spec.IDVar).
func isSpecField(args []ast.Expr) bool {
	if len(args) == 0 {
		return false
	}
	sel, ok := args[0].(*ast.SelectorExpr)
	if !ok {
		return false
	}
	_, ok = specVarFields[sel.Sel.Name]
	return ok
}

// scanSpecs adds to out the variables each service.Spec literal of f names (svcName is
// the file's name for the service package), with their defaults.
func scanSpecs(f *ast.File, svcName string, out vars) {
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		typ, ok := lit.Type.(*ast.SelectorExpr)
		if !ok || typ.Sel.Name != "Spec" {
			return true
		}
		if x, ok := typ.X.(*ast.Ident); !ok || x.Name != svcName {
			return true
		}
		fields := map[string]string{}
		for _, e := range lit.Elts {
			kv, ok := e.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			key, ok1 := kv.Key.(*ast.Ident)
			val, ok2 := kv.Value.(*ast.BasicLit)
			if ok1 && ok2 && val.Kind == token.STRING {
				if s, err := strconv.Unquote(val.Value); err == nil {
					fields[key.Name] = s
				}
			}
		}
		for field, defField := range specVarFields {
			if name := fields[field]; name != "" {
				if old, seen := out[name]; !seen || old == "" {
					out[name] = fields[defField]
				}
			}
		}
		return true
	})
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
	// What docs/configuration.md's table says each service reads; every one reads the
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

// TestScanVarsFollowsServiceCore: a service that reads its core through service.FromEnv
// reads every shared variable, and those its Spec names, with the Spec's default.
func TestScanVarsFollowsServiceCore(t *testing.T) {
	dir := t.TempDir()
	src := `package x

import (
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/service"
)

var spec = service.Spec{Name: "x", IDVar: "X_ID", HealthVar: "X_HEALTH_ADDR", HealthDefault: ":9"}

func f(getenv func(string) string) {
	core, _ := service.FromEnv(getenv, spec)
	_ = core
	r := config.NewReader(getenv)
	_ = r.String("OWN_VAR", "x")
}
`
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := scanVars(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"OWN_VAR", "X_ID", "X_HEALTH_ADDR", "NATS_URL", "NATS_REPLICAS", "BG_JOB_MAX_AGE", "SYNC_DEDUP_WINDOW",
		"SHUTDOWN_TIMEOUT", "LOG_LEVEL", "LOG_FORMAT", "SOURCES", "SOURCE_XSW_URL"} {
		if !v.allows(name) {
			t.Errorf("a service calling service.FromEnv: %s not found (vars %v)", name, v.names())
		}
	}
	if v["X_HEALTH_ADDR"] != ":9" {
		t.Errorf("X_HEALTH_ADDR default %q, want the Spec's :9", v["X_HEALTH_ADDR"])
	}
}
