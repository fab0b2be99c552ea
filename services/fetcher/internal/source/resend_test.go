package source

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/services/fetcher/internal/politeness"
)

// TestEveryRoundTripIsBooked checks the two ways one Get reaches the site twice: an
// on-site redirect, and net/http's silent resend of a GET whose kept-alive connection the
// site reset. Each second request keeps the limiter's interval from the first.
func TestEveryRoundTripIsBooked(t *testing.T) {
	const interval = 300 * time.Millisecond
	var mu sync.Mutex
	var arrivals []time.Time
	resets := 0
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>好</html>")) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/reset", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		first := resets == 0
		resets++
		mu.Unlock()
		if !first {
			_, _ = w.Write([]byte("<html>好</html>"))
			return
		}
		// Drop the kept-alive connection without an answer, as a site shedding load does.
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	})
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(site.Close)
	base, _ := url.Parse(site.URL)

	ns := natstest.Start(t)
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketPoliteness)
	if err != nil {
		t.Fatal(err)
	}
	c := New(base, politeness.New(kv, "host.test", politeness.Config{Interval: interval}), Config{Timeout: 5 * time.Second})

	for name, path := range map[string]string{"redirect": "/moved", "reset": "/reset"} {
		t.Run(name, func(t *testing.T) {
			// A first request leaves a connection to reuse, then the case's request.
			if _, err := c.Get(t.Context(), site.URL+"/ok", politeness.Background); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			arrivals = nil
			mu.Unlock()
			if _, err := c.Get(t.Context(), site.URL+path, politeness.Background); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(arrivals) != 2 {
				t.Fatalf("GET %s reached the site %d times, want 2", path, len(arrivals))
			}
			if gap := arrivals[1].Sub(arrivals[0]); gap < interval-20*time.Millisecond {
				t.Errorf("GET %s: the second request came %v after the first, want at least %v", path, gap, interval)
			}
		})
	}
}
