package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// The load generator is net/http with a Transport sized to the concurrency, rather than
// vegeta: it shares the two cores with the gateway it measures, so it does as little as
// possible per request (one reused request value, the body discarded through a pooled
// buffer, one latency appended to a preallocated slice per worker), keeps every latency
// for exact percentiles, and adds no dependency. It has the two modes the harness needs:
// a closed loop (fixed concurrency, as fast as answers come: throughput) and an open loop
// (a fixed arrival rate, latency counted from each request's scheduled time, so that a
// slow answer cannot hide the requests queued behind it: latency under load).

// LoadRun is what one load run measured.
type LoadRun struct {
	// Requests is the number of answers received; Errors counts those that were not
	// 200 (and transport errors).
	Requests int
	Errors   int
	// Elapsed is from the first request sent to the last answer received.
	Elapsed time.Duration
	Latency Latency
	// FirstError describes the first failure, if any.
	FirstError string
}

// PerSecond is the rate of answers.
func (r LoadRun) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// newLoadClient returns an HTTP client that keeps conns connections open to one host.
func newLoadClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
	}
}

// hit makes one request and reads the whole answer; ok is true for a 200.
func hit(client *http.Client, req *http.Request) (ok bool, err error) {
	resp, err := client.Do(req)
	if err != nil {
		return false, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return false, err
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("status %d", resp.StatusCode)
	}
	return true, nil
}

// worker collects one goroutine's results.
type worker struct {
	lat      []time.Duration
	errors   int
	firstErr error
	last     time.Time
}

func (w *worker) record(start, end time.Time, ok bool, err error) {
	w.lat = append(w.lat, end.Sub(start))
	w.last = end
	if !ok {
		w.errors++
		if w.firstErr == nil {
			w.firstErr = err
		}
	}
}

func merge(ws []*worker, began time.Time) LoadRun {
	var all []time.Duration
	run := LoadRun{}
	last := began
	for _, w := range ws {
		all = append(all, w.lat...)
		run.Errors += w.errors
		if w.firstErr != nil && run.FirstError == "" {
			run.FirstError = w.firstErr.Error()
		}
		if w.last.After(last) {
			last = w.last
		}
	}
	run.Requests = len(all)
	run.Elapsed = last.Sub(began)
	run.Latency = summarise(all)
	return run
}

// closedLoop keeps concurrency requests to url in flight for d (or until ctx ends).
func closedLoop(ctx context.Context, client *http.Client, url string, concurrency int, d time.Duration) (LoadRun, error) {
	ws := make([]*worker, concurrency)
	reqs := make([]*http.Request, concurrency)
	for i := range ws {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return LoadRun{}, err
		}
		reqs[i] = req
		ws[i] = &worker{lat: make([]time.Duration, 0, 1<<14)}
	}
	began := time.Now()
	deadline := began.Add(d)
	var wg sync.WaitGroup
	for i := range ws {
		wg.Go(func() {
			w, req := ws[i], reqs[i]
			for ctx.Err() == nil {
				start := time.Now()
				if !start.Before(deadline) {
					return
				}
				ok, err := hit(client, req)
				w.record(start, time.Now(), ok, err)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return LoadRun{}, err
	}
	return merge(ws, began), nil
}

// openLoop sends requests to url at rate per second for d, from at most maxInFlight
// goroutines. Each latency runs from the request's scheduled time to its answer.
func openLoop(ctx context.Context, client *http.Client, url string, rate float64, d time.Duration, maxInFlight int) (LoadRun, error) {
	if rate <= 0 {
		return LoadRun{}, fmt.Errorf("open loop: rate %v", rate)
	}
	total := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	schedule := make(chan time.Time, total)
	ws := make([]*worker, maxInFlight)
	reqs := make([]*http.Request, maxInFlight)
	for i := range ws {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return LoadRun{}, err
		}
		reqs[i] = req
		ws[i] = &worker{lat: make([]time.Duration, 0, total/maxInFlight+16)}
	}
	began := time.Now()
	var wg sync.WaitGroup
	for i := range ws {
		wg.Go(func() {
			w, req := ws[i], reqs[i]
			for at := range schedule {
				if ctx.Err() != nil {
					continue // drain
				}
				ok, err := hit(client, req)
				w.record(at, time.Now(), ok, err)
			}
		})
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := 0; i < total && ctx.Err() == nil; i++ {
		at := began.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		schedule <- at
	}
	close(schedule)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return LoadRun{}, err
	}
	return merge(ws, began), nil
}
