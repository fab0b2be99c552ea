package allinone

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/xswtw/xsw/events"
)

// waitReady polls until the gateway's /readyz answers 200, a fetcher answers on the bus
// and the gateway knows every site it serves from a fetcher's description (before that
// it refuses to queue or fetch for the site), or ctx ends.
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
			break
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
	for !sitesDescribed(ctx, client, gatewayURL+"/xsw/api/sites") {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// sitesDescribed reports whether the gateway's site list has no site in the "unknown"
// state.
func sitesDescribed(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var sites []struct {
		State string `json:"state"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&sites) != nil || len(sites) == 0 {
		return false
	}
	for _, s := range sites {
		if s.State == "unknown" {
			return false
		}
	}
	return true
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
