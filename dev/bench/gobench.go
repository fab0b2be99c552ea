package main

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// GoBenchmark is one result line of `go test -bench`.
type GoBenchmark struct {
	Package string `json:"package"`
	// Name is the benchmark's name without its GOMAXPROCS suffix.
	Name       string             `json:"name"`
	Procs      int                `json:"procs"`
	Iterations int64              `json:"iterations"`
	Metrics    map[string]float64 `json:"metrics"`
}

// parseGoBench reads the output of `go test -bench` (the standard benchmark format, of
// any number of packages) and returns its results in order, and the packages and
// benchmarks that failed. Other lines are skipped. A result whose name was printed on a
// line of its own, before the benchmark's log output, is matched with the figures
// printed after.
func parseGoBench(r io.Reader) (results []GoBenchmark, failed []string, err error) {
	var out []GoBenchmark
	pkg, pending := "", ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg, pending = strings.TrimSpace(p), ""
			continue
		}
		if rest, ok := strings.CutPrefix(line, "--- FAIL: "); ok {
			failed = append(failed, pkg+" "+strings.Fields(rest + " ?")[0])
			continue
		}
		if rest, ok := strings.CutPrefix(line, "FAIL\t"); ok {
			failed = append(failed, strings.Join(strings.Fields(rest), " "))
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		name := ""
		if strings.HasPrefix(f[0], "Benchmark") {
			name, f = f[0], f[1:]
			if len(f) == 0 {
				pending = name
				continue
			}
		} else if pending != "" {
			name = pending
		} else {
			continue
		}
		b, ok := parseResult(f)
		if !ok {
			continue
		}
		pending = ""
		b.Package = pkg
		b.Name, b.Procs = splitProcs(name)
		out = append(out, b)
	}
	return out, failed, sc.Err()
}

// parseResult reads "<iterations> <value> <unit> <value> <unit>...".
func parseResult(f []string) (GoBenchmark, bool) {
	if len(f) < 3 || len(f)%2 != 1 {
		return GoBenchmark{}, false
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return GoBenchmark{}, false
	}
	b := GoBenchmark{Iterations: n, Metrics: map[string]float64{}}
	for i := 1; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return GoBenchmark{}, false
		}
		b.Metrics[f[i+1]] = v
	}
	return b, true
}

// splitProcs splits "BenchmarkX/sub-8" into "BenchmarkX/sub" and 8.
func splitProcs(name string) (string, int) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name, 1
	}
	p, err := strconv.Atoi(name[i+1:])
	if err != nil {
		return name, 1
	}
	return name[:i], p
}
