package httpapi

import (
	"context"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"
)

// maxClients bounds the clients the rate limiter tracks at once. Past it, idle clients
// are forgotten; if none is idle, every new client shares one bucket until some are.
const maxClients = 100_000

// clientLimiter limits each client to burst requests, refilled at burst per window (a
// token bucket per client, golang.org/x/time/rate). It starts no goroutine: idle buckets
// are swept when the table is full.
type clientLimiter struct {
	every rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	clients map[string]*rate.Limiter
}

func newClientLimiter(n int, window time.Duration) *clientLimiter {
	return &clientLimiter{
		every: rate.Limit(float64(n) / window.Seconds()), burst: n, now: time.Now,
		clients: make(map[string]*rate.Limiter),
	}
}

// allow takes a token of client's bucket. When none is left it reports false and how
// long until one is.
func (l *clientLimiter) allow(client string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.clients[client]
	if !ok {
		if len(l.clients) >= maxClients {
			l.sweep(now)
		}
		if len(l.clients) >= maxClients {
			client = "" // the shared overflow bucket
			lim = l.clients[client]
		}
		if lim == nil {
			lim = rate.NewLimiter(l.every, l.burst)
			l.clients[client] = lim
		}
	}
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep forgets the clients whose bucket is full again: they are as good as new.
func (l *clientLimiter) sweep(now time.Time) {
	for k, lim := range l.clients {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.clients, k)
		}
	}
}

// clientKey names the client a request comes from, for rate limiting: its IP address
// (an IPv6 address by its /64, which one subscriber usually holds whole). Behind trusted
// proxies it is the right-most address of X-Forwarded-For that is not a trusted proxy,
// the first hop a client cannot forge.
func clientKey(c *fiber.Ctx, trusted []netip.Prefix) string {
	ip := addrOf(c.Context().RemoteIP())
	if len(trusted) > 0 && isTrusted(ip, trusted) {
		var hops []string
		for _, v := range c.Context().Request.Header.PeekAll(fiber.HeaderXForwardedFor) {
			hops = append(hops, strings.Split(string(v), ",")...)
		}
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a malformed hop: trust nothing further left
			}
			ip = hop.Unmap()
			if !isTrusted(ip, trusted) {
				break
			}
		}
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// addrOf converts a net.IP (nil for a test request) to an address.
func addrOf(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.IPv4Unspecified()
	}
	return a.Unmap()
}

func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// rateLimit answers 429 with Retry-After to a client over its budget. Probes and
// authenticated admin requests are not counted: an orchestrator must always reach the
// probes, and an administrator must reach a gateway that readers are flooding. An
// unauthenticated admin request counts like any other, which also slows token guessing.
func (s *Server) rateLimit(c *fiber.Ctx) error {
	path := c.Path()
	switch path {
	case "/healthz", "/readyz", Prefix + "/healthz", Prefix + "/readyz":
		return c.Next()
	}
	if strings.HasPrefix(path, Prefix+"/admin/") && s.authorized(c) {
		return c.Next()
	}
	ok, wait := s.limiter.allow(clientKey(c, s.cfg.TrustedProxies))
	if ok {
		return c.Next()
	}
	secs := max(1, int(math.Ceil(wait.Seconds())))
	return &httpError{
		status: fiber.StatusTooManyRequests, retryAfter: secs,
		detail: "too many requests: at most " + strconv.Itoa(s.cfg.RateLimit) + " per " + s.cfg.RateWindow.String() +
			" per client; retry in " + strconv.Itoa(secs) + "s",
	}
}

// clientCtxKey carries the client's key (clientKey) in a request's context, so that what
// a handler does on the client's behalf further down is charged to it.
type clientCtxKey struct{}

// clientOf returns the client key ctx carries, or "".
func clientOf(ctx context.Context) string {
	k, _ := ctx.Value(clientCtxKey{}).(string)
	return k
}

// takeSource takes pages of the client's share of the pages that reach a source site
// (API_SOURCE_RATE_LIMIT a minute) and returns how to give them back, for a read that may
// turn out to cost the site nothing (a book already queued or being synced, a call shared
// with another reader); or it answers 429 when fewer are left: what is stored is still
// served, but nothing more is asked of the site for this client for now. Work not done
// for a client (no client in ctx) is not charged.
func (s *Server) takeSource(ctx context.Context, pages int) (refund func(), err error) {
	client := clientOf(ctx)
	if s.sourceLimiter == nil || client == "" {
		return func() {}, nil
	}
	refund, ok, wait := s.sourceLimiter.take(client, pages)
	if ok {
		return refund, nil
	}
	secs := max(1, int(math.Ceil(wait.Seconds())))
	return nil, &httpError{
		status: fiber.StatusTooManyRequests, retryAfter: secs,
		detail: "this client has asked for more pages from the source site than its share: at most " +
			strconv.Itoa(s.cfg.SourceRateLimit) + " a minute; what is stored is served as ever; retry in " + strconv.Itoa(secs) + "s",
	}
}

// shareLimiter gives each client n pages of the source sites a minute: a bucket of n
// tokens refilled evenly, one token a page a read may fetch, from which the tokens taken
// for a read that then cost the site nothing are given back. Like clientLimiter it starts
// no goroutine and forgets full buckets when its table is full.
type shareLimiter struct {
	n   float64
	now func() time.Time

	mu      sync.Mutex
	clients map[string]*share
}

type share struct {
	tokens float64
	at     time.Time
}

func newShareLimiter(n int) *shareLimiter {
	return &shareLimiter{n: float64(n), now: time.Now, clients: map[string]*share{}}
}

// refill brings b's tokens up to now.
func (l *shareLimiter) refill(b *share, now time.Time) {
	b.tokens = min(l.n, b.tokens+now.Sub(b.at).Minutes()*l.n)
	b.at = now
}

// take takes n of client's tokens (one a page), returning how to give them back; when
// fewer are left it takes none and reports false and how long until there are n. n is
// at most the bucket: a client with a share smaller than n pays its whole bucket.
func (l *shareLimiter) take(client string, n int) (refund func(), ok bool, wait time.Duration) {
	cost := min(float64(n), l.n)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.clients[client]
	if b == nil {
		if len(l.clients) >= maxClients {
			for k, c := range l.clients {
				if l.refill(c, now); c.tokens >= l.n {
					delete(l.clients, k)
				}
			}
		}
		if len(l.clients) >= maxClients {
			client = "" // the shared overflow bucket
		}
		if b = l.clients[client]; b == nil {
			b = &share{tokens: l.n, at: now}
			l.clients[client] = b
		}
	}
	l.refill(b, now)
	if b.tokens < cost {
		return nil, false, time.Duration((cost - b.tokens) / l.n * float64(time.Minute))
	}
	b.tokens -= cost
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.refill(b, l.now())
		b.tokens = min(l.n, b.tokens+cost)
	}, true, 0
}
