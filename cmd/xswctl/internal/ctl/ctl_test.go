package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
)

const token = "t0ken"

// gateway is a stand-in for the gateway's admin API and event stream, answering as the
// real one does (see dev/e2e for the commands against a real gateway).
type gateway struct {
	*httptest.Server
	mu       sync.Mutex
	calls    []string
	tokens   []bool // whether each call carried the admin token
	crawlGet atomic.Int32
	statsGet atomic.Int32
	streams  atomic.Int32
}

// Sites of the stand-in gateway: xsw (the default) and toy, each with its own spelling
// of book ids, as the real gateway checks them.
var standInSites = map[string]*regexp.Regexp{
	"xsw": regexp.MustCompile(`^[1-9][0-9]{0,11}$`),
	"toy": regexp.MustCompile(`^[a-z]-[0-9a-f]{2}$`),
}

func newGateway(t *testing.T) *gateway {
	t.Helper()
	g := &gateway{}
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, status int, body string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
	// book checks a book named by ?site= (admin) or the path's {site} (reads), answering
	// 404 or 400 as the gateway does, and returns its site.
	book := func(w http.ResponseWriter, r *http.Request, site string) (string, bool) {
		if site == "" {
			site = "xsw"
		}
		pattern, ok := standInSites[site]
		switch {
		case !ok:
			reply(w, 404, fmt.Sprintf(`{"detail":%q}`, fmt.Sprintf("unknown site %q: this gateway serves toy, xsw", site)))
		case !pattern.MatchString(r.PathValue("id")):
			reply(w, 400, fmt.Sprintf(`{"detail":"%s is not a book id of %s"}`, r.PathValue("id"), site))
		}
		return site, ok && pattern.MatchString(r.PathValue("id"))
	}
	mux.HandleFunc("GET /xsw/api/admin/stats", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, 200, `{"database":{"books":20,"chapters":2670,"chapters_with_content":1},
			"jobs":{"queue_size":5,"active_jobs":2,"active_job_ids":["1721851","toy/b-7f"],"completed_count":42,"failed_count":2,"workers":2,"running":true},
			"queue_by_lane":{"interactive":0,"manual":1,"prefetch":4,"refresh":0},"dead_letters":1,
			"rate_interval_seconds":2,"circuit":"closed",
			"sites":[{"id":"xsw","name":"小說王","base_url":"https://m.xsw.tw","default":true,"state":"ok","rate_interval_seconds":2},
				{"id":"toy","name":"Toy","base_url":"http://toy.test","default":false,"state":"unknown","rate_interval_seconds":0}],
			"fetchers":[{"fetcher_id":"fetcher-54173d","sites":["xsw","toy"],"workers":2,"active_jobs":2,"active_job_ids":["1721851","toy/b-7f"],"interval_seconds":2,"circuit":"closed","draining":false}]}`)
	})
	mux.HandleFunc("GET /xsw/api/sites", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, 200, `[{"id":"xsw","name":"小說王","base_url":"https://m.xsw.tw","default":true,"state":"ok","rate_interval_seconds":2},
			{"id":"toy","name":"Toy","base_url":"http://toy.test","default":false,"state":"throttled","rate_interval_seconds":7.5},
			{"id":"off","name":"Off","base_url":"http://off.test","default":false,"state":"ok","rate_interval_seconds":0},
			{"id":"new","name":"","base_url":"","default":false,"state":"unknown","rate_interval_seconds":0}]`)
	})
	books := func(w http.ResponseWriter, r *http.Request) {
		site, ok := book(w, r, r.PathValue("site"))
		if !ok {
			return
		}
		if r.PathValue("id") == "9" {
			reply(w, 202, `{"status":"queued","book_id":"9"}`)
			return
		}
		reply(w, 200, fmt.Sprintf(`{"name":"Book %[2]s","author":"Author","type":"玄幻","status":"連載中","update":"",
			"last_chapter_title":"第132章","last_chapter_url":"","last_chapter_number":132,"site":%[1]q,"book_id":%[2]q,
			"description":"","cover_url":"","finished":true,"chapter_count":132,"sync_status":"complete",
			"synced_at":"2026-01-21T12:00:00Z","checked_at":null,"changed_at":null}`, site, r.PathValue("id")))
	}
	mux.HandleFunc("GET /xsw/api/books/{id}", books)
	mux.HandleFunc("GET /xsw/api/sites/{site}/books/{id}", books)
	mux.HandleFunc("POST /xsw/api/admin/jobs/sync/{id}", func(w http.ResponseWriter, r *http.Request) {
		if site, ok := book(w, r, r.URL.Query().Get("site")); ok {
			reply(w, 200, fmt.Sprintf(`{"status":"queued","site":%q,"book_id":%q,"priority":%s,"lane":"manual","force":false}`,
				site, r.PathValue("id"), r.URL.Query().Get("priority")))
		}
	})
	mux.HandleFunc("POST /xsw/api/admin/jobs/force-resync/{id}", func(w http.ResponseWriter, r *http.Request) {
		if site, ok := book(w, r, r.URL.Query().Get("site")); ok {
			reply(w, 200, fmt.Sprintf(`{"status":"already_syncing","site":%q,"book_id":%q,"priority":10,"lane":"manual","force":true}`, site, r.PathValue("id")))
		}
	})
	mux.HandleFunc("GET /xsw/api/admin/jobs/dead", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, `{"total":3,"dead_letters":[
			{"site":"xsw","book_id":"1234567","lane":"prefetch","priority":0,"error":"fetch book home: source answered 503","attempts":5,"died_at":"2026-01-21T12:00:00Z","job_id":"xsw.1234567-42"},
			{"site":"toy","book_id":"b-7f","lane":"manual","priority":10,"error":"not found","attempts":1,"died_at":"2026-01-21T12:01:00Z","job_id":"toy.b-7f-3"},
			{"site":"xsw","book_id":"7654321","lane":null,"priority":null,"error":"unreadable dead letter","attempts":null,"died_at":null,"job_id":null}]}`)
	})
	mux.HandleFunc("POST /xsw/api/admin/jobs/dead/{id}/replay", func(w http.ResponseWriter, r *http.Request) {
		site, ok := book(w, r, r.URL.Query().Get("site"))
		if !ok {
			return
		}
		if dead := map[string]string{"xsw": "1234567", "toy": "b-7f"}[site]; r.PathValue("id") != dead {
			reply(w, 404, fmt.Sprintf(`{"detail":"book %s of site %s has no dead letter"}`, r.PathValue("id"), site))
			return
		}
		reply(w, 200, fmt.Sprintf(`{"status":"queued","site":%q,"book_id":%q,"lane":"prefetch","priority":0,"force":true}`, site, r.PathValue("id")))
	})
	mux.HandleFunc("POST /xsw/api/admin/jobs/dead/replay_all", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, 200, `{"replayed":2,"statuses":{"queued":1,"already_syncing":1},"book_ids":["1234567","7654321"],"remaining":0}`)
	})
	mux.HandleFunc("POST /xsw/api/admin/crawl/categories", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		site := q.Get("site")
		if site == "" {
			site = "xsw"
		}
		// Without categories, every one stored for the site.
		cats := map[string]string{"xsw": "1-2", "toy": "fantasy,sci-fi"}[site]
		if (q.Has("categories") && q.Get("categories") != cats) || q.Get("pages") != "1-3" {
			reply(w, 400, `{"detail":"bad ranges"}`)
			return
		}
		list := map[string]string{"xsw": `["1","2"]`, "toy": `["fantasy","sci-fi"]`}[site]
		reply(w, 202, fmt.Sprintf(`{"status":"queued","crawl_id":"crawl-1","site":%q,"categories":%s}`, site, list))
	})
	crawl2 := events.CrawlProgress{Request: events.CrawlRequested{CrawlID: "crawl-2", Site: "toy", Categories: []events.CategoryID{"fantasy"}, FromPage: 1, ToPage: 2},
		State: events.CrawlRunning, PagesTotal: 2, PagesDone: 1, BooksQueued: 20, BooksSeen: 20, Errors: []string{"page 2: source answered 503"}}
	mux.HandleFunc("GET /xsw/api/admin/crawl/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == crawl2.Request.CrawlID {
			b, _ := json.Marshal(crawl2)
			reply(w, 200, string(b))
			return
		}
		n := int(g.crawlGet.Add(1))
		if n == 1 {
			reply(w, 404, `{"detail":"no such crawl yet"}`) // not picked up by a fetcher yet
			return
		}
		done := min(2*(n-1), 6)
		p := events.CrawlProgress{Header: events.Header{Version: events.Version},
			Request: events.CrawlRequested{Header: events.Header{Version: events.Version}, CrawlID: "crawl-1", Site: "xsw",
				Categories: []events.CategoryID{"1", "2"}, FromPage: 1, ToPage: 3},
			State: events.CrawlRunning, PagesTotal: 6, PagesDone: done, BooksQueued: 20 * done, BooksSeen: 20 * done}
		if done == 6 {
			p.State = events.CrawlDone
		}
		b, _ := json.Marshal(p)
		reply(w, 200, string(b))
	})
	mux.HandleFunc("GET /xsw/api/admin/jobs/stats", func(w http.ResponseWriter, _ *http.Request) {
		pending := max(0, 100-40*int(g.statsGet.Add(1)))
		reply(w, 200, fmt.Sprintf(`{"queue_size":%d,"active_jobs":%d,"queue_by_lane":{"prefetch":%d}}`, pending, min(pending, 2), max(0, pending-2)))
	})
	answer := func(w http.ResponseWriter, status int, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		reply(w, status, string(b))
	}
	until := time.Date(2026, 1, 21, 13, 0, 0, 0, time.UTC)
	consumers := func(lane, site string, paused bool) []api.LaneConsumer {
		var out []api.LaneConsumer
		for _, s := range []string{"toy", "xsw", ""} {
			if site != "" && s != site && (s != "" || site != "xsw") {
				continue
			}
			c := api.LaneConsumer{Consumer: "fetch-" + lane + "-" + s, Lane: events.Lane(lane), Site: s, Paused: paused, Waiting: 1}
			if s == "" {
				c.Consumer, c.Site, c.Waiting = "fetch-"+lane, "xsw", 0
			}
			if paused {
				c.PauseUntil = &until
			}
			out = append(out, c)
		}
		return out
	}
	mux.HandleFunc("GET /xsw/api/admin/jobs/lanes", func(w http.ResponseWriter, _ *http.Request) {
		answer(w, 200, api.Lanes{Consumers: append(consumers("manual", "", true), consumers("prefetch", "", false)...)})
	})
	mux.HandleFunc("POST /xsw/api/admin/jobs/{op}", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch op := r.PathValue("op"); op {
		case "purge":
			answer(w, 200, api.LanePurged{Dropped: 2, Lane: events.Lane(q.Get("lane")), Status: "purged"})
		case "pause", "resume":
			out := api.LanePause{Status: op + "d", Lane: events.Lane(q.Get("lane")), Consumers: consumers(q.Get("lane"), q.Get("site"), op == "pause")}
			if q.Has("site") {
				site := q.Get("site")
				out.Site = &site
			}
			if op == "pause" {
				out.PauseUntil = &until
				if q.Has("until") {
					t, err := time.Parse(time.RFC3339, q.Get("until"))
					if err != nil {
						reply(w, 400, `{"detail":"until must be a time in RFC 3339"}`)
						return
					}
					out.PauseUntil = &t
				} else {
					noEnd := api.NoEnd()
					out.PauseUntil = &noEnd
				}
			}
			answer(w, 200, out)
		case "clear_history":
			answer(w, 200, api.Cleared{Message: "Job history cleared", Status: "cleared"})
		default:
			reply(w, 404, `{"detail":"no route"}`)
		}
	})
	mux.HandleFunc("POST /xsw/api/admin/books/{id}/accept-shrink", func(w http.ResponseWriter, r *http.Request) {
		site, ok := book(w, r, r.URL.Query().Get("site"))
		if !ok {
			return
		}
		if stored := map[string]string{"xsw": "1234567", "toy": "b-7f"}[site]; r.PathValue("id") != stored {
			reply(w, 404, fmt.Sprintf(`{"detail":"book %s of site %s is not stored: there is no shrink to accept"}`, r.PathValue("id"), site))
			return
		}
		answer(w, 200, api.ShrinkAccepted{Status: "accepted", Site: site, BookID: r.PathValue("id"), AcceptedAt: time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC),
			Requested: api.RequestQueued, Lane: events.LaneManual, Priority: 10, Force: true, DeadLetterDeleted: site == "xsw"})
	})
	mux.HandleFunc("POST /xsw/api/admin/cache/clear", func(w http.ResponseWriter, _ *http.Request) {
		answer(w, 200, api.CacheCleared{BookEntries: 3, ListingEntries: 1, Replica: "gw-1", Status: "cleared"})
	})
	mux.HandleFunc("POST /xsw/api/admin/cache/invalidate/{id}", func(w http.ResponseWriter, r *http.Request) {
		if site, ok := book(w, r, r.URL.Query().Get("site")); ok {
			answer(w, 200, api.CacheInvalidated{BookID: r.PathValue("id"), Entries: 2, Replica: "gw-1", Site: site, Status: "invalidated"})
		}
	})
	mux.HandleFunc("DELETE /xsw/api/admin/cache/chapters/{id}", func(w http.ResponseWriter, r *http.Request) {
		site, ok := book(w, r, r.URL.Query().Get("site"))
		switch {
		case !ok:
		case r.PathValue("id") == "7": // the indexer is slow
			answer(w, 202, api.PurgeQueued{BookID: "7", Site: site, Status: "queued", TextsStored: 4})
		default:
			answer(w, 200, api.TextsPurged{BookID: r.PathValue("id"), Site: site, Status: "purged", TextsCleared: 2})
		}
	})
	mux.HandleFunc("GET /xsw/api/admin/crawl", func(w http.ResponseWriter, _ *http.Request) {
		answer(w, 200, []events.CrawlProgress{crawl2})
	})
	mux.HandleFunc("GET /xsw/api/admin/version", func(w http.ResponseWriter, _ *http.Request) {
		answer(w, 200, api.Version{Version: "v1.2.3", Revision: "0123456789abcdef", Time: "2026-01-21T12:00:00Z", GoVersion: "go1.26.0"})
	})
	mux.HandleFunc("GET /xsw/admin/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		job := func(seq int, kind, site, book string) string {
			return fmt.Sprintf(`{"seq":%d,"kind":%q,"site":%q,"book_id":%q,"lane":"prefetch","attempt":1,"at":"2026-01-21T12:00:%02dZ","chapters":12,"took_seconds":1.5,"fetcher":"f1"}`,
				seq, kind, site, book, seq)
		}
		switch g.streams.Add(1) {
		case 1: // three recent, one live, then the server ends the stream
			fmt.Fprintf(w, "retry: 1000\n\nevent: recent\ndata: [%s,%s,%s]\n\n", job(1, "queued", "xsw", "1000001"), job(2, "started", "xsw", "1000001"), job(3, "completed", "xsw", "1000001"))
			fmt.Fprintf(w, "event: stats\ndata: {}\n\nid: 4\nevent: job\ndata: %s\n\n", job(4, "queued", "toy", "b-7f"))
		case 2: // after reconnecting: the recent list again, with one it missed
			fmt.Fprintf(w, "event: recent\ndata: [%s,%s,%s]\n\n", job(2, "started", "xsw", "1000001"), job(4, "queued", "toy", "b-7f"), job(5, "started", "toy", "b-7f"))
			fmt.Fprintf(w, ": keep-alive\n\nid: 6\nevent: job\ndata: %s\n\n", strings.Replace(job(6, "failed", "toy", "b-7f"), `"fetcher"`, `"error":"source: not found","permanent":true,"fetcher"`, 1))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		default:
			<-r.Context().Done()
		}
	})
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		admin := strings.HasPrefix(r.URL.Path, "/xsw/api/admin/") || strings.HasPrefix(r.URL.Path, "/xsw/admin/")
		if admin && r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, `{"detail":"admin endpoints need Authorization: Bearer <XSW_ADMIN_TOKEN>"}`, http.StatusUnauthorized)
			return
		}
		g.mu.Lock()
		g.calls = append(g.calls, r.Method+" "+r.URL.RequestURI())
		g.tokens = append(g.tokens, r.Header.Get("Authorization") == "Bearer "+token)
		g.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(g.Close)
	return g
}

