// Package source is the fetcher's only door to a source site: every request books a
// slot with the politeness limiter, stays on the configured host, is bounded in time and
// size, and comes back classified as success, permanent failure or transient failure.
package source

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/xswtw/xsw/buildinfo"
	"github.com/xswtw/xsw/platform/clock"
	"github.com/xswtw/xsw/services/fetcher/internal/politeness"
)

// ErrNotFound means the site answered 404: the page does not exist (permanent).
var ErrNotFound = errors.New("source: not found")

// ErrOffSite means the site redirected to another host, which is never followed
// (permanent).
var ErrOffSite = errors.New("source: redirect off the configured site")

// ErrTooLarge means the page exceeded the size limit (permanent).
var ErrTooLarge = errors.New("source: page too large")

// RefusalError means the site refused us: it answered 403, or a challenge page (the
// Cloudflare interstitial) instead of the page. We never try to pass a challenge: the
// site is reported as refusing us (errors.Is(err, politeness.ErrRefused)) and probed
// rarely until it answers again.
type RefusalError struct {
	URL    string
	Reason string // "czbooks: refused, HTTP 403 (Cloudflare)"
}

func (e *RefusalError) Error() string { return e.Reason + " at " + e.URL }

// Is makes errors.Is(err, politeness.ErrRefused) match.
func (e *RefusalError) Is(target error) bool { return target == politeness.ErrRefused }

// StatusError is an unexpected HTTP status. 429 and 5xx are transient.
type StatusError struct {
	URL        string
	Code       int
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("source: %s answered %d %s", e.URL, e.Code, http.StatusText(e.Code))
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %v)", e.RetryAfter)
	}
	return s
}

// Temporary reports whether a retry may succeed.
func (e *StatusError) Temporary() bool { return e.Code == http.StatusTooManyRequests || e.Code >= 500 }

// Permanent reports whether err can never succeed on retry: a 404, an off-site redirect,
// an oversized page, or another 4xx.
func Permanent(err error) bool {
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrOffSite) || errors.Is(err, ErrTooLarge) {
		return true
	}
	var se *StatusError
	return errors.As(err, &se) && !se.Temporary()
}

// DefaultUserAgent names the project, this build's version and where to read about it:
// every site sees who asks, and nothing imitates a browser.
func DefaultUserAgent() string { return userAgent(buildinfo.Get().Version) }

// userAgent is the default User-Agent of a build of version (buildinfo's: "v1.2.3", a
// pseudo-version, or "devel"): "xsw-precache/1.2.3 (…)", or "xsw-precache/dev (…)" for a
// development build or a version that is not a valid product version.
func userAgent(version string) string {
	v := strings.TrimPrefix(version, "v")
	if v == "" || v == "devel" || strings.IndexFunc(v, func(r rune) bool { return !tokenChar(r) }) >= 0 {
		v = "dev"
	}
	return "xsw-precache/" + v + " (+https://github.com/xswtw/xsw; polite pre-caching reader)"
}

// tokenChar reports whether r may appear in an HTTP token (RFC 9110, section 5.6.2),
// such as a product version.
func tokenChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)
}

// Config configures a Client.
type Config struct {
	// Timeout bounds one request, from connect to the last byte (HTTP_TIMEOUT).
	Timeout time.Duration
	// InsecureTLS switches certificate verification off (the site's chain has been
	// reported incomplete); off by default.
	InsecureTLS bool
	// UserAgent sent with every request (USER_AGENT; default DefaultUserAgent()).
	UserAgent string
	// MaxBytes bounds a page's size (default 8 MiB).
	MaxBytes int64
	// Site names the site in the reasons of refusals ("czbooks: refused, HTTP 403").
	Site string
	// Observe, when set, is told of every request sent: the status of the answer (0
	// when none came) and how long it took to come.
	Observe func(status int, took time.Duration)
}

// Client fetches pages of one site.
type Client struct {
	http    *http.Client
	limiter *politeness.Limiter
	base    *url.URL
	cfg     Config
}

