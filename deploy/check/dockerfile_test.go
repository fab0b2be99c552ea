package check

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"golang.org/x/mod/modfile"
)

// dockerfile is a Dockerfile resolved for one set of build arguments, as BuildKit builds
// it with the repository root as its context: the stages the image needs, in order, with
// the build arguments and ENV substituted wherever BuildKit substitutes them (FROM, COPY,
// WORKDIR, ENV, EXPOSE, USER), and the image's own stages (the target and the stages it
// is FROM, down to an image) flattened into the last one, so that the last stage holds
// everything the image is made of.
type dockerfile struct {
	rel      string            // path from the repository root
	args     map[string]string // the build arguments given
	declared []string          // the build arguments it declares (ARG), in the stages it builds
	program  string            // the binary the image runs: a service, or "xsw" for the all-in-one
	stages   []instructions.Stage
	escape   rune
	runEnv   map[*instructions.RunCommand][]string // the ARG and ENV a RUN sees, KEY=VALUE
}

// String names the Dockerfile with its build arguments: "Dockerfile (SERVICE=gateway)".
func (d *dockerfile) String() string {
	if len(d.args) == 0 {
		return d.rel
	}
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(d.args)) {
		kv = append(kv, k+"="+d.args[k])
	}
	return d.rel + " (" + strings.Join(kv, " ") + ")"
}

// The Dockerfiles: the services' (one for the three, the build argument SERVICE names the
// service) and the all-in-one's.
const (
	serviceDockerfile  = "Dockerfile"
	allInOneDockerfile = "dev/Dockerfile"
)

func parseDockerfile(root, rel string, args map[string]string) (*dockerfile, error) {
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		return nil, err
	}
	return parseDockerfileText(rel, data, args)
}

