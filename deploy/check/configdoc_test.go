package check

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// configDocPath is the page whose table lists every variable with its default.
const configDocPath = "docs/configuration.md"

// configRow is one row of the configuration table.
type configRow struct {
	line   int
	name   string   // SOURCE_<SITE>_URL for a per-site variable
	def    string   // the default cell as written
	usedBy []string // gateway, fetcher, indexer, xsw, xsw demo, xswctl ("all" expanded)
}

// The programs the "used by" column may name. "all" is the three services.
var (
	threeServices = []string{"fetcher", "gateway", "indexer"}
	knownUsers    = map[string]bool{"gateway": true, "fetcher": true, "indexer": true, "xsw": true, "xsw demo": true, "xswctl": true}
	// Programs whose variables the vars scan does not cover, and where their source is.
	otherUsers = map[string][]string{"xswctl": {"cmd/xswctl"}, "xsw demo": {"dev/allinone", "dev/cmd/xsw"}}
)

var codeSpan = regexp.MustCompile("`([^`]*)`")

// parseConfigTable reads the table headed "| variable | default | used by | meaning |".
func parseConfigTable(page string) ([]configRow, error) {
	lines := strings.Split(page, "\n")
	start := slices.IndexFunc(lines, func(l string) bool {
		return strings.HasPrefix(strings.ReplaceAll(l, " ", ""), "|variable|default|usedby|meaning|")
	})
	if start < 0 {
		return nil, fmt.Errorf("no table headed | variable | default | used by | meaning |")
	}
	var rows []configRow
	for i := start + 2; i < len(lines) && strings.HasPrefix(lines[i], "|"); i++ {
		cells := strings.Split(strings.Trim(strings.TrimSpace(lines[i]), "|"), "|")
		if len(cells) != 4 {
			return nil, fmt.Errorf("line %d: %d cells, want 4 (a | inside a cell?)", i+1, len(cells))
		}
		m := codeSpan.FindStringSubmatch(cells[0])
		if m == nil || strings.TrimSpace(cells[0]) != "`"+m[1]+"`" {
			return nil, fmt.Errorf("line %d: the variable %q is not one name in code", i+1, cells[0])
		}
		r := configRow{line: i + 1, name: m[1], def: strings.TrimSpace(cells[1])}
		for _, u := range strings.Split(cells[2], ",") {
			u = strings.TrimSpace(u)
			switch {
			case u == "all":
				r.usedBy = append(r.usedBy, threeServices...)
			case knownUsers[u]:
				r.usedBy = append(r.usedBy, u)
			default:
				return nil, fmt.Errorf("line %d: %s is used by %q, which is no program (want all, %s)", i+1, r.name, u, strings.Join(sortedKeys(knownUsers), ", "))
			}
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("the table has no row")
	}
	return rows, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// codeDefault is a default a program gives a variable in its source, when the checks can
// evaluate it: a literal, a constant, or arithmetic on them and time's units.
type codeDefault struct {
	pos   string
	kind  string // the Reader method: String, Int, Float, Bool, Duration
	value constant.Value
}

// matches reports whether the table's default (its first value in code) is this one.
func (d codeDefault) matches(cell string) (bool, string) {
	m := codeSpan.FindStringSubmatch(cell)
	if m == nil {
		if d.kind == "String" && constant.StringVal(d.value) == "" {
			return true, ""
		}
		return false, "the table gives no default in code"
	}
	doc := m[1]
	switch d.kind {
	case "String":
		s := constant.StringVal(d.value)
		return s == "" || s == doc, strconv.Quote(s)
	case "Bool":
		b, err := strconv.ParseBool(doc)
		return err == nil && b == constant.BoolVal(d.value), d.value.String()
	case "Int":
		n, err := strconv.ParseInt(doc, 10, 64)
		v, exact := constant.Int64Val(d.value)
		return err == nil && exact && n == v, d.value.String()
	case "Float":
		f, err := strconv.ParseFloat(doc, 64)
		v, _ := constant.Float64Val(d.value)
		return err == nil && f == v, d.value.String()
	case "Duration":
		v, exact := constant.Int64Val(constant.ToInt(d.value))
		want := time.Duration(v)
		// As platform/config reads it: a bare number is seconds.
		if f, err := strconv.ParseFloat(doc, 64); err == nil {
			return exact && time.Duration(f*float64(time.Second)) == want, want.String()
		}
		got, err := time.ParseDuration(doc)
		return err == nil && exact && got == want, want.String()
	}
	return true, ""
}

var envName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// scanDefaults finds, in the non-test Go files under dirs, every call X.M("NAME", def)
// of a platform/config Reader method and evaluates def where it can.
func scanDefaults(root string, dirs []string) (map[string][]codeDefault, error) {
	fset := token.NewFileSet()
	files := map[string][]*ast.File{} // by package name
	var order []*ast.File
	for _, dir := range dirs {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") {
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
			files[f.Name.Name] = append(files[f.Name.Name], f)
			order = append(order, f)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	// Package-level constants by package name and constant name; a name two packages of
	// the same name define differently is left unevaluated.
	consts := map[string]ast.Expr{}
	ambiguous := map[string]bool{}
	for pkg, fs := range files {
		for _, f := range fs {
			for _, decl := range f.Decls {
				g, ok := decl.(*ast.GenDecl)
				if !ok || g.Tok != token.CONST {
					continue
				}
				for _, spec := range g.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							k := pkg + "." + n.Name
							if _, dup := consts[k]; dup {
								ambiguous[k] = true
							}
							consts[k] = vs.Values[i]
						}
					}
				}
			}
		}
	}
	units := map[string]time.Duration{"Nanosecond": time.Nanosecond, "Microsecond": time.Microsecond, "Millisecond": time.Millisecond,
		"Second": time.Second, "Minute": time.Minute, "Hour": time.Hour}
	var eval func(pkg string, e ast.Expr, depth int) (constant.Value, bool)
	lookup := func(key string, depth int) (constant.Value, bool) {
		e, ok := consts[key]
		if !ok || ambiguous[key] {
			return nil, false
		}
		pkg, _, _ := strings.Cut(key, ".")
		return eval(pkg, e, depth+1)
	}
	eval = func(pkg string, e ast.Expr, depth int) (constant.Value, bool) {
		if depth > 10 {
			return nil, false
		}
		switch e := e.(type) {
		case *ast.BasicLit:
			v := constant.MakeFromLiteral(e.Value, e.Kind, 0)
			return v, v.Kind() != constant.Unknown
		case *ast.ParenExpr:
			return eval(pkg, e.X, depth)
		case *ast.Ident:
			switch e.Name {
			case "true", "false":
				return constant.MakeBool(e.Name == "true"), true
			}
			return lookup(pkg+"."+e.Name, depth)
		case *ast.SelectorExpr:
			x, ok := e.X.(*ast.Ident)
			if !ok {
				return nil, false
			}
			if x.Name == "time" {
				u, ok := units[e.Sel.Name]
				return constant.MakeInt64(int64(u)), ok
			}
			return lookup(x.Name+"."+e.Sel.Name, depth)
		case *ast.BinaryExpr:
			a, ok1 := eval(pkg, e.X, depth)
			b, ok2 := eval(pkg, e.Y, depth)
			if !ok1 || !ok2 {
				return nil, false
			}
			switch e.Op {
			case token.SHL, token.SHR:
				n, ok := constant.Uint64Val(b)
				return constant.Shift(a, e.Op, uint(n)), ok
			case token.ADD, token.SUB, token.MUL:
				return constant.BinaryOp(a, e.Op, b), true
			}
			return nil, false
		case *ast.CallExpr: // a conversion: time.Duration(2), int64(n)
			if len(e.Args) != 1 {
				return nil, false
			}
			switch fun := e.Fun.(type) {
			case *ast.Ident:
				if fun.Name == "int" || fun.Name == "int64" || fun.Name == "float64" {
					return eval(pkg, e.Args[0], depth)
				}
			case *ast.SelectorExpr:
				if x, ok := fun.X.(*ast.Ident); ok && x.Name == "time" && fun.Sel.Name == "Duration" {
					return eval(pkg, e.Args[0], depth)
				}
			}
		}
		return nil, false
	}
	out := map[string][]codeDefault{}
	for _, f := range order {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !readerMethods[sel.Sel.Name] || sel.Sel.Name == "List" {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			name, err := strconv.Unquote(lit.Value)
			if err != nil || !envName.MatchString(name) {
				return true
			}
			if v, ok := eval(f.Name.Name, call.Args[1], 0); ok {
				pos := fset.Position(call.Pos())
				if rel, err := filepath.Rel(root, pos.Filename); err == nil {
					pos.Filename = filepath.ToSlash(rel)
				}
				out[name] = append(out[name], codeDefault{pos: pos.String(), kind: sel.Sel.Name, value: v})
			}
			return true
		})
	}
	return out, nil
}

