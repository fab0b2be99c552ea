package service_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/xswtw/xsw/buildinfo"
	"github.com/xswtw/xsw/platform/service"
)

func TestCommandParse(t *testing.T) {
	cmd := service.Command{Name: "indexer", Usage: "usage: indexer [-h] [--version] [migrate]\n\nRuns the indexer.\n"}
	tests := []struct {
		args       []string
		status     int
		done       bool
		rest       []string
		stdout     string
		stderrHas  []string
		stderrNone bool
	}{
		{args: nil, rest: nil, stderrNone: true},
		{args: []string{"migrate"}, rest: []string{"migrate"}, stderrNone: true},
		{args: []string{"-h"}, done: true, stdout: cmd.Usage, stderrNone: true},
		{args: []string{"--help"}, done: true, stdout: cmd.Usage, stderrNone: true},
		{args: []string{"-help"}, done: true, stdout: cmd.Usage, stderrNone: true},
		{args: []string{"--version"}, done: true, stdout: "indexer " + buildinfo.Get().String() + "\n", stderrNone: true},
		{args: []string{"-version", "migrate"}, done: true, stdout: "indexer " + buildinfo.Get().String() + "\n", stderrNone: true},
		{args: []string{"--verbose"}, status: 2, done: true,
			stderrHas: []string{"indexer: flag provided but not defined: -verbose\n", "usage: indexer [-h] [--version] [migrate]\n"}},
		{args: []string{"--version=maybe"}, status: 2, done: true, stderrHas: []string{"usage: indexer"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			rest, status, done := cmd.Parse(tt.args, &stdout, &stderr)
			if status != tt.status || done != tt.done || strings.Join(rest, " ") != strings.Join(tt.rest, " ") {
				t.Errorf("Parse = %q, %d, %v; want %q, %d, %v", rest, status, done, tt.rest, tt.status, tt.done)
			}
			if stdout.String() != tt.stdout {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.stdout)
			}
			for _, want := range tt.stderrHas {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr %q lacks %q", stderr.String(), want)
				}
			}
			if tt.stderrNone && stderr.Len() > 0 {
				t.Errorf("stderr %q, want nothing", stderr.String())
			}
		})
	}
}

func TestCommandFail(t *testing.T) {
	var stderr bytes.Buffer
	cmd := service.Command{Name: "gateway", Usage: "usage: gateway [-h] [--version]\n\nServes the API.\n"}
	if status := cmd.Fail(&stderr, "unexpected argument %q", "serve"); status != 2 {
		t.Errorf("Fail = %d, want 2", status)
	}
	if want := "gateway: unexpected argument \"serve\"\nusage: gateway [-h] [--version]\n"; stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
}
