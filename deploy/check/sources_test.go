package check

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/modfile"

	"github.com/xswtw/xsw/events"
)

// The source sites. Every service reads them with platform/config's ReadSources: SOURCES
// (the site ids, the default first), BASE_URL and BG_JOB_RATE_LIMIT (the defaults), and
// per site SOURCE_<SITE>_URL and SOURCE_<SITE>_RATE_LIMIT, whose names ReadSources builds
// with SourceVar. The scan cannot see those names as literals, so it reads ReadSources
// itself and keeps each per-site name as a pattern, "<SITE>" standing for an upper-cased
// site id (vars.siteOf). The rules on what a deployment gives (checkSites):
//
//   - SOURCES lists well-formed site ids, each once;
//   - a per-site variable names a site SOURCES lists (any other is dead configuration,
//     most likely a typo);
//   - every running service is given SOURCES explicitly, and all of one deployment get
//     the same list: a gateway serving a site its fetchers do not know answers 202 for
//     ever.

// sourcesVar is the variable listing the sites.
const sourcesVar = "SOURCES"

// siteToken stands for the site in a per-site variable's name, in vars: SOURCE_<SITE>_URL.
const siteToken = "<SITE>"

// readSources is platform/config's function that reads the sites.
const readSources = "ReadSources"

var sourceVarsOnce = sync.OnceValues(func() (vars, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	return scanSourceVars(filepath.Join(root, "platform", "config"))
})

// scanSourceVars reads the variables ReadSources in the package in dir reads: the
// names passed to its *Reader parameter's accessors, and the per-site names it builds
// with SourceVar(site, "NAME"), as patterns. SOURCES' default is the package's
// DefaultSources constant.
func scanSourceVars(dir string) (vars, error) {
	fset := token.NewFileSet()
	var files []*ast.File
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	funcs := map[string]*ast.FuncDecl{}
	consts := map[string]string{}
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					funcs[d.Name.Name] = d
				}
			case *ast.GenDecl:
				if d.Tok != token.CONST {
					continue
				}
				for _, s := range d.Specs {
					vs := s.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							if s, ok := stringLit(vs.Values[i]); ok {
								consts[n.Name] = s
							}
						}
					}
				}
			}
		}
	}
	fn := funcs[readSources]
	if fn == nil {
		return nil, fmt.Errorf("scan %s: no func %s; has the configuration of the sites moved?", dir, readSources)
	}
	reader := ""
	for _, p := range fn.Type.Params.List {
		if star, ok := p.Type.(*ast.StarExpr); ok {
			if id, ok := star.X.(*ast.Ident); ok && id.Name == "Reader" && len(p.Names) == 1 {
				reader = p.Names[0].Name
			}
		}
	}
	if reader == "" {
		return nil, fmt.Errorf("scan %s: %s takes no *Reader", dir, readSources)
	}
	perSite, err := sourceVarPattern(funcs["SourceVar"])
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	out := vars{}
	var errs []error
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || !readerMethods[sel.Sel.Name] {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); !ok || x.Name != reader || len(call.Args) == 0 {
			return true
		}
		def := ""
		if len(call.Args) > 1 {
			def, _ = stringLit(call.Args[1])
		}
		if name, ok := stringLit(call.Args[0]); ok {
			out[name] = def
			return true
		}
		// SourceVar(site, "NAME"): a per-site variable.
		if sv, ok := call.Args[0].(*ast.CallExpr); ok && len(sv.Args) == 2 {
			if id, ok := sv.Fun.(*ast.Ident); ok && id.Name == "SourceVar" {
				if name, ok := stringLit(sv.Args[1]); ok {
					out[perSite(name)] = def
					return true
				}
			}
		}
		errs = append(errs, fmt.Errorf("%s: %s.%s with a name the check cannot read", fset.Position(call.Pos()), reader, sel.Sel.Name))
		return true
	})
	if len(errs) > 0 {
		return nil, errs[0]
	}
	if _, ok := out[sourcesVar]; !ok {
		return nil, fmt.Errorf("scan %s: %s does not read %s", dir, readSources, sourcesVar)
	}
	def, ok := consts["DefaultSources"]
	if !ok {
		return nil, fmt.Errorf("scan %s: no constant DefaultSources, the default of %s", dir, sourcesVar)
	}
	out[sourcesVar] = def
	if !slices.ContainsFunc(slices.Collect(maps.Keys(out)), func(k string) bool { return strings.Contains(k, siteToken) }) {
		return nil, fmt.Errorf("scan %s: %s reads no per-site variable (SourceVar)", dir, readSources)
	}
	return out, nil
}

