package check

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// The image builds, simulated without Docker: each stage of a Dockerfile (as BuildKit
// would build it for the image's build arguments) gets a directory standing for its
// filesystem; COPY copies exactly what Docker would from the repository (less what a
// .dockerignore excludes) or from an earlier stage's directory; RUN runs its cd, mkdir and
// go commands there, go with GOWORK=off and GOFLAGS=-mod=readonly against the local module
// cache and proxy. A COPY missing from a Dockerfile fails its go build here as it would in
// Docker. What the images run is then read back: the entrypoint is the service's own
// binary, static, stamped with the VERSION build argument.

// versionArg is the VERSION the simulated builds pass; the binaries must carry it.
const versionArg = "v0.0.0-check"

// buildinfoVar is what -X sets to VERSION.
const buildinfoVar = "github.com/xswtw/xsw/buildinfo.version"

// dockerBuild simulates the build of d with the repository at root as its context, in
// dir. It returns each stage's filesystem, by stage index.
func dockerBuild(ctx context.Context, root string, d *dockerfile, dir string) ([]string, error) {
	ignore, err := dockerignore(root)
	if err != nil {
		return nil, err
	}
	var fsys []string
	byName := map[string]int{}
	stageOf := func(ref string, before int) (int, bool) {
		if j, ok := byName[strings.ToLower(ref)]; ok {
			return j, true
		}
		for j := range before {
			if fmt.Sprint(j) == ref {
				return j, true
			}
		}
		return 0, false
	}
	for i, st := range d.stages {
		ref := fmt.Sprintf("%s: stage %d (%s)", d, i, st.Name)
		rootfs := filepath.Join(dir, fmt.Sprintf("stage%d", i))
		if j, ok := stageOf(st.BaseName, i); ok {
			if err := os.CopyFS(rootfs, os.DirFS(fsys[j])); err != nil {
				return nil, fmt.Errorf("%s: FROM %s: %w", ref, st.BaseName, err)
			}
		} else if err := os.MkdirAll(rootfs, 0o755); err != nil {
			return nil, err
		}
		workdir := "/"
		for _, cmd := range st.Commands {
			switch c := cmd.(type) {
			case *instructions.WorkdirCommand:
				workdir = containerPath(workdir, c.Path)
				if err := os.MkdirAll(hostPath(rootfs, workdir), 0o755); err != nil {
					return nil, err
				}
			case *instructions.CopyCommand:
				src, from := root, ignore
				if c.From != "" {
					j, ok := stageOf(c.From, i)
					if !ok {
						return nil, fmt.Errorf("%s: COPY --from=%s: no earlier stage", ref, c.From)
					}
					src, from = fsys[j], nil
				}
				if err := dockerCopy(src, from, c.SourcePaths, containerPath(workdir, c.DestPath), strings.HasSuffix(c.DestPath, "/"), rootfs); err != nil {
					return nil, fmt.Errorf("%s: COPY %s %s: %w", ref, strings.Join(c.SourcePaths, " "), c.DestPath, err)
				}
			case *instructions.RunCommand:
				if err := dockerRun(ctx, d, c, rootfs, workdir); err != nil {
					return nil, fmt.Errorf("%s: RUN %s: %w", ref, strings.Join(c.CmdLine, " "), err)
				}
			case *instructions.AddCommand:
				return nil, fmt.Errorf("%s: ADD: the simulation knows COPY only", ref)
			}
		}
		fsys = append(fsys, rootfs)
		if st.Name != "" {
			byName[strings.ToLower(st.Name)] = i
		}
	}
	return fsys, nil
}

// dockerignore reads the context's .dockerignore, or returns nil when it has none.
func dockerignore(root string) (*patternmatcher.PatternMatcher, error) {
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf(".dockerignore: %w", err)
	}
	return patternmatcher.New(patterns)
}

// containerPath resolves p against the directory dir of a stage's filesystem.
func containerPath(dir, p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	return path.Join(dir, p)
}

// hostPath is where the container path p of the filesystem rootfs is on this machine.
func hostPath(rootfs, p string) string {
	return filepath.Join(rootfs, filepath.FromSlash(p))
}

