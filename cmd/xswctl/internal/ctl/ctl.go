// Package ctl holds xswctl's commands. Each calls the gateway's admin API (tail follows
// the dashboard's event stream) with the admin token, and prints for people, or JSON for
// scripts with --json.
package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// DefaultURL is the gateway xswctl talks to when neither --url nor XSW_URL says.
const DefaultURL = "http://localhost:8000"

// app is what every command shares: the environment, the outputs and the global flags.
type app struct {
	getenv  func(string) string
	out     io.Writer
	errOut  io.Writer
	url     string
	json    bool
	timeout time.Duration
}

// Main runs xswctl with args and returns its exit status: 0, 1 when a command failed, 2
// for a usage error.
func Main(ctx context.Context, args []string, getenv func(string) string, out, errOut io.Writer) int {
	cmd := Command(getenv, out, errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	switch {
	case err == nil:
		return 0
	case errors.As(err, new(*usageError)):
		fmt.Fprintf(errOut, "xswctl: %v\nRun 'xswctl help' for usage.\n", err)
		return 2
	}
	fmt.Fprintln(errOut, "xswctl:", err)
	return 1
}

// usageError is a command line xswctl cannot run.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// Command builds the xswctl command tree. getenv reads XSW_URL and XSW_ADMIN_TOKEN.
func Command(getenv func(string) string, out, errOut io.Writer) *cobra.Command {
	a := &app{getenv: getenv, out: out, errOut: errOut}
	root := &cobra.Command{
		Use:   "xswctl",
		Short: "Operate a running xsw through its gateway",
		Long: `xswctl operates a running xsw through its gateway's admin API.

The gateway is XSW_URL (default ` + DefaultURL + `, or --url); the admin token is
XSW_ADMIN_TOKEN. Output is for people; --json prints JSON for scripts.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err.Error()} })
	f := root.PersistentFlags()
	f.StringVar(&a.url, "url", "", "the gateway's base URL (default $XSW_URL, else "+DefaultURL+")")
	f.BoolVar(&a.json, "json", false, "print JSON instead of text")
	f.DurationVar(&a.timeout, "timeout", 30*time.Second, "bound on each API call")
	root.AddCommand(a.statsCmd(), a.syncCmd(false), a.syncCmd(true), a.crawlCmd(), a.deadCmd(), a.tailCmd())
	return root
}

// args checks a command's positional arguments with usage errors.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("want %s, got %d arguments", what, len(args))
		}
		return nil
	}
}

// client returns an API client for the configured gateway and token.
func (a *app) client() (*client, error) {
	raw := a.url
	if raw == "" {
		raw = strings.TrimSpace(a.getenv("XSW_URL"))
	}
	if raw == "" {
		raw = DefaultURL
	}
	base, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, usagef("the gateway URL %q is not an http(s) URL (XSW_URL or --url)", raw)
	}
	token := strings.TrimSpace(a.getenv("XSW_ADMIN_TOKEN"))
	if token == "" {
		return nil, usagef("XSW_ADMIN_TOKEN is not set: export the gateway's admin token")
	}
	return &client{base: base, token: token, http: &http.Client{Timeout: a.timeout}, stream: &http.Client{}}, nil
}

// validBookID reports whether s is a book id: 1 to 12 digits.
func validBookID(s string) bool {
	if s == "" || len(s) > 12 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
