package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
)

// rangeList is what --pages accepts: "3", "1-7", "1,3,5-7".
var rangeList = regexp.MustCompile(`^[0-9]{1,5}(-[0-9]{1,5})?(,[0-9]{1,5}(-[0-9]{1,5})?)*$`)

// categoryList reports whether s is what --categories accepts: comma-separated category
// ids or ranges of numeric ones ("1-7", "1,3", "xuanhuan,dushi"). Which ids a site has is
// the gateway's to say.
func categoryList(s string) bool {
	for part := range strings.SplitSeq(s, ",") {
		if !events.ValidID(part) {
			return false
		}
	}
	return true
}

func (a *app) crawlCmd() *cobra.Command {
	var (
		categories, pages string
		noWait            bool
		every             = time.Second
	)
	cmd := &cobra.Command{
		Use:   "crawl [--categories 1-7] --pages 1-10",
		Short: "Crawl whole categories of a site, queueing every listed book, and follow it until the books are synced",
		Long: `crawl asks the fetchers to walk the listing pages of the given categories of --site's
site (default: the gateway's default site; without --categories, every category the
gateway has stored for the site) at the polite rate and to queue every book on them in
the prefetch lane. Unless --no-wait, it follows the crawl with a progress bar: first the
listing pages walked, then the queued books as the prefetch lane drains (books that
other users' browsing queued count too). Stopping xswctl does not stop the crawl.`,
		Args: exactArgs(0, "no arguments, only flags"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if categories != "" && !categoryList(categories) {
				return usagef(`--categories wants category ids and ranges such as "1-7" or "1,3", got %q`, categories)
			}
			if !rangeList.MatchString(pages) {
				return usagef(`--pages wants numbers and ranges such as "1-10", got %q`, pages)
			}
			if every <= 0 {
				return usagef("--every must be positive")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			query := url.Values{"pages": {pages}}
			if categories != "" {
				query.Set("categories", categories)
			}
			var q api.CrawlQueued
			body, err := c.do(cmd.Context(), http.MethodPost, api.Prefix+"/admin/crawl/categories", a.siteQuery(query), &q)
			if err != nil {
				return err
			}
			if noWait {
				if a.json {
					return printJSON(a.out, body)
				}
				fmt.Fprintf(a.out, "crawl %s %s\n", q.CrawlID, q.Status)
				return nil
			}
			if !a.json {
				named := categories
				if named == "" {
					named = joinCategories(q.Categories)
				}
				fmt.Fprintf(a.out, "crawl %s %s: %scategories %s, pages %s\n", q.CrawlID, q.Status, a.siteOf(q.Site), named, pages)
			}
			p, err := a.followCrawl(cmd.Context(), c, q.CrawlID, every)
			if err != nil {
				return err
			}
			if a.json {
				b, err := json.Marshal(p)
				if err != nil {
					return err
				}
				return printJSON(a.out, b)
			}
			fmt.Fprintf(a.out, "crawl %s done: %d listing pages walked, %d books seen, %d queued; the prefetch lane has drained\n",
				p.Request.CrawlID, p.PagesDone, p.BooksSeen, p.BooksQueued)
			for _, e := range p.Errors {
				fmt.Fprintf(a.out, "  error: %s\n", oneLine(e, 200))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&categories, "categories", "", `categories to crawl: "1-7", "1,3", or the site's category ids (default: every one stored)`)
	f.StringVar(&pages, "pages", "1", `listing pages of each: "1-10"`)
	f.BoolVar(&noWait, "no-wait", false, "queue the crawl and return")
	f.DurationVar(&every, "every", every, "how often to look at the crawl's progress")
	cmd.AddCommand(a.crawlListCmd(), a.crawlStatusCmd())
	return cmd
}

func (a *app) crawlListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the crawls of every site the gateway keeps (a week), newest first",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var ps []events.CrawlProgress
			body, err := c.do(cmd.Context(), http.MethodGet, api.Prefix+"/admin/crawl", nil, &ps)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, body)
			}
			if len(ps) == 0 {
				_, err := fmt.Fprintln(a.out, "no crawls")
				return err
			}
			tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CRAWL\tSITE\tSTATE\tPAGES\tBOOKS QUEUED\tCATEGORIES\tSTARTED\tERRORS")
			for _, p := range ps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d\t%s\t%s\t%d\n", p.Request.CrawlID, orUnknown(p.Request.Site), p.State,
					p.PagesDone, p.PagesTotal, p.BooksQueued, oneLine(joinCategories(p.Request.Categories), 40), when(p.StartedAt), len(p.Errors))
			}
			return tw.Flush()
		},
	}
}