// sourceVarPattern reads SourceVar(site, name string) string, which must return a
// concatenation of string literals, strings.ToUpper(site) and name, and returns the
// function that spells a per-site variable's pattern from its name.
func sourceVarPattern(fn *ast.FuncDecl) (func(string) string, error) {
	if fn == nil || fn.Body == nil || len(fn.Body.List) != 1 {
		return nil, errors.New("SourceVar is not one return statement")
	}
	var params []string
	for _, p := range fn.Type.Params.List {
		for _, n := range p.Names {
			params = append(params, n.Name)
		}
	}
	ret, ok := fn.Body.List[0].(*ast.ReturnStmt)
	if !ok || len(ret.Results) != 1 || len(params) != 2 {
		return nil, errors.New("SourceVar(site, name) is not one return statement")
	}
	site, name := params[0], params[1]
	const nameToken = "\x00name"
	var spell func(ast.Expr) (string, error)
	spell = func(e ast.Expr) (string, error) {
		switch e := e.(type) {
		case *ast.BinaryExpr:
			if e.Op != token.ADD {
				break
			}
			l, err := spell(e.X)
			if err != nil {
				return "", err
			}
			r, err := spell(e.Y)
			return l + r, err
		case *ast.BasicLit:
			if s, ok := stringLit(e); ok {
				return s, nil
			}
		case *ast.Ident:
			if e.Name == name {
				return nameToken, nil
			}
		case *ast.CallExpr:
			sel, ok := e.Fun.(*ast.SelectorExpr)
			if ok && sel.Sel.Name == "ToUpper" && len(e.Args) == 1 {
				if id, ok := e.Args[0].(*ast.Ident); ok && id.Name == site {
					return siteToken, nil
				}
			}
		}
		return "", errors.New("SourceVar returns what the check cannot spell: want literals, strings.ToUpper(site) and name")
	}
	pattern, err := spell(ret.Results[0])
	if err != nil {
		return nil, err
	}
	if strings.Count(pattern, siteToken) != 1 || strings.Count(pattern, nameToken) != 1 {
		return nil, fmt.Errorf("SourceVar spells %q: want the site and the name once each", strings.ReplaceAll(pattern, nameToken, "<NAME>"))
	}
	return func(n string) string { return strings.Replace(pattern, nameToken, n, 1) }, nil
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// siteOf returns the site a per-site variable is for ("czbooks" for SOURCE_CZBOOKS_URL)
// when name matches one of v's patterns with a well-formed site id.
func (v vars) siteOf(name string) (string, bool) {
	for k := range v {
		before, after, ok := strings.Cut(k, siteToken)
		if !ok {
			continue
		}
		mid, ok := strings.CutPrefix(name, before)
		if !ok {
			continue
		}
		if mid, ok = strings.CutSuffix(mid, after); !ok {
			continue
		}
		if site := strings.ToLower(mid); strings.ToUpper(site) == mid && events.ValidSiteID(site) {
			return site, true
		}
	}
	return "", false
}

// readsSites reports whether a program reading v reads the source sites.
func (v vars) readsSites() bool {
	_, ok := v[sourcesVar]
	return ok
}

// siteList reads a SOURCES value as ReadSources does: comma-separated, trimmed,
// lower-cased.
func siteList(s string) []string {
	var out []string
	for id := range strings.SplitSeq(s, ",") {
		out = append(out, strings.ToLower(strings.TrimSpace(id)))
	}
	return out
}

// checkSites holds the rules on the sites one program is given (env) and returns the
// sites in force ("" when the program reads none): SOURCES lists well-formed ids, each
// once, and every per-site variable is for a listed site. running says the program is a
// service that runs (not a one-shot), which must be given SOURCES itself.
func checkSites(env map[string]string, v vars, running bool) (sites string, errs []error) {
	if !v.readsSites() {
		return "", nil
	}
	value, given := env[sourcesVar]
	if !given {
		value = v[sourcesVar]
		if running {
			errs = append(errs, fmt.Errorf("%s is not given: every service needs the same list of sites (the shared configuration)", sourcesVar))
		}
	}
	ids := siteList(value)
	seen := map[string]bool{}
	for _, id := range ids {
		switch {
		case !events.ValidSiteID(id):
			errs = append(errs, fmt.Errorf("%s=%q: %q is not a site id (a lowercase letter, then letters and digits)", sourcesVar, value, id))
		case seen[id]:
			errs = append(errs, fmt.Errorf("%s=%q lists %s twice", sourcesVar, value, id))
		}
		seen[id] = true
	}
	for _, name := range slices.Sorted(maps.Keys(env)) {
		if site, ok := v.siteOf(name); ok && !seen[site] {
			errs = append(errs, fmt.Errorf("%s is for site %s, which %s=%q does not list", name, site, sourcesVar, value))
		}
	}
	return strings.Join(ids, ","), errs
}

// sameSites reports programs of one deployment given different SOURCES; bySites maps
// each list in force to the programs given it.
func sameSites(bySites map[string][]string) error {
	if len(bySites) < 2 {
		return nil
	}
	var parts []string
	for _, s := range slices.Sorted(maps.Keys(bySites)) {
		parts = append(parts, fmt.Sprintf("%q for %s", s, strings.Join(bySites[s], ", ")))
	}
	return fmt.Errorf("the services disagree on %s: %s; give them all one list", sourcesVar, strings.Join(parts, "; "))
}

// fetcherBuiltin is the function of the fetcher (package services/fetcher) that returns
// the registry of the site adapters built into it. A fetcher given a site it has no
// adapter for refuses to start, naming the ones it has: every fetcher of the deployment
// would crash-loop, its other sites unserved too.
const fetcherBuiltin = "Builtin"

var builtinSitesOnce = sync.OnceValues(func() ([]string, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	return scanBuiltinSites(filepath.Join(root, "services", "fetcher"))
})

// scanBuiltinSites reads the site ids of the adapters the module in dir builds in: every
// <pkg>.Adapter() called in its func Builtin, <pkg> being a package of the module whose
// constant ID is the site id the adapter registers under.
func scanBuiltinSites(dir string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return nil, err
	}
	module := modfile.ModulePath(data)
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []string
	found := false
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		imports := map[string]string{} // name in the file: import path
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			name := path.Base(p)
			if im.Name != nil {
				name = im.Name.Name
			}
			imports[name] = p
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || fn.Name.Name != fetcherBuiltin || fn.Body == nil {
				continue
			}
			found = true
			var errs []error
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "Adapter" || len(call.Args) != 0 {
					return true
				}
				x, _ := sel.X.(*ast.Ident)
				var rel string
				if x != nil {
					rel, ok = strings.CutPrefix(imports[x.Name], module+"/")
				}
				if !ok || x == nil {
					errs = append(errs, fmt.Errorf("%s: an Adapter() the check cannot follow: want <package of %s>.Adapter()", fset.Position(call.Pos()), module))
					return true
				}
				id, err := packageConst(filepath.Join(dir, filepath.FromSlash(rel)), "ID")
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", fset.Position(call.Pos()), err))
					return true
				}
				ids = append(ids, id)
				return true
			})
			if len(errs) > 0 {
				return nil, errs[0]
			}
		}
	}
	if !found {
		return nil, fmt.Errorf("scan %s: no func %s; where are the fetcher's adapters registered now?", dir, fetcherBuiltin)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("scan %s: %s calls no <package>.Adapter()", dir, fetcherBuiltin)
	}
	slices.Sort(ids)
	return ids, nil
}

