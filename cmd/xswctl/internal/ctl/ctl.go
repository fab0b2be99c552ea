// Package ctl holds xswctl's commands. Each calls the gateway's admin API (tail follows
// the dashboard's event stream; sites and book read public routes) with the admin token,
// reads the answer as the api package's type for it, and prints for people, or the
// answer itself for scripts with --json.
//
// A book is named by its site and its id. --site picks the site of the books a command
// names: admin operations send it as ?site=, reads go to /xsw/api/sites/{site}/...;
// without it the gateway's default site is meant and the unprefixed routes are used.
// Listings (stats, jobs, dead, lane, crawl list, tail) cover every site and say which
// each entry is.
package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
)

// DefaultURL is the gateway xswctl talks to when neither --url nor XSW_URL says.
const DefaultURL = "http://localhost:8000"

// app is what every command shares: the environment, the outputs and the global flags.
type app struct {
	getenv func(string) string
	out    io.Writer
	errOut io.Writer
	// terminal says out and errOut are terminals: progress is drawn as a bar (on errOut),
	// else written as plain lines.
	terminal bool
	url      string
	site     string // --site: "" is the gateway's default site
	json     bool
	timeout  time.Duration
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
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
	a := &app{getenv: getenv, out: out, errOut: errOut, terminal: isTerminal(out) && isTerminal(errOut)}
	root := &cobra.Command{
		Use:   "xswctl",
		Short: "Operate a running xsw through its gateway",
		Long: `xswctl operates a running xsw through its gateway's admin API.

The gateway is XSW_URL (default ` + DefaultURL + `, or --url); the admin token is
XSW_ADMIN_TOKEN. Output is for people; --json prints JSON for scripts.

A book is its site's: --site names the site of the books a command names (default: the
gateway's default site); 'xswctl sites' lists the sites. stats, jobs, dead, lane,
crawl list and tail show every site.

'xswctl completion bash|zsh|fish|powershell' prints a completion script; --site then
completes with the gateway's sites.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if a.site != "" && !events.ValidSiteID(a.site) {
				return usagef("--site wants a site id such as %s (a lowercase letter, then letters and digits), got %q", events.LegacySite, a.site)
			}
			return nil
		},
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err.Error()} })
	f := root.PersistentFlags()
	f.StringVar(&a.url, "url", "", "the gateway's base URL (default $XSW_URL, else "+DefaultURL+")")
	f.StringVar(&a.site, "site", "", "the site of the books a command names (default: the gateway's default site)")
	f.BoolVar(&a.json, "json", false, "print JSON instead of text")
	f.DurationVar(&a.timeout, "timeout", 30*time.Second, "bound on each API call")
	root.AddCommand(a.statsCmd(), a.jobsCmd(), a.sitesCmd(), a.bookCmd(), a.syncCmd(false), a.syncCmd(true), a.crawlCmd(), a.deadCmd(),
		a.laneCmd(), a.cacheCmd(), a.historyCmd(), a.tailCmd(), a.versionCmd())
	// --site completes with the gateway's sites, when it answers.
	_ = root.RegisterFlagCompletionFunc("site", a.completeSites)
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
func (a *app) client() (*client, error) { return a.newClient(true) }

// bookClient checks id as a book id and returns an admin client for a call about it.
func (a *app) bookClient(id string) (*client, error) {
	if err := checkBookID(id); err != nil {
		return nil, err
	}
	return a.client()
}

// publicClient returns a client for the public routes, which need no token; it sends
// XSW_ADMIN_TOKEN when set.
func (a *app) publicClient() (*client, error) { return a.newClient(false) }

func (a *app) newClient(admin bool) (*client, error) {
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
	if token == "" && admin {
		return nil, usagef("XSW_ADMIN_TOKEN is not set: export the gateway's admin token")
	}
	return &client{base: base, token: token, http: &http.Client{Timeout: a.timeout}, stream: &http.Client{}}, nil
}

// checkBookID refuses what cannot be a book id of any site before asking the gateway,
// which checks the site's own spelling.
func checkBookID(id string) error {
	if !events.ValidBookID(id) {
		return usagef("a book id is 1 to %d letters, digits, '-' or '_', got %q", events.MaxBookIDLen, id)
	}
	return nil
}

// siteQuery is query with ?site= when --site names a site: admin operations on a book
// read it, and take the default site without it.
func (a *app) siteQuery(query url.Values) url.Values {
	if a.site == "" {
		return query
	}
	if query == nil {
		query = url.Values{}
	}
	query.Set("site", a.site)
	return query
}

// readPath is the path of a public route for --site's site: /xsw/api/sites/{site}/...,
// or the unprefixed route (the default site's) without --site.
func (a *app) readPath(route string) string {
	if a.site == "" {
		return api.Prefix + route
	}
	return api.Prefix + "/sites/" + a.site + route
}

// bookName names a book in a line of output: the bare id when --site is unset (the
// default site's book, as the user named it), else "site/id", with the site the gateway
// answered (or --site).
func (a *app) bookName(site, id string) string {
	if a.site == "" {
		return id
	}
	if site == "" {
		site = a.site
	}
	return site + "/" + id
}

// siteOf names --site's site in a line of output ("czbooks "), with the site the
// gateway answered when it did; "" without --site.
func (a *app) siteOf(answered string) string {
	if a.site == "" {
		return ""
	}
	if answered == "" {
		answered = a.site
	}
	return answered + " "
}
