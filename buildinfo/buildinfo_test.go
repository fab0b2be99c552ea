package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestRead(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/xswtw/xsw", Version: "v0.4.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"},
			{Key: "vcs.time", Value: "2026-12-02T06:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	from := func() (*debug.BuildInfo, bool) { return bi, true }
	cases := []struct {
		name   string
		linked string
		want   Info
	}{
		{"the module's version", "", Info{Version: "v0.4.0", Revision: "0123456789abcdef0123-dirty", Time: "2026-12-02T06:00:00Z", GoVersion: "go1.26.8"}},
		{"the linked version wins", "v9.9.9", Info{Version: "v9.9.9", Revision: "0123456789abcdef0123-dirty", Time: "2026-12-02T06:00:00Z", GoVersion: "go1.26.8"}},
	}
	for _, c := range cases {
		if got := read(c.linked, from); got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
	bi.Main.Version = "(devel)"
	if got := read("", from).Version; got != "devel" {
		t.Errorf("a work-tree build: version %q, want devel", got)
	}
	if got := read("", func() (*debug.BuildInfo, bool) { return nil, false }); got.Version != "devel" || got.Revision != "" {
		t.Errorf("no build information: %+v", got)
	}
}

func TestString(t *testing.T) {
	in := Info{Version: "v1.0.0", Revision: "0123456789abcdef", Time: "2026-12-02T06:00:00Z", GoVersion: "go1.26.8"}
	if got, want := in.String(), "v1.0.0 (0123456789ab, 2026-12-02T06:00:00Z, go1.26.8)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	in.Revision += "-dirty"
	if got, want := in.String(), "v1.0.0 (0123456789ab-dirty, 2026-12-02T06:00:00Z, go1.26.8)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := (Info{Version: "devel", GoVersion: "go1.26.8"}).String(), "devel (go1.26.8)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
