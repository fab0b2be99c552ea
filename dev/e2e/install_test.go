package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/zip"
)

// rootModule is the module go install fetches xswctl from.
const rootModule = "github.com/xswtw/xsw"

// TestGoInstallXswctl installs xswctl as its users do, with go install ...@version and
// nothing else: no workspace, no replace directive. A module proxy in a directory holds
// the repository's root module, as it is in the work tree, at a made-up version; the go
// command fetches it from there and its dependencies from the usual proxy (the local
// module cache first). It builds xswctl and its dependencies, so -short skips it.
func TestGoInstallXswctl(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds xswctl through a module proxy; skipped with -short")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	const version = "v0.0.0-test"
	proxy := t.TempDir()
	publish(t, proxy, root, module.Version{Path: rootModule, Version: version})

	goenv := func(name string) string {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	gobin, home := t.TempDir(), t.TempDir()
	proxies := "file://" + filepath.ToSlash(proxy) + ",file://" + filepath.ToSlash(filepath.Join(goenv("GOMODCACHE"), "cache", "download")) + "," + goenv("GOPROXY")
	install := exec.Command("go", "install", rootModule+"/cmd/xswctl@"+version)
	install.Dir = home // outside any module
	install.Env = append(os.Environ(),
		"GOWORK=off", "GOPROXY="+proxies, "GONOSUMDB="+rootModule, "GOFLAGS=-mod=mod -modcacherw",
		"GOBIN="+gobin, "GOMODCACHE="+filepath.Join(home, "modcache"))
	start := time.Now()
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("go install %s/cmd/xswctl@%s: %v\n%s", rootModule, version, err, out)
	}
	t.Logf("go install took %s", time.Since(start).Round(100*time.Millisecond))

	out, err := exec.Command(filepath.Join(gobin, "xswctl"), "version", "--client").CombinedOutput()
	if err != nil {
		t.Fatalf("xswctl version --client: %v\n%s", err, out)
	}
	if want := "xswctl   " + version + " ("; !strings.HasPrefix(string(out), want) {
		t.Errorf("xswctl version --client printed %q, want it to start with %q", out, want)
	}
	out, err = exec.Command(filepath.Join(gobin, "xswctl"), "version", "--client", "--json").Output()
	var v struct {
		Xswctl struct {
			Version string `json:"version"`
		} `json:"xswctl"`
	}
	if err != nil || json.Unmarshal(out, &v) != nil || v.Xswctl.Version != version {
		t.Errorf("xswctl version --client --json: %v, %s", err, out)
	}
}

// publish puts the module of dir at m.Version into proxy, laid out as a module proxy
// (GOPROXY=file://proxy): its list, .info, .mod and .zip. The zip holds what git knows
// of dir (tracked files and new ones it does not ignore, as they are in the work tree),
// so that a build's leftovers stay out; zip.Create leaves out the nested modules.
func publish(t *testing.T, proxy, dir string, m module.Version) {
	t.Helper()
	at := filepath.Join(proxy, filepath.FromSlash(m.Path), "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		t.Fatal(err)
	}
	ls := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	ls.Dir = dir
	listed, err := ls.Output()
	if err != nil {
		t.Fatalf("list the files of %s: %v", dir, err)
	}
	var files []zip.File
	for _, name := range strings.Split(strings.TrimRight(string(listed), "\x00"), "\x00") {
		if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
			continue // deleted from the work tree
		}
		files = append(files, dirFile{dir: dir, name: filepath.ToSlash(name)})
	}
	var z bytes.Buffer
	if err := zip.Create(&z, m, files); err != nil {
		t.Fatalf("zip %s: %v", m, err)
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{m.Version, time.Now().UTC().Truncate(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"list": []byte(m.Version + "\n"), m.Version + ".info": info, m.Version + ".mod": gomod, m.Version + ".zip": z.Bytes(),
	} {
		if err := os.WriteFile(filepath.Join(at, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%s: %d files listed, a zip of %d KiB", m, len(files), z.Len()>>10)
}

// dirFile is a file of a directory, for zip.Create.
type dirFile struct{ dir, name string }

func (f dirFile) Path() string                 { return f.name }
func (f dirFile) Lstat() (os.FileInfo, error)  { return os.Lstat(filepath.Join(f.dir, f.name)) }
func (f dirFile) Open() (io.ReadCloser, error) { return os.Open(filepath.Join(f.dir, f.name)) }
