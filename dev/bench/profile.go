package main

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"

	"github.com/google/pprof/profile"
)

// ProfileSummary is where one profile's time (or allocated bytes) went.
type ProfileSummary struct {
	Name string `json:"name"`
	File string `json:"file"`
	// Note says what ran in the profiled process, when it is not the whole pipeline.
	Note string `json:"note,omitempty"`
	// Unit is "s" (CPU seconds) or "MB" (allocated megabytes).
	Unit  string  `json:"unit"`
	Total float64 `json:"total"`
	// Components attributes each sample to the part of the system that ran it (see
	// component); Topics to what it was doing, wherever that was (see topics). A sample
	// counts once per topic but may count in several topics.
	Components []Share `json:"components"`
	Topics     []Share `json:"topics"`
	// Flat are the functions that spent the most themselves; OwnCum the project's own
	// functions that spent the most with their callees.
	Flat   []Share `json:"top_flat"`
	OwnCum []Share `json:"top_own_cumulative"`
}

// Share is part of a profile's total.
type Share struct {
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Percent float64 `json:"percent"`
}

// mergeProfiles writes the sum of the profiles plus less the profiles minus (profiles of
// this process: the allocation profile is cumulative, so a stretch's allocations are its
// end's profile less its start's) to path.
func mergeProfiles(path string, plus, minus [][]byte) error {
	var all []*profile.Profile
	for i, set := range [][][]byte{plus, minus} {
		for _, b := range set {
			p, err := profile.Parse(bytes.NewReader(b))
			if err != nil {
				return fmt.Errorf("parse profile: %w", err)
			}
			if i == 1 {
				p.Scale(-1)
			}
			all = append(all, p)
		}
	}
	if len(all) == 0 {
		return fmt.Errorf("no profile for %s", path)
	}
	merged, err := profile.Merge(all)
	if err != nil {
		return fmt.Errorf("merge profiles: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := merged.Write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// summariseProfile reads the profile at path and summarises its sample type
// ("cpu" or "alloc_space").
func summariseProfile(name, path, sampleType string) (ProfileSummary, error) {
	f, err := os.Open(path)
	if err != nil {
		return ProfileSummary{}, err
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return ProfileSummary{}, fmt.Errorf("parse %s: %w", path, err)
	}
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == sampleType {
			idx = i
		}
	}
	if idx < 0 {
		return ProfileSummary{}, fmt.Errorf("%s has no %s samples", path, sampleType)
	}
	scale, unit := 1e-9, "s" // nanoseconds
	if sampleType != "cpu" {
		scale, unit = 1.0/(1<<20), "MB"
	}
	stacks := make([]stack, 0, len(p.Sample))
	for _, s := range p.Sample {
		v := float64(s.Value[idx]) * scale
		if v == 0 {
			continue
		}
		var fns []string
		for _, loc := range s.Location {
			for _, line := range loc.Line { // innermost first
				if line.Function != nil {
					fns = append(fns, line.Function.Name)
				}
			}
		}
		stacks = append(stacks, stack{fns: fns, value: v})
	}
	return aggregate(name, path, unit, stacks), nil
}

// stack is one sample: its functions leaf first, and its value.
type stack struct {
	fns   []string
	value float64
}

// aggregate sums samples into a summary.
func aggregate(name, file, unit string, stacks []stack) ProfileSummary {
	s := ProfileSummary{Name: name, File: file, Unit: unit}
	comps, tops, flat, own := map[string]float64{}, map[string]float64{}, map[string]float64{}, map[string]float64{}
	for _, st := range stacks {
		s.Total += st.value
		comps[component(st.fns)] += st.value
		for _, t := range topics(st.fns) {
			tops[t] += st.value
		}
		if len(st.fns) > 0 {
			flat[st.fns[0]] += st.value
		}
		seen := map[string]bool{}
		for _, fn := range st.fns {
			if strings.HasPrefix(fn, ownPrefix) && !seen[fn] {
				seen[fn] = true
				own[fn] += st.value
			}
		}
	}
	s.Components = shares(comps, s.Total, 0)
	s.Topics = shares(tops, s.Total, 0)
	s.Flat = shares(flat, s.Total, 15)
	s.OwnCum = shares(own, s.Total, 15)
	return s
}

// shares sorts m by value, largest first, keeping the first n (all for n = 0).
func shares(m map[string]float64, total float64, n int) []Share {
	out := make([]Share, 0, len(m))
	for k, v := range m {
		sh := Share{Name: k, Value: v}
		if total > 0 {
			sh.Percent = 100 * v / total
		}
		out = append(out, sh)
	}
	slices.SortFunc(out, func(a, b Share) int {
		return cmp.Or(cmp.Compare(b.Value, a.Value), strings.Compare(a.Name, b.Name))
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

const ownPrefix = "github.com/xswtw/xsw/"

// components name the parts of the system by the package prefix of their functions. A
// sample belongs to the first of them met walking its stack from the root: the code that
// owns the goroutine (a fetcher worker, the indexer's loop, a gateway handler, the
// simulated site's handler, the NATS server), whatever library it was in at the leaf.
var components = []struct{ prefix, name string }{
	{ownPrefix + "services/fetcher", "fetcher"},
	{ownPrefix + "services/indexer", "indexer"},
	{ownPrefix + "services/gateway", "gateway"},
	{ownPrefix + "dev/sitesim", "simulated site"},
	{"github.com/nats-io/nats-server", "NATS server (embedded)"},
	{"main.", "harness"},
}

// component names the part of the system a sample (functions leaf first) belongs to.
func component(fns []string) string {
	for i := len(fns) - 1; i >= 0; i-- {
		for _, c := range components {
			if strings.HasPrefix(fns[i], c.prefix) {
				return c.name
			}
		}
	}
	for _, fn := range fns {
		switch {
		case strings.HasPrefix(fn, "github.com/nats-io/nats.go"):
			return "NATS client I/O"
		case strings.HasPrefix(fn, "github.com/jackc/"):
			return "pgx pool upkeep"
		case strings.HasPrefix(fn, "net/http."):
			return "net/http I/O (site client and server)"
		case strings.HasPrefix(fn, "github.com/valyala/fasthttp"):
			return "fasthttp I/O (gateway)"
		case fn == "runtime.gcBgMarkWorker" || fn == "runtime.bgsweep" || fn == "runtime.bgscavenge":
			return "Go GC (background)"
		}
	}
	return "Go runtime and other"
}

// topicPrefixes group functions by what they do, wherever they are called from.
var topicPrefixes = []struct {
	name     string
	prefixes []string
}{
	{"JSON encoding/decoding", []string{"encoding/json."}},
	{"HTML parsing (goquery, x/net/html)", []string{"golang.org/x/net/html", "github.com/PuerkitoBio/goquery", "github.com/andybalholm/cascadia"}},
	{"Postgres client (pgx)", []string{"github.com/jackc/pgx"}},
	{"NATS client (nats.go)", []string{"github.com/nats-io/nats.go"}},
	{"NATS server", []string{"github.com/nats-io/nats-server"}},
	{"HTTP server: Fiber/fasthttp", []string{"github.com/gofiber/", "github.com/valyala/fasthttp"}},
	{"net/http (client and server)", []string{"net/http."}},
	{"logging (slog)", []string{"log/slog."}},
	{"memory allocation", []string{"runtime.mallocgc"}},
	{"garbage collection", []string{"runtime.gcBgMarkWorker", "runtime.gcAssistAlloc", "runtime.bgsweep"}},
	{"system calls", []string{"syscall.Syscall", "syscall.RawSyscall", "internal/runtime/syscall.", "runtime/internal/syscall."}},
	{"scheduler (idle, park, wake)", []string{"runtime.schedule", "runtime.findRunnable", "runtime.park_m", "runtime.futex", "runtime.notesleep"}},
	{"rendering pages (simulated site)", []string{ownPrefix + "dev/sitesim.(*Site).render"}},
}

// topics lists the topics a sample (functions leaf first) touches.
func topics(fns []string) []string {
	var out []string
	for _, t := range topicPrefixes {
		if slices.ContainsFunc(fns, func(fn string) bool {
			return slices.ContainsFunc(t.prefixes, func(p string) bool { return strings.HasPrefix(fn, p) })
		}) {
			out = append(out, t.name)
		}
	}
	return out
}

// profiles records a CPU profile and the allocations of this process while running:
// between start and stop, less the pauses.
type profiles struct {
	dir, name string
	running   bool
	cur       *bytes.Buffer // the CPU profile of the current stretch
	cpu       [][]byte      // CPU profiles of the stretches done
	before    [][]byte      // allocation profiles at the start of each stretch
	after     [][]byte      // and at its end
}

func startProfiles(dir, name string) (*profiles, error) {
	p := &profiles{dir: dir, name: name}
	return p, p.resume()
}

func allocProfile() ([]byte, error) {
	var b bytes.Buffer
	err := pprof.Lookup("allocs").WriteTo(&b, 0)
	return b.Bytes(), err
}

// resume starts a stretch.
func (p *profiles) resume() error {
	if p.running {
		return nil
	}
	a, err := allocProfile()
	if err != nil {
		return err
	}
	p.cur = new(bytes.Buffer)
	if err := pprof.StartCPUProfile(p.cur); err != nil {
		return err
	}
	p.before, p.running = append(p.before, a), true
	return nil
}

// pause ends a stretch.
func (p *profiles) pause() error {
	if !p.running {
		return nil
	}
	pprof.StopCPUProfile()
	p.running = false
	p.cpu = append(p.cpu, p.cur.Bytes())
	a, err := allocProfile()
	p.after = append(p.after, a)
	return err
}

// stop ends the profiles, writes <name>.cpu.pprof and <name>.alloc.pprof (the
// allocations of the stretches) and summarises both.
func (p *profiles) stop() ([]ProfileSummary, error) {
	if err := p.pause(); err != nil {
		return nil, err
	}
	cpuPath := filepath.Join(p.dir, p.name+".cpu.pprof")
	allocPath := filepath.Join(p.dir, p.name+".alloc.pprof")
	if err := mergeProfiles(cpuPath, p.cpu, nil); err != nil {
		return nil, err
	}
	if err := mergeProfiles(allocPath, p.after, p.before); err != nil {
		return nil, err
	}
	cpu, err := summariseProfile(p.name+" CPU", cpuPath, "cpu")
	if err != nil {
		return nil, err
	}
	alloc, err := summariseProfile(p.name+" allocations", allocPath, "alloc_space")
	if err != nil {
		return nil, err
	}
	return []ProfileSummary{cpu, alloc}, nil
}
