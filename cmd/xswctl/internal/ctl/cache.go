package ctl

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/xswtw/xsw/api"
)

func (a *app) cacheCmd() *cobra.Command {
	cache := &cobra.Command{
		Use:   "cache",
		Short: "The gateways' memory caches and the stored chapter texts: clear, invalidate, purge-texts",
		Args:  exactArgs(0, "a subcommand: clear, invalidate, purge-texts"),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cache.AddCommand(&cobra.Command{
		Use:   "clear",
		Short: "Empty every gateway's memory caches (books, chapter lists, texts, listings)",
		Long: `clear empties the memory caches of the gateway it reaches at once (POST
/xsw/api/admin/cache/clear), and every other replica's as soon as it hears of it over
NATS. Nothing stored in Postgres changes.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.site != "" {
				return usagef("cache clear empties the caches of every site; it takes no --site")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var r api.CacheCleared
			body, err := c.do(cmd.Context(), http.MethodPost, api.Prefix+"/admin/cache/clear", nil, &r)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, body)
			}
			_, err = fmt.Fprintf(a.out, "cache cleared: %d book entries and %d listing entries dropped on replica %s; the other replicas drop theirs as they hear of it\n",
				r.BookEntries, r.ListingEntries, r.Replica)
			return err
		},
	})
	cache.AddCommand(&cobra.Command{
		Use:   "invalidate BOOK_ID",
		Short: "Drop what every gateway caches about a book (of --site), so the next read comes from Postgres",
		Args:  exactArgs(1, "a book id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			c, err := a.bookClient(id)
			if err != nil {
				return err
			}
			var r api.CacheInvalidated
			body, err := c.do(cmd.Context(), http.MethodPost, api.Prefix+"/admin/cache/invalidate/"+id, a.siteQuery(nil), &r)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, body)
			}
			_, err = fmt.Fprintf(a.out, "book %s: %d cached entries dropped on replica %s; the other replicas drop theirs as they hear of it\n",
				a.bookName(r.Site, r.BookID), r.Entries, r.Replica)
			return err
		},
	})
	cache.AddCommand(&cobra.Command{
		Use:   "purge-texts BOOK_ID",
		Short: "Forget the stored chapter texts of a book (of --site): they are fetched again when next read",
		Long: `purge-texts asks the indexer to forget the chapter texts stored for the book (DELETE
/xsw/api/admin/cache/chapters/{book_id}); its metadata and chapter list stay. The
gateway waits a moment for the indexer: when that takes longer, purge-texts says the
purge is queued, and it completes shortly.`,
		Args: exactArgs(1, "a book id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			c, err := a.bookClient(id)
			if err != nil {
				return err
			}
			path := api.Prefix + "/admin/cache/chapters/" + id
			status, body, err := c.call(cmd.Context(), http.MethodDelete, path, a.siteQuery(nil))
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, body)
			}
			if status == http.StatusAccepted {
				var q api.PurgeQueued
				if err := json.Unmarshal(body, &q); err != nil {
					return fmt.Errorf("DELETE %s: unreadable answer: %w", path, err)
				}
				_, err = fmt.Fprintf(a.out, "book %s: the purge of its %d stored chapter texts is queued for the indexer; it completes shortly\n",
					a.bookName(q.Site, q.BookID), q.TextsStored)
				return err
			}
			var p api.TextsPurged
			if err := json.Unmarshal(body, &p); err != nil {
				return fmt.Errorf("DELETE %s: unreadable answer: %w", path, err)
			}
			_, err = fmt.Fprintf(a.out, "book %s: %d stored chapter texts forgotten; they are fetched again when next read\n",
				a.bookName(p.Site, p.BookID), p.TextsCleared)
			return err
		},
	})
	return cache
}
