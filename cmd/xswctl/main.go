// Command xswctl operates a running xsw through its gateway's admin API, all of it: queue
// and job statistics, the source sites, books, syncs, whole-category crawls with their
// progress, dead letters, the lanes (paused, resumed, purged), the caches, the job
// history, the gateway's version and a live tail of job events. --site names the site of
// the books a command names (default: the gateway's default site). It reads the gateway's
// address from XSW_URL (default http://localhost:8000) and the admin token from
// XSW_ADMIN_TOKEN. Run `xswctl help`; `xswctl completion` prints shell completion.
//
// Install it with go install github.com/xswtw/xsw/cmd/xswctl@latest.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/xswtw/xsw/cmd/xswctl/internal/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := ctl.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