// parseDockerfileText parses a Dockerfile with BuildKit's parser and resolves it for the
// build arguments args, the way BuildKit's frontend does: the global ARGs (before the
// first FROM) feed the FROM lines, a stage's ARGs and ENVs its instructions; the image
// is the last stage and needs the stages it is FROM or copies from, transitively.
func parseDockerfileText(rel string, data []byte, args map[string]string) (*dockerfile, error) {
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("%s: no FROM", rel)
	}
	d := &dockerfile{rel: rel, args: maps.Clone(args), escape: res.EscapeToken, runEnv: map[*instructions.RunCommand][]string{}}
	lex := shell.NewLex(res.EscapeToken)
	expand := func(word string, env map[string]string) (string, error) {
		s, _, err := lex.ProcessWord(word, envGetter(env))
		return s, err
	}

	global := map[string]string{} // the global ARGs' values
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			d.declared = append(d.declared, kv.Key)
			v := ""
			if kv.Value != nil {
				if v, err = expand(*kv.Value, global); err != nil {
					return nil, fmt.Errorf("%s: ARG %s: %w", rel, kv.Key, err)
				}
			}
			if given, ok := args[kv.Key]; ok {
				v = given
			}
			global[kv.Key] = v
		}
	}
	byName := map[string]int{}
	for i := range stages {
		base, err := expand(stages[i].BaseName, global)
		if err != nil {
			return nil, fmt.Errorf("%s: FROM %s: %w", rel, stages[i].BaseName, err)
		}
		if base == "" {
			return nil, fmt.Errorf("%s: stage %d: FROM %s names no image or stage (a build argument missing?)", rel, i, stages[i].BaseName)
		}
		stages[i].BaseName = base
		if stages[i].Name != "" {
			byName[strings.ToLower(stages[i].Name)] = i
		}
	}
	stageRef := func(ref string, before int) (int, bool) {
		if j, ok := byName[strings.ToLower(ref)]; ok && j < before {
			return j, true
		}
		if j, err := strconv.Atoi(ref); err == nil && j >= 0 && j < before {
			return j, true
		}
		return 0, false
	}

	// Substitute, stage by stage, and mark the stages the image needs.
	envs := make([]map[string]string, len(stages)) // each stage's ENV at its end
	for i := range stages {
		st := &stages[i]
		env := map[string]string{}
		if j, ok := stageRef(st.BaseName, i); ok {
			env = maps.Clone(envs[j])
		}
		argEnv := map[string]string{} // the ARGs in scope
		both := func() map[string]string {
			m := maps.Clone(argEnv)
			maps.Copy(m, env)
			return m
		}
		expander := func(word string) (string, error) { return expand(word, both()) }
		for _, cmd := range st.Commands {
			var err error
			switch c := cmd.(type) {
			case *instructions.ArgCommand:
				for _, kv := range c.Args {
					d.declared = append(d.declared, kv.Key)
					v, isGlobal := global[kv.Key]
					if kv.Value != nil {
						if v, err = expander(*kv.Value); err != nil {
							break
						}
					}
					if given, ok := args[kv.Key]; ok {
						v = given
					} else if kv.Value == nil && !isGlobal {
						v = ""
					}
					argEnv[kv.Key] = v
				}
			case *instructions.EnvCommand:
				if err = c.Expand(expander); err == nil {
					for _, kv := range c.Env {
						env[kv.Key] = kv.Value
					}
				}
			case *instructions.CopyCommand:
				if err = c.Expand(expander); err == nil && c.From != "" {
					c.From, err = expander(c.From)
				}
			case *instructions.ExposeCommand:
				for k, p := range c.Ports {
					if c.Ports[k], err = expander(p); err != nil {
						break
					}
				}
			case *instructions.RunCommand:
				var kv []string
				for k, v := range both() {
					kv = append(kv, k+"="+v)
				}
				slices.Sort(kv)
				d.runEnv[c] = kv
			case instructions.SupportsSingleWordExpansion: // WORKDIR, USER, ...
				err = c.Expand(expander)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: stage %d (%s): %w", rel, i, st.Name, err)
			}
		}
		envs[i] = env
	}
	need := map[int]bool{}
	var visit func(i int)
	visit = func(i int) {
		if need[i] {
			return
		}
		need[i] = true
		if j, ok := stageRef(stages[i].BaseName, i); ok {
			visit(j)
		}
		for _, cmd := range stages[i].Commands {
			if c, ok := cmd.(*instructions.CopyCommand); ok && c.From != "" {
				if j, ok := stageRef(c.From, i); ok {
					visit(j)
				}
			}
		}
	}
	last := len(stages) - 1
	visit(last)

	// The image: the last stage and the stages it is FROM, one after the other.
	chain := []int{last}
	for {
		j, ok := stageRef(stages[chain[0]].BaseName, chain[0])
		if !ok {
			break
		}
		chain = append([]int{j}, chain...)
	}
	image := instructions.Stage{Name: stages[last].Name, BaseName: stages[chain[0]].BaseName, Platform: stages[chain[0]].Platform}
	for _, i := range chain {
		image.Commands = append(image.Commands, stages[i].Commands...)
		if stages[i].Name != "" {
			image.Name = stages[i].Name
		}
	}
	for i := range stages {
		if need[i] && !slices.Contains(chain, i) {
			d.stages = append(d.stages, stages[i])
		}
	}
	d.stages = append(d.stages, image)
	if ep := d.entrypoint(); ep != nil && len(ep.CmdLine) > 0 {
		d.program = path.Base(ep.CmdLine[0])
	}
	slices.Sort(d.declared)
	d.declared = slices.Compact(d.declared)
	return d, nil
}

// envGetter serves a map to BuildKit's shell lexer.
type envGetter map[string]string

func (e envGetter) Get(k string) (string, bool) { v, ok := e[k]; return v, ok }
func (e envGetter) Keys() []string              { return slices.Sorted(maps.Keys(e)) }