// packageConst returns the string constant name of the Go package in dir.
func packageConst(dir, name string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			return "", err
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, sp := range g.Specs {
				vs := sp.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if n.Name == name && i < len(vs.Values) {
						if s, ok := stringLit(vs.Values[i]); ok {
							return s, nil
						}
					}
				}
			}
		}
	}
	return "", fmt.Errorf("package %s has no string constant %s (the site id of its adapter)", dir, name)
}

// checkAdapters reports a site in force (sites, as checkSites returns them) that no
// adapter built into the fetcher serves: such a fetcher refuses to start.
func checkAdapters(sites string) []error {
	builtin, err := builtinSitesOnce()
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, id := range siteList(sites) {
		if events.ValidSiteID(id) && !slices.Contains(builtin, id) {
			errs = append(errs, fmt.Errorf("%s=%q: site %s has no adapter built into the fetcher (fetcher.%s has %v): the fetchers would refuse to start", sourcesVar, sites, id, fetcherBuiltin, builtin))
		}
	}
	return errs
}

func TestBuiltinSites(t *testing.T) {
	ids, err := builtinSitesOnce()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ids, "xsw") {
		t.Errorf("the fetcher builds in %v, without xsw (m.xsw.tw)", ids)
	}
	for _, id := range ids {
		if !events.ValidSiteID(id) {
			t.Errorf("the fetcher builds in an adapter under %q, no site id", id)
		}
	}
}

