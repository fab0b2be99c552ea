package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/xswtw/xsw/buildinfo"
	"github.com/xswtw/xsw/dev/sitesim"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestLoadOptions(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		check   func(t *testing.T, o options)
		wantErr string
	}{
		{
			name: "defaults",
			check: func(t *testing.T, o options) {
				if o.addr != "127.0.0.1:8090" || o.site.Site != sitesim.SiteXSW || o.site.MinChapters != 20 || o.site.MaxChapters != 300 || o.site.Seed != 1 {
					t.Errorf("defaults = %+v", o)
				}
			},
		},
		{
			name: "environment",
			env:  map[string]string{"SITESIM_ADDR": "127.0.0.1:0", "SITESIM_SEED": "7", "SITESIM_CHAPTERS": "50", "SITESIM_LATENCY": "20ms", "SITESIM_BIG5": "true"},
			check: func(t *testing.T, o options) {
				c := o.site
				if o.addr != "127.0.0.1:0" || c.Seed != 7 || c.MinChapters != 50 || c.MaxChapters != 50 || c.Latency != 20*time.Millisecond || !c.Big5 {
					t.Errorf("from env = %+v", o)
				}
			},
		},
		{
			name: "flags override the environment",
			env:  map[string]string{"SITESIM_SEED": "7", "SITESIM_BOOKS_PER_CATEGORY": "9"},
			args: []string{"-seed", "8", "-chapters", "5..10", "-validators"},
			check: func(t *testing.T, o options) {
				c := o.site
				if c.Seed != 8 || c.BooksPerCategory != 9 || c.MinChapters != 5 || c.MaxChapters != 10 || !c.Validators {
					t.Errorf("flags = %+v", o)
				}
			},
		},
		{
			name: "czbooks from the environment",
			env:  map[string]string{"SITESIM_SITE": "czbooks"},
			check: func(t *testing.T, o options) {
				if o.site.Site != sitesim.SiteCzbooks {
					t.Errorf("site = %q, want czbooks", o.site.Site)
				}
			},
		},
		{
			name: "site flag overrides the environment",
			env:  map[string]string{"SITESIM_SITE": "czbooks"},
			args: []string{"-site", "xsw"},
			check: func(t *testing.T, o options) {
				if o.site.Site != sitesim.SiteXSW {
					t.Errorf("site = %q, want xsw", o.site.Site)
				}
			},
		},
		{name: "unknown site", args: []string{"-site", "example"}, wantErr: "site"},
		{name: "bad env", env: map[string]string{"SITESIM_SEED": "x"}, wantErr: "SITESIM_SEED"},
		{name: "bad range", args: []string{"-chapters", "10..a"}, wantErr: "SITESIM_CHAPTERS"},
		{name: "invalid", args: []string{"-categories", "9"}, wantErr: "categories"},
		{name: "stray argument", args: []string{"serve"}, wantErr: "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			o, err := loadOptions(tt.args, getenv, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one about %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}

func TestRun(t *testing.T) {
	tests := []struct {
		site    string
		listing string
	}{
		{"xsw", "/fenlei1_1.html"},
		{"czbooks", "/c/xuanhuan"},
	}
	for _, tt := range tests {
		t.Run(tt.site, func(t *testing.T) {
			opts, err := loadOptions([]string{"-addr", "127.0.0.1:0", "-site", tt.site, "-books", "2", "-chapters", "3"}, func(string) string { return "" }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			testRun(t, opts, tt.listing)
		})
	}
}

// testRun runs the command with opts, fetches the listing path and stops it.
func testRun(t *testing.T, opts options, listing string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, opts, slog.New(slog.DiscardHandler), pw)
		pw.Close()
	}()
	url, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("read url: %v", err)
	}
	url = strings.TrimSpace(url)

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url+listing, nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("GET listing: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %d", listing, resp.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

// TestCommandLine: -h and -version answer without serving anything, whatever the
// environment; a bad flag or value gets status 2 and the usage.
func TestCommandLine(t *testing.T) {
	badEnv := map[string]string{"SITESIM_SEED": "x"}
	tests := []struct {
		name           string
		args           []string
		env            map[string]string
		status         int
		stdout, stderr string
	}{
		{"help", []string{"-h"}, badEnv, 0, "", "usage: sitesim [flags]"},
		{"long help", []string{"--help"}, nil, 0, "", "SITESIM_CHAPTERS"},
		{"version", []string{"--version"}, badEnv, 0, "sitesim " + buildinfo.Get().String() + "\n", ""},
		{"unknown flag", []string{"--port", "80"}, nil, 2, "", "flag provided but not defined: -port\nusage: sitesim [flags]"},
		{"bad environment", nil, badEnv, 2, "", "SITESIM_SEED"},
		{"stray argument", []string{"serve"}, nil, 2, "", "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			status := command(tt.args, func(k string) string { return tt.env[k] }, &stdout, &stderr)
			if status != tt.status {
				t.Errorf("status %d, want %d (stderr %q)", status, tt.status, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdout) || (tt.stdout == "" && stdout.Len() > 0) {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.stdout)
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.stderr)
			}
		})
	}
}