// checkConfigTable compares the table with what the programs read: every variable read
// is a row; every row is read, by exactly the services its "used by" names; and the
// default in code, where the check can evaluate it, is the table's.
func checkConfigTable(rows []configRow, read map[string]vars, others map[string]map[string]bool, defaults map[string][]codeDefault) []error {
	var errs []error
	rowOf := map[string]configRow{}
	for _, r := range rows {
		if old, dup := rowOf[r.name]; dup {
			errs = append(errs, fmt.Errorf("%s:%d: %s is already on line %d", configDocPath, r.line, r.name, old.line))
		}
		rowOf[r.name] = r
	}
	listed := func(name string) bool {
		_, ok := rowOf[name]
		return ok
	}
	for _, prog := range sortedKeys(read) {
		for _, name := range read[prog].names() {
			if !listed(name) && !runtimeVars[name] {
				errs = append(errs, fmt.Errorf("%s reads %s, which %s does not list", prog, name, configDocPath))
			}
		}
	}
	for _, prog := range sortedKeys(others) {
		for _, name := range sortedKeys(others[prog]) {
			if !listed(name) {
				errs = append(errs, fmt.Errorf("%s reads %s, which %s does not list", prog, name, configDocPath))
			}
		}
	}
	for _, r := range rows {
		where := fmt.Sprintf("%s:%d: %s", configDocPath, r.line, r.name)
		readBy := false
		for _, svc := range threeServices {
			reads, says := reads(read[svc], r.name), slices.Contains(r.usedBy, svc)
			readBy = readBy || reads
			switch {
			case reads && !says:
				errs = append(errs, fmt.Errorf("%s: the %s reads it; add it to \"used by\"", where, svc))
			case says && !reads:
				errs = append(errs, fmt.Errorf("%s: \"used by\" names the %s, which does not read it", where, svc))
			}
		}
		if slices.Contains(r.usedBy, "xsw") && !reads(read["xsw"], r.name) {
			errs = append(errs, fmt.Errorf("%s: \"used by\" names xsw, which does not read it", where))
		}
		readBy = readBy || reads(read["xsw"], r.name)
		for prog := range others {
			if slices.Contains(r.usedBy, prog) && !others[prog][r.name] && !(prog == "xsw demo" && reads(read["xsw"], r.name)) {
				errs = append(errs, fmt.Errorf("%s: \"used by\" names %s, whose source does not name it", where, prog))
			}
			readBy = readBy || others[prog][r.name]
		}
		if !readBy {
			errs = append(errs, fmt.Errorf("%s: no program reads it", where))
		}
		for _, d := range defaults[r.name] {
			if ok, code := d.matches(r.def); !ok {
				errs = append(errs, fmt.Errorf("%s: the default is %s in the table, %s at %s", where, r.def, code, d.pos))
			}
		}
	}
	return errs
}

