// Package database opens Postgres pools and creates a missing database for local runs.
// Applying migrations is package migrate's, which the gateway, a reader, never links.
package database

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultURL is the local database a newcomer's machine is expected to have.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/xsw?sslmode=disable"

// Option tunes the pool Open returns.
type Option func(*pgxpool.Config)

// StatementTimeout has Postgres cancel any statement of the pool's connections that runs
// longer than d, waiting for a lock included (statement_timeout, set when each connection
// starts; the error is SQLSTATE 57014, see IsStatementTimeout). d is rounded down to the
// millisecond; under 1ms leaves the server's setting.
func StatementTimeout(d time.Duration) Option {
	return func(cfg *pgxpool.Config) {
		if ms := d.Milliseconds(); ms > 0 {
			cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(ms, 10)
		}
	}
}

// IsStatementTimeout reports whether err is Postgres cancelling a statement that ran
// past statement_timeout (query_canceled, 57014: also a cancel request, which pgx sends
// when a context ends; a context's end is told by the context's own error).
func IsStatementTimeout(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "57014"
}

// Open returns a pool for dsn after checking that the server answers. A pool holds at
// least minConns connections at most (pgx's default is 4, or one per CPU when more; the
// dsn's pool_max_conns overrides it).
func Open(ctx context.Context, dsn string, minConns int, opts ...Option) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	cfg.MaxConns = max(cfg.MaxConns, int32(minConns))
	for _, opt := range opts {
		opt(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", Redact(dsn), err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("reach postgres at %s: %w", Redact(dsn), err)
	}
	return pool, nil
}

// EnsureDatabase creates the database named in dsn when the server says it does not
// exist, connecting to the server's "postgres" database to do so. Processes that find it
// missing at once may all try: the ones that lose find it created and succeed too.
func EnsureDatabase(ctx context.Context, dsn string) error {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name
		return fmt.Errorf("reach postgres at %s: %w", Redact(dsn), err)
	}
	name := cfg.Database
	admin := cfg.Copy()
	admin.Database = "postgres"
	conn, err = pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return fmt.Errorf("reach postgres to create database %q: %w", name, err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	if err != nil {
		if errors.As(err, &pgErr) && createdMeanwhile(pgErr) {
			return nil
		}
		return fmt.Errorf("create database %q: %w", name, err)
	}
	return nil
}

// createdMeanwhile tells whether CREATE DATABASE failed because another session created
// the database after this one found it missing: duplicate_database when the other had
// committed before, a unique violation on pg_database's name index when both inserted
// the name at once.
func createdMeanwhile(err *pgconn.PgError) bool {
	return err.Code == "42P04" || err.Code == "23505" && err.ConstraintName == "pg_database_datname_index"
}

// userInfo matches the user part of a URL ("scheme://user:password@"), up to the last
// '@': a URL that does not parse may hold a password with any character in it.
var userInfo = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*://).*@`)

// Redact hides the password of a connection URL for logs and health answers. A URL that
// does not parse keeps no user part at all, and a key=value string naming a password
// becomes "(connection string with password)".
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		if strings.Contains(dsn, "password") {
			return "(connection string with password)"
		}
		return userInfo.ReplaceAllString(dsn, "${1}xxxxx@")
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	// libpq also takes the password, and a client key's passphrase, as parameters.
	if q := u.Query(); q.Has("password") || q.Has("sslpassword") {
		for _, k := range []string{"password", "sslpassword"} {
			if q.Has(k) {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}