// run runs xswctl against g and returns its outputs and exit status.
func run(ctx context.Context, g *gateway, env map[string]string, args ...string) (stdout, stderr string, code int) {
	if env == nil {
		env = map[string]string{"XSW_URL": g.URL, "XSW_ADMIN_TOKEN": token}
	}
	var out, errOut bytes.Buffer
	code = Main(ctx, args, func(k string) string { return env[k] }, &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestCommands(t *testing.T) {
	g := newGateway(t)
	for _, tc := range []struct {
		name string
		args []string
		want []string // lines or fragments of the output
		call string   // the API call made
	}{
		{"stats", []string{"stats"}, []string{
			"queue       5 waiting (interactive 0 · manual 1 · prefetch 4 · refresh 0)",
			"in flight   2: 1721851 toy/b-7f",
			"jobs        42 completed · 2 failed · 1 dead letters",
			"politeness  2.0 s between requests to the default site, cluster-wide ('xswctl sites': every site)",
			"circuit     closed (the default site's)",
			"sites       xsw (default): ok, interval 2.0 s",
			"            toy: unknown, interval ?",
			"fetchers    1 alive, 2 workers",
			"fetcher-54173d (xsw, toy): 2 of 2 workers busy, 2.0 s, circuit closed",
			"database    20 books · 2670 chapters · 1 with text",
		}, "GET /xsw/api/admin/stats"},
		{"stats ignores --site", []string{"stats", "--site", "toy"}, []string{"in flight   2: 1721851 toy/b-7f"}, "GET /xsw/api/admin/stats"},
		{"sites", []string{"sites"}, []string{
			"SITE           STATE      INTERVAL  BASE URL          NAME",
			"xsw (default)  ok         2.0 s     https://m.xsw.tw  小說王",
			"toy            throttled  7.5 s     http://toy.test   Toy",
			"off            ok         off       http://off.test   Off",
			"new            unknown    ?",
		}, "GET /xsw/api/sites"},
		{"book", []string{"book", "1721851"}, []string{
			"site      xsw", "book      1721851", "name      Book 1721851", "status    連載中 (finished)",
			"chapters  132 stored (complete) · newest 132 第132章",
		}, "GET /xsw/api/books/1721851"},
		{"book of a site", []string{"--site", "toy", "book", "b-7f"}, []string{"site      toy", "book      b-7f"},
			"GET /xsw/api/sites/toy/books/b-7f"},
		{"book not stored yet", []string{"book", "9"}, []string{"book 9: not stored yet; a sync is queued, ask again in a moment"},
			"GET /xsw/api/books/9"},
		{"sync", []string{"sync", "1721851", "--priority", "7"}, []string{"book 1721851: queued in the manual lane (priority 7)"},
			"POST /xsw/api/admin/jobs/sync/1721851?priority=7"},
		{"sync of a site", []string{"sync", "--site", "toy", "b-7f"}, []string{"book toy/b-7f: queued in the manual lane (priority 10)"},
			"POST /xsw/api/admin/jobs/sync/b-7f?priority=10&site=toy"},
		{"sync of the default site named", []string{"sync", "--site", "xsw", "42"}, []string{"book xsw/42: queued in the manual lane (priority 10)"},
			"POST /xsw/api/admin/jobs/sync/42?priority=10&site=xsw"},
		{"resync", []string{"resync", "1721851"}, []string{"book 1721851: being synced now in the manual lane (priority 10, forced)"},
			"POST /xsw/api/admin/jobs/force-resync/1721851?priority=10"},
		{"resync of a site", []string{"--site=toy", "resync", "b-7f"}, []string{"book toy/b-7f: being synced now in the manual lane (priority 10, forced)"},
			"POST /xsw/api/admin/jobs/force-resync/b-7f?priority=10&site=toy"},
		{"dead", []string{"dead"}, []string{
			"3 dead letters",
			"SITE  BOOK     LANE      ATTEMPTS  DIED",
			"xsw   1234567  prefetch  5 ",
			"fetch book home: source answered 503",
			"toy   b-7f     manual    1 ",
			"xsw   7654321  ?         ?         ?                    unreadable dead letter",
		}, "GET /xsw/api/admin/jobs/dead?limit=100"},
		{"dead replay", []string{"dead", "replay", "1234567"}, []string{"book 1234567: queued in the prefetch lane (forced); its dead letter is deleted"},
			"POST /xsw/api/admin/jobs/dead/1234567/replay"},
		{"dead replay of a site", []string{"dead", "replay", "--site", "toy", "b-7f"}, []string{"book toy/b-7f: queued in the prefetch lane (forced); its dead letter is deleted"},
			"POST /xsw/api/admin/jobs/dead/b-7f/replay?site=toy"},
		{"dead accept-shrink", []string{"dead", "accept-shrink", "1234567"},
			[]string{"book 1234567: shrink accepted, the next sync applies what the site lists; queued in the manual lane (forced); its dead letter is deleted"},
			"POST /xsw/api/admin/books/1234567/accept-shrink"},
		{"dead accept-shrink of a site", []string{"dead", "accept-shrink", "--site", "toy", "b-7f"},
			[]string{"book toy/b-7f: shrink accepted, the next sync applies what the site lists; queued in the manual lane (forced); it had no dead letter"},
			"POST /xsw/api/admin/books/b-7f/accept-shrink?site=toy"},
		{"dead replay --all", []string{"dead", "replay", "--all"}, []string{"replayed 2 dead letters (already_syncing 1, queued 1)"},
			"POST /xsw/api/admin/jobs/dead/replay_all"},
		{"crawl of a site", []string{"crawl", "--site", "toy", "--categories", "fantasy,sci-fi", "--pages", "1-3", "--no-wait"}, []string{"crawl crawl-1 queued"},
			"POST /xsw/api/admin/crawl/categories?categories=fantasy%2Csci-fi&pages=1-3&site=toy"},
		{"crawl of every category", []string{"crawl", "--pages", "1-3", "--no-wait", "--json"}, []string{`"categories":["1","2"]`},
			"POST /xsw/api/admin/crawl/categories?pages=1-3"},
		{"json", []string{"sync", "42", "--json"}, []string{`{"status":"queued","site":"xsw","book_id":"42","priority":10,"lane":"manual","force":false}`},
			"POST /xsw/api/admin/jobs/sync/42?priority=10"},
		{"lanes", []string{"lane"}, []string{
			"LANE      SITE  STATE                             WAITING  IN FLIGHT  CONSUMER",
			"manual    toy   paused until " + time.Date(2026, 1, 21, 13, 0, 0, 0, time.UTC).Local().Format("2006-01-02 15:04:05") + "  1        0          fetch-manual-toy",
			"prefetch  xsw   running                           0        0          fetch-prefetch\n",
		}, "GET /xsw/api/admin/jobs/lanes"},
		{"pause a lane of every site", []string{"lane", "pause", "manual"},
			[]string{"lane manual of every site paused until resumed (fetch-manual-toy, fetch-manual-xsw, fetch-manual); 2 requests wait in it"},
			"POST /xsw/api/admin/jobs/pause?lane=manual"},
		{"pause a lane of a site until a time", []string{"lane", "pause", "prefetch", "--site", "xsw", "--until", "2026-01-21T13:00:00Z"},
			[]string{"lane prefetch of site xsw paused until " + time.Date(2026, 1, 21, 13, 0, 0, 0, time.UTC).Local().Format("2006-01-02 15:04:05") + " (fetch-prefetch-xsw, fetch-prefetch); 1 requests wait in it"},
			"POST /xsw/api/admin/jobs/pause?lane=prefetch&site=xsw&until=2026-01-21T13%3A00%3A00Z"},
		{"resume a lane", []string{"lane", "resume", "manual", "--site", "toy"}, []string{"lane manual of site toy resumed (fetch-manual-toy); 1 requests wait in it"},
			"POST /xsw/api/admin/jobs/resume?lane=manual&site=toy"},
		{"purge a lane", []string{"lane", "purge", "prefetch"}, []string{"lane prefetch purged: 2 waiting requests dropped"},
			"POST /xsw/api/admin/jobs/purge?lane=prefetch"},
		{"clear the cache", []string{"cache", "clear"}, []string{"cache cleared: 3 book entries and 1 listing entries dropped on replica gw-1"},
			"POST /xsw/api/admin/cache/clear"},
		{"invalidate a book", []string{"cache", "invalidate", "--site", "toy", "b-7f"}, []string{"book toy/b-7f: 2 cached entries dropped on replica gw-1"},
			"POST /xsw/api/admin/cache/invalidate/b-7f?site=toy"},
		{"purge texts", []string{"cache", "purge-texts", "5"}, []string{"book 5: 2 stored chapter texts forgotten; they are fetched again when next read"},
			"DELETE /xsw/api/admin/cache/chapters/5"},
		{"purge texts queued", []string{"cache", "purge-texts", "7"}, []string{"book 7: the purge of its 4 stored chapter texts is queued for the indexer"},
			"DELETE /xsw/api/admin/cache/chapters/7"},
		{"clear history", []string{"history", "clear"}, []string{"job history cleared"}, "POST /xsw/api/admin/jobs/clear_history"},
		{"crawl list", []string{"crawl", "list"}, []string{"CRAWL    SITE  STATE    PAGES  BOOKS QUEUED  CATEGORIES  STARTED  ERRORS", "crawl-2  toy   running  1/2    20            fantasy     ?        1"},
			"GET /xsw/api/admin/crawl"},
		{"crawl status", []string{"crawl", "status", "crawl-2"}, []string{"site     toy", "state    running", "asked    categories fantasy, pages 1-2",
			"walked   1 of 2 listing pages · 20 books seen · 20 queued", "errors   page 2: source answered 503"},
			"GET /xsw/api/admin/crawl/crawl-2"},
		{"jobs", []string{"jobs"}, []string{"waiting (interactive 0 · manual 0 · prefetch ", "in flight  2", "jobs       0 completed · 0 failed · 0 dead letters"},
			"GET /xsw/api/admin/jobs/stats"},
		{"version", []string{"version"}, []string{"xswctl   ", "gateway  v1.2.3 (0123456789ab, 2026-01-21T12:00:00Z, go1.26.0)"}, "GET /xsw/api/admin/version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g.mu.Lock()
			g.calls = nil
			g.mu.Unlock()
			out, errOut, code := run(t.Context(), g, nil, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %s", code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if len(g.calls) != 1 || g.calls[0] != tc.call {
				t.Errorf("calls %v, want [%s]", g.calls, tc.call)
			}
		})
	}
}

func TestJSONIsTheAnswer(t *testing.T) {
	g := newGateway(t)
	out, _, code := run(t.Context(), g, nil, "--json", "stats")
	var v map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v["dead_letters"] != 1.0 {
		t.Errorf("stats --json: exit %d, %s", code, out)
	}
}

func TestPublicReadsNeedNoToken(t *testing.T) {
	g := newGateway(t)
	noToken := map[string]string{"XSW_URL": g.URL}
	for _, args := range [][]string{{"sites"}, {"book", "1721851"}, {"--site", "toy", "book", "b-7f"}} {
		if _, errOut, code := run(t.Context(), g, noToken, args...); code != 0 {
			t.Errorf("%v without a token: exit %d, %s", args, code, errOut)
		}
	}
	if _, _, code := run(t.Context(), g, nil, "sites"); code != 0 {
		t.Errorf("sites with a token: exit %d", code)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if want := []bool{false, false, false, true}; fmt.Sprint(g.tokens) != fmt.Sprint(want) {
		t.Errorf("token sent %v, want %v (only when XSW_ADMIN_TOKEN is set)", g.tokens, want)
	}
}

func TestErrors(t *testing.T) {
	g := newGateway(t)
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"no token", map[string]string{"XSW_URL": g.URL}, []string{"stats"}, 2, "XSW_ADMIN_TOKEN is not set"},
		{"wrong token", map[string]string{"XSW_URL": g.URL, "XSW_ADMIN_TOKEN": "nope"}, []string{"stats"}, 1, "401 Unauthorized"},
		{"bad url", map[string]string{"XSW_URL": "localhost:8000", "XSW_ADMIN_TOKEN": token}, []string{"stats"}, 2, "not an http(s) URL"},
		{"bad book id", nil, []string{"sync", "12.ab"}, 2, "a book id is 1 to 64 letters, digits, '-' or '_', got \"12.ab\""},
		{"book id too long", nil, []string{"book", strings.Repeat("9", 65)}, 2, "a book id is 1 to 64"},
		{"not the site's spelling", nil, []string{"sync", "0123"}, 1, "400 Bad Request: 0123 is not a book id of xsw"},
		{"another site's spelling", nil, []string{"sync", "--site", "toy", "1721851"}, 1, "400 Bad Request: 1721851 is not a book id of toy"},
		{"no book id", nil, []string{"sync"}, 2, "want a book id"},
		{"bad site", nil, []string{"sync", "--site", "Toy", "1"}, 2, `--site wants a site id such as xsw (a lowercase letter, then letters and digits), got "Toy"`},
		{"site with a dot", nil, []string{"book", "--site", "a.b", "1"}, 2, "--site wants a site id"},
		{"unknown site", nil, []string{"sync", "--site", "nope", "1"}, 1, `404 Not Found: unknown site "nope": this gateway serves toy, xsw ('xswctl sites' lists the gateway's sites)`},
		{"unknown site to read", nil, []string{"book", "--site", "nope", "1"}, 1, `404 Not Found: unknown site "nope"`},
		{"unknown dead letter", nil, []string{"dead", "replay", "999"}, 1, "404 Not Found: book 999 of site xsw has no dead letter\n"}, // no hint
		{"accept-shrink of a book not stored", nil, []string{"dead", "accept-shrink", "999"}, 1, "404 Not Found: book 999 of site xsw is not stored: there is no shrink to accept\n"},
		{"accept-shrink of another site's spelling", nil, []string{"dead", "accept-shrink", "--site", "toy", "1234567"}, 1, "400 Bad Request: 1234567 is not a book id of toy"},
		{"accept-shrink of a bad id", nil, []string{"dead", "accept-shrink", "12.ab"}, 2, "a book id is 1 to 64"},
		{"accept-shrink without an id", nil, []string{"dead", "accept-shrink"}, 2, "want a book id"},
		{"replay id and --all", nil, []string{"dead", "replay", "1", "--all"}, 2, "not both"},
		{"replay --all of a site", nil, []string{"dead", "replay", "--all", "--site", "toy"}, 2, "replays the dead letters of every site; it takes no --site"},
		{"bad categories", nil, []string{"crawl", "--categories", "fan tasy"}, 2, "--categories wants category ids and ranges"},
		{"empty category", nil, []string{"crawl", "--categories", "1,,2"}, 2, "--categories wants category ids and ranges"},
		{"bad pages", nil, []string{"crawl", "--categories", "1", "--pages", "first"}, 2, "--pages wants numbers"},
		{"unknown flag", nil, []string{"stats", "--verbose"}, 2, "unknown flag"},
		{"unknown lane", nil, []string{"lane", "pause", "urgent"}, 2, `a lane is one of interactive, manual, prefetch, refresh, got "urgent"`},
		{"no lane", nil, []string{"lane", "resume"}, 2, "want a lane: interactive, manual, prefetch, refresh"},
		{"bad until", nil, []string{"lane", "pause", "manual", "--until", "tomorrow"}, 2, "--until wants a time such as 2026-01-21T12:00:00Z or a duration such as 90m"},
		{"until now", nil, []string{"lane", "pause", "manual", "--until", "0s"}, 2, "--until wants a duration from now greater than zero"},
		{"purge a lane of a site", nil, []string{"lane", "purge", "manual", "--site", "toy"}, 2, "it takes no --site"},
		{"clear the cache of a site", nil, []string{"cache", "clear", "--site", "toy"}, 2, "it takes no --site"},
		{"bad crawl id", nil, []string{"crawl", "status", "42"}, 2, "a crawl id looks like crawl-"},
		{"version without a token", map[string]string{"XSW_URL": g.URL}, []string{"version"}, 2, "XSW_ADMIN_TOKEN is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := run(t.Context(), g, tc.env, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tc.code, tc.want)
			}
		})
	}
}

