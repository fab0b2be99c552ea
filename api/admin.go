package api

import (
	"time"

	"github.com/xswtw/xsw/events"
)

// The admin routes, under Prefix, each guarded by "Authorization: Bearer
// $XSW_ADMIN_TOKEN". Books are named in listings as the seed names them: the bare id for
// a book of the default site, "site/id" for another site's.

// Statuses of a book request (SyncAnswer, Replay, ReplayAll.Statuses).
const (
	RequestQueued         = "queued"
	RequestAlreadyQueued  = "already_queued"
	RequestAlreadySyncing = "already_syncing"
	RequestRecentlySynced = "recently_synced"
)

// JobStats is the body of GET /admin/jobs/stats: the seed's shape, plus queue_by_lane,
// fetchers, dead_letters, rate_interval_seconds and circuit.
type JobStats struct {
	QueueSize      int                  `json:"queue_size"`
	ActiveJobs     int                  `json:"active_jobs"`
	ActiveJobIDs   []string             `json:"active_job_ids"`
	CompletedCount int64                `json:"completed_count"`
	FailedCount    int64                `json:"failed_count"`
	FailedJobs     map[string]FailedJob `json:"failed_jobs"`
	Workers        int                  `json:"workers"`
	Running        bool                 `json:"running"`
	QueueByLane    map[events.Lane]int  `json:"queue_by_lane"`
	Fetchers       int                  `json:"fetchers"`
	DeadLetters    int                  `json:"dead_letters"`
	// RateInterval is the largest politeness interval of the live fetchers (seconds).
	RateInterval *float64 `json:"rate_interval_seconds"`
	// Circuit is the worst circuit state of the live fetchers.
	Circuit *string `json:"circuit"`
}

// FailedJob is a recent failure in JobStats.FailedJobs, by book.
type FailedJob struct {
	FailedAt  string `json:"failed_at"`
	Error     string `json:"error"`
	Permanent bool   `json:"permanent"`
}

// SyncAnswer is the body of POST /admin/jobs/sync/{book_id} and force-resync. Status is
// one of the Request* constants.
type SyncAnswer struct {
	BookID   string      `json:"book_id"`
	Force    bool        `json:"force"`
	Lane     events.Lane `json:"lane"`
	Priority int         `json:"priority"`
	Site     string      `json:"site"`
	Status   string      `json:"status"`
}

// Cleared is the body of POST /admin/jobs/clear_history: the seed's.
type Cleared struct {
	Message string `json:"message"`
	Status  string `json:"status"`
}

// AdminStats is the body of GET /admin/stats: what is stored, what the answering
// replica caches, the queue, the dead letters, every configured site and every live
// fetcher.
type AdminStats struct {
	Database AdminDatabase `json:"database"`
	Cache    AdminCache    `json:"cache"`
	Jobs     AdminJobs     `json:"jobs"`
	// Freshness says how current the stored books are.
	Freshness Freshness `json:"freshness"`
	// Crawls are the whole-category crawls kept, newest first.
	Crawls       []events.CrawlProgress `json:"crawls"`
	QueueByLane  map[events.Lane]int    `json:"queue_by_lane"`
	DeadLetters  int                    `json:"dead_letters"`
	RateInterval *float64               `json:"rate_interval_seconds"`
	Circuit      *string                `json:"circuit"`
	Fetchers     []Fetcher              `json:"fetchers"`
	Sites        []Site                 `json:"sites"`
}

// AdminDatabase is what the database holds, counted exactly.
type AdminDatabase struct {
	// URL names the database without its password (user, host, port and name).
	URL                 string `json:"url"`
	Books               int64  `json:"books"`
	Chapters            int64  `json:"chapters"`
	ChaptersWithContent int64  `json:"chapters_with_content"`
}

// AdminCache is what the answering replica's memory caches hold.
type AdminCache struct {
	Replica        string `json:"replica"`
	BookEntries    int    `json:"book_entries"`
	ListingEntries int    `json:"listing_entries"`
	// Bytes is what the caches hold, of MaxBytes (CACHE_MAX_BYTES).
	Bytes             int64 `json:"bytes"`
	MaxBytes          int64 `json:"max_bytes"`
	TTLSeconds        int   `json:"ttl_seconds"`
	ListingTTLSeconds int   `json:"listing_ttl_seconds"`
}

