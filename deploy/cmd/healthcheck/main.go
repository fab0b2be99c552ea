// Command healthcheck asks one HTTP endpoint and exits 0 when it answers 2xx, 1 otherwise.
//
// The service images carry it so that Docker (docker compose's healthcheck) can probe a
// distroless container, which has no shell, curl or wget. It is not part of any service:
// Kubernetes does not need it, its probes call the same endpoints with httpGet.
//
// Usage:
//
//	healthcheck [-timeout 3s] URL
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: healthcheck [-timeout 3s] URL")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := check(ctx, http.DefaultClient, fs.Arg(0)); err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	return 0
}

// errStatus is returned for an answer outside 2xx.
var errStatus = errors.New("unhealthy status")

// check GETs url and returns nil when it answers 2xx.
func check(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("request %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err // names the method and the URL
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("get %s: %w %d", url, errStatus, resp.StatusCode)
	}
	return nil
}
