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
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

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

// crawlQueued is the answer of POST /admin/crawl/categories.
type crawlQueued struct {
	Status     string   `json:"status"`
	CrawlID    string   `json:"crawl_id"`
	Site       string   `json:"site"`
	Categories []string `json:"categories"`
}

// jobStats is the part of GET /admin/jobs/stats a crawl follows.
type jobStats struct {
	QueueByLane map[events.Lane]int `json:"queue_by_lane"`
	ActiveJobs  int                 `json:"active_jobs"`
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
			var q crawlQueued
			body, err := c.do(cmd.Context(), http.MethodPost, apiPrefix+"/admin/crawl/categories", a.siteQuery(query), &q)
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
					named = strings.Join(q.Categories, ",")
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
	return cmd
}

// followCrawl shows the crawl's progress until it has walked its pages and the prefetch
// lane has drained, and returns its last progress.
func (a *app) followCrawl(ctx context.Context, c *client, id string, every time.Duration) (events.CrawlProgress, error) {
	var p events.CrawlProgress
	bar := a.bar(-1, "waiting for a fetcher to start the crawl")
	defer func() { _ = bar.Exit() }()
	// Phase 1: the listing pages.
	for {
		_, err := c.do(ctx, http.MethodGet, apiPrefix+"/admin/crawl/"+url.PathEscape(id), nil, &p)
		var apiErr *APIError
		switch {
		case errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound && p.Request.CrawlID == "":
			// Not picked up by a fetcher yet.
		case err != nil:
			return p, err
		default:
			if p.PagesTotal > 0 && bar.GetMax() != p.PagesTotal {
				bar.ChangeMax(p.PagesTotal)
			}
			bar.Describe(fmt.Sprintf("listing pages · %d books queued", p.BooksQueued))
			_ = bar.Set(p.PagesDone)
		}
		if p.State == events.CrawlDone {
			break
		}
		if err := wait(ctx, every); err != nil {
			return p, err
		}
	}
	_ = bar.Finish()
	if p.BooksQueued == 0 {
		return p, nil
	}
	// Phase 2: the queued books, as the prefetch lane drains.
	books := a.bar(p.BooksQueued, "books synced")
	defer func() { _ = books.Exit() }()
	for {
		var s jobStats
		if _, err := c.do(ctx, http.MethodGet, apiPrefix+"/admin/jobs/stats", nil, &s); err != nil {
			return p, err
		}
		pending := s.QueueByLane[events.LanePrefetch] + s.ActiveJobs
		_ = books.Set(max(0, p.BooksQueued-pending))
		if pending == 0 {
			_ = books.Finish()
			return p, nil
		}
		if err := wait(ctx, every); err != nil {
			return p, err
		}
	}
}

// bar is a progress bar on the error output (stdout stays for the results), hidden with
// --json. max -1 is a spinner until the size is known.
func (a *app) bar(max int, description string) *progressbar.ProgressBar {
	var w io.Writer = a.errOut
	if a.json {
		w = io.Discard
	}
	return progressbar.NewOptions(max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetVisibility(!a.json),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		progressbar.OptionSetPredictTime(true),
	)
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