// New returns a client for the site at base, booking every request with limiter.
func New(base *url.URL, limiter *politeness.Limiter, cfg Config) *Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 20 * time.Second
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 8 << 20
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent()
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	tr.ResponseHeaderTimeout = cfg.Timeout
	if cfg.InsecureTLS {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked for it (SOURCE_INSECURE_TLS)
	}
	c := &Client{limiter: limiter, base: base, cfg: cfg}
	c.http = &http.Client{
		Transport: tr,
		Timeout:   cfg.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !c.onSite(req.URL) {
				return fmt.Errorf("%w: %s", ErrOffSite, req.URL.Redacted())
			}
			if via[len(via)-1].URL.Scheme == "https" && req.URL.Scheme != "https" {
				// Never from TLS to plain text: what we send and read would be open to anyone
				// on the way.
				return fmt.Errorf("%w: a redirect from https to %s", ErrOffSite, req.URL.Redacted())
			}
			if len(via) >= 5 {
				return errors.New("source: too many redirects")
			}
			return nil
		},
	}
	return c
}

// Base returns the site's base URL.
func (c *Client) Base() *url.URL { return c.base }

func (c *Client) onSite(u *url.URL) bool {
	return strings.EqualFold(u.Hostname(), c.base.Hostname()) && u.Port() == c.base.Port()
}

// Page is a fetched page.
type Page struct {
	URL  *url.URL // where the bytes came from, after on-site redirects
	Body []byte
	// NotModified is set when a conditional request was answered 304; Body is empty.
	NotModified bool
	// Validators the site gave with the page, for the next conditional request.
	Validators Validators
}

// Validators are a page's ETag and Last-Modified, sent back as If-None-Match and
// If-Modified-Since.
type Validators struct {
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// Empty reports whether there is nothing to send.
func (v Validators) Empty() bool { return v.ETag == "" && v.LastModified == "" }

// Get fetches rawURL, which must be on the configured site, after booking a slot with
// the limiter at priority p, and reports the outcome to the limiter.
func (c *Client) Get(ctx context.Context, rawURL string, p politeness.Priority) (*Page, error) {
	return c.GetIfChanged(ctx, rawURL, p, Validators{})
}

// GetIfChanged is Get as a conditional request: with validators from an earlier answer,
// the site may answer 304, reported as a Page with NotModified set.
//
// When the site refuses us (a *RefusalError, errors.Is politeness.ErrRefused), an
// interactive request returns at once; a background or demoted one waits for the site to
// let us in again, its requests being the limiter's rare probes.
func (c *Client) GetIfChanged(ctx context.Context, rawURL string, p politeness.Priority, v Validators) (*Page, error) {
	return c.get(ctx, rawURL, p, v, true)
}

// GetOrRefused is a background Get for work that would rather step aside than wait for a
// refusing site: while the site's next probe is not due it returns the refusal (errors.Is
// politeness.ErrRefused) at once; when it is due, this request may be the probe.
func (c *Client) GetOrRefused(ctx context.Context, rawURL string) (*Page, error) {
	return c.get(ctx, rawURL, politeness.Background, Validators{}, false)
}

func (c *Client) get(ctx context.Context, rawURL string, p politeness.Priority, v Validators, waitRefusal bool) (*Page, error) {
	if !waitRefusal {
		p = politeness.BackgroundOrRefused
	}
	u, err := c.parse(rawURL)
	if err != nil {
		return nil, err
	}
	for {
		if err := c.limiter.Wait(ctx, p); err != nil {
			return nil, err
		}
		page, refused, err := c.send(ctx, u, v, func(ctx context.Context) { c.bookFollowUp(ctx, p) })
		if refused && (p == politeness.Background || p == politeness.Demoted) && !c.limiter.Disabled() {
			// Work at background pace waits for the site to let us in again: the limiter
			// holds it until the next probe.
			continue
		}
		return page, err
	}
}

// Probe asks a refusing site whether it lets us in again, with a request for rawURL (its
// home page), when the site's next probe is due (politeness.Limiter.TryProbe); probed is
// false, and nothing was sent, while the site does not refuse us or the probe is not
// due. The answer is reported like any request's: a refusal again puts the next probe a
// longer cooldown away; a page (or a 404) ends the refusal; throttling or a failure
// leaves it, for the next probe.
func (c *Client) Probe(ctx context.Context, rawURL string) (probed bool, err error) {
	u, err := c.parse(rawURL)
	if err != nil {
		return false, err
	}
	if ok, err := c.limiter.TryProbe(ctx); !ok || err != nil {
		return false, err
	}
	_, _, err = c.send(ctx, u, Validators{}, c.paceProbe)
	return true, err
}

// parse returns rawURL parsed, if it is an http(s) URL on the configured site.
func (c *Client) parse(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil || !c.onSite(u) || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("%w: refusing %q", ErrOffSite, rawURL)
	}
	return u, nil
}

