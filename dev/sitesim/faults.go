package sitesim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FaultKind names a fault that the site can inject instead of (or into) a
// normal response.
type FaultKind string

// The fault kinds.
const (
	// FaultTooManyRequests answers 429 with a Retry-After header.
	FaultTooManyRequests FaultKind = "429"
	// FaultServerError answers 500.
	FaultServerError FaultKind = "500"
	// FaultUnavailable answers 503, with Retry-After when the rule sets one.
	FaultUnavailable FaultKind = "503"
	// FaultNotFound answers 404, as the real site did for every page from
	// some addresses for weeks.
	FaultNotFound FaultKind = "404"
	// FaultReset closes the connection without a response (TCP reset).
	FaultReset FaultKind = "reset"
	// FaultHang waits for the rule's Hang duration (or until the client
	// gives up) before answering normally.
	FaultHang FaultKind = "hang"
	// FaultTruncate sends the first half of the normal page.
	FaultTruncate FaultKind = "truncate"
	// FaultBlank answers 200 with a page that has none of the expected
	// elements.
	FaultBlank FaultKind = "blank"
	// FaultRedirect answers 302 to the same path on another host.
	FaultRedirect FaultKind = "redirect"
	// FaultRefuse answers as Cloudflare does when it refuses a client: 403
	// with the headers Server: cloudflare and cf-mitigated: challenge, and a
	// challenge page titled "Just a moment...". czbooks.net is behind
	// Cloudflare; the fault works for either flavour.
	FaultRefuse FaultKind = "refuse"
)

// Defaults of a fault rule's optional settings.
const (
	DefaultRetryAfter = time.Second
	DefaultHang       = 30 * time.Second
	// DefaultRedirectTo is a loopback address where nothing listens, so that a
	// client that follows the redirect fails fast and stays on this machine.
	DefaultRedirectTo = "http://127.0.0.1:1"
)

var faultKinds = []FaultKind{
	FaultTooManyRequests, FaultServerError, FaultUnavailable, FaultNotFound, FaultReset,
	FaultHang, FaultTruncate, FaultBlank, FaultRedirect, FaultRefuse,
}

// FaultRule injects one kind of fault into site requests whose path starts
// with PathPrefix (all when empty). When it fires is decided by the first
// trigger set, in this order:
//
//   - Next > 0: the next Next matching requests, after which the rule is spent;
//   - Every > 0: every Every-th matching request (the Every-th, 2·Every-th, …);
//   - Probability > 0: each matching request with that probability, drawn from
//     the site's seed;
//   - none set: every matching request.
//
// Rules are tried in order and the first that fires wins; rules after it do
// not see the request. In JSON, durations are strings such as "1.5s".
type FaultRule struct {
	Kind        FaultKind
	PathPrefix  string
	Next        int
	Every       int
	Probability float64
	// RetryAfter is sent with 429 (default 1s) and 503 (only when set),
	// rounded up to whole seconds.
	RetryAfter time.Duration
	// Hang is how long FaultHang waits (default 30s).
	Hang time.Duration
	// RedirectTo is the scheme and host FaultRedirect sends clients to
	// (default DefaultRedirectTo).
	RedirectTo string
}

// faultRuleJSON is the JSON form of FaultRule.
type faultRuleJSON struct {
	Kind        FaultKind `json:"kind"`
	PathPrefix  string    `json:"path_prefix,omitempty"`
	Next        int       `json:"next,omitempty"`
	Every       int       `json:"every,omitempty"`
	Probability float64   `json:"probability,omitempty"`
	RetryAfter  string    `json:"retry_after,omitempty"`
	Hang        string    `json:"hang,omitempty"`
	RedirectTo  string    `json:"redirect_to,omitempty"`
}

