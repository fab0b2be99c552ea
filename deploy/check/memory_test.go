package check

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The fetcher's memory. A fetcher holds a fetched page, of up to MAX_PAGE_BYTES, for
// every job its workers run (BG_JOB_WORKERS for each site of SOURCES) and for every
// gateway call it serves (up to fetcher.RPCConcurrency at once), and parsing a page
// allocates about twelve times its size (measured; see fetcher.DefaultMaxPageBytes). The
// rule (checkFetcherMemory), for a fetcher given a memory limit:
//
//	limit ≥ fetcherBase + (BG_JOB_WORKERS × sites + RPCConcurrency) × MAX_PAGE_BYTES × pageFactor
//
// RPCConcurrency, the defaults of BG_JOB_WORKERS and MAX_PAGE_BYTES and the least
// MAX_PAGE_BYTES the fetcher accepts are read from its Go source (scanFetcherMemory),
// the variables from what the deployment gives it (else those defaults).

// fetcherBase is the fetcher's own footprint, pages aside: the runtime, the NATS
// connection and its buffers, HTTP and TLS connections to the sites, the politeness and
// circuit state. The benchmark measures the process at 20.3 MiB peak RSS
// (BENCHMARKS.md, footprint.peak_rss_mb.fetcher of its record: BG_JOB_WORKERS=16 on pages of
// a few KB, so with its pages in it); 64 MiB keeps three times that, for the GC's
// headroom (GOGC) and for real sites' TLS connections, which the benchmark's loopback
// site does not have. TestFetcherBase holds the measurement under it.
const fetcherBase = 64 << 20

// pageFactor is what one page in flight takes, in page sizes: the page itself and about
// twelve times its size that parsing allocates.
const pageFactor = 13

const mib = 1 << 20

// fetcherMemory is what the fetcher's source says about the pages it holds.
type fetcherMemory struct {
	rpcConcurrency int64            // fetcher.RPCConcurrency
	defaults       map[string]int64 // BG_JOB_WORKERS and MAX_PAGE_BYTES when unset
	minPageBytes   int64            // the least MAX_PAGE_BYTES the fetcher accepts
}

const (
	workersVar  = "BG_JOB_WORKERS"
	pageVar     = "MAX_PAGE_BYTES"
	rpcConstant = "RPCConcurrency"
	// pageField is the Config field MAX_PAGE_BYTES is read into; validateVars bounds it.
	pageField = "MaxPageBytes"
)

var fetcherMemoryOnce = sync.OnceValues(func() (fetcherMemory, error) {
	root, err := repoRoot()
	if err != nil {
		return fetcherMemory{}, err
	}
	return scanFetcherMemory(filepath.Join(root, "services", "fetcher"))
})

// scanFetcherMemory reads, from the non-test Go files of the package in dir (not its
// subpackages): the constant RPCConcurrency; the defaults of BG_JOB_WORKERS and
// MAX_PAGE_BYTES, the second arguments of their <reader>.Int("NAME", default) calls; and
// the lower bound of MAX_PAGE_BYTES, from a comparison <x>.MaxPageBytes >= <bound>. Each
// must be a constant expression of the package (go/constant evaluates it), not something
// only the program knows when it runs.
func scanFetcherMemory(dir string) (fetcherMemory, error) {
	fail := func(format string, args ...any) (fetcherMemory, error) {
		return fetcherMemory{}, fmt.Errorf("scan %s: "+format, append([]any{dir}, args...)...)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fetcherMemory{}, err
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			return fetcherMemory{}, err
		}
		files = append(files, f)
	}
	consts := packageConsts(files)
	eval := func(e ast.Expr) (int64, error) {
		v, err := evalConst(e, consts, map[string]bool{})
		if err != nil {
			return 0, fmt.Errorf("%s: %w", fset.Position(e.Pos()), err)
		}
		n, ok := constant.Int64Val(constant.ToInt(v))
		if !ok {
			return 0, fmt.Errorf("%s: %s is not an integer", fset.Position(e.Pos()), v)
		}
		return n, nil
	}

	out := fetcherMemory{defaults: map[string]int64{}}
	rpc, ok := consts[rpcConstant]
	if !ok {
		return fail("no constant %s, the gateway calls a fetcher serves at once", rpcConstant)
	}
	if out.rpcConcurrency, err = eval(rpc); err != nil {
		return fail("%s: %v", rpcConstant, err)
	}
	var errs []error
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "Int" || len(n.Args) != 2 {
					return true
				}
				name, ok := stringLit(n.Args[0])
				if !ok || (name != workersVar && name != pageVar) {
					return true
				}
				def, err := eval(n.Args[1])
				if err != nil {
					errs = append(errs, fmt.Errorf("the default of %s: %w", name, err))
					return true
				}
				if old, seen := out.defaults[name]; seen && old != def {
					errs = append(errs, fmt.Errorf("%s is read with two defaults, %d and %d", name, old, def))
				}
				out.defaults[name] = def
			case *ast.BinaryExpr:
				if sel, ok := n.X.(*ast.SelectorExpr); ok && n.Op == token.GEQ && sel.Sel.Name == pageField {
					min, err := eval(n.Y)
					if err != nil {
						errs = append(errs, fmt.Errorf("the least %s: %w", pageVar, err))
						return true
					}
					out.minPageBytes = min
				}
			}
			return true
		})
	}
	if len(errs) > 0 {
		return fail("%v", errs[0])
	}
	for _, name := range []string{workersVar, pageVar} {
		if _, ok := out.defaults[name]; !ok {
			return fail("no <reader>.Int(%q, default); how does the fetcher read it now?", name)
		}
	}
	if out.minPageBytes <= 0 {
		return fail("no check <config>.%s >= <least>; how does the fetcher bound %s now?", pageField, pageVar)
	}
	return out, nil
}

