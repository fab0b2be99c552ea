package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/logging"
	"github.com/xswtw/xsw/platform/logtest"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/services/gateway/internal/testdb"
)

// call GETs path on a running gateway (Bearer tok when admin).
func call(t *testing.T, addr, path string, admin bool) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if admin {
		req.Header.Set("Authorization", "Bearer tok")
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

// waitReady waits until the gateway at addr is ready, or Run failed.
func waitReady(t *testing.T, addr string, errc <-chan error) {
	t.Helper()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if resp, err := client.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-errc:
			t.Fatalf("Run returned before serving: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("gateway never ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRunStatementTimeout checks that every connection of the gateway's pool carries
// DB_STATEMENT_TIMEOUT: a read that waits for a locked table is cancelled by Postgres
// and the reader gets 503 at once, instead of a request hanging on the lock.
func TestRunStatementTimeout(t *testing.T) {
	var dsn string
	addr, errc, _ := startRunWith(t, func(vars map[string]string) {
		vars["DB_STATEMENT_TIMEOUT"] = "300ms"
		dsn = vars["DATABASE_URL"]
	}, logging.Discard())
	waitReady(t, addr, errc)
	pool, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	testdb.InsertBook(t, pool, "1721851", "萬古神帝", true)
	tx, err := pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(t.Context(), `LOCK TABLE books IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, header, body := call(t, addr, "/xsw/api/books/1721851", false)
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "the database took too long to answer") ||
		header.Get("Retry-After") == "" || time.Since(start) > 5*time.Second {
		t.Errorf("a read of a locked table: %d %s (Retry-After %q) after %v; want 503 at the 300ms statement timeout",
			code, body, header.Get("Retry-After"), time.Since(start))
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if code, _, body := call(t, addr, "/xsw/api/books/1721851", false); code != http.StatusOK {
		t.Errorf("after the lock: %d %s", code, body)
	}
}

// TestRunLogsNoSecrets runs the gateway with a password in DATABASE_URL and a password,
// or a token, in NATS_URL, and checks that no log line, no public answer and the admin
// statistics hold either.
func TestRunLogsNoSecrets(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, natsUser, logged string }{
		{"user and password", "xswuser:hunter2@", "nats=nats://xswuser:xxxxx@127.0.0.1"},
		{"token", "hunter2@", "nats=nats://xxxxx@127.0.0.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logs := &logtest.Buffer{}
			logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			addr, errc, cancel := startRunWith(t, func(vars map[string]string) {
				vars["NATS_URL"] = strings.Replace(vars["NATS_URL"], "nats://", "nats://"+tt.natsUser, 1)
				vars["DATABASE_URL"] = strings.Replace(vars["DATABASE_URL"], "postgres://postgres@", "postgres://postgres:hunter2@", 1)
			}, logger)
			waitReady(t, addr, errc)
			_, _, health := call(t, addr, "/xsw/api/health", false)
			_, _, stats := call(t, addr, "/xsw/api/admin/stats", true)
			cancel()
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			for what, text := range map[string]string{"logs": logs.String(), "health": string(health), "admin stats": string(stats)} {
				if strings.Contains(text, "hunter2") {
					t.Errorf("%s hold the secret:\n%s", what, text)
				}
			}
			if !strings.Contains(logs.String(), tt.logged) {
				t.Errorf("the NATS URL is not logged redacted (%s):\n%s", tt.logged, logs)
			}
			var s struct {
				Database struct {
					URL string `json:"url"`
				} `json:"database"`
			}
			if err := json.Unmarshal(stats, &s); err != nil || !strings.HasPrefix(s.Database.URL, "postgres://postgres@127.0.0.1:5432/") {
				t.Errorf("admin stats database.url %q (%v), want the database without its password", s.Database.URL, err)
			}
			if strings.Contains(string(health), "postgres") || strings.Contains(string(health), "127.0.0.1") {
				t.Errorf("the public health names the database: %s", health)
			}
		})
	}
}

// TestRunErrorsHoldNoSecrets checks that the errors Run and ConfigFromEnv return, which
// cmd/gateway logs, hold no password or token, whichever setting carries it.
func TestRunErrorsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	for _, env := range []map[string]string{
		{"NATS_URL": "http://xswuser:hunter2@127.0.0.1:4222"},
		{"NATS_URL": "nats://xswuser:hunter2@127.0.0.1:4222", "DB_STATEMENT_TIMEOUT": "1h"},
		{"BASE_URL": "ftp://reader:hunter2@m.xsw.tw"},
		{"SOURCES": "xsw,toy", "SOURCE_TOY_URL": "toy:hunter2@toy.example"},
	} {
		_, err := ConfigFromEnv(config.Map(env))
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ConfigFromEnv(%v) = %v, want an error without the password", env, err)
		}
	}

	// NATS that never answers: Run gives up when its context ends.
	cfg, err := ConfigFromEnv(config.Map(map[string]string{"NATS_URL": "nats://xswuser:hunter2@127.0.0.1:1"}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	logs := &logtest.Buffer{}
	err = Run(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(logs.String(), "hunter2") {
		t.Errorf("Run against an unreachable NATS = %v, logs %s; want an error without the password", err, logs)
	}
	// A database user is no secret: the error still names it.
	ns := natstest.Start(t)
	cfg, err = ConfigFromEnv(config.Map(map[string]string{"NATS_URL": ns.URL, "DATABASE_URL": "postgres://postgres@127.0.0.1:1/xsw"}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := Run(ctx, cfg, logging.Discard()); err == nil || !strings.Contains(err.Error(), "postgres://postgres@127.0.0.1:1/xsw") {
		t.Errorf("Run against an unreachable database = %v, want it named", err)
	}
	// A token alone, and a database URL that does not parse.
	for _, env := range []map[string]string{
		{"NATS_URL": "nats://s3cr3t-token@127.0.0.1:1"},
		{"NATS_URL": ns.URL, "DATABASE_URL": "postgres://xsw:hunter2@db host/xsw"},
		{"NATS_URL": ns.URL, "DATABASE_URL": "postgres://xsw:hunter2@127.0.0.1:1/xsw"},
	} {
		cfg, err := ConfigFromEnv(config.Map(env))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		err = Run(ctx, cfg, logging.Discard())
		cancel()
		if err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "s3cr3t-token") {
			t.Errorf("Run(%v) = %v, want an error without the password or token", env, err)
		}
	}
}

func TestRedactURLs(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://xsw:hunter2@nats:4222", "nats://xsw:xxxxx@nats:4222"},
		{"nats://hunter2@nats:4222", "nats://xxxxx@nats:4222"}, // a token
		{"nats://a:hunter2@n1:4222, nats://hunter2@n2:4222", "nats://a:xxxxx@n1:4222,nats://xxxxx@n2:4222"},
		{"nats://xsw:hun ter2@n 1:4222", "nats://xxxxx@n 1:4222"}, // does not parse
		{"", ""},
	} {
		if got := redactURLs(tt.in); got != tt.want {
			t.Errorf("redactURLs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, tt := range []struct {
		in     string
		tokens bool
		want   []string
	}{
		{"postgres://xsw:hunter%232@db/xsw?sslpassword=key", false, []string{"hunter%232", "hunter#2", "key"}},
		{"host=db password='hunter 2' user=xsw", false, []string{"'hunter 2'", "hunter 2"}},
		{"nats://tok@n1:4222,nats://u:pw@n2:4222", true, []string{"tok", "pw"}},
		{"postgres://postgres@127.0.0.1:5432/xsw", false, nil}, // a user is no secret
		{"https://m.xsw.tw", false, nil},
	} {
		got := secretsOf(tt.in, tt.tokens)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("secretsOf(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