// dockerCopy copies srcs (paths or patterns under src) to dest in rootfs as COPY does: a
// directory's contents go into dest; a file goes to dest itself, or into it when dest
// ends with a slash or several files are copied. ignore, when not nil, leaves out what
// the context's .dockerignore excludes.
func dockerCopy(src string, ignore *patternmatcher.PatternMatcher, srcs []string, dest string, destIsDir bool, rootfs string) error {
	var matches []string
	for _, s := range srcs {
		m, err := filepath.Glob(filepath.Join(src, filepath.FromSlash(path.Clean("/"+s))))
		if err != nil {
			return err
		}
		if len(m) == 0 {
			return fmt.Errorf("%s: no such file or directory", s)
		}
		matches = append(matches, m...)
	}
	if len(matches) > 1 {
		destIsDir = true
	}
	excluded := func(p string) (bool, error) {
		if ignore == nil {
			return false, nil
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return false, err
		}
		return ignore.MatchesOrParentMatches(filepath.ToSlash(rel))
	}
	for _, m := range matches {
		info, err := os.Stat(m)
		if err != nil {
			return err
		}
		if !info.IsDir() {
			to := hostPath(rootfs, dest)
			if destIsDir {
				to = filepath.Join(to, filepath.Base(m))
			}
			if skip, err := excluded(m); err != nil || skip {
				return err
			}
			if err := copyFile(m, to, info.Mode()); err != nil {
				return err
			}
			continue
		}
		err = filepath.WalkDir(m, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			skip, err := excluded(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(m, p)
			to := filepath.Join(hostPath(rootfs, dest), rel)
			switch {
			case skip && e.IsDir():
				return filepath.SkipDir
			case skip:
				return nil
			case e.IsDir():
				return os.MkdirAll(to, 0o755)
			case e.Type()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err != nil {
					return err
				}
				return os.Symlink(target, to)
			}
			info, err := e.Info()
			if err != nil {
				return err
			}
			return copyFile(p, to, info.Mode())
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode.Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// dockerRun runs a RUN's commands, split at && and ;, each read as the shell would (its
// variables substituted, its words split): cd, mkdir -p, and go, which runs for real in
// the stage's filesystem, with an absolute -o inside it too.
func dockerRun(ctx context.Context, d *dockerfile, c *instructions.RunCommand, rootfs, workdir string) error {
	env := d.runEnv[c]
	var segments [][]string
	if c.PrependShell {
		lex := shell.NewLex(d.escape)
		for _, seg := range splitShell(strings.Join(c.CmdLine, " ")) {
			words, err := lex.ProcessWords(seg, shell.EnvsFromSlice(env))
			if err != nil {
				return err
			}
			if len(words) > 0 {
				segments = append(segments, words)
			}
		}
	} else {
		segments = [][]string{c.CmdLine}
	}
	cwd := workdir
	for _, words := range segments {
		switch words[0] {
		case "cd":
			if len(words) != 2 {
				return fmt.Errorf("cd %v: want one directory", words[1:])
			}
			cwd = containerPath(cwd, words[1])
			if info, err := os.Stat(hostPath(rootfs, cwd)); err != nil || !info.IsDir() {
				return fmt.Errorf("cd %s: no such directory", cwd)
			}
		case "mkdir":
			for _, a := range words[1:] {
				if !strings.HasPrefix(a, "-") {
					if err := os.MkdirAll(hostPath(rootfs, containerPath(cwd, a)), 0o755); err != nil {
						return err
					}
				}
			}
		case "go":
			args := slices.Clone(words[1:])
			for i, a := range args {
				switch {
				case a == "-o" && i+1 < len(args):
					args[i+1] = hostPath(rootfs, containerPath(cwd, args[i+1]))
				case strings.HasPrefix(a, "-o="):
					args[i] = "-o=" + hostPath(rootfs, containerPath(cwd, strings.TrimPrefix(a, "-o=")))
				}
			}
			cmd := exec.CommandContext(ctx, "go", args...)
			cmd.Dir = hostPath(rootfs, cwd)
			// This machine's Go, module cache and proxy; the stage's ARG and ENV; the
			// module's own go.mod and go.sum, unchanged.
			cmd.Env = append(append(os.Environ(), env...), "GOWORK=off", "GOFLAGS=-mod=readonly")
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("go %s (in %s): %w\n%s", strings.Join(words[1:], " "), cwd, err, out)
			}
		default:
			return fmt.Errorf("%s: the simulation runs cd, mkdir and go only; teach it (dockerbuild_test.go)", words[0])
		}
	}
	return nil
}

// splitShell splits a shell command line at && and ; outside quotes.
func splitShell(line string) []string {
	var out []string
	var cur strings.Builder
	var quote rune
	for i := 0; i < len(line); i++ {
		ch := rune(line[i])
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			}
		case ch == '\'' || ch == '"':
			quote = ch
		case ch == ';':
			out, cur = append(out, cur.String()), strings.Builder{}
			continue
		case ch == '&' && i+1 < len(line) && line[i+1] == '&':
			out, cur = append(out, cur.String()), strings.Builder{}
			i++
			continue
		}
		cur.WriteRune(ch)
	}
	return append(out, cur.String())
}

// checkImage reports an image whose entrypoint is not the program's own static Go
// binary built with the VERSION build argument, or that lacks a file its final stage
// copies.
func checkImage(d *dockerfile, fsys []string) error {
	var errs []error
	final := fsys[len(fsys)-1]
	for _, f := range d.files() {
		if _, err := os.Stat(hostPath(final, f)); err != nil {
			errs = append(errs, fmt.Errorf("%s: the image lacks %s: %w", d, f, err))
		}
	}
	ep := d.entrypoint()
	if ep == nil || len(ep.CmdLine) == 0 {
		return errors.Join(append(errs, fmt.Errorf("%s: no ENTRYPOINT", d))...)
	}
	bi, err := buildinfo.ReadFile(hostPath(final, ep.CmdLine[0]))
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("%s: ENTRYPOINT %s: %w", d, ep.CmdLine[0], err))...)
	}
	if !strings.HasSuffix(bi.Path, "/cmd/"+d.program) {
		errs = append(errs, fmt.Errorf("%s: ENTRYPOINT %s is %s, not a build of cmd/%s", d, ep.CmdLine[0], bi.Path, d.program))
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" {
		errs = append(errs, fmt.Errorf("%s: %s was built with CGO_ENABLED=%q, not static", d, ep.CmdLine[0], settings["CGO_ENABLED"]))
	}
	// -trimpath keeps -ldflags out of the build settings; the version -X set is in the
	// binary's data, where buildinfo reads it from.
	bin, err := os.ReadFile(hostPath(final, ep.CmdLine[0]))
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if v := d.args["VERSION"]; v != "" && !bytes.Contains(bin, []byte(v)) {
		errs = append(errs, fmt.Errorf("%s: %s does not hold the VERSION it was built with, %s (-X %s=$VERSION missing, or the binary does not link buildinfo)", d, ep.CmdLine[0], v, buildinfoVar))
	}
	return errors.Join(errs...)
}

