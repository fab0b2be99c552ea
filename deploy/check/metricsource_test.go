package check

import (
	"errors"
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

	"github.com/xswtw/xsw/events"
)

// The metrics the services export are read from their Go source: every call of a
// client_golang constructor (prometheus.NewCounterVec(prometheus.CounterOpts{Name: ...},
// []string{...}), ...) under services/, platform/ and buildinfo/. The name, the
// namespace and subsystem, the const labels and the variable labels must be literals, or
// variables bound to literals in the same function or package: a metric the scan cannot
// read is an error, never a metric silently missed.

const (
	promImport       = "github.com/prometheus/client_golang/prometheus"
	collectorsImport = "github.com/prometheus/client_golang/prometheus/collectors"
)

// metricConstructors are client_golang's constructors of a metric: its type, and whether
// its variable labels are the second argument.
var metricConstructors = map[string]struct {
	kind string
	vec  bool
}{
	"NewCounter": {"counter", false}, "NewCounterVec": {"counter", true}, "NewCounterFunc": {"counter", false},
	"NewGauge": {"gauge", false}, "NewGaugeVec": {"gauge", true}, "NewGaugeFunc": {"gauge", false},
	"NewHistogram": {"histogram", false}, "NewHistogramVec": {"histogram", true},
	"NewSummary": {"summary", false}, "NewSummaryVec": {"summary", true},
	"NewUntypedFunc": {"untyped", false},
}

// runtimeCollectors are client_golang's collectors of whole families, by the prefix of
// the names they export.
var runtimeCollectors = map[string]string{"NewGoCollector": "go_", "NewProcessCollector": "process_"}

// series is one series name a service exports, with its label names and the label
// values it may carry.
type series struct {
	name   string
	labels []string
	// values are the string literals of the package defining the metric, the lanes and
	// the built-in sites: a superset of the label values it sets, enough to catch a typo.
	values map[string]bool
	pos    string // where the metric is defined
}

// exportedMetrics are the series the services export.
type exportedMetrics struct {
	series   map[string]*series
	prefixes []string // families registered whole (the Go runtime's, the process's)
}

// lookup returns the series of that name, or nil with ok when a whole family
// (go_..., process_...) covers it.
func (m *exportedMetrics) lookup(name string) (s *series, ok bool) {
	if s, ok := m.series[name]; ok {
		return s, true
	}
	for _, p := range m.prefixes {
		if strings.HasPrefix(name, p) {
			return nil, true
		}
	}
	return nil, false
}

var exportedMetricsOnce = sync.OnceValues(func() (*exportedMetrics, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, d := range []string{"services", "platform", "buildinfo"} {
		dirs = append(dirs, filepath.Join(root, d))
	}
	return scanMetrics(dirs...)
})

func exported(t *testing.T) *exportedMetrics {
	t.Helper()
	m, err := exportedMetricsOnce()
	if err != nil {
		t.Fatalf("scan the services' metrics: %v", err)
	}
	return m
}

// scanMetrics reads the metrics defined by the non-test Go files under dirs.
func scanMetrics(dirs ...string) (*exportedMetrics, error) {
	common := map[string]bool{} // label values any metric may carry
	for _, l := range events.Lanes {
		common[string(l)] = true
	}
	if sites, err := builtinSitesOnce(); err == nil {
		for _, s := range sites {
			common[s] = true
		}
	}
	pkgs := map[string][]string{} // directory -> its Go files
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
				pkgs[filepath.Dir(p)] = append(pkgs[filepath.Dir(p)], p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	m := &exportedMetrics{series: map[string]*series{}}
	var errs []error
	for _, dir := range slices.Sorted(maps.Keys(pkgs)) {
		if err := scanMetricPackage(pkgs[dir], common, m); err != nil {
			errs = append(errs, err)
		}
	}
	slices.Sort(m.prefixes)
	m.prefixes = slices.Compact(m.prefixes)
	return m, errors.Join(errs...)
}

// scanMetricPackage adds the metrics one package's files define to m.
func scanMetricPackage(files []string, common map[string]bool, m *exportedMetrics) error {
	fset := token.NewFileSet()
	var parsed []*ast.File
	values := maps.Clone(common)
	for _, p := range files {
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		parsed = append(parsed, f)
		ast.Inspect(f, func(n ast.Node) bool {
			if s, ok := stringLit(exprOf(n)); ok {
				values[s] = true
			}
			return true
		})
	}
	// The package's top-level bindings: var and const declarations.
	pkgBinds := map[string]ast.Expr{}
	for _, f := range parsed {
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok {
				bindSpecs(g, pkgBinds)
			}
		}
	}
	var errs []error
	for _, f := range parsed {
		prom, coll := importName(f, promImport), importName(f, collectorsImport)
		if prom == "" && coll == "" {
			continue
		}
		scan := func(body ast.Node, binds map[string]ast.Expr) {
			resolve := func(e ast.Expr) ast.Expr {
				for range 8 {
					id, ok := e.(*ast.Ident)
					if !ok {
						return e
					}
					b, ok := binds[id.Name]
					if !ok {
						b, ok = pkgBinds[id.Name]
					}
					if !ok {
						return e
					}
					e = b
				}
				return e
			}
			ast.Inspect(body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				x, ok := sel.X.(*ast.Ident)
				if !ok {
					return true
				}
				switch {
				case x.Name == coll && coll != "":
					if p, ok := runtimeCollectors[sel.Sel.Name]; ok {
						m.prefixes = append(m.prefixes, p)
					}
				case x.Name == prom && prom != "":
					if sel.Sel.Name == "NewDesc" {
						errs = append(errs, fmt.Errorf("%s: prometheus.NewDesc: a collector of its own, which the scan cannot read; teach it (metricsource_test.go)", fset.Position(call.Pos())))
						return true
					}
					c, ok := metricConstructors[sel.Sel.Name]
					if !ok {
						return true
					}
					ss, err := readMetric(call, c.kind, c.vec, resolve)
					if err != nil {
						errs = append(errs, fmt.Errorf("%s: %s: %w", fset.Position(call.Pos()), sel.Sel.Name, err))
						return true
					}
					for _, s := range ss {
						s.values, s.pos = values, fset.Position(call.Pos()).String()
						if prev, ok := m.series[s.name]; ok {
							// One metric defined in two places (one per service) must agree.
							if !slices.Equal(prev.labels, s.labels) {
								errs = append(errs, fmt.Errorf("%s: %s has labels %v, but %v at %s", s.pos, s.name, s.labels, prev.labels, prev.pos))
							}
							continue
						}
						m.series[s.name] = s
					}
				}
				return true
			})
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Body != nil {
					scan(d.Body, funcBinds(d.Body))
				}
			case *ast.GenDecl:
				scan(d, nil)
			}
		}
	}
	return errors.Join(errs...)
}

