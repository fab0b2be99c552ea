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
}

// claim is a claim held by a running job.
type claim struct {
	c   *claims
	key string
	job string
	rev atomic.Uint64
	// interactive is set once a reader waits for the sync (by the job's own lane, or
	// by a reader's request that found the book claimed).
	interactive atomic.Bool
}

// errClaimed says the book is claimed by another job, named in the error.
var errClaimed = errors.New("already_syncing")

// take claims j's book for j. A claim left by an earlier delivery of the same request (a
// fetcher that died mid-job) is taken over. When another job holds the claim, take
// returns an error wrapping errClaimed that names it; if j is a reader's, the holder is
// first told a reader waits.
func (c *claims) take(ctx context.Context, j *job) (*claim, error) {
	key := events.Key(j.Request.Site, j.Request.BookID)
	mine := events.SyncClaim{Header: events.Header{Version: events.Version}, JobID: j.ID, Fetcher: c.fetcher,
		Lane: j.Request.Lane, Interactive: j.Request.Lane == events.LaneInteractive, At: time.Now().UTC()}
	b, err := events.Encode(&mine)
	if err != nil {
		return nil, err
	}
	for range 5 {
		rev, err := c.kv.Create(ctx, key, b)
		if err == nil {
			cl := &claim{c: c, key: key, job: j.ID}
			cl.rev.Store(rev)
			cl.interactive.Store(mine.Interactive)
			return cl, nil
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
			rev, err := c.kv.Update(ctx, key, b, e.Revision())
			if err != nil {
				continue
			}
			cl := &claim{c: c, key: key, job: j.ID}
			cl.rev.Store(rev)
			cl.interactive.Store(mine.Interactive || held.Interactive)
			return cl, nil
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

// owns reports whether held is this claim: this job in this fetcher (the same request
// delivered again elsewhere takes the claim over).
func (cl *claim) owns(held events.SyncClaim) bool {
	return held.JobID == cl.job && held.Fetcher == cl.c.fetcher
}

// renew keeps the claim alive, keeping what others wrote in it (a reader's flag); it
// reports whether the claim is still this job's.
func (cl *claim) renew(ctx context.Context) bool {
	for range 3 {
		e, err := cl.c.kv.Get(ctx, cl.key)
		if err != nil {
			return !errors.Is(err, jetstream.ErrKeyNotFound)
		}
		var held events.SyncClaim
		if events.Decode(e.Value(), &held) != nil || !cl.owns(held) {
			return false
		}
		if held.Interactive {
			cl.interactive.Store(true)
		}
		held.At = time.Now().UTC()
		b, _ := events.Encode(&held)
		if rev, err := cl.c.kv.Update(ctx, cl.key, b, e.Revision()); err == nil {
			cl.rev.Store(rev)
			return true
		}
	}
	return true
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
