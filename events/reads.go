package events

import (
	"strconv"
	"time"
)

// SubjectReads carries the gateways' read counts to the indexer, in StreamEvents.
const SubjectReads = "xsw.cmd.reads"

// MaxReadsPerBatch bounds the books one BooksRead carries.
const MaxReadsPerBatch = 10000

// BooksRead reports how often each book was read through one gateway since its previous
// report; Reads is keyed by the book's Key (a version 1 report's keys are bare ids of
// LegacySite's books, which SplitKey reads as such). Gateways count in memory and report every little while, so popularity costs no
// database write per read. The indexer adds the counts to books.read_count once per
// BatchID, however often the event is delivered.
type BooksRead struct {
	Header
	BatchID string           `json:"batch_id"`
	Reads   map[string]int64 `json:"reads"`
	Since   time.Time        `json:"since"`
	At      time.Time        `json:"at"`
}

// NewBooksRead builds a versioned report from gateway for the period since..at.
func NewBooksRead(gateway string, seq uint64, reads map[string]int64, since, at time.Time) BooksRead {
	return BooksRead{Header: Header{Version: Version}, BatchID: gateway + "-" + strconv.FormatUint(seq, 10),
		Reads: reads, Since: since.UTC(), At: at.UTC()}
}

// Validate reports whether the report honours the contract.
func (r BooksRead) Validate() error {
	if r.BatchID == "" || len(r.Reads) == 0 || len(r.Reads) > MaxReadsPerBatch || r.At.IsZero() {
		return invalid("books_read: batch %q with %d books", r.BatchID, len(r.Reads))
	}
	for key, n := range r.Reads {
		if _, _, ok := SplitKey(key); !ok || n < 1 {
			return invalid("books_read: book %q read %d times", key, n)
		}
	}
	return nil
}

// MsgID de-duplicates a retried publish of the same report.
func (r BooksRead) MsgID() string { return "reads:" + r.BatchID }
