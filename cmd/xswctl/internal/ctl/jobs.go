package ctl

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
)

func (a *app) jobsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "jobs",
		Short: "Show the job statistics of every site: the queue, the jobs in flight and the recent failures",
		Long: `jobs shows GET /xsw/api/admin/jobs/stats, the seed's job statistics: the requests
waiting in each lane, the books being synced, how many jobs completed and failed, and
the newest failures with their errors. Books of the default site are named by their id,
the others' as site/id.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var s api.JobStats
			body, err := c.do(cmd.Context(), http.MethodGet, api.Prefix+"/admin/jobs/stats", nil, &s)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, body)
			}
			return printJobs(a.out, s)
		},
	}
}

func printJobs(w io.Writer, s api.JobStats) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	lanes := make([]string, len(events.Lanes))
	for i, l := range events.Lanes {
		lanes[i] = fmt.Sprintf("%s %d", l, s.QueueByLane[l])
	}
	fmt.Fprintf(tw, "queue\t%d waiting (%s)\n", s.QueueSize, strings.Join(lanes, " · "))
	inFlight := fmt.Sprint(s.ActiveJobs)
	if len(s.ActiveJobIDs) > 0 {
		inFlight += ": " + strings.Join(s.ActiveJobIDs, " ")
	}
	fmt.Fprintf(tw, "in flight\t%s\n", inFlight)
	fmt.Fprintf(tw, "jobs\t%d completed · %d failed · %d dead letters\n", s.CompletedCount, s.FailedCount, s.DeadLetters)
	fetchers := fmt.Sprintf("%d alive, %d workers", s.Fetchers, s.Workers)
	if s.RateInterval != nil {
		fetchers += ", " + seconds(*s.RateInterval) + " between requests"
	}
	if s.Circuit != nil {
		fetchers += ", circuit " + *s.Circuit
	}
	fmt.Fprintf(tw, "fetchers\t%s\n", fetchers)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(s.FailedJobs) == 0 {
		return nil
	}
	books := make([]string, 0, len(s.FailedJobs))
	for b := range s.FailedJobs {
		books = append(books, b)
	}
	// Newest first.
	slices.SortFunc(books, func(x, y string) int {
		if n := strings.Compare(s.FailedJobs[y].FailedAt, s.FailedJobs[x].FailedAt); n != 0 {
			return n
		}
		return strings.Compare(x, y)
	})
	fmt.Fprintf(w, "\nrecent failures (%d)\n", len(books))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BOOK\tFAILED\tERROR")
	for _, b := range books {
		f := s.FailedJobs[b]
		failed := f.FailedAt
		if at, ok := parseTime(&f.FailedAt); ok {
			failed = at.Local().Format("2006-01-02 15:04:05")
		}
		e := oneLine(f.Error, 120)
		if f.Permanent {
			e = "permanent: " + e
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", b, failed, e)
	}
	return tw.Flush()
}

func (a *app) historyCmd() *cobra.Command {
	history := &cobra.Command{
		Use:   "history",
		Short: "The job history kept in Postgres (see 'history clear')",
		Args:  exactArgs(0, "a subcommand: clear"),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	history.AddCommand(&cobra.Command{
		Use:   "clear",
		Short: "Delete the history of completed and failed jobs (the counts of stats and jobs start over)",
		Long: `clear deletes the history of completed and failed jobs of every site from Postgres
(POST /xsw/api/admin/jobs/clear_history), as the seed's clear_history did; it is also
pruned by itself after JOB_HISTORY_RETENTION. Queued requests and dead letters stay.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var r api.Cleared
			body, err := c.do(cmd.Context(), http.MethodPost, api.Prefix+"/admin/jobs/clear_history", nil, &r)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, body)
			}
			_, err = fmt.Fprintln(a.out, "job history cleared")
			return err
		},
	})
	return history
}
