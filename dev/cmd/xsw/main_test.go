package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/xswtw/xsw/buildinfo"
)

// TestCommandLine: help and version are answered without starting anything (the
// environment here would stop a start with status 1), and a bad command line gets status
// 2 and the usage line.
func TestCommandLine(t *testing.T) {
	t.Setenv("LOG_LEVEL", "loud")
	const usageLine = "usage: xsw [-h | --help] [--version] [run|demo|migrate]\n"
	tests := []struct {
		args           []string
		status         int
		stdout, stderr string
	}{
		{[]string{"-h"}, 0, usageLine, ""},
		{[]string{"--help"}, 0, "docs/configuration.md", ""},
		{[]string{"help"}, 0, usageLine, ""},
		{[]string{"--version"}, 0, "xsw " + buildinfo.Get().String() + "\n", ""},
		{[]string{"--demo"}, 2, "", "xsw: flag provided but not defined: -demo\n" + usageLine},
		{[]string{"serve"}, 2, "", "xsw: unknown command \"serve\"\n" + usageLine},
		{[]string{"demo", "now"}, 2, "", "xsw: unexpected argument \"now\"\n" + usageLine},
		{[]string{"demo"}, 1, "", "xsw: LOG_LEVEL"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if status := run(tt.args, &stdout, &stderr); status != tt.status {
				t.Errorf("status %d, want %d (stderr %q)", status, tt.status, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdout) || (tt.stdout == "" && stdout.Len() > 0) {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.stdout)
			}
			if !strings.Contains(stderr.String(), tt.stderr) || (tt.stderr == "" && stderr.Len() > 0) {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.stderr)
			}
		})
	}
}
