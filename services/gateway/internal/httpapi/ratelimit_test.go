package httpapi

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestClientLimiter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)
	l := newClientLimiter(3, time.Minute)
	l.now = func() time.Time { return now }
	for i := range 3 {
		if ok, _ := l.allow("a"); !ok {
			t.Fatalf("request %d refused within the burst", i+1)
		}
	}
	ok, wait := l.allow("a")
	if ok || wait <= 0 || wait > 20*time.Second {
		t.Fatalf("4th request: ok %v wait %v, want refused for up to 20s (one token per 20s)", ok, wait)
	}
	if ok, _ := l.allow("b"); !ok {
		t.Error("another client shares the first one's budget")
	}
	now = now.Add(wait)
	if ok, _ := l.allow("a"); !ok {
		t.Error("refused after waiting Retry-After")
	}
	if ok, _ := l.allow("a"); ok {
		t.Error("a refused request still spent a token, or the bucket refilled too fast")
	}

	// Idle clients are forgotten when the table is full.
	now = now.Add(time.Hour)
	l.sweep(now)
	if len(l.clients) != 0 {
		t.Errorf("%d idle clients kept after a sweep", len(l.clients))
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.RateLimit, c.RateWindow = 3, time.Minute
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32"), // App.Test's peer
			netip.MustParsePrefix("10.0.0.0/8")} // an inner proxy
	})
	from := func(ip string) []string { return []string{"X-Forwarded-For", ip} }
	for range 3 {
		expect(t, e.request(http.MethodGet, "/xsw/api/books/x", from("203.0.113.7")...), http.StatusBadRequest) // counted too
	}
	r := e.request(http.MethodGet, "/xsw/api/books/1", from("203.0.113.7")...)
	expect(t, r, http.StatusTooManyRequests)
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > 20 {
		t.Errorf("Retry-After %q, want 1 to 20 seconds", r.header.Get("Retry-After"))
	}
	if d := r.detail(t); !strings.Contains(d, "at most 3 per 1m0s") {
		t.Errorf("detail %q", d)
	}

	// Another client has its own budget; so has a client behind another proxy hop.
	expect(t, e.request(http.MethodGet, "/xsw/api/books/x", from("203.0.113.8")...), http.StatusBadRequest)
	expect(t, e.request(http.MethodGet, "/xsw/api/books/x", from("198.51.100.1, 203.0.113.9")...), http.StatusBadRequest)
	// A forged left-most hop does not escape the limit: the right-most untrusted one counts,
	// past any trusted inner proxy.
	expect(t, e.request(http.MethodGet, "/xsw/api/books/x", from("192.0.2.1, 203.0.113.7")...), http.StatusTooManyRequests)
	expect(t, e.request(http.MethodGet, "/xsw/api/books/x", from("203.0.113.7, 10.1.2.3")...), http.StatusTooManyRequests)
	// One IPv6 subscriber (/64) is one client.
	for i := range 3 {
		expect(t, e.request(http.MethodGet, "/xsw/api/books/x", from("2001:db8:1:2::"+strconv.Itoa(i+1))...), http.StatusBadRequest)
	}
	expect(t, e.request(http.MethodGet, "/xsw/api/books/x", from("2001:db8:1:2::ff")...), http.StatusTooManyRequests)

	// Probes and authenticated admin calls are never limited; guessing the token is.
	for _, p := range []string{"/healthz", "/readyz", "/xsw/api/healthz", "/xsw/api/readyz"} {
		expect(t, e.request(http.MethodGet, p, from("203.0.113.7")...), http.StatusOK)
	}
	expect(t, e.request(http.MethodGet, "/xsw/api/admin/jobs/stats", "X-Forwarded-For", "203.0.113.7", "Authorization", "Bearer "+adminToken), http.StatusOK)
	expect(t, e.request(http.MethodGet, "/xsw/api/admin/jobs/stats", "X-Forwarded-For", "203.0.113.7", "Authorization", "Bearer guess"), http.StatusTooManyRequests)
}

func TestRateLimitIgnoresUntrustedForwarding(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.RateLimit, c.RateWindow = 2, time.Minute })
	expect(t, e.request(http.MethodGet, "/xsw/api/books/x", "X-Forwarded-For", "203.0.113.1"), http.StatusBadRequest)
	expect(t, e.request(http.MethodGet, "/xsw/api/books/x", "X-Forwarded-For", "203.0.113.2"), http.StatusBadRequest)
	// Without trusted proxies the header is the client's word: the peer address counts.
	expect(t, e.request(http.MethodGet, "/xsw/api/books/x", "X-Forwarded-For", "203.0.113.3"), http.StatusTooManyRequests)
}

func TestRateLimitOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // RateLimit 0
	for range 50 {
		expect(t, e.get("/xsw/api/books/x"), http.StatusBadRequest)
	}
}

// TestShareLimiterTakesPages: a read takes a token per page it may fetch; a client short
// of tokens takes none and hears how long until it has them; a refund gives back what was
// taken; a read costing more than the whole bucket takes the whole bucket.
func TestShareLimiterTakesPages(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)
	l := newShareLimiter(3) // a token every 20s
	l.now = func() time.Time { return now }
	refund, ok, _ := l.take("a", 2)
	if !ok {
		t.Fatal("a sync of two pages refused from a full bucket of three")
	}
	if _, ok, wait := l.take("a", 2); ok || wait != 20*time.Second {
		t.Errorf("two pages with one token left: ok %v, wait %v; want refused for 20s", ok, wait)
	}
	if _, ok, _ := l.take("a", 1); !ok {
		t.Error("the page left refused: a refused take spent tokens")
	}
	refund()
	if _, ok, _ := l.take("a", 2); !ok {
		t.Error("two pages refused after a refund of two")
	}
	if _, ok, _ := l.take("b", 3); !ok {
		t.Error("another client shares the first one's bucket")
	}

	small := newShareLimiter(1)
	small.now = l.now
	if _, ok, _ := small.take("a", 2); !ok {
		t.Error("a sync refused for ever to a share smaller than its pages")
	}
	if _, ok, wait := small.take("a", 2); ok || wait != time.Minute {
		t.Errorf("second sync on a share of one: ok %v, wait %v; want refused for 1m", ok, wait)
	}
}
