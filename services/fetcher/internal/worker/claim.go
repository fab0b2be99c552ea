package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
)

// claims keeps the one-sync-per-book rule: a job claims its book in events.BucketClaims
// before it fetches anything, renews the claim while it runs and releases it at the end;
// a job that finds its book claimed by another does not sync it.
type claims struct {
	kv      jetstream.KeyValue
	fetcher string
	// markTTL is how long a reader's mark left by a job handing its book back counts
	// (0: readerMarkTTL).
	markTTL time.Duration
}

// claim is a claim held by a running job.
type claim struct {
	c    *claims
	key  string
	job  string
	lane events.Lane
	rev  atomic.Uint64
	// renewed is when this job last wrote the claim (taken before the write, with its
	// monotonic reading): the claim lasts at least until renewed + events.ClaimTTL.
	renewed atomic.Pointer[time.Time]
	// interactive is set once a reader waits for the sync (by the job's own lane, or
	// by a reader's request that found the book claimed).
	interactive atomic.Bool
}

// errClaimed says the book is claimed by another job, named in the error.
var errClaimed = errors.New("already_syncing")

// errClaimLost says a running job's claim of its book is gone: deleted, taken by another
// job, or not renewed before it would expire. Another job may be syncing the book now, so
// the job stops.
var errClaimLost = errors.New("the book's claim was lost")

// take claims j's book for j. A claim left by an earlier delivery of the same request (a
// fetcher that died mid-job) is taken over. When another job holds the claim, take
// returns an error wrapping errClaimed that names it; if j is a reader's, the holder is
// first told a reader waits. A reader's mark left by a job that handed the book back (see
// claim.markReader) is picked up by the claim taken.
func (c *claims) take(ctx context.Context, j *job) (*claim, error) {
	key := events.Key(j.Request.Site, j.Request.BookID)
	mine := events.SyncClaim{Header: events.Header{Version: events.Version}, JobID: j.ID, Fetcher: c.fetcher,
		Lane: j.Request.Lane, Interactive: j.Request.Lane == events.LaneInteractive, At: time.Now().UTC()}
	b, err := events.Encode(&mine)
	if err != nil {
		return nil, err
	}
	for range 5 {
		start := time.Now()
		rev, err := c.kv.Create(ctx, key, b)
		if err == nil {
			return c.hold(ctx, j, key, mine, rev, start, false), nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("claim %s: %w", key, err)
		}
		e, err := c.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // released meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("claim %s: %w", key, err)
		}
		var held events.SyncClaim
		if events.Decode(e.Value(), &held) != nil {
			held = events.SyncClaim{}
		}
		if held.JobID == j.ID || held.JobID == "" {
			// Our own request delivered again, or a claim nobody can read: take it.
			start := time.Now()
			rev, err := c.kv.Update(ctx, key, b, e.Revision())
			if err != nil {
				continue
			}
			return c.hold(ctx, j, key, mine, rev, start, held.Interactive), nil
		}
		if mine.Interactive && !held.Interactive {
			held.Interactive = true
			hb, _ := events.Encode(&held)
			if _, err := c.kv.Update(ctx, key, hb, e.Revision()); err != nil {
				continue // changed meanwhile: look again
			}
		}
		return nil, fmt.Errorf("%w: job %s on fetcher %s syncs the book", errClaimed, held.JobID, held.Fetcher)
	}
	return nil, fmt.Errorf("claim %s: contended", key)
}

// hold returns the claim of j's book that j wrote as mine at revision rev, the write
// begun at start; readerWaits says a reader waits although mine does not say so. A
// reader's mark beside the claim is taken (see takeReaderMark); the claim is then
// written again saying a reader waits, so that this request delivered again elsewhere
// keeps it (if that write loses to another, the next renewal makes it).
func (c *claims) hold(ctx context.Context, j *job, key string, mine events.SyncClaim, rev uint64, start time.Time, readerWaits bool) *claim {
	cl := &claim{c: c, key: key, job: j.ID, lane: j.Request.Lane}
	cl.rev.Store(rev)
	cl.renewed.Store(&start)
	readerWaits = c.takeReaderMark(ctx, key) || readerWaits
	cl.interactive.Store(mine.Interactive || readerWaits)
	if readerWaits && !mine.Interactive {
		mine.Interactive = true
		if b, err := events.Encode(&mine); err == nil {
			if again, err := c.kv.Update(ctx, key, b, rev); err == nil {
				cl.rev.Store(again)
			}
		}
	}
	return cl
}

// readerKey is the key, beside a book's claim, of the mark that a reader waits for the
// book, left by a job that hands the book back for a retry (see claim.markReader). A
// book id has no dot: it is no book's key.
func readerKey(key string) string { return key + ".reader" }

// readerMarkTTL is how long a reader's mark counts: about as long as a reader waits for
// a book at the gateway (INTERACTIVE_WAIT, 10 s by default), with room for the first
// retries (RetryBase, 2 s, doubling). A retry later than that has no reader waiting on it.
const readerMarkTTL = 15 * time.Second

