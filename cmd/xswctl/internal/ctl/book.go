package ctl

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/xswtw/xsw/api"
)

func (a *app) bookCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "book BOOK_ID",
		Short: "Show a book of --site as the API serves it (a book not stored yet is synced first)",
		Long: `book reads a book as readers do (GET /xsw/api/sites/{site}/books/{book_id}, or the
unprefixed route without --site): its metadata, how many chapters are stored and when it
was synced. A book the gateway does not hold yet is synced interactively; when that takes
longer than the gateway waits, book says so and the sync goes on.`,
		Args: exactArgs(1, "a book id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := checkBookID(id); err != nil {
				return err
			}
			c, err := a.publicClient()
			if err != nil {
				return err
			}
			status, body, err := c.call(cmd.Context(), http.MethodGet, a.readPath("/books/"+id), nil)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, body)
			}
			var b api.Book
			if err := json.Unmarshal(body, &b); err != nil {
				return fmt.Errorf("GET %s: unreadable answer: %w", a.readPath("/books/"+id), err)
			}
			if status == http.StatusAccepted {
				fmt.Fprintf(a.out, "book %s: not stored yet; a sync is queued, ask again in a moment\n", a.bookName(b.Site, id))
				return nil
			}
			return printBook(a.out, b)
		},
	}
}

func printBook(w io.Writer, b api.Book) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	status := b.Status
	if b.Finished {
		status += " (finished)"
	}
	newest := "?"
	if b.LastChapterNumber != nil {
		newest = strconv.Itoa(*b.LastChapterNumber) + " " + b.LastChapterTitle
	}
	synced := "never"
	if at, ok := parseTime(b.SyncedAt); ok {
		synced = at.Local().Format("2006-01-02 15:04:05")
	}
	fmt.Fprintf(tw, "site\t%s\n", orUnknown(b.Site))
	fmt.Fprintf(tw, "book\t%s\n", b.BookID)
	fmt.Fprintf(tw, "name\t%s\n", b.Name)
	fmt.Fprintf(tw, "author\t%s\n", b.Author)
	fmt.Fprintf(tw, "genre\t%s\n", b.Type)
	fmt.Fprintf(tw, "status\t%s\n", status)
	fmt.Fprintf(tw, "chapters\t%d stored (%s) · newest %s\n", b.ChapterCount, b.SyncStatus, newest)
	fmt.Fprintf(tw, "synced\t%s\n", synced)
	return tw.Flush()
}