// AdminJobs is the job summary of AdminStats.
type AdminJobs struct {
	QueueSize      int      `json:"queue_size"`
	ActiveJobs     int      `json:"active_jobs"`
	ActiveJobIDs   []string `json:"active_job_ids"`
	CompletedCount int64    `json:"completed_count"`
	FailedCount    int64    `json:"failed_count"`
	Workers        int      `json:"workers"`
	Running        bool     `json:"running"`
}

// Freshness says how current the stored books are: what the refresh scheduler and
// incremental resyncs keep up. OldestCheck and NewestCheck are RFC 3339 with fractions
// of a second.
type Freshness struct {
	Unfinished      int64      `json:"unfinished_books"`
	Finished        int64      `json:"finished_books"`
	CheckedLastHour int64      `json:"checked_last_hour"`
	ChangedLastDay  int64      `json:"changed_last_day"`
	OldestCheck     *time.Time `json:"oldest_check"`
	NewestCheck     *time.Time `json:"newest_check"`
	Reads           int64      `json:"reads"`
}

// Fetcher is a live fetcher process of AdminStats, from its heartbeat.
type Fetcher struct {
	FetcherID string `json:"fetcher_id"`
	// Sites are the sites it serves, the default first.
	Sites        []string `json:"sites"`
	Workers      int      `json:"workers"`
	ActiveJobs   int      `json:"active_jobs"`
	ActiveJobIDs []string `json:"active_job_ids"`
	Interval     float64  `json:"interval_seconds"`
	Circuit      string   `json:"circuit"`
	Draining     bool     `json:"draining"`
	StartedAt    *string  `json:"started_at"`
	At           *string  `json:"at"`
}

// DeadLetters is the body of GET /admin/jobs/dead: the newest dead letter of each book,
// newest first, and how many books have one.
type DeadLetters struct {
	DeadLetters []DeadLetter `json:"dead_letters"`
	Total       int          `json:"total"`
}

// DeadLetter is a request that gave up. An unreadable letter has only its site, book
// and error; the other fields are null.
type DeadLetter struct {
	Site     string  `json:"site"`
	BookID   string  `json:"book_id"`
	Lane     *string `json:"lane"`
	Priority *int    `json:"priority"`
	Error    string  `json:"error"`
	Attempts *int    `json:"attempts"`
	DiedAt   *string `json:"died_at"`
	JobID    *string `json:"job_id"`
}

// Replay is the body of POST /admin/jobs/dead/{book_id}/replay: the book was requested
// again as its dead request was (forced). JobID names the job that died (null for an
// unreadable letter).
type Replay struct {
	Status   string      `json:"status"`
	Site     string      `json:"site"`
	BookID   string      `json:"book_id"`
	Lane     events.Lane `json:"lane"`
	Priority int         `json:"priority"`
	Force    bool        `json:"force"`
	JobID    *string     `json:"job_id"`
}

// ShrinkAccepted is the body of POST /admin/books/{book_id}/accept-shrink: the
// acceptance that the book's site removed chapters went to the indexer, then the book
// was requested in the manual lane, forced. Status is "accepted"; Requested is what
// became of the request (a SyncAnswer status). DeadLetterDeleted says whether the book
// had a dead letter, now deleted, and JobID names the job that died (null without a
// letter, or for an unreadable one).
type ShrinkAccepted struct {
	Status            string      `json:"status"`
	Site              string      `json:"site"`
	BookID            string      `json:"book_id"`
	AcceptedAt        time.Time   `json:"accepted_at"`
	Requested         string      `json:"requested"`
	Lane              events.Lane `json:"lane"`
	Priority          int         `json:"priority"`
	Force             bool        `json:"force"`
	DeadLetterDeleted bool        `json:"dead_letter_deleted"`
	JobID             *string     `json:"job_id"`
}

// ReplayAll is the body of POST /admin/jobs/dead/replay_all: how many were replayed, by
// status, which books, and how many dead letters remain (null, with Error, when the
// replay was cut short).
type ReplayAll struct {
	BookIDs   []string       `json:"book_ids"`
	Error     string         `json:"error,omitempty"`
	Remaining *int           `json:"remaining"`
	Replayed  int            `json:"replayed"`
	Statuses  map[string]int `json:"statuses"`
}