// reads reports whether a program reading v reads the variable a row names: a per-site
// pattern (SOURCE_<SITE>_URL) when it reads that pattern.
func reads(v vars, name string) bool {
	if strings.Contains(name, siteToken) {
		_, ok := v[name]
		return ok
	}
	return v.allows(name)
}

// readOthers finds the variables of the programs the vars scan does not cover: the
// names their non-test Go source passes to a getenv function, or, for the all-in-one's
// demo, writes as a string literal.
func readOthers(root string) (map[string]map[string]bool, error) {
	getenvCall := regexp.MustCompile(`getenv\("([A-Z][A-Z0-9_]*)"\)`)
	literal := regexp.MustCompile(`"([A-Z][A-Z0-9_]*_[A-Z0-9_]+)"`)
	out := map[string]map[string]bool{}
	for prog, dirs := range otherUsers {
		out[prog] = map[string]bool{}
		for _, dir := range dirs {
			err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
					return err
				}
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				re := getenvCall
				if prog == "xsw demo" {
					re = literal
				}
				for _, m := range re.FindAllStringSubmatch(string(b), -1) {
					out[prog][m[1]] = true
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func TestConfigurationTable(t *testing.T) {
	root := mustRoot(t)
	page, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(configDocPath)))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := parseConfigTable(string(page))
	if err != nil {
		t.Fatalf("%s: %v", configDocPath, err)
	}
	others, err := readOthers(root)
	if err != nil {
		t.Fatal(err)
	}
	// The demo's literals include the variables it sets for the services; its own are
	// those of the simulated sites.
	for name := range others["xsw demo"] {
		if !strings.HasPrefix(name, "SITESIM_") {
			delete(others["xsw demo"], name)
		}
	}
	if !others["xsw demo"]["SITESIM_ADDR"] {
		t.Fatalf("the scan of the demo found %v, not SITESIM_ADDR: has its configuration moved?", others["xsw demo"])
	}
	if !others["xswctl"]["XSW_URL"] {
		t.Fatalf("the scan of xswctl found %v, not XSW_URL: has its configuration moved?", others["xswctl"])
	}
	defaults, err := scanDefaults(root, []string{"services", "platform", "dev/allinone", "dev/cmd/xsw"})
	if err != nil {
		t.Fatal(err)
	}
	if len(defaults) < 30 {
		t.Fatalf("only %d defaults evaluated: the scan is broken", len(defaults))
	}
	for _, e := range checkConfigTable(rows, serviceVars(t), others, defaults) {
		t.Error(e)
	}
}

// TestConfigurationTableCatches breaks the table in each way the check looks for.
func TestConfigurationTableCatches(t *testing.T) {
	read := map[string]vars{
		"gateway": {"HTTP_ADDR": ":8000", "LOG_LEVEL": ""},
		"fetcher": {"LOG_LEVEL": "", "SOURCE_<SITE>_URL": ""},
		"indexer": {"LOG_LEVEL": "", "SOURCE_<SITE>_URL": ""},
		"xsw":     {"HTTP_ADDR": ":8000", "LOG_LEVEL": "", "SOURCE_<SITE>_URL": "", "DATA_DIR": ""},
	}
	read["gateway"]["SOURCE_<SITE>_URL"] = ""
	others := map[string]map[string]bool{"xswctl": {"XSW_URL": true}, "xsw demo": {}}
	defaults := map[string][]codeDefault{
		"HTTP_ADDR": {{pos: "gateway.go:1", kind: "String", value: constant.MakeString(":8000")}},
		"LOG_LEVEL": {{pos: "boot.go:1", kind: "Duration", value: constant.MakeInt64(int64(90 * time.Second))}},
	}
	good := `| variable | default | used by | meaning |
|---|---|---|---|
| ` + "`HTTP_ADDR` | `:8000` | gateway, xsw | listen |" + `
| ` + "`LOG_LEVEL` | `90s` (or `1m30s`) | all | a duration |" + `
| ` + "`SOURCE_<SITE>_URL` | the adapter's | all | per site |" + `
| ` + "`DATA_DIR` | `./data` | xsw | files |" + `
| ` + "`XSW_URL` | `http://localhost:8000` | xswctl | the gateway |" + `
`
	check := func(page string) []error {
		t.Helper()
		rows, err := parseConfigTable(page)
		if err != nil {
			return []error{err}
		}
		return checkConfigTable(rows, read, others, defaults)
	}
	if errs := check(good); len(errs) > 0 {
		t.Fatalf("a good table: %v", errs)
	}
	for _, tc := range []struct {
		name, page, want string
	}{
		{"a variable read but not listed", strings.Replace(good, "| `DATA_DIR` | `./data` | xsw | files |\n", "", 1), "xsw reads DATA_DIR, which"},
		{"xswctl's variable not listed", strings.Replace(good, "| `XSW_URL` | `http://localhost:8000` | xswctl | the gateway |\n", "", 1), "xswctl reads XSW_URL"},
		{"a variable nobody reads", good + "| `NOBODY` | `1` | gateway | gone |\n", "NOBODY: \"used by\" names the gateway, which does not read it"},
		{"a service missing from used by", strings.Replace(good, "| all | a duration |", "| gateway, fetcher | a duration |", 1), "LOG_LEVEL: the indexer reads it"},
		{"an unknown program", strings.Replace(good, "| xsw | files |", "| xsw, web | files |", 1), `"web", which is no program`},
		{"a wrong default", strings.Replace(good, "`:8000` | gateway", "`:8080` | gateway", 1), "HTTP_ADDR: the default is `:8080` in the table, \":8000\""},
		{"a wrong duration", strings.Replace(good, "`90s` (or", "`60` (or", 1), "LOG_LEVEL: the default is `60` (or `1m30s`) in the table, 1m30s"},
		{"a row twice", good + "| `DATA_DIR` | `./data` | xsw | again |\n", "DATA_DIR is already on line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := check(tc.page)
			if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), tc.want) }) {
				t.Errorf("check = %v, want an error containing %q", errs, tc.want)
			}
		})
	}
}