// readMetric reads one constructor call: its options' name and labels, and, for a vector,
// its label names. It returns the series the metric exports.
func readMetric(call *ast.CallExpr, kind string, vec bool, resolve func(ast.Expr) ast.Expr) ([]*series, error) {
	if len(call.Args) == 0 {
		return nil, errors.New("no options")
	}
	opts, ok := compositeOf(resolve(call.Args[0]))
	if !ok {
		return nil, errors.New("the options are not a literal")
	}
	var parts [3]string // namespace, subsystem, name
	var labels []string
	for _, el := range opts.Elts {
		kv, ok := el.(*ast.KeyValueExpr)
		if !ok {
			return nil, errors.New("the options are not keyed")
		}
		key, _ := kv.Key.(*ast.Ident)
		if key == nil {
			continue
		}
		switch key.Name {
		case "Namespace", "Subsystem", "Name":
			s, ok := stringLit(resolve(kv.Value))
			if !ok {
				return nil, fmt.Errorf("%s is not a string literal", key.Name)
			}
			parts[map[string]int{"Namespace": 0, "Subsystem": 1, "Name": 2}[key.Name]] = s
		case "ConstLabels":
			cl, ok := compositeOf(resolve(kv.Value))
			if !ok {
				return nil, errors.New("ConstLabels is not a literal")
			}
			for _, e := range cl.Elts {
				lkv, ok := e.(*ast.KeyValueExpr)
				if !ok {
					return nil, errors.New("ConstLabels is not keyed")
				}
				s, ok := stringLit(resolve(lkv.Key))
				if !ok {
					return nil, errors.New("a const label's name is not a string literal")
				}
				labels = append(labels, s)
			}
		}
	}
	if parts[2] == "" {
		return nil, errors.New("no Name")
	}
	var name []string
	for _, p := range parts {
		if p != "" {
			name = append(name, p)
		}
	}
	fq := strings.Join(name, "_")
	if vec {
		if len(call.Args) < 2 {
			return nil, errors.New("no label names")
		}
		lit, ok := compositeOf(resolve(call.Args[1]))
		if !ok {
			return nil, errors.New("the label names are not a literal")
		}
		for _, e := range lit.Elts {
			s, ok := stringLit(resolve(e))
			if !ok {
				return nil, errors.New("a label name is not a string literal")
			}
			labels = append(labels, s)
		}
	}
	slices.Sort(labels)
	with := func(n string, extra ...string) *series {
		l := slices.Concat(labels, extra)
		slices.Sort(l)
		return &series{name: n, labels: l}
	}
	switch kind {
	case "histogram":
		return []*series{with(fq+"_bucket", "le"), with(fq + "_sum"), with(fq + "_count")}, nil
	case "summary":
		return []*series{with(fq, "quantile"), with(fq + "_sum"), with(fq + "_count")}, nil
	case "counter":
		if !strings.HasSuffix(fq, "_total") {
			// Served as OpenMetrics, which the services offer, a counter gains _total.
			return []*series{with(fq), with(fq + "_total")}, nil
		}
	}
	return []*series{with(fq)}, nil
}

// exprOf returns n as an expression, or nil.
func exprOf(n ast.Node) ast.Expr {
	e, _ := n.(ast.Expr)
	return e
}