// LanePurged is the body of POST /admin/jobs/purge: how many requests waiting in the
// lane were dropped. Status is "purged".
type LanePurged struct {
	Dropped int         `json:"dropped"`
	Lane    events.Lane `json:"lane"`
	Status  string      `json:"status"`
}

// Lanes is the body of GET /admin/jobs/lanes: every fetch consumer of the request
// stream, by lane (highest first), then site.
type Lanes struct {
	Consumers []LaneConsumer `json:"consumers"`
}

// LaneConsumer is the durable consumer the fetchers of a site take a lane's requests
// from ("fetch-<lane>-<site>"; "fetch-<lane>" takes the requests an older build stored
// for the default site).
type LaneConsumer struct {
	Consumer string      `json:"consumer"`
	Lane     events.Lane `json:"lane"`
	Site     string      `json:"site"`
	// Paused says the consumer delivers nothing until PauseUntil (RFC 3339 with fractions
	// of a second; null when not paused).
	Paused     bool       `json:"paused"`
	PauseUntil *time.Time `json:"pause_until"`
	// Waiting counts the requests waiting for it; InFlight those a fetcher holds.
	Waiting  int `json:"waiting"`
	InFlight int `json:"in_flight"`
}

// LanePause is the body of POST /admin/jobs/pause and /admin/jobs/resume: the consumers
// paused or resumed, as they are now. Status is "paused" or "resumed"; Site is null when
// every site's consumers of the lane were meant.
type LanePause struct {
	Status     string         `json:"status"`
	Lane       events.Lane    `json:"lane"`
	Site       *string        `json:"site"`
	PauseUntil *time.Time     `json:"pause_until"`
	Consumers  []LaneConsumer `json:"consumers"`
}

// CacheCleared is the body of POST /admin/cache/clear: how many entries the answering
// replica dropped (the others drop theirs when they hear of it). Status is "cleared".
type CacheCleared struct {
	BookEntries    int    `json:"book_entries"`
	ListingEntries int    `json:"listing_entries"`
	Replica        string `json:"replica"`
	Status         string `json:"status"`
}

// CacheInvalidated is the body of POST /admin/cache/invalidate/{book_id}: how many
// entries of the book the answering replica dropped. Status is "invalidated".
type CacheInvalidated struct {
	BookID  string `json:"book_id"`
	Entries int    `json:"entries"`
	Replica string `json:"replica"`
	Site    string `json:"site"`
	Status  string `json:"status"`
}

// TextsPurged is the body of a 200 from DELETE /admin/cache/chapters/{book_id}: the
// book's stored chapter texts are forgotten. Status is "purged".
type TextsPurged struct {
	BookID       string `json:"book_id"`
	Site         string `json:"site"`
	Status       string `json:"status"`
	TextsCleared int    `json:"texts_cleared"`
}

// PurgeQueued is the body of a 202 from DELETE /admin/cache/chapters/{book_id}: the
// purge is asked of the indexer and not done yet. Status is "queued".
type PurgeQueued struct {
	BookID      string `json:"book_id"`
	Site        string `json:"site"`
	Status      string `json:"status"`
	TextsStored int    `json:"texts_stored"`
}

// CrawlQueued is the body of the 202 from POST /admin/crawl/categories; GET
// /admin/crawl/{crawl_id} then answers with the crawl's events.CrawlProgress, and GET
// /admin/crawl with every crawl's, newest first. Status is "queued".
type CrawlQueued struct {
	Categories []events.CategoryID `json:"categories"`
	CrawlID    string              `json:"crawl_id"`
	FromPage   int                 `json:"from_page"`
	Pages      int                 `json:"pages"`
	Site       string              `json:"site"`
	Status     string              `json:"status"`
	ToPage     int                 `json:"to_page"`
}

// Version is the body of GET /admin/version: which build the answering gateway is.
type Version struct {
	// Version is the release (v1.2.3), or "devel".
	Version string `json:"version"`
	// Revision is the VCS commit, with "-dirty" when the work tree had changes.
	Revision string `json:"revision,omitempty"`
	// Time is the commit's time.
	Time      string `json:"time,omitempty"`
	GoVersion string `json:"go_version"`
}

// NoEnd is the pause_until of a lane paused without an end, until resumed: the last
// second of year 9999.
func NoEnd() time.Time { return time.Date(9999, time.December, 31, 23, 59, 59, 0, time.UTC) }