// MarshalJSON writes the rule with snake_case keys and durations as strings.
func (r FaultRule) MarshalJSON() ([]byte, error) {
	j := faultRuleJSON{
		Kind: r.Kind, PathPrefix: r.PathPrefix, Next: r.Next, Every: r.Every,
		Probability: r.Probability, RedirectTo: r.RedirectTo,
	}
	if r.RetryAfter != 0 {
		j.RetryAfter = r.RetryAfter.String()
	}
	if r.Hang != 0 {
		j.Hang = r.Hang.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (r *FaultRule) UnmarshalJSON(data []byte) error {
	var j faultRuleJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	out := FaultRule{
		Kind: j.Kind, PathPrefix: j.PathPrefix, Next: j.Next, Every: j.Every,
		Probability: j.Probability, RedirectTo: j.RedirectTo,
	}
	var err error
	if j.RetryAfter != "" {
		if out.RetryAfter, err = time.ParseDuration(j.RetryAfter); err != nil {
			return fmt.Errorf("retry_after: %w", err)
		}
	}
	if j.Hang != "" {
		if out.Hang, err = time.ParseDuration(j.Hang); err != nil {
			return fmt.Errorf("hang: %w", err)
		}
	}
	*r = out
	return nil
}

// ErrBadFault reports an invalid fault rule.
var ErrBadFault = errors.New("invalid fault rule")

func (r FaultRule) validate() error {
	known := false
	for _, k := range faultKinds {
		known = known || r.Kind == k
	}
	switch {
	case !known:
		return fmt.Errorf("%w: unknown kind %q", ErrBadFault, r.Kind)
	case r.Next < 0 || r.Every < 0:
		return fmt.Errorf("%w: next and every must not be negative", ErrBadFault)
	case r.Probability < 0 || r.Probability > 1:
		return fmt.Errorf("%w: probability %v not in 0..1", ErrBadFault, r.Probability)
	case r.RetryAfter < 0 || r.Hang < 0:
		return fmt.Errorf("%w: durations must not be negative", ErrBadFault)
	case r.RedirectTo != "" && !strings.HasPrefix(r.RedirectTo, "http://") && !strings.HasPrefix(r.RedirectTo, "https://"):
		return fmt.Errorf("%w: redirect_to %q is not an http(s) URL", ErrBadFault, r.RedirectTo)
	}
	return nil
}

// FaultState is a fault rule with its counters.
type FaultState struct {
	Rule FaultRule `json:"rule"`
	// Seen is how many requests matched the rule's prefix and reached it.
	Seen int `json:"seen"`
	// Fired is how many times the rule injected its fault.
	Fired int `json:"fired"`
	// Left is how many firings a Next rule has left.
	Left int `json:"left"`
}

// faults holds the rules in force.
type faults struct {
	mu    sync.Mutex
	rng   *rand.Rand
	rules []FaultState
}

func (f *faults) set(rules []FaultRule, appendRules bool) error {
	for i, r := range rules {
		if err := r.validate(); err != nil {
			return fmt.Errorf("rule %d: %w", i, err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !appendRules {
		f.rules = nil
	}
	for _, r := range rules {
		f.rules = append(f.rules, FaultState{Rule: r, Left: r.Next})
	}
	return nil
}

func (f *faults) list() []FaultState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]FaultState(nil), f.rules...)
}

// pick returns the rule that fires for a request to path, if any.
func (f *faults) pick(path string) (FaultRule, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.rules {
		st := &f.rules[i]
		r := st.Rule
		if !strings.HasPrefix(path, r.PathPrefix) {
			continue
		}
		if r.Next > 0 && st.Left == 0 {
			continue // spent
		}
		st.Seen++
		var fire bool
		switch {
		case r.Next > 0:
			st.Left--
			fire = true
		case r.Every > 0:
			fire = st.Seen%r.Every == 0
		case r.Probability > 0:
			fire = f.rng.Float64() < r.Probability
		default:
			fire = true
		}
		if fire {
			st.Fired++
			return r, true
		}
	}
	return FaultRule{}, false
}

// ChallengeTitle is the <title> of the challenge page that FaultRefuse sends.
const ChallengeTitle = "Just a moment..."

// refuse answers like a Cloudflare managed challenge: 403, cf-mitigated:
// challenge, Server: cloudflare, and a page that only a browser running its
// script could get past. The page is ASCII, so it is sent as is in Big5 mode.
func (s *Site) refuse(w http.ResponseWriter, r *http.Request) {
	host := "m.xsw.tw"
	if s.cfg.Site == SiteCzbooks {
		host = "czbooks.net"
	}
	body := strings.ReplaceAll(challengePage, "{host}", host)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Server", "cloudflare")
	h.Set("cf-mitigated", "challenge")
	h.Set("Cache-Control", "private, max-age=0, no-store, no-cache, must-revalidate, post-check=0, pre-check=0")
	h.Set("Expires", "Thu, 01 Jan 1970 00:00:01 GMT")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("CF-RAY", fmt.Sprintf("%016x-TPE", uint64(time.Now().UnixNano())))
	w.WriteHeader(http.StatusForbidden)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(body)) // the client went away; nothing to do
	}
}

// challengePage imitates the page of a Cloudflare managed challenge.
const challengePage = `<!DOCTYPE html><html lang="en-US"><head><title>` + ChallengeTitle + `</title>` +
	`<meta http-equiv="Content-Type" content="text/html; charset=UTF-8"><meta http-equiv="X-UA-Compatible" content="IE=Edge">` +
	`<meta name="robots" content="noindex,nofollow"><meta name="viewport" content="width=device-width,initial-scale=1">` +
	`<style>*{box-sizing:border-box;margin:0;padding:0}html{line-height:1.15;font-family:system-ui,sans-serif}</style></head>` +
	`<body class="no-js"><div class="main-wrapper" role="main"><div class="main-content">` +
	`<h1 class="zone-name-title h1">{host}</h1><h2 class="h2" id="challenge-running">Checking if the site connection is secure</h2>` +
	`<noscript><div class="h2"><span id="challenge-error-text">Enable JavaScript and cookies to continue</span></div></noscript>` +
	`<div id="challenge-body-text" class="core-msg spacer">{host} needs to review the security of your connection before proceeding.</div>` +
	`</div></div><script>(function(){window._cf_chl_opt={cvId: '3',cZone: '{host}',cType: 'managed',cRay: '0',cHash: '0'};` +
	`var a=document.createElement('script');a.src='/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1';document.getElementsByTagName('head')[0].appendChild(a);}());</script>` +
	`<div class="footer" role="contentinfo"><div class="footer-inner"><div class="clearfix diagnostic-wrapper"><div class="ray-id">Ray ID: <code>0</code></div></div>` +
	`<div class="text-center" id="footer-text">Performance &amp; security by <a rel="noopener noreferrer" href="https://www.cloudflare.com" target="_blank">Cloudflare</a></div></div></div></body></html>
`
