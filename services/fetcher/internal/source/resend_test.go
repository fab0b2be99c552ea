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

// TestProbe: a probe is sent only while the site refuses us and the probe is due; the
// site's answer ends the refusal; and a further round trip of the probe (here an on-site
// redirect) keeps the interval without waiting for the next probe, a cooldown away.
func TestProbe(t *testing.T) {
	const interval, cooldown = 200 * time.Millisecond, 2 * time.Second
	var mu sync.Mutex
	var arrivals []time.Time
	var paths []string
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/home", http.StatusFound) })
	mux.HandleFunc("/home", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>好</html>")) })
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrivals, paths = append(arrivals, time.Now()), append(paths, r.URL.Path)
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
	limiter := politeness.New(kv, "site.test", politeness.Config{Interval: interval, Cooldown: cooldown, MaxCooldown: cooldown})
	c := New(base, limiter, Config{Timeout: 5 * time.Second})
	ctx := t.Context()

	if probed, err := c.Probe(ctx, site.URL+"/"); probed || err != nil {
		t.Fatalf("probe of a site that does not refuse us = %v, %v; want none", probed, err)
	}
	if err := limiter.Refuse(ctx, "refused, HTTP 403"); err != nil {
		t.Fatal(err)
	}
	if probed, err := c.Probe(ctx, site.URL+"/"); probed || err != nil {
		t.Fatalf("probe before it is due = %v, %v; want none", probed, err)
	}
	mu.Lock()
	if len(arrivals) != 0 {
		t.Fatalf("%d requests before the probe was due", len(arrivals))
	}
	mu.Unlock()
	deadline := time.Now().Add(2 * cooldown)
	for {
		probed, err := c.Probe(ctx, site.URL+"/")
		if err != nil {
			t.Fatal(err)
		}
		if probed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the probe never fell due")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := limiter.Refused(); got != "" {
		t.Errorf("after a probe the site answered, it still refuses us: %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(arrivals) != 2 || paths[0] != "/" || paths[1] != "/home" {
		t.Fatalf("the probe asked for %v, want / then /home", paths)
	}
	if gap := arrivals[1].Sub(arrivals[0]); gap < interval-20*time.Millisecond || gap > cooldown/2 {
		t.Errorf("the probe's redirect was followed %v after it, want about the interval %v", gap.Round(time.Millisecond), interval)
	}
}
