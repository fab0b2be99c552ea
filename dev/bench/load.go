package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// The load generator is fasthttp's client, rather than net/http or vegeta: it shares the
// two cores with the gateway it measures, so it must do as little as possible per
// request. fasthttp's client reuses one request and one response value per worker,
// reads on the caller's goroutine and allocates nothing per request once warm; net/http
// spends about three times the CPU per request, and that CPU is the gateway's. The
// generator keeps every latency for exact percentiles (one appended to a preallocated
// slice per worker) and has the two modes the harness needs: a closed loop (fixed
// concurrency, as fast as answers come: throughput) and an open loop (a fixed arrival
// rate, latency counted from each request's scheduled time, so that a slow answer cannot
// hide the requests queued behind it: latency under load).

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

// newLoadClient returns a net/http client that keeps conns connections open to one
// host, for the harness's own calls (admin requests, waiting for a service).
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

// newGenerator returns the load generator's client, keeping up to conns connections to
// each host.
func newGenerator(conns int) *fasthttp.Client {
	return &fasthttp.Client{
		MaxConnsPerHost:          conns,
		MaxIdleConnDuration:      time.Minute,
		ReadTimeout:              30 * time.Second,
		WriteTimeout:             30 * time.Second,
		NoDefaultUserAgentHeader: true,
		Dial:                     (&fasthttp.TCPDialer{Concurrency: conns}).Dial,
	}
}

// caller is one worker's reusable request and response to url.
type caller struct {
	req  *fasthttp.Request
	resp *fasthttp.Response
}

func newCaller(url string) caller {
	c := caller{req: fasthttp.AcquireRequest(), resp: fasthttp.AcquireResponse()}
	c.req.SetRequestURI(url)
	c.req.Header.SetMethod(fasthttp.MethodGet)
	return c
}

// do makes the request and reads the whole answer; ok is true for a 200.
func (c caller) do(client *fasthttp.Client) (ok bool, err error) {
	if err := client.Do(c.req, c.resp); err != nil {
		return false, err
	}
	if code := c.resp.StatusCode(); code != fasthttp.StatusOK {
		return false, fmt.Errorf("status %d", code)
	}
	return true, nil
}

func (c caller) release() {
	fasthttp.ReleaseRequest(c.req)
	fasthttp.ReleaseResponse(c.resp)
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
func closedLoop(ctx context.Context, client *fasthttp.Client, url string, concurrency int, d time.Duration) (LoadRun, error) {
	ws := make([]*worker, concurrency)
	for i := range ws {
		ws[i] = &worker{lat: make([]time.Duration, 0, 1<<14)}
	}
	began := time.Now()
	deadline := began.Add(d)
	var wg sync.WaitGroup
	for i := range ws {
		wg.Go(func() {
			w, c := ws[i], newCaller(url)
			defer c.release()
			for ctx.Err() == nil {
				start := time.Now()
				if !start.Before(deadline) {
					return
				}
				ok, err := c.do(client)
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
func openLoop(ctx context.Context, client *fasthttp.Client, url string, rate float64, d time.Duration, maxInFlight int) (LoadRun, error) {
	if rate <= 0 {
		return LoadRun{}, fmt.Errorf("open loop: rate %v", rate)
	}
	total := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	schedule := make(chan time.Time, total)
	ws := make([]*worker, maxInFlight)
	for i := range ws {
		ws[i] = &worker{lat: make([]time.Duration, 0, total/maxInFlight+16)}
	}
	began := time.Now()
	var wg sync.WaitGroup
	for i := range ws {
		wg.Go(func() {
			w, c := ws[i], newCaller(url)
			defer c.release()
			for at := range schedule {
				if ctx.Err() != nil {
					continue // drain
				}
				ok, err := c.do(client)
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
