package allinone

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/xswtw/xsw/events"
)

// waitReady polls until the gateway's /readyz answers 200 and a fetcher answers on the
// bus, or ctx ends.
func waitReady(ctx context.Context, gatewayURL, natsURL string) error {
	client := &http.Client{Timeout: time.Second}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !gatewayReady(ctx, client, gatewayURL+"/readyz") {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	nc, err := nats.Connect(natsURL, nats.Name("xsw-ready-probe"))
	if err != nil {
		return err
	}
	defer nc.Close()
	for {
		// An empty call is refused at once by a live fetcher, without touching the site.
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := nc.RequestWithContext(rctx, events.SubjectRPCListing, []byte(`{}`))
		cancel()
		if err == nil {
			return nil
		}
		if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func gatewayReady(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
