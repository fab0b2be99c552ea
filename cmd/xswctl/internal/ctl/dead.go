package ctl

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/xswtw/xsw/api"
)

func (a *app) deadCmd() *cobra.Command {
	limit := 100
	dead := &cobra.Command{
		Use:   "dead",
		Short: "List the dead letters of every site: requests that gave up, newest first",
		Args:  exactArgs(0, "no arguments (did you mean 'dead replay'?)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 1000 {
				return usagef("--limit must be 1 to 1000, got %d", limit)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var d api.DeadLetters
			body, err := c.do(cmd.Context(), http.MethodGet, api.Prefix+"/admin/jobs/dead", url.Values{"limit": {strconv.Itoa(limit)}}, &d)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, body)
			}
			if d.Total == 0 {
				fmt.Fprintln(a.out, "no dead letters")
				return nil
			}
			fmt.Fprintf(a.out, "%d dead letters", d.Total)
			if d.Total > len(d.DeadLetters) {
				fmt.Fprintf(a.out, " (the newest %d)", len(d.DeadLetters))
			}
			fmt.Fprintln(a.out)
			tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SITE\tBOOK\tLANE\tATTEMPTS\tDIED\tERROR")
			for _, l := range d.DeadLetters {
				lane, attempts, died := "?", "?", "?"
				if l.Lane != nil {
					lane = *l.Lane
				}
				if l.Attempts != nil {
					attempts = strconv.Itoa(*l.Attempts)
				}
				if at, ok := parseTime(l.DiedAt); ok {
					died = at.Local().Format("2006-01-02 15:04:05")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", orUnknown(l.Site), l.BookID, lane, attempts, died, oneLine(l.Error, 120))
			}
			return tw.Flush()
		},
	}
	dead.Flags().IntVar(&limit, "limit", limit, "how many to list, 1 to 1000")

	all := false
	replay := &cobra.Command{
		Use:   "replay (BOOK_ID | --all)",
		Short: "Request a dead letter's book (of --site) again, as its request was (forced), and delete the letter",
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case all && len(args) > 0:
				return usagef("give a book id or --all, not both")
			case all && a.site != "":
				return usagef("replay --all replays the dead letters of every site; it takes no --site")
			case !all && len(args) != 1:
				return usagef("want a book id, or --all")
			case !all:
				if err := checkBookID(args[0]); err != nil {
					return err
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if all {
				var r api.ReplayAll
				body, err := c.do(cmd.Context(), http.MethodPost, api.Prefix+"/admin/jobs/dead/replay_all", nil, &r)
				if err != nil {
					return err
				}
				if a.json {
					return printJSON(a.out, body)
				}
				fmt.Fprintf(a.out, "replayed %d dead letters%s", r.Replayed, countsOf(r.Statuses))
				if r.Remaining != nil && *r.Remaining > 0 {
					fmt.Fprintf(a.out, "; %d remain (run it again)", *r.Remaining)
				}
				fmt.Fprintln(a.out)
				if r.Error != "" {
					return fmt.Errorf("replay cut short: %s", r.Error)
				}
				return nil
			}
			var r api.Replay
			body, err := c.do(cmd.Context(), http.MethodPost, api.Prefix+"/admin/jobs/dead/"+args[0]+"/replay", a.siteQuery(nil), &r)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, body)
			}
			fmt.Fprintf(a.out, "book %s: %s in the %s lane (forced); its dead letter is deleted\n", a.bookName(r.Site, r.BookID), status(r.Status), r.Lane)
			return nil
		},
	}
	replay.Flags().BoolVar(&all, "all", false, "replay every dead letter, of every site")
	dead.AddCommand(replay, a.acceptShrinkCmd())
	return dead
}

// acceptShrinkCmd is `dead accept-shrink BOOK_ID`, of --site's book.
func (a *app) acceptShrinkCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "accept-shrink BOOK_ID",
		Short: "Accept that a book's site (of --site) removed chapters: the next sync applies what it lists; delete its dead letter",
		Long: `accept-shrink is for a dead letter whose error says "shrink refused" when the site
really removed the chapters: a replay is refused the same way every time. It tells the
indexer that the shrink is accepted (POST /xsw/api/admin/books/{book_id}/accept-shrink),
requests the book in the manual lane, forced, and deletes its dead letter, if any. The
first sync of the book completed after that applies whatever the site lists: the
chapters past its end are deleted, and the book's high-water mark comes down to what
it lists.`,
		Args: exactArgs(1, "a book id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			c, err := a.bookClient(id)
			if err != nil {
				return err
			}
			var r api.ShrinkAccepted
			body, err := c.do(cmd.Context(), http.MethodPost, api.Prefix+"/admin/books/"+id+"/accept-shrink", a.siteQuery(nil), &r)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, body)
			}
			letter := "it had no dead letter"
			if r.DeadLetterDeleted {
				letter = "its dead letter is deleted"
			}
			_, err = fmt.Fprintf(a.out, "book %s: shrink accepted, the next sync applies what the site lists; %s in the %s lane (forced); %s\n",
				a.bookName(r.Site, r.BookID), status(r.Requested), r.Lane, letter)
			return err
		},
	}
}

// countsOf says how many replays ended in each status: " (queued 2, already_syncing 1)".
func countsOf(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// parseTime reads a time the API wrote (RFC 3339); ok is false for null or what does
// not parse.
func parseTime(s *string) (time.Time, bool) {
	if s == nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, *s)
	return t, err == nil
}

// oneLine flattens s to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