// takeReaderMark reports whether a job that handed the book of key back left a reader's
// mark less than the mark's lifetime ago, and removes the mark: the claim just taken
// carries it on. The mark's age is the bus's, not its writer's clock.
func (c *claims) takeReaderMark(ctx context.Context, key string) bool {
	e, err := c.kv.Get(ctx, readerKey(key))
	if err != nil {
		return false
	}
	_ = c.kv.Delete(ctx, readerKey(key), jetstream.LastRevision(e.Revision()))
	ttl := c.markTTL
	if ttl <= 0 {
		ttl = readerMarkTTL
	}
	return time.Since(e.Created()) < ttl
}

// markReader leaves, when a reader waits for this job's sync, a reader's mark beside the
// claim, for the next claim of the book to pick up. The job calls it when it hands the
// book back for a retry: the reader's flag lives in the claim, which the job then
// releases, and the request comes back in its own lane (a prefetch's, say), as a
// background job. The mark is left before the claim is released, so a job that claims
// the book after the release finds it.
func (cl *claim) markReader(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if !cl.readerWaits(ctx) {
		return nil
	}
	mark := events.SyncClaim{Header: events.Header{Version: events.Version}, JobID: cl.job, Fetcher: cl.c.fetcher,
		Lane: cl.lane, Interactive: true, At: time.Now().UTC()}
	b, err := events.Encode(&mark)
	if err != nil {
		return err
	}
	if _, err := cl.c.kv.Put(ctx, readerKey(cl.key), b); err != nil {
		return fmt.Errorf("mark that a reader waits for %s: %w", cl.key, err)
	}
	return nil
}

// owns reports whether held is this claim: this job in this fetcher (the same request
// delivered again elsewhere takes the claim over).
func (cl *claim) owns(held events.SyncClaim) bool {
	return held.JobID == cl.job && held.Fetcher == cl.c.fetcher
}

// renew keeps the claim alive, keeping what others wrote in it (a reader's flag). It
// returns nil once renewed; an error wrapping errClaimLost when the claim is gone (its
// key deleted or expired), is another job's now, or could not be renewed before it may
// have expired; any other error is transient: the claim is still this job's for a while,
// and renew may be called again.
func (cl *claim) renew(ctx context.Context) error {
	const ttl = events.ClaimTTL
	// Past this, the claim may expire before a renewal now reaches the bus: count it
	// lost rather than have two syncs of the book run.
	deadline := cl.renewed.Load().Add(ttl - ttl/10)
	if !time.Now().Before(deadline) {
		return fmt.Errorf("%w: %s not renewed within %v", errClaimLost, cl.key, ttl)
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var err error
	for range 3 {
		start := time.Now()
		var e jetstream.KeyValueEntry
		if e, err = cl.c.kv.Get(ctx, cl.key); err != nil {
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				return fmt.Errorf("%w: %s is gone", errClaimLost, cl.key)
			}
			break
		}
		var held events.SyncClaim
		if events.Decode(e.Value(), &held) != nil || !cl.owns(held) {
			return fmt.Errorf("%w: %s is job %q's on fetcher %q now", errClaimLost, cl.key, held.JobID, held.Fetcher)
		}
		if held.Interactive {
			cl.interactive.Store(true)
		}
		held.Interactive = cl.interactive.Load()
		held.At = start.UTC()
		b, _ := events.Encode(&held)
		var rev uint64
		if rev, err = cl.c.kv.Update(ctx, cl.key, b, e.Revision()); err == nil {
			cl.rev.Store(rev)
			cl.renewed.Store(&start)
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			break
		}
		// Written meanwhile (a reader's flag, or another job): read it again.
	}
	if !time.Now().Before(deadline) {
		return fmt.Errorf("%w: %s not renewed within %v: %w", errClaimLost, cl.key, ttl, err)
	}
	return fmt.Errorf("renew claim %s: %w", cl.key, err)
}

// readerWaits reports whether a reader waits for the sync, reading the claim again when
// none was known to.
func (cl *claim) readerWaits(ctx context.Context) bool {
	if cl.interactive.Load() {
		return true
	}
	e, err := cl.c.kv.Get(ctx, cl.key)
	if err != nil {
		return false
	}
	var held events.SyncClaim
	if events.Decode(e.Value(), &held) == nil && cl.owns(held) && held.Interactive {
		cl.interactive.Store(true)
	}
	return cl.interactive.Load()
}

// release gives the claim up, unless another job has taken it since. A reader's flag
// written meanwhile changes the claim's revision: it looks again, a few times.
func (cl *claim) release(ctx context.Context, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for range 5 {
		e, err := cl.c.kv.Get(ctx, cl.key)
		if err != nil {
			return
		}
		var held events.SyncClaim
		if events.Decode(e.Value(), &held) != nil || !cl.owns(held) {
			return
		}
		err = cl.c.kv.Delete(ctx, cl.key, jetstream.LastRevision(e.Revision()))
		if err == nil {
			return
		}
		log.Debug("release claim", "key", cl.key, "err", err)
	}
	log.Warn("the book's claim could not be released; it expires on its own", "key", cl.key, "ttl", events.ClaimTTL)
}