// send makes one request, whose slot the caller booked, and reports its outcome to the
// limiter; followUp books each further round trip the request takes (see
// bookEveryRoundTrip). refused is set when the site refused us and the limiter recorded
// it.
func (c *Client) send(ctx context.Context, u *url.URL, v Validators, followUp func(context.Context)) (page *Page, refused bool, err error) {
	page, retryAfter, outcome, err := c.do(c.bookEveryRoundTrip(ctx, followUp), u, v)
	// Report with a context of its own: a request that was made must be accounted for
	// even when the caller is going away.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var re *RefusalError
	if errors.As(err, &re) {
		rerr := c.limiter.Refuse(rctx, re.Reason)
		return nil, rerr == nil, errors.Join(err, rerr)
	}
	if rerr := c.limiter.Report(rctx, outcome, retryAfter); rerr != nil && err == nil {
		err = rerr
	}
	return page, false, err
}

// bookEveryRoundTrip returns ctx with a trace that calls followUp before each connection
// the transport takes for the request after its first: the request to an on-site
// redirect's target, and the transport's own silent resend of a GET whose kept-alive
// connection the site closed or reset (net/http replays such requests once). Both reach
// the site like any other request, so followUp books a slot for them; the slot of the
// first is booked by the caller.
func (c *Client) bookEveryRoundTrip(ctx context.Context, followUp func(context.Context)) context.Context {
	if c.limiter.Disabled() {
		return ctx
	}
	var conns atomic.Int32
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GetConn: func(string) {
			if conns.Add(1) > 1 {
				followUp(ctx)
			}
		},
	})
}

// bookFollowUp books a further round trip of a request at priority p. An interactive
// request told the site is busy, refused or its circuit open books it as background
// work (the site answered a moment ago, so it goes ahead); any other error is the
// context's, which ends the request anyway.
func (c *Client) bookFollowUp(ctx context.Context, p politeness.Priority) {
	if err := c.limiter.Wait(ctx, p); err != nil && p != politeness.Background && ctx.Err() == nil {
		_ = c.limiter.Wait(ctx, politeness.Background)
	}
}

// paceProbe spaces a further round trip of a probe one interval after the last. It does
// not book it: while the probe is out, the site refuses us and no other request goes
// out, and booking would make it wait for the next probe, a cooldown away.
func (c *Client) paceProbe(ctx context.Context) {
	clock.Sleep(ctx, c.limiter.Snapshot().Interval)
}