func TestScanBuiltinSites(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/f\n\ngo 1.26\n",
		"f.go": `package f

import (
	"example.com/f/site"
	one "example.com/f/site/a"
	"example.com/f/site/b"
)

func Builtin() site.Registry {
	r := site.Registry{}
	for _, a := range []site.Adapter{one.Adapter(), b.Adapter()} {
		_ = r.Add(a)
	}
	return r
}
`,
		"site/a/a.go": "package a\n\nconst ID = \"alpha\"\n",
		"site/b/b.go": "package b\n\nconst (\n\tDefaultURL = \"x\"\n\tID = \"beta\"\n)\n",
	}
	for name, text := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := scanBuiltinSites(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"alpha", "beta"}; !slices.Equal(ids, want) {
		t.Errorf("scan: %v, want %v", ids, want)
	}
	if err := os.WriteFile(filepath.Join(dir, "site/b/b.go"), []byte("package b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := scanBuiltinSites(dir); err == nil || !strings.Contains(err.Error(), "no string constant ID") {
		t.Errorf("an adapter package without ID: %v", err)
	}
}

func TestScanSourceVars(t *testing.T) {
	v, err := sourceVarsOnce()
	if err != nil {
		t.Fatal(err)
	}
	want := vars{"SOURCES": "xsw", "BASE_URL": "", "BG_JOB_RATE_LIMIT": "", "SOURCE_<SITE>_URL": "", "SOURCE_<SITE>_RATE_LIMIT": ""}
	if !maps.Equal(v, want) {
		t.Errorf("ReadSources reads %v, want %v (docs/configuration.md)", v, want)
	}
}

func TestScanVarsFollowsReadSources(t *testing.T) {
	dir := t.TempDir()
	src := `package x

import (
	"github.com/xswtw/xsw/events"
	cfg "github.com/xswtw/xsw/platform/config"
)

func f(getenv func(string) string) cfg.Sources {
	r := cfg.NewReader(getenv)
	_ = r.String("OWN_VAR", "x")
	return cfg.ReadSources(r, events.ValidSiteID)
}
`
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := scanVars(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"OWN_VAR", "SOURCES", "BASE_URL", "BG_JOB_RATE_LIMIT", "SOURCE_XSW_URL", "SOURCE_CZBOOKS_RATE_LIMIT"} {
		if !v.allows(name) {
			t.Errorf("a program calling ReadSources: %s not allowed (vars %v)", name, v.names())
		}
	}
	if v[sourcesVar] != "xsw" {
		t.Errorf("SOURCES default %q, want xsw", v[sourcesVar])
	}
}

