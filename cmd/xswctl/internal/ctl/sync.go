package ctl

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/xswtw/xsw/api"
)

// syncCmd is `sync BOOK_ID`, or with force `resync BOOK_ID` (past the recently-synced
// check), of --site's book.
func (a *app) syncCmd(force bool) *cobra.Command {
	priority := 10
	cmd := &cobra.Command{
		Use:   "sync BOOK_ID",
		Short: "Queue a sync of a book (of --site): priority 5 and up goes to the manual lane, lower to prefetch",
		Args:  exactArgs(1, "a book id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := checkBookID(id); err != nil {
				return err
			}
			if priority < 0 || priority > 100 {
				return usagef("--priority must be 0 to 100, got %d", priority)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			path := api.Prefix + "/admin/jobs/sync/" + id
			if force {
				path = api.Prefix + "/admin/jobs/force-resync/" + id
			}
			var r api.SyncAnswer
			body, err := c.do(cmd.Context(), http.MethodPost, path, a.siteQuery(url.Values{"priority": {strconv.Itoa(priority)}}), &r)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, body)
			}
			if r.Status == api.RequestRecentlySynced {
				fmt.Fprintf(a.out, "book %s: synced moments ago, not queued again (resync forces it)\n", a.bookName(r.Site, r.BookID))
				return nil
			}
			fmt.Fprintf(a.out, "book %s: %s in the %s lane (priority %d%s)\n", a.bookName(r.Site, r.BookID), status(r.Status), r.Lane, r.Priority, forced(r.Force))
			return nil
		},
	}
	if force {
		cmd.Use = "resync BOOK_ID"
		cmd.Short = "Queue a sync of a book (of --site) even if it was synced moments ago"
	}
	cmd.Flags().IntVar(&priority, "priority", priority, "0 to 100; 5 and up is the manual lane")
	return cmd
}

// status says a request status in words.
func status(s string) string {
	switch s {
	case api.RequestQueued:
		return "queued"
	case api.RequestAlreadyQueued:
		return "already waiting"
	case api.RequestAlreadySyncing:
		return "being synced now"
	case api.RequestRecentlySynced:
		return "synced moments ago"
	}
	return s
}

func forced(f bool) string {
	if f {
		return ", forced"
	}
	return ""
}