// packageConsts maps each constant of the files that is given a value to its expression.
func packageConsts(files []*ast.File) map[string]ast.Expr {
	out := map[string]ast.Expr{}
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, sp := range g.Specs {
				vs := sp.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						out[n.Name] = vs.Values[i]
					}
				}
			}
		}
	}
	return out
}

// evalConst evaluates a constant expression of literals, the package's constants
// (consts), parentheses, unary and binary operators and conversions to a basic numeric
// type, as the compiler would; anything else is an error. seen guards against a cycle.
func evalConst(e ast.Expr, consts map[string]ast.Expr, seen map[string]bool) (constant.Value, error) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if v := constant.MakeFromLiteral(e.Value, e.Kind, 0); v.Kind() != constant.Unknown {
			return v, nil
		}
	case *ast.ParenExpr:
		return evalConst(e.X, consts, seen)
	case *ast.Ident:
		x, ok := consts[e.Name]
		if !ok || seen[e.Name] {
			return nil, fmt.Errorf("%s is no constant of the package the check can evaluate", e.Name)
		}
		seen[e.Name] = true
		defer delete(seen, e.Name)
		return evalConst(x, consts, seen)
	case *ast.UnaryExpr:
		x, err := evalConst(e.X, consts, seen)
		if err != nil {
			return nil, err
		}
		if e.Op == token.ADD || e.Op == token.SUB || e.Op == token.XOR {
			return constant.UnaryOp(e.Op, x, 0), nil
		}
	case *ast.BinaryExpr:
		x, err := evalConst(e.X, consts, seen)
		if err != nil {
			return nil, err
		}
		y, err := evalConst(e.Y, consts, seen)
		if err != nil {
			return nil, err
		}
		switch e.Op {
		case token.SHL, token.SHR:
			s, ok := constant.Uint64Val(constant.ToInt(y))
			if !ok || x.Kind() != constant.Int {
				break
			}
			return constant.Shift(x, e.Op, uint(s)), nil
		case token.QUO:
			if constant.Sign(y) == 0 {
				break
			}
			if x.Kind() == constant.Int && y.Kind() == constant.Int {
				return constant.BinaryOp(x, token.QUO_ASSIGN, y), nil // integer division
			}
			return constant.BinaryOp(x, e.Op, y), nil
		case token.ADD, token.SUB, token.MUL, token.REM, token.AND, token.OR, token.XOR, token.AND_NOT:
			return constant.BinaryOp(x, e.Op, y), nil
		}
	case *ast.CallExpr:
		if id, ok := e.Fun.(*ast.Ident); ok && len(e.Args) == 1 && numericTypes[id.Name] {
			return evalConst(e.Args[0], consts, seen)
		}
	}
	return nil, fmt.Errorf("%T is not a constant expression the check can evaluate", e)
}