func TestPerSiteVariables(t *testing.T) {
	v, err := sourceVarsOnce()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, site string
	}{
		{"SOURCE_XSW_URL", "xsw"},
		{"SOURCE_CZBOOKS_RATE_LIMIT", "czbooks"},
		{"SOURCE_A1_URL", "a1"},
		{"SOURCE_ABCDEFGHIJKLMNOP_URL", "abcdefghijklmnop"}, // 16, the longest site id
		{"SOURCE_ABCDEFGHIJKLMNOPQ_URL", ""},
		{"SOURCE__URL", ""},
		{"SOURCE_xsw_URL", ""},
		{"SOURCE_1X_URL", ""},
		{"SOURCE_CZ_BOOKS_URL", ""},
		{"SOURCE_CZBOOKS_TIMEOUT", ""},
		{"SOURCE_CZBOOKS", ""},
		{"SOURCES", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			site, ok := v.siteOf(tc.name)
			if site != tc.site || ok != (tc.site != "") {
				t.Errorf("siteOf(%s) = %q, %v; want %q", tc.name, site, ok, tc.site)
			}
			if got := v.allows(tc.name); got != (tc.site != "" || tc.name == "SOURCES") {
				t.Errorf("allows(%s) = %v", tc.name, got)
			}
		})
	}
}

func TestCheckSites(t *testing.T) {
	v, err := sourceVarsOnce()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		running bool
		sites   string
		want    []string // fragments of the errors, in order
	}{
		{"one site", map[string]string{"SOURCES": "xsw", "SOURCE_XSW_URL": "https://m.xsw.tw"}, true, "xsw", nil},
		{"two sites", map[string]string{"SOURCES": " czbooks, XSW ", "SOURCE_CZBOOKS_RATE_LIMIT": "5", "SOURCE_XSW_URL": "u"}, true, "czbooks,xsw", nil},
		{"default for a one-shot", map[string]string{"DATABASE_URL": "x"}, false, "xsw", nil},
		{"not given to a service", map[string]string{"BASE_URL": "x"}, true, "xsw", []string{"SOURCES is not given"}},
		{"unlisted site", map[string]string{"SOURCES": "xsw", "SOURCE_CZBOOKS_URL": "https://czbooks.net"}, true, "xsw",
			[]string{`SOURCE_CZBOOKS_URL is for site czbooks, which SOURCES="xsw" does not list`}},
		{"unlisted site by default", map[string]string{"SOURCE_TOY_URL": "http://toy"}, false, "xsw", []string{"SOURCE_TOY_URL is for site toy"}},
		{"malformed id", map[string]string{"SOURCES": "xsw,cz.books"}, true, "xsw,cz.books", []string{`"cz.books" is not a site id`}},
		{"empty id", map[string]string{"SOURCES": "xsw,"}, true, "xsw,", []string{`"" is not a site id`}},
		{"twice", map[string]string{"SOURCES": "xsw,XSW"}, true, "xsw,xsw", []string{"lists xsw twice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sites, errs := checkSites(tc.env, v, tc.running)
			if sites != tc.sites {
				t.Errorf("sites %q, want %q", sites, tc.sites)
			}
			if len(errs) != len(tc.want) {
				t.Fatalf("errors %v, want %d: %v", errs, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %q, want %q", errs[i], w)
				}
			}
		})
	}
	if sites, errs := checkSites(map[string]string{"NATS_URL": "x"}, vars{"NATS_URL": ""}, true); sites != "" || errs != nil {
		t.Errorf("a program that reads no sites: %q, %v", sites, errs)
	}
}