func TestDockerBuilds(t *testing.T) {
	root := mustRoot(t)
	for _, d := range dockerfiles(t, map[string]string{"VERSION": versionArg}) {
		t.Run(d.String(), func(t *testing.T) {
			fsys, err := dockerBuild(t.Context(), root, d, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if err := checkImage(d, fsys); err != nil {
				for _, e := range unwrap(err) {
					t.Error(e)
				}
			}
		})
	}
}

func TestDockerBuildsCatch(t *testing.T) {
	root := mustRoot(t)
	data, err := os.ReadFile(filepath.Join(root, serviceDockerfile))
	if err != nil {
		t.Fatal(err)
	}
	args := map[string]string{"SERVICE": "gateway", "VERSION": versionArg}
	tests := []struct {
		name, old, new, want string
	}{
		// The service imports events: without it the build fails.
		{"source not copied", "COPY events/ events/\n", "", "events"},
		// The root module holds api/, which the gateway imports.
		{"root module package not copied", "COPY api/ api/\n", "", "github.com/xswtw/xsw/api"},
		{"probe not copied", "COPY deploy/cmd/healthcheck/ cmd/healthcheck/\n", "", "cmd/healthcheck"},
		{"version not linked in", ` -X github.com/xswtw/xsw/buildinfo.version=${VERSION}`, "", "does not hold the VERSION it was built with"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(string(data), tt.old) {
				t.Fatalf("%s does not contain %q any more: update the test", serviceDockerfile, tt.old)
			}
			d, err := parseDockerfileText(serviceDockerfile, []byte(strings.Replace(string(data), tt.old, tt.new, 1)), args)
			if err != nil {
				t.Fatal(err)
			}
			fsys, err := dockerBuild(t.Context(), root, d, t.TempDir())
			if err == nil {
				err = checkImage(d, fsys)
			}
			wantError(t, err, tt.want)
		})
	}
}
