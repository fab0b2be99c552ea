// Package buildinfo says which build of xsw a binary is: the version it was given at link
// time or by the module it was installed from, and the commit and time the Go toolchain
// recorded. Every command prints it for --version, and every service exports it as the
// xsw_build_info metric.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
)

// version is set at link time: -ldflags "-X github.com/xswtw/xsw/buildinfo.version=v1.2.3".
var version string

// Info describes one build.
type Info struct {
	// Version is the link-time version, else the installed module's version (go install
	// …@v1.2.3), else "devel".
	Version string `json:"version"`
	// Revision is the VCS commit the binary was built from, with "-dirty" when the work
	// tree had changes; empty when the toolchain recorded none.
	Revision string `json:"revision,omitempty"`
	// Time is the commit's time (RFC 3339), when recorded.
	Time string `json:"time,omitempty"`
	// GoVersion is the toolchain that built the binary.
	GoVersion string `json:"go_version"`
}

var (
	once sync.Once
	info Info
)

// Get returns this binary's build information.
func Get() Info {
	once.Do(func() { info = read(version, debug.ReadBuildInfo) })
	return info
}

func read(linked string, readBuildInfo func() (*debug.BuildInfo, bool)) Info {
	in := Info{Version: linked, GoVersion: runtime.Version()}
	bi, ok := readBuildInfo()
	if !ok {
		if in.Version == "" {
			in.Version = "devel"
		}
		return in
	}
	if in.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		in.Version = bi.Main.Version
	}
	if in.Version == "" {
		in.Version = "devel"
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && in.Revision != "" {
		in.Revision += "-dirty"
	}
	if bi.GoVersion != "" {
		in.GoVersion = bi.GoVersion
	}
	return in
}

// String is the one line a command prints for --version: "name v1.2.3 (abc1234, 2026-12-02T06:00:00Z, go1.26.8)".
func (in Info) String() string {
	var parts []string
	if in.Revision != "" {
		rev, dirty := strings.CutSuffix(in.Revision, "-dirty")
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "-dirty"
		}
		parts = append(parts, rev)
	}
	if in.Time != "" {
		parts = append(parts, in.Time)
	}
	parts = append(parts, in.GoVersion)
	return fmt.Sprintf("%s (%s)", in.Version, strings.Join(parts, ", "))
}