func (a *app) crawlStatusCmd() *cobra.Command {
	var (
		follow bool
		every  = time.Second
	)
	cmd := &cobra.Command{
		Use:   "status CRAWL_ID",
		Short: "Show how far a crawl has come; --follow follows it as crawl does",
		Args:  exactArgs(1, "a crawl id, such as crawl-1767000000000000000"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if !crawlID.MatchString(id) {
				return usagef("a crawl id looks like crawl-1767000000000000000 ('xswctl crawl list' lists them), got %q", id)
			}
			if every <= 0 {
				return usagef("--every must be positive")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var p events.CrawlProgress
			var body []byte
			if follow {
				if p, err = a.followCrawl(cmd.Context(), c, id, every); err != nil {
					return err
				}
				if body, err = json.Marshal(p); err != nil {
					return err
				}
			} else if body, err = c.do(cmd.Context(), http.MethodGet, api.Prefix+"/admin/crawl/"+url.PathEscape(id), nil, &p); err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, body)
			}
			return printCrawl(a.out, p)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the crawl until it is done and the prefetch lane has drained")
	cmd.Flags().DurationVar(&every, "every", every, "how often to look at the crawl's progress (with --follow)")
	return cmd
}

// crawlID is what a crawl id looks like.
var crawlID = regexp.MustCompile(`^crawl-[0-9]{1,58}$`)

func printCrawl(w io.Writer, p events.CrawlProgress) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "crawl\t%s\n", p.Request.CrawlID)
	fmt.Fprintf(tw, "site\t%s\n", orUnknown(p.Request.Site))
	fmt.Fprintf(tw, "state\t%s\n", p.State)
	fmt.Fprintf(tw, "asked\tcategories %s, pages %d-%d\n", joinCategories(p.Request.Categories), p.Request.FromPage, p.Request.ToPage)
	fmt.Fprintf(tw, "walked\t%d of %d listing pages · %d books seen · %d queued\n", p.PagesDone, p.PagesTotal, p.BooksSeen, p.BooksQueued)
	if len(p.Ended) > 0 {
		fmt.Fprintf(tw, "ended early\t%s (no more pages)\n", joinCategories(p.Ended))
	}
	fmt.Fprintf(tw, "started\t%s\n", when(p.StartedAt))
	fmt.Fprintf(tw, "updated\t%s\n", when(p.UpdatedAt))
	for i, e := range p.Errors {
		label := ""
		if i == 0 {
			label = "errors"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, oneLine(e, 200))
	}
	return tw.Flush()
}

// when writes a time for people, "?" when it is not set.
func when(t time.Time) string {
	if t.IsZero() {
		return "?"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// followCrawl shows the crawl's progress until it has walked its pages and the prefetch
// lane has drained, and returns its last progress.
func (a *app) followCrawl(ctx context.Context, c *client, id string, every time.Duration) (events.CrawlProgress, error) {
	var p events.CrawlProgress
	pages := a.progress(-1, "waiting for a fetcher to start the crawl")
	defer pages.exit()
	// Phase 1: the listing pages.
	for {
		_, err := c.do(ctx, http.MethodGet, api.Prefix+"/admin/crawl/"+url.PathEscape(id), nil, &p)
		var apiErr *APIError
		switch {
		case errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound && p.Request.CrawlID == "":
			// Not picked up by a fetcher yet.
		case err != nil:
			return p, err
		default:
			pages.set(p.PagesDone, p.PagesTotal, "listing pages", fmt.Sprintf("%d books queued", p.BooksQueued))
		}
		if p.State == events.CrawlDone {
			break
		}
		if err := wait(ctx, every); err != nil {
			return p, err
		}
	}
	pages.finish()
	if p.BooksQueued == 0 {
		return p, nil
	}
	// Phase 2: the queued books, as the prefetch lane drains.
	books := a.progress(p.BooksQueued, "books synced")
	defer books.exit()
	for {
		var s api.JobStats
		if _, err := c.do(ctx, http.MethodGet, api.Prefix+"/admin/jobs/stats", nil, &s); err != nil {
			return p, err
		}
		pending := s.QueueByLane[events.LanePrefetch] + s.ActiveJobs
		books.set(max(0, p.BooksQueued-pending), p.BooksQueued, "books synced", "")
		if pending == 0 {
			books.finish()
			return p, nil
		}
		if err := wait(ctx, every); err != nil {
			return p, err
		}
	}
}

// joinCategories lists category ids as --categories takes them: "1,2".
func joinCategories(ids []events.CategoryID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, ",")
}

// wait sleeps d or until ctx ends.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