func TestCrawlFollowsProgressUntilTheBooksAreSynced(t *testing.T) {
	g := newGateway(t)
	out, errOut, code := run(t.Context(), g, nil, "crawl", "--categories", "1-2", "--pages", "1-3", "--every", "5ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"crawl crawl-1 queued: categories 1-2, pages 1-3",
		"crawl crawl-1 done: 6 listing pages walked, 120 books seen, 120 queued; the prefetch lane has drained",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The progress bars went to stderr: the listing pages, then the books.
	for _, want := range []string{"listing pages", "6/6", "books synced", "120/120"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("progress lacks %q:\n%q", want, errOut)
		}
	}
	if n := g.statsGet.Load(); n != 3 {
		t.Errorf("looked at the queue %d times, want 3 (until the prefetch lane drained)", n)
	}
}

func TestCrawlOfASite(t *testing.T) {
	g := newGateway(t)
	out, errOut, code := run(t.Context(), g, nil, "crawl", "--site", "toy", "--pages", "1-3", "--every", "5ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := "crawl crawl-1 queued: toy categories fantasy,sci-fi, pages 1-3\n"; !strings.HasPrefix(out, want) {
		t.Errorf("output %q, want it to start with %q", out, want)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if want := "POST /xsw/api/admin/crawl/categories?pages=1-3&site=toy"; len(g.calls) == 0 || g.calls[0] != want {
		t.Errorf("calls %v, want %s first", g.calls, want)
	}
}

func TestCrawlJSONAndNoWait(t *testing.T) {
	g := newGateway(t)
	out, errOut, code := run(t.Context(), g, nil, "crawl", "--categories", "1-2", "--pages", "1-3", "--no-wait")
	if code != 0 || out != "crawl crawl-1 queued\n" || g.crawlGet.Load() != 0 {
		t.Errorf("--no-wait: exit %d, %q %q, %d polls", code, out, errOut, g.crawlGet.Load())
	}
	out, errOut, code = run(t.Context(), g, nil, "crawl", "--json", "--categories", "1-2", "--pages", "1-3", "--every", "5ms")
	var p events.CrawlProgress
	if code != 0 || json.Unmarshal([]byte(out), &p) != nil || p.State != events.CrawlDone || p.BooksQueued != 120 || errOut != "" {
		t.Errorf("--json: exit %d, out %q, stderr %q", code, out, errOut)
	}
}

func TestTailReconnectsAndPrintsEachEventOnce(t *testing.T) {
	g := newGateway(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int)
	go func() {
		done <- Main(ctx, []string{"tail", "-n", "2"}, func(k string) string {
			return map[string]string{"XSW_URL": g.URL, "XSW_ADMIN_TOKEN": token}[k]
		}, &out, &errOut)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "failed") {
		if time.Now().After(deadline) {
			t.Fatalf("no failed event; output:\n%s\nstderr:\n%s", out.String(), errOut.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d after Ctrl-C, stderr %s", code, errOut.String())
	}
	var kinds []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		f := strings.Fields(line)
		kinds = append(kinds, f[1]+" "+f[2]+"/"+f[3])
	}
	// The last 2 of the 3 recent, the live one, then after reconnecting only what was new.
	want := []string{"started xsw/1000001", "completed xsw/1000001", "queued toy/b-7f", "started toy/b-7f", "failed toy/b-7f"}
	if strings.Join(kinds, ",") != strings.Join(want, ",") {
		t.Errorf("printed %v, want %v\n%s", kinds, want, out.String())
	}
	if !strings.Contains(out.String(), "permanent: source: not found") || !strings.Contains(out.String(), "12 chapters · 1.5 s · f1") ||
		!strings.Contains(out.String(), "  completed  xsw      1000001   prefetch     attempt 1") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestTailJSON(t *testing.T) {
	g := newGateway(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int)
	go func() {
		done <- Main(ctx, []string{"tail", "--json", "--kind", "queued"}, func(k string) string {
			return map[string]string{"XSW_URL": g.URL, "XSW_ADMIN_TOKEN": token}[k]
		}, &out, &errOut)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for g.streams.Load() < 2 || strings.Count(out.String(), "\n") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("output:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var a api.Activity
		if err := json.Unmarshal([]byte(line), &a); err != nil || a.Kind != "queued" || a.Site == "" {
			t.Errorf("line %q: %v", line, err)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