// compositeOf returns the composite literal e is, or takes the address of.
func compositeOf(e ast.Expr) (*ast.CompositeLit, bool) {
	if u, ok := e.(*ast.UnaryExpr); ok && u.Op == token.AND {
		e = u.X
	}
	c, ok := e.(*ast.CompositeLit)
	return c, ok
}

// importName returns the name a file refers to an import path by, or "".
func importName(f *ast.File, path string) string {
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == path {
			if imp.Name != nil {
				return imp.Name.Name
			}
			return path[strings.LastIndex(path, "/")+1:]
		}
	}
	return ""
}

// funcBinds returns what a function body binds to names with := or =, or declares with
// var or const (one value per name; the last binding wins).
func funcBinds(body *ast.BlockStmt) map[string]ast.Expr {
	binds := map[string]ast.Expr{}
	ast.Inspect(body, func(n ast.Node) bool {
		switch s := n.(type) {
		case *ast.AssignStmt:
			if len(s.Lhs) == len(s.Rhs) {
				for i, l := range s.Lhs {
					if id, ok := l.(*ast.Ident); ok {
						binds[id.Name] = s.Rhs[i]
					}
				}
			}
		case *ast.GenDecl:
			bindSpecs(s, binds)
		}
		return true
	})
	return binds
}

func bindSpecs(g *ast.GenDecl, binds map[string]ast.Expr) {
	for _, sp := range g.Specs {
		vs, ok := sp.(*ast.ValueSpec)
		if !ok || len(vs.Values) != len(vs.Names) {
			continue
		}
		for i, n := range vs.Names {
			binds[n.Name] = vs.Values[i]
		}
	}
}

func TestExportedMetrics(t *testing.T) {
	m := exported(t)
	// A few the dashboard and the alerts rely on, with their labels: if these are not
	// found, the scan no longer reads the services.
	for name, labels := range map[string][]string{
		"xsw_gateway_http_requests_total":           {"method", "route", "status"},
		"xsw_fetcher_circuit_state":                 {"site"},
		"xsw_fetcher_jobs_total":                    {"lane", "outcome"},
		"xsw_fetcher_dead_letters":                  nil,
		"xsw_indexer_batch_duration_seconds_bucket": {"le"},
		"xsw_indexer_events_total":                  {"kind", "site"},
	} {
		s, ok := m.series[name]
		if !ok {
			t.Errorf("%s: not found among %d series", name, len(m.series))
			continue
		}
		if !slices.Equal(s.labels, labels) {
			t.Errorf("%s: labels %v, want %v", name, s.labels, labels)
		}
	}
	if !slices.Contains(m.prefixes, "go_") || !slices.Contains(m.prefixes, "process_") {
		t.Errorf("the runtime collectors (platform/metrics) were not found: %v", m.prefixes)
	}
	if s := m.series["xsw_fetcher_jobs_total"]; s != nil && (!s.values["completed"] || !s.values["refresh"]) {
		t.Errorf("xsw_fetcher_jobs_total: the values of outcome and lane were not found")
	}
}

func TestScanMetrics(t *testing.T) {
	tests := []struct {
		name, src string
		want      map[string][]string // series -> labels
		wantErr   string
	}{
		{"literal options", `
func New(reg prometheus.Registerer) {
	labels := []string{"method", "status"}
	_ = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_requests_total"}, labels)
	_ = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "x", Name: "latency_seconds"})
	_ = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x_up", ConstLabels: prometheus.Labels{"site": "a"}}, nil)
}`, map[string][]string{
			"x_requests_total":         {"method", "status"},
			"x_latency_seconds_bucket": {"le"},
			"x_latency_seconds_sum":    nil,
			"x_latency_seconds_count":  nil,
			"x_up":                     {"site"},
		}, ""},
		{"name in a package constant", `
const name = "x_jobs"
func New() { _ = prometheus.NewCounter(prometheus.CounterOpts{Name: name}) }`,
			map[string][]string{"x_jobs": nil, "x_jobs_total": nil}, ""},
		{"computed name", `
func New(n string) { _ = prometheus.NewGauge(prometheus.GaugeOpts{Name: "x_" + n}) }`,
			nil, "Name is not a string literal"},
		{"computed labels", `
func New(l []string) { _ = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x"}, l) }`,
			nil, "the label names are not a literal"},
		{"custom collector", `
var d = prometheus.NewDesc("x", "", nil, nil)`,
			nil, "prometheus.NewDesc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src := "package m\n\nimport \"github.com/prometheus/client_golang/prometheus\"\n" + tt.src + "\n"
			if err := os.WriteFile(filepath.Join(dir, "m.go"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := scanMetrics(dir)
			if tt.wantErr != "" {
				wantError(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			for n, s := range m.series {
				got[n] = s.labels
			}
			if len(got) != len(tt.want) {
				t.Fatalf("series %v, want %v", got, tt.want)
			}
			for n, l := range tt.want {
				if g, ok := got[n]; !ok || !slices.Equal(g, l) {
					t.Errorf("%s: labels %v (found %v), want %v", n, g, ok, l)
				}
			}
		})
	}
}
