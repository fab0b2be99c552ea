package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3/lock"
)

// LockKey is the key of the session-level Postgres advisory lock that Up holds for a
// whole run, so that processes migrating one database at once (two indexers starting
// together) take turns: the later ones find the migrations applied and apply
// none. It is the 64-bit FNV-1a hash of "xsw:migrate". Advisory locks belong to one
// database, so runs on different databases never wait on each other; runs on different
// schemas of one database take turns too. In pg_locks the lock shows as locktype
// 'advisory', classid 119908549, objid 320586594, objsubid 1:
//
//	SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 119908549 AND objid = 320586594;
const LockKey int64 = 515003296786400098

// lockPoll is how often a run waiting for the migration lock tries it again, and
// lockWaitLog how often it says that it is still waiting (a variable for the tests).
const lockPoll = 250 * time.Millisecond

var lockWaitLog = 10 * time.Second

// migrationLocker is goose's SessionLocker for Up: goose takes one connection from
// the pool, locks it with SessionLock, runs every migration on it and unlocks it with
// SessionUnlock before giving it back. Waiting is bounded only by the run's context and
// is logged, naming the holder.
//
// It waits by trying pg_try_advisory_lock every lockPoll, not by a blocking
// pg_advisory_lock: a blocked statement holds a snapshot for as long as it waits, and a
// migration that waits out older snapshots (CREATE INDEX CONCURRENTLY) in the holder's
// run would then wait for its waiters, which wait for it: a deadlock that Postgres
// resolves by failing one side (the test's racers did fail so with a blocking wait).
// Between tries a waiter holds no snapshot.
type migrationLocker struct {
	key    int64
	logger *slog.Logger
}

var _ lock.SessionLocker = migrationLocker{}

func (l migrationLocker) SessionLock(ctx context.Context, conn *sql.Conn) error {
	began := time.Now()
	lastLog := began
	holder := "" // the holder last seen, once the lock was found taken
	for {
		var locked bool
		err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", l.key).Scan(&locked)
		switch {
		case err != nil && ctx.Err() != nil:
			return l.gaveUp(ctx, conn, began, holder)
		case err != nil:
			return fmt.Errorf("take the migration lock: %w", err)
		case locked && holder != "":
			l.logger.Info("migration lock taken", "waited", time.Since(began).Round(time.Millisecond))
			return nil
		case locked:
			return nil
		case holder == "":
			holder = l.holder(ctx, conn, "an unknown session")
			l.logger.Info("waiting for the migration lock: another process is migrating this database",
				"lock", l.key, "holder", holder)
		case time.Since(lastLog) >= lockWaitLog:
			lastLog = time.Now()
			holder = l.holder(ctx, conn, holder)
			l.logger.Warn("still waiting for the migration lock",
				"waited", time.Since(began).Round(time.Second), "holder", holder)
		}
		select {
		case <-ctx.Done():
			return l.gaveUp(ctx, conn, began, holder)
		case <-time.After(lockPoll):
		}
	}
}

// gaveUp is the error of a wait that the context ended.
func (l migrationLocker) gaveUp(ctx context.Context, conn *sql.Conn, began time.Time, holder string) error {
	holder = l.holder(context.WithoutCancel(ctx), conn, holder)
	if holder == "" {
		holder = "an unknown session"
	}
	return fmt.Errorf("gave up after %s waiting for the migration lock (held by %s): %w",
		time.Since(began).Round(time.Millisecond), holder, context.Cause(ctx))
}

// holder describes the session that holds the lock, for a person to find it, or returns
// otherwise when it cannot tell.
func (l migrationLocker) holder(ctx context.Context, conn *sql.Conn, otherwise string) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var (
		pid              int32
		app, addr, state string
		connected        int64
	)
	err := conn.QueryRowContext(ctx, `
		SELECT l.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local'),
		       coalesce(a.state, ''), coalesce(extract(epoch FROM now() - a.backend_start)::bigint, 0)
		FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND l.classid = $1 AND l.objid = $2
		LIMIT 1`, uint32(uint64(l.key)>>32), uint32(l.key)).Scan(&pid, &app, &addr, &state, &connected)
	if err != nil {
		return otherwise
	}
	return fmt.Sprintf("pid=%d application=%q client=%s state=%q connected_for=%s",
		pid, app, addr, state, time.Duration(connected)*time.Second)
}

func (l migrationLocker) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	var unlocked bool
	err := conn.QueryRowContext(ctx, "SELECT pg_advisory_unlock($1)", l.key).Scan(&unlocked)
	if err == nil && unlocked {
		return nil
	}
	if err == nil {
		err = errors.New("this session did not hold it")
	}
	// The connection goes back to the pool after this; it must not keep the lock there,
	// so end the session, which releases whatever it holds.
	closeErr := conn.Raw(func(dc any) error {
		if c, ok := dc.(*stdlib.Conn); ok {
			return c.Conn().Close(ctx)
		}
		return nil
	})
	return errors.Join(fmt.Errorf("release the migration lock: %w", err), closeErr)
}
