package check

import (
	"bytes"
	"errors"
	"fmt"
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
	"golang.org/x/mod/modfile"
)

// dockerfile is a parsed Dockerfile, built with the repository root as its context.
type dockerfile struct {
	rel     string // path from the repository root
	program string // the service it packages, or "xsw" for the all-in-one
	stages  []instructions.Stage
}

func parseDockerfile(root, rel string) (*dockerfile, error) {
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		return nil, err
	}
	return parseDockerfileText(rel, data)
}

func parseDockerfileText(rel string, data []byte) (*dockerfile, error) {
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	d := &dockerfile{rel: rel, program: "xsw", stages: stages}
	if svc, ok := strings.CutPrefix(path.Dir(rel), "services/"); ok {
		d.program = svc
	}
	return d, nil
}

// dockerfiles returns the Dockerfile of every service and of the all-in-one.
func dockerfiles(t *testing.T) []*dockerfile {
	t.Helper()
	root := mustRoot(t)
	var rels []string
	for svc := range services {
		rels = append(rels, path.Join("services", svc, "Dockerfile"))
	}
	slices.Sort(rels)
	rels = append(rels, "dev/Dockerfile")
	var out []*dockerfile
	for _, rel := range rels {
		d, err := parseDockerfile(root, rel)
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
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(d.rel+": "+format, args...)) }
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
				line := strings.Join(c.CmdLine, " ")
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
					errs = append(errs, checkModuleCopied(root, d.rel, ref, rel, copied, strings.Contains(line, "go mod download"))...)
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
// every module of it), a local replacement it has not copied either.
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
	for _, d := range dockerfiles(t) {
		t.Run(d.rel, func(t *testing.T) {
			if err := checkDockerfile(root, d, v); err != nil {
				for _, e := range unwrap(err) {
					t.Error(e)
				}
			}
		})
	}
}
