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
	t.Setenv("NATS_REPLICAS", "2")
	tests := []struct {
		args           []string
		status         int
		stdout, stderr string
	}{
		{[]string{"-h"}, 0, "usage: fetcher [-h | --help] [--version]\n", ""},
		{[]string{"--help"}, 0, "FETCHER_HEALTH_ADDR", ""},
		{[]string{"--version"}, 0, "fetcher " + buildinfo.Get().String() + "\n", ""},
		{[]string{"--workers=4"}, 2, "", "fetcher: flag provided but not defined: -workers\nusage: fetcher [-h | --help] [--version]\n"},
		{[]string{"serve"}, 2, "", "fetcher: unexpected argument \"serve\"\nusage: fetcher"},
		{nil, 1, "", "fetcher: configuration: NATS_REPLICAS: want 1, 3 or 5, got 2"},
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
