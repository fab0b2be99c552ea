package ctl

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
)

func (a *app) statsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Show the queue per lane, the jobs in flight, the sites' state and politeness, the fetchers and the database",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var s api.AdminStats
			body, err := c.do(cmd.Context(), http.MethodGet, api.Prefix+"/admin/stats", nil, &s)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, body)
			}
			printStats(a.out, s)
			return nil
		},
	}
}

// printStats shows GET /admin/stats. Job ids name books as the gateway does: the bare id
// for the default site's books, "site/id" for the others'.
func printStats(w io.Writer, s api.AdminStats) {
	lanes := make([]string, len(events.Lanes))
	for i, l := range events.Lanes {
		lanes[i] = fmt.Sprintf("%s %d", l, s.QueueByLane[l])
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "queue\t%d waiting (%s)\n", s.Jobs.QueueSize, strings.Join(lanes, " · "))
	inFlight := fmt.Sprint(s.Jobs.ActiveJobs)
	if len(s.Jobs.ActiveJobIDs) > 0 {
		inFlight += ": " + strings.Join(s.Jobs.ActiveJobIDs, " ")
	}
	fmt.Fprintf(tw, "in flight\t%s\n", inFlight)
	fmt.Fprintf(tw, "jobs\t%d completed · %d failed · %d dead letters\n", s.Jobs.CompletedCount, s.Jobs.FailedCount, s.DeadLetters)
	rate, circuit := "unknown (no fetcher reports)", "unknown"
	if s.RateInterval != nil {
		rate = fmt.Sprintf("%s between requests to the default site, cluster-wide ('xswctl sites': every site)", seconds(*s.RateInterval))
		if *s.RateInterval == 0 {
			rate = "off"
		}
	}
	if s.Circuit != nil {
		circuit = *s.Circuit + " (the default site's)"
	}
	fmt.Fprintf(tw, "politeness\t%s\n", rate)
	fmt.Fprintf(tw, "circuit\t%s\n", circuit)
	for i, st := range s.Sites {
		label := ""
		if i == 0 {
			label = "sites"
		}
		id := st.ID
		if st.Default {
			id += " (default)"
		}
		fmt.Fprintf(tw, "%s\t%s: %s, interval %s\n", label, id, orUnknown(st.State), interval(st))
	}
	fmt.Fprintf(tw, "fetchers\t%d alive, %d workers\n", len(s.Fetchers), s.Jobs.Workers)
	for _, f := range s.Fetchers {
		state := f.Circuit
		if f.Draining {
			state += ", draining"
		}
		name := f.FetcherID
		if len(f.Sites) > 0 {
			name += " (" + strings.Join(f.Sites, ", ") + ")"
		}
		fmt.Fprintf(tw, "\t%s: %d of %d workers busy, %s, circuit %s\n", name, f.ActiveJobs, f.Workers, seconds(f.Interval), state)
	}
	fmt.Fprintf(tw, "database\t%d books · %d chapters · %d with text\n", s.Database.Books, s.Database.Chapters, s.Database.ChaptersWithContent)
	_ = tw.Flush()
}

// seconds formats a number of seconds for people.
func seconds(s float64) string {
	switch {
	case s == 0:
		return "0 s"
	case s < 1:
		return fmt.Sprintf("%.2f s", s)
	case s < 10:
		return fmt.Sprintf("%.1f s", s)
	}
	return fmt.Sprintf("%.0f s", s)
}

// printJSON writes an answer as it came, on one line.
func printJSON(w io.Writer, body []byte) error {
	_, err := fmt.Fprintln(w, strings.TrimSpace(string(body)))
	return err
}