var numericTypes = map[string]bool{
	"int": true, "int8": true, "int16": true, "int32": true, "int64": true,
	"uint": true, "uint8": true, "uint16": true, "uint32": true, "uint64": true, "uintptr": true,
	"float32": true, "float64": true, "byte": true, "rune": true,
}

// intSetting reads an integer variable as platform/config's Reader.Int does: unset or
// blank is the default.
func intSetting(env map[string]string, name string, def int64) (int64, error) {
	s, ok := env[name]
	if s == secretValue {
		return 0, fmt.Errorf("%s comes from a Secret or a field: the check cannot read it", name)
	}
	if s = strings.TrimSpace(s); !ok || s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not an integer", name, s)
	}
	return int64(n), nil
}

// inMiB spells a number of bytes in MiB.
func inMiB(n int64) string {
	if n%mib == 0 {
		return fmt.Sprintf("%d MiB", n/mib)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/mib)
}

// checkFetcherMemory holds a fetcher given env, serving sites (as checkSites returns
// them), to the rule above under its memory limit of limit bytes (spelt what), and says
// which variable to lower, and to what, when it does not fit.
func checkFetcherMemory(env map[string]string, sites string, what string, limit int64) error {
	m, err := fetcherMemoryOnce()
	if err != nil {
		return err
	}
	workers, werr := intSetting(env, workersVar, m.defaults[workersVar])
	page, perr := intSetting(env, pageVar, m.defaults[pageVar])
	if err := errors.Join(werr, perr); err != nil {
		return err
	}
	n := int64(len(siteList(sites)))
	held := workers*n + m.rpcConcurrency // pages in flight at most
	need := fetcherBase + held*page*pageFactor
	if limit >= need {
		return nil
	}
	var fixes []string
	if room := limit - fetcherBase; room > 0 {
		if most := room / (held * pageFactor); most >= m.minPageBytes {
			fixes = append(fixes, fmt.Sprintf("lower %s to at most %d", pageVar, most))
		}
		if most := (room/(page*pageFactor) - m.rpcConcurrency) / n; most >= 1 {
			fixes = append(fixes, fmt.Sprintf("lower %s to at most %d", workersVar, most))
		}
	}
	fixes = append(fixes, fmt.Sprintf("raise the limit to at least %s", inMiB(need)))
	siteWord := "sites"
	if n == 1 {
		siteWord = "site"
	}
	return fmt.Errorf("%s is under the %s a fetcher may take: %s base + (%s=%d × %d %s + %s %d) × %s=%d × %d; %s",
		what, inMiB(need), inMiB(fetcherBase), workersVar, workers, n, siteWord, rpcConstant, m.rpcConcurrency,
		pageVar, page, pageFactor, strings.Join(fixes, ", or "))
}

func TestFetcherMemorySource(t *testing.T) {
	m, err := fetcherMemoryOnce()
	if err != nil {
		t.Fatal(err)
	}
	// What fetcher.go says today: its comment on DefaultMaxPageBytes does this sum.
	if m.rpcConcurrency != 16 || m.defaults[workersVar] != 2 || m.defaults[pageVar] != 512<<10 || m.minPageBytes != 64<<10 {
		t.Errorf("read %+v; want RPCConcurrency 16, BG_JOB_WORKERS 2, MAX_PAGE_BYTES 524288, at least 65536", m)
	}
}

