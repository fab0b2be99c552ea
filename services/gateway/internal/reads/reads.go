// Package reads counts book reads in memory and reports them to the indexer every little
// while as one events.BooksRead, so that popularity costs no database write per read.
package reads

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
)

// Counter counts reads per book (by events.Key) between reports.
type Counter struct {
	js      jetstream.JetStream
	replica string
	every   time.Duration
	logger  *slog.Logger

	mu     sync.Mutex
	counts map[string]int64
	since  time.Time
	seq    uint64
}

// New returns a counter reporting for the gateway replica named replica every interval.
func New(js jetstream.JetStream, replica string, every time.Duration, logger *slog.Logger) *Counter {
	return &Counter{js: js, replica: replica, every: every, logger: logger, counts: map[string]int64{}, since: time.Now()}
}

// Add counts one read of the book key (events.Key of its site and id). It never blocks
// on the bus.
func (c *Counter) Add(key string) {
	c.mu.Lock()
	if len(c.counts) < events.MaxReadsPerBatch || c.counts[key] > 0 {
		c.counts[key]++
	}
	c.mu.Unlock()
}

// Run reports every interval until ctx ends, then reports what is left.
func (c *Counter) Run(ctx context.Context) error {
	t := time.NewTicker(c.every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.Flush(ctx)
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			c.Flush(fctx)
			return nil
		}
	}
}

// Flush reports the reads counted since the last report. Counts that could not be
// published are kept for the next report.
func (c *Counter) Flush(ctx context.Context) {
	c.mu.Lock()
	if len(c.counts) == 0 {
		c.mu.Unlock()
		return
	}
	counts, since, now := c.counts, c.since, time.Now()
	c.counts, c.since = map[string]int64{}, now
	c.seq++
	seq := c.seq
	c.mu.Unlock()

	ev := events.NewBooksRead(c.replica, seq, counts, since, now)
	if _, err := broker.Publish(ctx, c.js, events.SubjectReads, ev.MsgID(), &ev); err != nil {
		c.logger.Warn("report book reads; keeping them for the next report", "books", len(counts), "err", err)
		c.mu.Lock()
		for key, n := range counts {
			c.counts[key] += n
		}
		c.since = since
		c.mu.Unlock()
	}
}
