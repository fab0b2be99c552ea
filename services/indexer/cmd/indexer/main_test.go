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
		{[]string{"-h"}, 0, "usage: indexer [-h | --help] [--version] [migrate]\n", ""},
		{[]string{"--help"}, 0, "INDEXER_HEALTH_ADDR", ""},
		{[]string{"--version"}, 0, "indexer " + buildinfo.Get().String() + "\n", ""},
		{[]string{"--batch=4"}, 2, "", "indexer: flag provided but not defined: -batch\nusage: indexer [-h | --help] [--version] [migrate]\n"},
		{[]string{"serve"}, 2, "", "indexer: unexpected argument \"serve\"\nusage: indexer"},
		{[]string{"migrate", "now"}, 2, "", "indexer: unexpected argument \"now\"\nusage: indexer"},
		{nil, 1, "", "indexer: configuration: NATS_REPLICAS: want 1, 3 or 5, got 2"},
		{[]string{"migrate"}, 1, "", "indexer: configuration: NATS_REPLICAS: want 1, 3 or 5, got 2"},
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
