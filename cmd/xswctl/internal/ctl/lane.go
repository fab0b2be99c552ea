package ctl

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
)

// laneNames are the lanes, highest first, as the commands take them.
func laneNames() []string {
	out := make([]string, len(events.Lanes))
	for i, l := range events.Lanes {
		out[i] = string(l)
	}
	return out
}

// laneArg checks a lane named on the command line.
func laneArg(s string) (events.Lane, error) {
	l := events.Lane(s)
	if !l.Valid() {
		return "", usagef("a lane is one of %s, got %q", strings.Join(laneNames(), ", "), s)
	}
	return l, nil
}

// completeLane completes the lane argument of a lane command.
func completeLane(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return laneNames(), cobra.ShellCompDirectiveNoFileComp
}

func (a *app) laneCmd() *cobra.Command {
	lane := &cobra.Command{
		Use:   "lane",
		Short: "List the lanes' fetch consumers of every site; pause, resume or purge a lane",
		Long: `lane lists the durable consumers the fetchers take each lane's requests from, one per
lane and site (GET /xsw/api/admin/jobs/lanes): whether each is paused, and how many
requests wait for it and how many the fetchers hold.

A paused lane delivers nothing: its requests wait in the stream, and the fetchers take
the other lanes' work. The pause is JetStream's own, so it outlives restarts of the
fetchers, of the gateway and of NATS.`,
		Args: exactArgs(0, "no arguments, or a subcommand: pause, resume, purge"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var l api.Lanes
			body, err := c.do(cmd.Context(), http.MethodGet, api.Prefix+"/admin/jobs/lanes", nil, &l)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, body)
			}
			return printLanes(a.out, l.Consumers)
		},
	}

	var until string
	pause := &cobra.Command{
		Use:   "pause LANE [--until TIME]",
		Short: "Pause a lane of --site's site (default: of every site) until a time, or until resumed",
		Long: `pause stops the fetchers from taking the lane's requests (POST
/xsw/api/admin/jobs/pause): those of --site's site, or of every site without --site.
Requests keep coming into the lane and wait; jobs already running finish. --until ends
the pause by itself: a time (RFC 3339, such as 2026-01-21T12:00:00Z) or a duration from
now (90m, 2h); without it the lane stays paused until 'xswctl lane resume'.`,
		Args:              exactArgs(1, "a lane: "+strings.Join(laneNames(), ", ")),
		ValidArgsFunction: completeLane,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := laneArg(args[0])
			if err != nil {
				return err
			}
			query := url.Values{"lane": {string(l)}}
			if until != "" {
				t, err := parseUntil(until, time.Now())
				if err != nil {
					return err
				}
				query.Set("until", t.UTC().Format(time.RFC3339))
			}
			return a.pause(cmd, "pause", a.siteQuery(query))
		},
	}
	pause.Flags().StringVar(&until, "until", "", "when the pause ends: a time (RFC 3339) or a duration from now (90m); default: until resumed")

	resume := &cobra.Command{
		Use:               "resume LANE",
		Short:             "Resume a paused lane of --site's site (default: of every site)",
		Args:              exactArgs(1, "a lane: "+strings.Join(laneNames(), ", ")),
		ValidArgsFunction: completeLane,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := laneArg(args[0])
			if err != nil {
				return err
			}
			return a.pause(cmd, "resume", a.siteQuery(url.Values{"lane": {string(l)}}))
		},
	}

	purge := &cobra.Command{
		Use:   "purge LANE",
		Short: "Drop every request waiting in a lane, of every site (jobs already running finish)",
		Long: `purge drops every request waiting in the lane, of every site (POST
/xsw/api/admin/jobs/purge): the queue survives restarts, so this is how a lane is
emptied. The books are requested again when readers or listings ask for them.`,
		Args:              exactArgs(1, "a lane: "+strings.Join(laneNames(), ", ")),
		ValidArgsFunction: completeLane,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := laneArg(args[0])
			if err != nil {
				return err
			}
			if a.site != "" {
				return usagef("lane purge drops the lane's requests of every site; it takes no --site")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var r api.LanePurged
			body, err := c.do(cmd.Context(), http.MethodPost, api.Prefix+"/admin/jobs/purge", url.Values{"lane": {string(l)}}, &r)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, body)
			}
			_, err = fmt.Fprintf(a.out, "lane %s purged: %d waiting requests dropped\n", r.Lane, r.Dropped)
			return err
		},
	}
	lane.AddCommand(pause, resume, purge)
	return lane
}

// pause pauses or resumes (op) the lane of query and says which consumers it did.
func (a *app) pause(cmd *cobra.Command, op string, query url.Values) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	var r api.LanePause
	body, err := c.do(cmd.Context(), http.MethodPost, api.Prefix+"/admin/jobs/"+op, query, &r)
	if err != nil {
		return err
	}
	if a.json {
		return printJSON(a.out, body)
	}
	which := "of every site"
	if r.Site != nil {
		which = "of site " + *r.Site
	}
	what := r.Status
	if r.PauseUntil != nil {
		what += " " + pausedUntil(*r.PauseUntil)
	}
	waiting := 0
	names := make([]string, len(r.Consumers))
	for i, cons := range r.Consumers {
		names[i] = cons.Consumer
		waiting += cons.Waiting
	}
	_, err = fmt.Fprintf(a.out, "lane %s %s %s (%s); %d requests wait in it\n", r.Lane, which, what, strings.Join(names, ", "), waiting)
	return err
}

// parseUntil reads --until: a time in RFC 3339, or a duration from now.
func parseUntil(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, usagef("--until wants a duration from now greater than zero, got %q", s)
		}
		// The API takes whole seconds: round up, so the pause is never shorter than asked.
		return now.Add(d).Add(time.Second - 1).Truncate(time.Second), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usagef("--until wants a time such as 2026-01-21T12:00:00Z or a duration such as 90m, got %q", s)
	}
	return t, nil
}

// pausedUntil says when a pause ends, for people.
func pausedUntil(t time.Time) string {
	if !t.Before(api.NoEnd()) {
		return "until resumed"
	}
	return "until " + t.Local().Format("2006-01-02 15:04:05")
}

func printLanes(w io.Writer, cs []api.LaneConsumer) error {
	if len(cs) == 0 {
		_, err := fmt.Fprintln(w, "no fetch consumers: no fetcher has started yet")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LANE\tSITE\tSTATE\tWAITING\tIN FLIGHT\tCONSUMER")
	for _, c := range cs {
		state := "running"
		if c.Paused && c.PauseUntil != nil {
			state = "paused " + pausedUntil(*c.PauseUntil)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Lane, c.Site, state, strconv.Itoa(c.Waiting), strconv.Itoa(c.InFlight), c.Consumer)
	}
	return tw.Flush()
}