// expandRun returns a RUN's command line with the ARG and ENV it sees substituted, the
// quotes removed, as the shell would read it (for the checks, which look for words).
func (d *dockerfile) expandRun(c *instructions.RunCommand) string {
	line := strings.Join(c.CmdLine, " ")
	if !c.PrependShell {
		return line
	}
	env := map[string]string{}
	for _, kv := range d.runEnv[c] {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	s, _, err := shell.NewLex(d.escape).ProcessWord(line, envGetter(env))
	if err != nil {
		return line
	}
	return s
}

// entrypoint returns the image's ENTRYPOINT, or nil.
func (d *dockerfile) entrypoint() *instructions.EntrypointCommand {
	var ep *instructions.EntrypointCommand
	for _, cmd := range d.final().Commands {
		if c, ok := cmd.(*instructions.EntrypointCommand); ok {
			ep = c
		}
	}
	return ep
}

// image names one image: its Dockerfile and build arguments.
type image struct {
	rel  string
	args map[string]string
}

// images lists every image: the services', one per SERVICE, then the all-in-one's; extra
// build arguments are added to each.
func images(extra map[string]string) []image {
	var out []image
	for _, svc := range slices.Sorted(maps.Keys(services)) {
		a := maps.Clone(extra)
		if a == nil {
			a = map[string]string{}
		}
		a["SERVICE"] = svc
		out = append(out, image{serviceDockerfile, a})
	}
	return append(out, image{allInOneDockerfile, maps.Clone(extra)})
}

// dockerfiles returns every image's Dockerfile, resolved for its build arguments.
func dockerfiles(t *testing.T, extra map[string]string) []*dockerfile {
	t.Helper()
	root := mustRoot(t)
	var out []*dockerfile
	for _, im := range images(extra) {
		d, err := parseDockerfile(root, im.rel, im.args)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

func (d *dockerfile) final() *instructions.Stage { return &d.stages[len(d.stages)-1] }

// files returns the paths the final stage copies into the image.
func (d *dockerfile) files() []string {
	var out []string
	for _, cmd := range d.final().Commands {
		c, ok := cmd.(*instructions.CopyCommand)
		if !ok {
			continue
		}
		for _, src := range c.SourcePaths {
			if strings.HasSuffix(c.DestPath, "/") {
				out = append(out, path.Join(c.DestPath, path.Base(src)))
			} else {
				out = append(out, c.DestPath)
			}
		}
	}
	return out
}

// stageEnv returns the ENV a stage sets, with what it inherits from an earlier stage.
func (d *dockerfile) stageEnv(i int) map[string]string {
	env := map[string]string{}
	for j := range i {
		if d.stages[j].Name != "" && strings.EqualFold(d.stages[j].Name, d.stages[i].BaseName) {
			env = d.stageEnv(j)
		}
	}
	for _, cmd := range d.stages[i].Commands {
		if e, ok := cmd.(*instructions.EnvCommand); ok {
			for _, kv := range e.Env {
				env[kv.Key] = kv.Value
			}
		}
	}
	return env
}

var cdGo = regexp.MustCompile(`(?:^|&&|;)\s*cd\s+(\S+)\s*&&\s*go\s+(?:build|mod download|install)\b`)

// checkDockerfile holds the rules for an image: multi-stage, Go built with GOWORK=off and
// CGO_ENABLED=0 from modules whose local replacements are all copied in, a distroless
// or scratch final stage with a numeric non-root USER and an exec-form ENTRYPOINT of a
// file it copied, pinned base images, COPY of existing paths or earlier stages only,
// and no ENV or EXPOSE the program does not read or serve.
func checkDockerfile(root string, d *dockerfile, all map[string]vars) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(d.String()+": "+format, args...)) }
	if len(d.stages) < 2 {
		fail("one stage; build in one and ship the binary in a small final one")
	}
	names := map[string]bool{}
	for i, st := range d.stages {
		ref := fmt.Sprintf("stage %d (%s)", i, st.Name)
		if !names[strings.ToLower(st.BaseName)] {
			if st.BaseName != "scratch" {
				if tag := imageTag(st.BaseName); tag == "" || tag == "latest" {
					fail("%s: base image %q has no pinned tag", ref, st.BaseName)
				}
			}
		}
		env := d.stageEnv(i)
		workdir := "/"
		var copied []string // context paths copied into this stage
		for _, cmd := range st.Commands {
			switch c := cmd.(type) {
			case *instructions.WorkdirCommand:
				workdir = path.Join(workdir, c.Path)
			case *instructions.CopyCommand:
				if c.From != "" {
					if !names[strings.ToLower(c.From)] {
						fail("%s: COPY --from=%s is no earlier stage", ref, c.From)
					}
					continue
				}
				for _, src := range c.SourcePaths {
					clean := path.Clean(src)
					if strings.HasPrefix(clean, "..") || path.IsAbs(clean) {
						fail("%s: COPY %s leaves the build context", ref, src)
						continue
					}
					if matches, _ := filepath.Glob(filepath.Join(root, filepath.FromSlash(clean))); len(matches) == 0 {
						fail("%s: COPY %s: no such path in the repository", ref, src)
					}
					copied = append(copied, clean)
				}
			case *instructions.AddCommand:
				fail("%s: ADD; use COPY", ref)
			case *instructions.RunCommand:
				line := d.expandRun(c)
				if !strings.Contains(line, "go build") && !strings.Contains(line, "go mod download") && !strings.Contains(line, "go install") {
					continue
				}
				if env["GOWORK"] != "off" && !strings.Contains(line, "GOWORK=off") {
					fail("%s: runs go without GOWORK=off: the image must build from the module's own go.mod", ref)
				}
				if strings.Contains(line, "go build") && env["CGO_ENABLED"] != "0" && !strings.Contains(line, "CGO_ENABLED=0") {
					fail("%s: go build without CGO_ENABLED=0: the binary must be static", ref)
				}
				// Builds run under /src, which mirrors the build context.
				dirs := []string{workdir}
				if ms := cdGo.FindAllStringSubmatch(line, -1); len(ms) > 0 {
					dirs = dirs[:0]
					for _, m := range ms {
						dirs = append(dirs, path.Join(workdir, m[1]))
					}
				}
				for _, dir := range dirs {
					rel, ok := strings.CutPrefix(dir, "/src")
					if !ok {
						fail("%s: runs go in %s, outside /src (the build context's mirror)", ref, dir)
						continue
					}
					rel = strings.TrimPrefix(rel, "/")
					if rel == "" {
						rel = "."
					}
					errs = append(errs, checkModuleCopied(root, d.String(), ref, rel, copied, strings.Contains(line, "go mod download"))...)
				}
			}
		}
		if st.Name != "" {
			names[strings.ToLower(st.Name)] = true
		}
		names[strconv.Itoa(i)] = true
	}

	final := d.final()
	if final.BaseName != "scratch" && !strings.HasPrefix(final.BaseName, "gcr.io/distroless/") {
		fail("final stage FROM %s: want gcr.io/distroless/... or scratch", final.BaseName)
	}
	user := ""
	var entrypoint *instructions.EntrypointCommand
	var exposed []string
	for _, cmd := range final.Commands {
		switch c := cmd.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.EntrypointCommand:
			entrypoint = c
		case *instructions.ExposeCommand:
			exposed = append(exposed, c.Ports...)
		case *instructions.RunCommand:
			fail("final stage: RUN needs a shell, which the image does not have")
		case *instructions.HealthCheckCommand:
			if t := c.Health.Test; len(t) > 1 && t[0] == "CMD" && !slices.Contains(d.files(), t[1]) {
				fail("HEALTHCHECK runs %s, which the final stage does not copy", t[1])
			}
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		fail("final stage USER %q: want a numeric uid other than 0 (runAsNonRoot can verify only a number)", user)
	}
	switch {
	case entrypoint == nil:
		fail("final stage has no ENTRYPOINT")
	case entrypoint.PrependShell:
		fail("ENTRYPOINT in shell form: the image has no shell; use [\"/binary\"]")
	case len(entrypoint.CmdLine) == 0 || !slices.Contains(d.files(), entrypoint.CmdLine[0]):
		fail("ENTRYPOINT %q is not a file the final stage copies", entrypoint.CmdLine)
	}
	if svc := d.args["SERVICE"]; svc != "" && d.program != svc {
		fail("SERVICE=%s builds an image that runs %q", svc, d.program)
	}
	for _, k := range slices.Sorted(maps.Keys(d.args)) {
		if !slices.Contains(d.declared, k) {
			fail("build argument %s: no ARG of the stages built declares it (Docker ignores it)", k)
		}
	}
	v := all[d.program]
	env := d.stageEnv(len(d.stages) - 1)
	for k := range env {
		if !v.allows(k) {
			fail("final stage ENV %s: %s does not read it", k, d.program)
		}
	}
	_, siteErrs := checkSites(env, v, false) // the deployment, not the image, names the sites
	for _, err := range siteErrs {
		fail("final stage ENV: %v", err)
	}
	if addrVar, ok := services[d.program]; ok || d.program == "xsw" {
		if !ok {
			addrVar = "HTTP_ADDR"
		}
		want, err := addrPort(d.stageEnv(len(d.stages) - 1)[addrVar])
		if err != nil {
			want, _ = addrPort(v[addrVar])
		}
		if !slices.Contains(exposed, strconv.Itoa(int(want))) {
			fail("EXPOSE %v does not include %d, where %s listens (%s)", exposed, want, d.program, addrVar)
		}
	}
	return errors.Join(errs...)
}

