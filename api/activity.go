package api

import (
	"time"

	"github.com/xswtw/xsw/events"
)

// ActivityPath is the admin event stream the dashboard follows (and xswctl tail): a
// text/event-stream, outside Prefix, guarded by the admin token like the admin routes.
// Its "recent" events carry the last few activities (a JSON array of Activity), its
// "job" events one new Activity each.
const ActivityPath = "/xsw/admin/events"

// Activity is one step in a book's sync as the admin event stream carries it: a request
// queued, or a job event (started, completed, retrying, failed, skipped).
type Activity struct {
	// Seq numbers the activities the answering gateway has seen, from 1; it restarts
	// with the gateway.
	Seq       uint64      `json:"seq"`
	Kind      string      `json:"kind"`
	Site      string      `json:"site"`
	BookID    string      `json:"book_id"`
	JobID     string      `json:"job_id,omitempty"`
	Lane      events.Lane `json:"lane"`
	Priority  int         `json:"priority"`
	Attempt   int         `json:"attempt,omitempty"`
	Fetcher   string      `json:"fetcher,omitempty"`
	At        time.Time   `json:"at"`
	Took      float64     `json:"took_seconds,omitempty"`
	Chapters  int         `json:"chapters,omitempty"`
	TOCPages  int         `json:"toc_pages,omitempty"`
	Unchanged bool        `json:"unchanged,omitempty"`
	Error     string      `json:"error,omitempty"`
	Permanent bool        `json:"permanent,omitempty"`
	Reason    string      `json:"reason,omitempty"`
	Force     bool        `json:"force,omitempty"`
}