func (c *Client) do(ctx context.Context, u *url.URL, v Validators) (*Page, time.Duration, politeness.Outcome, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, politeness.Success, fmt.Errorf("source: %w", err)
	}
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	req.Header.Set("Accept-Language", "zh-TW,zh;q=0.9")
	if v.ETag != "" {
		req.Header.Set("If-None-Match", v.ETag)
	}
	if v.LastModified != "" {
		req.Header.Set("If-Modified-Since", v.LastModified)
	}
	sent := time.Now()
	resp, err := c.http.Do(req)
	c.observe(resp, time.Since(sent))
	if err != nil {
		if errors.Is(err, ErrOffSite) {
			return nil, 0, politeness.Success, err
		}
		if ctx.Err() != nil {
			return nil, 0, politeness.Success, ctx.Err()
		}
		return nil, 0, politeness.Failed, fmt.Errorf("source: get %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	got := Validators{ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotModified {
		// A refusal is told by its status, its headers or its page's title: read the start.
		head, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if reason, ok := c.refusal(resp, head); ok {
			return nil, 0, politeness.Success, &RefusalError{URL: u.Redacted(), Reason: reason}
		}
	}
	switch {
	case resp.StatusCode == http.StatusNotModified && !v.Empty():
		return &Page{URL: resp.Request.URL, NotModified: true, Validators: v}, 0, politeness.Success, nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, 0, politeness.Success, fmt.Errorf("%w: %s", ErrNotFound, u.Redacted())
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		ra := retryAfter(resp.Header.Get("Retry-After"), time.Now())
		return nil, ra, politeness.Throttled, &StatusError{URL: u.Redacted(), Code: resp.StatusCode, RetryAfter: ra}
	case resp.StatusCode >= 500:
		return nil, 0, politeness.Failed, &StatusError{URL: u.Redacted(), Code: resp.StatusCode}
	case resp.StatusCode != http.StatusOK:
		return nil, 0, politeness.Success, &StatusError{URL: u.Redacted(), Code: resp.StatusCode}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, politeness.Success, ctx.Err()
		}
		return nil, 0, politeness.Failed, fmt.Errorf("source: read %s: %w", u.Redacted(), err)
	}
	if int64(len(body)) > c.cfg.MaxBytes {
		return nil, 0, politeness.Success, fmt.Errorf("%w: %s over %d bytes", ErrTooLarge, u.Redacted(), c.cfg.MaxBytes)
	}
	if reason, ok := c.refusal(resp, body); ok {
		return nil, 0, politeness.Success, &RefusalError{URL: u.Redacted(), Reason: reason}
	}
	return &Page{URL: resp.Request.URL, Body: body, Validators: got}, 0, politeness.Success, nil
}

// challengeTitles are the titles of the interstitial pages a site behind Cloudflare
// answers in place of the page while it checks (or blocks) the client.
var challengeTitles = []string{"just a moment...", "attention required! | cloudflare", "access denied"}

// refusal reports whether resp (whose body starts with head) refuses us, and in which
// words: a 403, a challenge (Cloudflare's cf-mitigated header), or a challenge page
// whatever its status.
func (c *Client) refusal(resp *http.Response, head []byte) (string, bool) {
	what := ""
	switch {
	case resp.Header.Get("Cf-Mitigated") != "":
		what = fmt.Sprintf("HTTP %d, %s page", resp.StatusCode, resp.Header.Get("Cf-Mitigated"))
	case resp.StatusCode == http.StatusForbidden:
		what = "HTTP 403"
	case challengePage(head):
		what = fmt.Sprintf("HTTP %d, challenge page", resp.StatusCode)
	default:
		return "", false
	}
	if strings.EqualFold(resp.Header.Get("Server"), "cloudflare") || resp.Header.Get("Cf-Ray") != "" || resp.Header.Get("Cf-Mitigated") != "" {
		what += " (Cloudflare)"
	}
	if c.cfg.Site != "" {
		return c.cfg.Site + ": refused, " + what, true
	}
	return "refused, " + what, true
}

// challengePage reports whether the page's title, in its first few kilobytes, is a
// challenge interstitial's.
func challengePage(body []byte) bool {
	head := body[:min(len(body), 8<<10)]
	i := bytes.Index(bytes.ToLower(head), []byte("<title"))
	if i < 0 {
		return false
	}
	rest := head[i:]
	open := bytes.IndexByte(rest, '>')
	end := bytes.Index(bytes.ToLower(rest), []byte("</title"))
	if open < 0 || end < open {
		return false
	}
	title := strings.ToLower(strings.TrimSpace(string(rest[open+1 : end])))
	return slices.Contains(challengeTitles, title)
}

// retryAfter reads a Retry-After header: seconds or an HTTP date; capped at an hour.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, time.Hour))
}

// Timeout reports whether err is a timeout (of the request, not of the caller).
func Timeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
