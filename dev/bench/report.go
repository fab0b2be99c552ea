package main

import (
	"bytes"
	"cmp"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"text/template"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// reportTemplate renders BENCHMARKS.md ("benchmarks") and the README's block of headline
// figures ("headline").
//
//go:embed report.md.tmpl
var reportTemplate string

// report is what the templates render: a run's results, and the notes kept by hand that
// BENCHMARKS.md includes as they are (what changed, a reading of the profiles).
type report struct {
	*Results
	Changes, Hotspots string
}

// Markers of the README's block of headline figures, which the harness rewrites.
const (
	headlineStart = "<!-- bench:headline -->"
	headlineEnd   = "<!-- /bench:headline -->"
)

// Record is what BENCHMARKS.md keeps of its run for programs, as JSON in its last line
// (a comment): the next run compares its targets with it, and deploy/check reads the
// fetcher's peak RSS from it.
type Record struct {
	Date      time.Time `json:"date"`
	Machine   string    `json:"machine"`
	Targets   []Target  `json:"targets"`
	Footprint Footprint `json:"footprint"`
}

// recordStart opens the comment that holds the Record.
const recordStart = "<!-- bench:record "

// readRecord reads the Record of the report at path; it returns nil when there is none.
func readRecord(path string) (*Record, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	_, rest, ok := bytes.Cut(b, []byte(recordStart))
	if !ok {
		return nil, nil
	}
	js, _, _ := bytes.Cut(rest, []byte(" -->"))
	var rec Record
	if err := json.Unmarshal(js, &rec); err != nil {
		return nil, fmt.Errorf("%s: record: %w", path, err)
	}
	return &rec, nil
}

// render executes the template name on rep.
func render(name string, rep report) ([]byte, error) {
	t, err := template.New("report").Funcs(templateFuncs()).Parse(reportTemplate)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, name, rep); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// replaceBlock replaces what lies between the headline markers of doc with block. It
// reports false when doc has no such markers.
func replaceBlock(doc, block string) (string, bool) {
	i := strings.Index(doc, headlineStart)
	j := strings.Index(doc, headlineEnd)
	if i < 0 || j < i {
		return doc, false
	}
	return doc[:i+len(headlineStart)] + "\n" + block + doc[j:], true
}

// AllPipelines are the pipeline figures, in-process first.
func (r report) AllPipelines() []Pipeline {
	all := slices.Clone(r.Pipeline)
	for _, p := range []*Pipeline{r.PipelineProcesses, r.PipelineAllInOne} {
		if p != nil {
			all = append(all, *p)
		}
	}
	return all
}

// TwoSitesApart reports whether the two-site figures were measured outside this run (a
// run of that scenario alone, merged in).
func (r report) TwoSitesApart() bool {
	t, m := r.TwoSites, r.Machine
	return t.Date.Before(m.Date) || t.Date.After(m.Date.Add(time.Duration(r.TookSeconds*float64(time.Second))))
}

// goBenchTable is one package's table of Go benchmarks.
type goBenchTable struct {
	Package string
	Units   []string   // the units beyond ns/op, MB/s, B/op and allocs/op
	Rows    [][]string // benchmark, ops/s, ns/op, MB/s, B/op, allocs/op, then Units
}

func goBenchTables(gbs []GoBenchmark) []goBenchTable {
	byPkg := map[string][]GoBenchmark{}
	for _, gb := range gbs {
		byPkg[gb.Package] = append(byPkg[gb.Package], gb)
	}
	var out []goBenchTable
	for _, pkg := range sortedKeys(byPkg) {
		extra := map[string]bool{}
		for _, gb := range byPkg[pkg] {
			for u := range gb.Metrics {
				if !slices.Contains([]string{"ns/op", "B/op", "allocs/op", "MB/s"}, u) {
					extra[u] = true
				}
			}
		}
		t := goBenchTable{Package: strings.TrimPrefix(pkg, ownPrefix), Units: sortedKeys(extra)}
		for _, gb := range byPkg[pkg] {
			ops := "—"
			if ns := gb.Metrics["ns/op"]; ns > 0 {
				ops = num(1e9/ns, 0)
			}
			row := []string{strings.TrimPrefix(gb.Name, "Benchmark"), ops, metric(gb.Metrics, "ns/op", 0), metric(gb.Metrics, "MB/s", 1),
				metric(gb.Metrics, "B/op", 0), metric(gb.Metrics, "allocs/op", 0)}
			for _, u := range t.Units {
				row = append(row, metric(gb.Metrics, u, 0))
			}
			t.Rows = append(t.Rows, row)
		}
		out = append(out, t)
	}
	return out
}

// topFunctions pairs a profile's top functions, flat and cumulative, one row each.
func topFunctions(p ProfileSummary) []string {
	cell := func(s []Share, i int) string {
		if i >= len(s) {
			return " | "
		}
		return fmt.Sprintf("`%s` | %.1f%%", shortFn(s[i].Name), s[i].Percent)
	}
	var rows []string
	for i := range max(len(p.Flat), len(p.OwnCum)) {
		rows = append(rows, cell(p.Flat, i)+" | | "+cell(p.OwnCum, i))
	}
	return rows
}

// entry is one key and value of a map, for ranging over it in key order.
type entry struct {
	Key   string
	Value any
}

// entries lists a map with string keys in sortedKeys order.
func entries(m any) []entry {
	v := reflect.ValueOf(m)
	byKey := map[string]any{}
	for _, k := range v.MapKeys() {
		byKey[k.String()] = v.MapIndex(k).Interface()
	}
	var out []entry
	for _, k := range sortedKeys(byKey) {
		out = append(out, entry{k, byKey[k]})
	}
	return out
}

func templateFuncs() template.FuncMap {
	return template.FuncMap{
		"num": num, "pct": pct, "pct1": pct1, "optional": optional, "errText": errText, "trimFloat": trimFloat,
		"metText": metText, "orDash": orDash, "oneLine": oneLine, "trim": strings.TrimSpace,
		"lowest": lowest, "highest": highest, "entries": entries, "topFunctions": topFunctions, "goBenchTables": goBenchTables,
		"ratio": func(a, b any) float64 { return float64Of(a) / float64Of(b) },
		"mul":   func(a, b any) float64 { return float64Of(a) * float64Of(b) },
		"add":   func(a, b float64) float64 { return a + b },
		"atLeast": func(v, min float64) *bool {
			return boolp(v >= min)
		},
		"last":        func(i int, m any) bool { return i == reflect.ValueOf(m).Len()-1 },
		"dedupWindow": func() string { return trimFloat(dedupWindow.Seconds()) + "s" },
		"rssTarget": func(process string) string {
			if limit, ok := rssLimits[process]; ok {
				return fmt.Sprintf("≤ %.0f MB", limit)
			}
			return "—"
		},
		"previous": func(p *Record, target string) string {
			for _, t := range p.Targets {
				if t.Name == target {
					return t.Got + " (" + metText(t.Met) + ")"
				}
			}
			return "—"
		},
		"record": func(r report) (string, error) {
			b, err := json.Marshal(Record{Date: r.Machine.Date, Machine: r.Machine.summary(), Targets: r.Targets, Footprint: r.Footprint})
			return string(b), err
		},
	}
}

// float64Of converts an int or a float64 for the templates' arithmetic.
func float64Of(v any) float64 {
	if i, ok := v.(int); ok {
		return float64(i)
	}
	return v.(float64)
}

func metText(m *bool) string {
	switch {
	case m == nil:
		return "not measured"
	case *m:
		return "**met**"
	default:
		return "**not met**"
	}
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// num formats v with digits decimals and groups of thousands.
func num(v float64, digits int) string {
	return message.NewPrinter(language.English).Sprintf("%.*f", digits, v)
}

func pct(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) }

func pct1(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }

func optional(s Sample, digits int, unit string) string {
	if len(s.Runs) == 0 {
		return "—"
	}
	return num(s.Median, digits) + unit
}

func errText(n int, first string) string {
	if n == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (first: %s)", n, oneLine(first))
}

func trimFloat(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}

func metric(m map[string]float64, unit string, digits int) string {
	v, ok := m[unit]
	if !ok {
		return "—"
	}
	return num(v, digits)
}

// shortFn drops the project's module prefix from a function name.
func shortFn(fn string) string { return strings.TrimPrefix(fn, ownPrefix) }

// sortedKeys sorts the keys of m, numbers in numeric order ("50" before "3000").
func sortedKeys[V any](m map[string]V) []string {
	return slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		if len(a) != len(b) && isDigits(a) && isDigits(b) {
			return cmp.Compare(len(a), len(b))
		}
		return strings.Compare(a, b)
	})
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}
