package ctl

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestMain lets the test binary run as xswctl itself (XSWCTL_TEST_MAIN=1), so that the
// shells' completion scripts have a real xswctl to call.
func TestMain(m *testing.M) {
	if os.Getenv("XSWCTL_TEST_MAIN") == "1" {
		os.Exit(Main(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// shells are the shells whose completion scripts are tried, each with the script that
// completes $LINE after loading xswctl's and prints one completion a line.
var shells = []struct {
	name, bin string
	args      []string
	needs     string // a file the shell needs besides itself
	script    string
}{
	{"bash", "bash", []string{"-c"}, "/usr/share/bash-completion/bash_completion", `
source /usr/share/bash-completion/bash_completion
source <(xswctl completion bash)
read -ra COMP_WORDS <<< "$LINE"
[[ $LINE == *" " ]] && COMP_WORDS+=("")
COMP_LINE=$LINE COMP_POINT=${#LINE} COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
__start_xswctl xswctl 2>/dev/null
printf '%s\n' "${COMPREPLY[@]}"`},
	// zsh completes inside its line editor only: _describe, which hands the completions
	// to it, prints them instead (and compdef, which registers the script with it, has
	// nothing to do).
	{"zsh", "zsh", []string{"-f", "-c"}, "", `
compdef() { :; }
source <(xswctl completion zsh)
_describe() { shift $(( ${@[(i)completions]} )); print -rl -- "${(@P)1}"; }
compadd() { :; }
words=(${(z)LINE})
[[ $LINE == *" " ]] && words+=("")
CURRENT=${#words}
_xswctl`},
	{"fish", "fish", []string{"--no-config", "-c"}, "", `
xswctl completion fish | source
complete -C "$LINE"`},
}

// TestShellCompletion loads xswctl's completion script into bash, zsh and fish, and
// completes command lines as a user pressing Tab would: subcommands, lanes, and --site
// with the sites the gateway serves.
func TestShellCompletion(t *testing.T) {
	g := newGateway(t)
	bin := t.TempDir()
	if err := os.Symlink(os.Args[0], filepath.Join(bin, "xswctl")); err != nil {
		t.Fatal(err)
	}
	for _, sh := range shells {
		t.Run(sh.name, func(t *testing.T) {
			path, err := exec.LookPath(sh.bin)
			if err == nil && sh.needs != "" {
				_, err = os.Stat(sh.needs)
			}
			if err != nil {
				// dev/scripts/ensure-shells.sh installs them for make test.
				if os.Getenv("CI") != "" {
					t.Fatalf("%s cannot complete here: %v", sh.name, err)
				}
				t.Skipf("%s cannot complete here (%v): run dev/scripts/ensure-shells.sh", sh.name, err)
			}
			for _, tc := range []struct {
				line string
				want []string
			}{
				{"xswctl la", []string{"lane"}},
				{"xswctl lane ", []string{"pause", "purge", "resume"}},
				{"xswctl lane pause ", []string{"interactive", "manual", "prefetch", "refresh"}},
				{"xswctl stats --site ", []string{"xsw", "toy", "off", "new"}},
				{"xswctl cache ", []string{"clear", "invalidate", "purge-texts"}},
				{"xswctl dead ", []string{"accept-shrink", "replay"}},
			} {
				cmd := exec.Command(path, append(slices.Clone(sh.args), sh.script)...)
				cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + t.TempDir(), "LINE=" + tc.line,
					"XSWCTL_TEST_MAIN=1", "XSW_URL=" + g.URL}
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("%q: %v\n%s", tc.line, err, out)
				}
				var got []string
				for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
					// Drop what the shells add: descriptions after a tab or a colon, padding.
					l, _, _ = strings.Cut(l, "\t")
					l, _, _ = strings.Cut(l, ":")
					l, _, _ = strings.Cut(l, " ")
					if l != "" {
						got = append(got, l)
					}
				}
				slices.Sort(got)
				want := slices.Sorted(slices.Values(tc.want))
				if !slices.Equal(got, want) {
					t.Errorf("%q completes to %q, want %q\n%s", tc.line, got, want, out)
				}
			}
		})
	}
}

// TestCompletionScripts checks that xswctl prints a completion script for each shell it
// supports.
func TestCompletionScripts(t *testing.T) {
	g := newGateway(t)
	for shell, want := range map[string]string{
		"bash": "__start_xswctl", "zsh": "compdef _xswctl xswctl", "fish": "complete -c xswctl",
		"powershell": "Register-ArgumentCompleter -CommandName 'xswctl'",
	} {
		out, errOut, code := run(t.Context(), g, nil, "completion", shell)
		if code != 0 || !strings.Contains(out, want) || !strings.Contains(out, "__complete") {
			t.Errorf("completion %s: exit %d, %s; script lacks %q:\n%.300s", shell, code, errOut, want, out)
		}
	}
}