func TestScanFetcherMemory(t *testing.T) {
	dir := t.TempDir()
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "f.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`package f

const (
	RPCConcurrency = workers * (3 + 1) // 8
	workers        = 2
	kib            = 1 << 10
	DefaultPage    = int64(3 * kib / 2)
)

func read(r reader) config {
	c := config{Workers: r.Int("BG_JOB_WORKERS", workers), MaxPageBytes: int64(r.Int("MAX_PAGE_BYTES", DefaultPage))}
	_ = c.MaxPageBytes >= 64<<10/2 && c.MaxPageBytes <= 1<<20
	return c
}
`)
	m, err := scanFetcherMemory(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.rpcConcurrency != 8 || m.defaults[workersVar] != 2 || m.defaults[pageVar] != 1536 || m.minPageBytes != 32768 {
		t.Errorf("scan: %+v", m)
	}
	write(`package f

import "os"

var RPCConcurrency = 16
`)
	if _, err := scanFetcherMemory(dir); err == nil || !strings.Contains(err.Error(), "no constant RPCConcurrency") {
		t.Errorf("RPCConcurrency a variable: %v", err)
	}
	write(`package f

import "os"

const RPCConcurrency = 16

func read(r reader) {
	_ = r.Int("BG_JOB_WORKERS", 2)
	_ = r.Int("MAX_PAGE_BYTES", len(os.Args))
}
`)
	if _, err := scanFetcherMemory(dir); err == nil || !strings.Contains(err.Error(), "not a constant expression") {
		t.Errorf("a default computed at run time: %v", err)
	}
}

func TestCheckFetcherMemory(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string
		sites string
		limit int64
		want  string // "" for none
	}{
		// 64 MiB + (2 × 2 + 16) × 512 KiB × 13 = 194 MiB.
		{"defaults in 256Mi", nil, "xsw,czbooks", 256 * mib, ""},
		{"defaults in exactly enough", nil, "xsw,czbooks", 194 * mib, ""},
		{"defaults in 128Mi", map[string]string{"BG_JOB_WORKERS": " "}, "xsw,czbooks", 128 * mib,
			"memory limit 128 MiB is under the 194 MiB a fetcher may take: 64 MiB base + (BG_JOB_WORKERS=2 × 2 sites + RPCConcurrency 16) × MAX_PAGE_BYTES=524288 × 13; " +
				"lower MAX_PAGE_BYTES to at most 258111, or raise the limit to at least 194 MiB"},
		{"many workers", map[string]string{"BG_JOB_WORKERS": "16"}, "xsw,czbooks", 256 * mib,
			"memory limit 256 MiB is under the 376 MiB a fetcher may take: 64 MiB base + (BG_JOB_WORKERS=16 × 2 sites + RPCConcurrency 16) × MAX_PAGE_BYTES=524288 × 13; " +
				"lower MAX_PAGE_BYTES to at most 322638, or lower BG_JOB_WORKERS to at most 6, or raise the limit to at least 376 MiB"},
		{"no room at all", map[string]string{"MAX_PAGE_BYTES": "65536"}, "xsw", 64 * mib,
			"memory limit 64 MiB is under the 78.6 MiB a fetcher may take: 64 MiB base + (BG_JOB_WORKERS=2 × 1 site + RPCConcurrency 16) × MAX_PAGE_BYTES=65536 × 13; raise the limit to at least 78.6 MiB"},
		{"not a number", map[string]string{"MAX_PAGE_BYTES": "512k"}, "xsw", 256 * mib, `MAX_PAGE_BYTES="512k" is not an integer`},
		{"from a Secret", map[string]string{"BG_JOB_WORKERS": secretValue}, "xsw", 256 * mib, "BG_JOB_WORKERS comes from a Secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkFetcherMemory(tc.env, tc.sites, "memory limit "+inMiB(tc.limit), tc.limit)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v,\nwant %s", err, tc.want)
			}
		})
	}
}

// TestFetcherBase holds fetcherBase above the fetcher's peak resident set as the
// benchmark last measured it: BENCHMARKS.md ends with a record of its run, as JSON in a
// comment.
func TestFetcherBase(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(mustRoot(t), "BENCHMARKS.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, record, ok := strings.Cut(string(data), "<!-- bench:record ")
	record, _, _ = strings.Cut(record, " -->")
	var r struct {
		Footprint struct {
			PeakRSSMB map[string]float64 `json:"peak_rss_mb"`
		} `json:"footprint"`
	}
	if !ok {
		t.Fatal("BENCHMARKS.md has no record of its run (<!-- bench:record {...} -->); does dev/bench still write one?")
	}
	if err := json.Unmarshal([]byte(record), &r); err != nil {
		t.Fatalf("BENCHMARKS.md record: %v", err)
	}
	rss, ok := r.Footprint.PeakRSSMB["fetcher"]
	if !ok || rss <= 0 {
		t.Fatalf("BENCHMARKS.md's record has no footprint.peak_rss_mb.fetcher; where does the benchmark report the fetcher's RSS now?")
	}
	if rss*mib > fetcherBase {
		t.Errorf("the fetcher's measured peak RSS, %.1f MiB, is above the %s the memory rule allows it beyond its pages: raise fetcherBase", rss, inMiB(fetcherBase))
	}
}