// checkModuleCopied reports a module built in a stage whose go.mod the stage has not
// copied and, where the stage downloads the module graph (go mod download, which needs
// every module of it), a local replacement it has not copied either. (A build loads only
// the modules of the packages it imports: TestDockerBuilds runs the builds.)
func checkModuleCopied(root, rel, ref, dir string, copied []string, download bool) []error {
	var errs []error
	covered := func(p string) bool {
		return slices.ContainsFunc(copied, func(c string) bool {
			return c == p || strings.HasPrefix(p, strings.TrimSuffix(c, "/")+"/") || (c == "." && !strings.HasPrefix(p, ".."))
		})
	}
	modPath := path.Join(dir, "go.mod")
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(modPath)))
	if err != nil {
		return []error{fmt.Errorf("%s: %s: runs go in %s, which is no module of the repository", rel, ref, dir)}
	}
	if !covered(modPath) {
		errs = append(errs, fmt.Errorf("%s: %s: builds %s without copying %s", rel, ref, dir, modPath))
	}
	f, err := modfile.Parse(modPath, data, nil)
	if err != nil {
		return append(errs, fmt.Errorf("%s: %w", modPath, err))
	}
	for _, r := range f.Replace {
		if !download || !modfile.IsDirectoryPath(r.New.Path) {
			continue
		}
		dep := path.Join(dir, r.New.Path, "go.mod")
		if !covered(dep) {
			errs = append(errs, fmt.Errorf("%s: %s: %s replaces %s with %s, which the stage does not copy", rel, ref, modPath, r.Old.Path, path.Dir(dep)))
		}
	}
	return errs
}

func TestDockerfiles(t *testing.T) {
	root := mustRoot(t)
	v := serviceVars(t)
	for _, d := range dockerfiles(t, nil) {
		t.Run(d.String(), func(t *testing.T) {
			if err := checkDockerfile(root, d, v); err != nil {
				for _, e := range unwrap(err) {
					t.Error(e)
				}
			}
		})
	}
}
