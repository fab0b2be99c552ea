package events

import (
	"strconv"
	"time"
)

// JobKind is the kind of a job lifecycle event.
type JobKind string

// Job lifecycle kinds.
const (
	// JobStarted: a fetcher took the job.
	JobStarted JobKind = "started"
	// JobCompleted: every page of the book was fetched and published. Chapters and
	// TOCPages say how many; the indexer marks the book synced when it has them all.
	JobCompleted JobKind = "completed"
	// JobRetrying: an attempt failed with a transient error and will be retried.
	JobRetrying JobKind = "retrying"
	// JobFailed: the job ended without success, for good (permanent error or out of
	// attempts; Dead says whether it went to the dead-letter stream).
	JobFailed JobKind = "failed"
	// JobSkipped: the job was dropped without fetching (recently synced, expired).
	JobSkipped JobKind = "skipped"
)

// Valid reports whether k is a known kind.
func (k JobKind) Valid() bool {
	switch k {
	case JobStarted, JobCompleted, JobRetrying, JobFailed, JobSkipped:
		return true
	}
	return false
}

// JobEvent reports a step of a sync job's life.
type JobEvent struct {
	Header
	Kind       JobKind   `json:"kind"`
	JobID      string    `json:"job_id"`
	Site       string    `json:"site"`
	BookID     string    `json:"book_id"`
	Lane       Lane      `json:"lane"`
	Priority   int       `json:"priority"`
	Attempt    int       `json:"attempt"`
	Fetcher    string    `json:"fetcher,omitempty"`
	EnqueuedAt time.Time `json:"enqueued_at"`
	StartedAt  time.Time `json:"started_at"`
	At         time.Time `json:"at"`
	// Chapters and TOCPages are set on completed events: the size of the whole table of
	// contents that was published.
	Chapters int `json:"chapters,omitempty"`
	TOCPages int `json:"toc_pages,omitempty"`
	// Unchanged is set on completed events of a resync that found nothing new: the
	// book was checked, and Chapters and TOCPages are those of the previous sync.
	Unchanged bool `json:"unchanged,omitempty"`
	// Requests counts the source requests the attempt made.
	Requests int    `json:"requests,omitempty"`
	Error    string `json:"error,omitempty"`
	// Permanent is set on failed events whose cause can never succeed (404, unparseable).
	Permanent bool `json:"permanent,omitempty"`
	// Dead is set on failed events whose request went to the dead-letter stream.
	Dead bool `json:"dead,omitempty"`
	// Reason explains a skipped event.
	Reason string `json:"reason,omitempty"`
}

// Validate reports whether the event honours the contract.
func (e JobEvent) Validate() error {
	if err := validBook("job_event", e.Site, e.BookID); err != nil {
		return err
	}
	switch {
	case !e.Kind.Valid():
		return invalid("job_event: bad kind %q", e.Kind)
	case e.JobID == "":
		return invalid("job_event: job_id missing")
	case !e.Lane.Valid():
		return invalid("job_event: bad lane %q", e.Lane)
	}
	return nil
}

// Subject is where the event is published.
func (e JobEvent) Subject() string { return SubjectJob(e.Kind, e.Site, e.BookID) }

func (e *JobEvent) upgrade() { e.Version, e.Site = Version, legacySite(e.Site) }

// MsgID de-duplicates a republished event of the same attempt.
func (e JobEvent) MsgID() string {
	return e.JobID + ":" + string(e.Kind) + ":" + strconv.Itoa(e.Attempt)
}

// BookIndexed announces that the indexer committed something about a book; gateways drop
// their cached copies and wake readers waiting for it.
type BookIndexed struct {
	Header
	Site   string `json:"site"`
	BookID string `json:"book_id"`
	// Chapters is how many chapter refs are stored now.
	Chapters int `json:"chapters"`
	// Complete is true when the whole table of contents of the last sync is stored.
	Complete  bool      `json:"complete"`
	HasMeta   bool      `json:"has_meta"`
	IndexedAt time.Time `json:"indexed_at"`
}

// Validate reports whether the event honours the contract.
func (e BookIndexed) Validate() error {
	return validBook("book_indexed", e.Site, e.BookID)
}

// Subject is where the announcement is published.
func (e BookIndexed) Subject() string { return SubjectIndexed(e.Site, e.BookID) }

func (e *BookIndexed) upgrade() { e.Version, e.Site = Version, legacySite(e.Site) }

// DeadLetter is a request that gave up, kept for listing and replay.
type DeadLetter struct {
	Header
	Request  BookRequested `json:"request"`
	JobID    string        `json:"job_id"`
	Attempts int           `json:"attempts"`
	Error    string        `json:"error"`
	DiedAt   time.Time     `json:"died_at"`
}

// Validate reports whether the dead letter honours the contract.
func (d DeadLetter) Validate() error {
	if err := d.Request.Validate(); err != nil {
		return err
	}
	if d.Error == "" {
		return invalid("dead_letter: error missing")
	}
	return nil
}

// Subject is where the dead letter is kept.
func (d DeadLetter) Subject() string { return SubjectDead(d.Request.Site, d.Request.BookID) }

func (d *DeadLetter) upgrade() { d.Version = Version; d.Request.upgrade() }
