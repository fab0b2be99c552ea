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

// waitReady polls until the gateway's /readyz answers 200, a fetcher serving each of
// sites answers on the bus, and the gateway knows every site it serves from a fetcher's
// description (before that it refuses to queue or fetch for the site), or ctx ends.
func waitReady(ctx context.Context, gatewayURL, natsURL string, sites []string) error {
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
	for i := 0; i < len(sites); {
		// An empty call is refused at once by a live fetcher, without touching the site.
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := nc.RequestWithContext(rctx, events.RPCSubject(events.SubjectRPCListing, sites[i]), []byte(`{}`))
		cancel()
		if err == nil {
			i++
			continue
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
	var sites []struct {
		State string `json:"state"`
	}
	if !getOK(ctx, client, url, &sites) || len(sites) == 0 {
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
	return getOK(ctx, client, url, nil)
}

// getOK reports whether GET url answers 200 (and, with v, a body that decodes into it).
func getOK(ctx context.Context, client *http.Client, url string, v any) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK && (v == nil || json.NewDecoder(resp.Body).Decode(v) == nil)
}
