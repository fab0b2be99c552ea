package source

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xswtw/xsw/buildinfo"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/services/fetcher/internal/politeness"
)

func TestGet(t *testing.T) {
	t.Parallel()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a request reached another host: %s", r.URL)
	}))
	t.Cleanup(other.Close)
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>好</html>")) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, other.URL+"/x", http.StatusFound) })
	mux.HandleFunc("/throttle", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	mux.HandleFunc("/busy", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/boom", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	mux.HandleFunc("/forbidden", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) })
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(strings.Repeat("x", 2048))) })
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	site := httptest.NewServer(mux)
	t.Cleanup(site.Close)
	base, _ := url.Parse(site.URL)
	c := New(base, politeness.New(nil, "", politeness.Config{}), Config{Timeout: 300 * time.Millisecond, MaxBytes: 1024})

	tests := []struct {
		name      string
		url       string
		wantBody  string
		permanent bool
		status    int
		retry     time.Duration
		timeout   bool
	}{
		{name: "ok", url: site.URL + "/ok", wantBody: "<html>好</html>"},
		{name: "on-site redirect followed", url: site.URL + "/moved", wantBody: "<html>好</html>"},
		{name: "not found", url: site.URL + "/missing", permanent: true},
		{name: "off-site redirect refused", url: site.URL + "/away", permanent: true},
		{name: "off-site url refused", url: other.URL + "/x", permanent: true},
		{name: "not http", url: "file:///etc/passwd", permanent: true},
		{name: "429 with retry-after", url: site.URL + "/throttle", status: 429, retry: 7 * time.Second},
		{name: "503", url: site.URL + "/busy", status: 503},
		{name: "500", url: site.URL + "/boom", status: 500},
		{name: "too large", url: site.URL + "/huge", permanent: true},
		{name: "hang times out", url: site.URL + "/hang", timeout: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := c.Get(t.Context(), tt.url, politeness.Background)
			if tt.wantBody != "" {
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				if string(page.Body) != tt.wantBody {
					t.Errorf("body = %q", page.Body)
				}
				return
			}
			if err == nil {
				t.Fatalf("Get succeeded, want an error")
			}
			if got := Permanent(err); got != tt.permanent {
				t.Errorf("Permanent(%v) = %v, want %v", err, got, tt.permanent)
			}
			var se *StatusError
			if tt.status != 0 {
				if !errors.As(err, &se) || se.Code != tt.status || se.RetryAfter != tt.retry {
					t.Errorf("err = %v, want status %d retry %v", err, tt.status, tt.retry)
				}
			}
			if tt.timeout && !Timeout(err) {
				t.Errorf("Timeout(%v) = false", err)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"": 0, "3": 3 * time.Second, "junk": 0, "-5": 0, "999999": time.Hour,
		"Thu, 01 Jan 2026 00:00:30 GMT": 30 * time.Second,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestConditionalGet(t *testing.T) {
	t.Parallel()
	var seen []string
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("If-None-Match")+"|"+r.Header.Get("If-Modified-Since"))
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", "Tue, 20 Jan 2026 14:05:09 GMT")
		_, _ = w.Write([]byte("page"))
	}))
	t.Cleanup(site.Close)
	base, _ := url.Parse(site.URL)
	c := New(base, politeness.New(nil, "", politeness.Config{}), Config{})
	first, err := c.Get(t.Context(), site.URL+"/1/", politeness.Background)
	if err != nil || first.NotModified || first.Validators.ETag != `"v1"` || first.Validators.LastModified == "" {
		t.Fatalf("first = %+v, %v", first, err)
	}
	second, err := c.GetIfChanged(t.Context(), site.URL+"/1/", politeness.Background, first.Validators)
	if err != nil || !second.NotModified || len(second.Body) != 0 {
		t.Fatalf("second = %+v, %v; want 304", second, err)
	}
	if seen[0] != "|" || seen[1] != `"v1"|Tue, 20 Jan 2026 14:05:09 GMT` {
		t.Errorf("request headers %q", seen)
	}
}

// TestUserAgentNamesTheProject: by default every request says who asks, and nothing in
// it imitates a browser; a configured one is sent as it is.
func TestUserAgentNamesTheProject(t *testing.T) {
	t.Parallel()
	got := make(chan string, 2)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.UserAgent()
		_, _ = w.Write([]byte("<p>ok</p>"))
	}))
	defer site.Close()
	base, _ := url.Parse(site.URL)
	for _, tt := range []struct{ configured, want string }{
		{"", DefaultUserAgent()},
		{"xsw-precache/2 (+mailto:ops@example.org)", "xsw-precache/2 (+mailto:ops@example.org)"},
	} {
		c := New(base, politeness.New(nil, "", politeness.Config{}), Config{UserAgent: tt.configured})
		if _, err := c.Get(t.Context(), site.URL+"/", politeness.Interactive); err != nil {
			t.Fatal(err)
		}
		if ua := <-got; ua != tt.want {
			t.Errorf("User-Agent = %q; want %q", ua, tt.want)
		}
	}
	ua := DefaultUserAgent()
	for _, word := range []string{"Mozilla", "AppleWebKit", "Safari", "Chrome", "Gecko"} {
		if strings.Contains(ua, word) {
			t.Errorf("DefaultUserAgent() %q imitates a browser (%s)", ua, word)
		}
	}
	if !strings.Contains(ua, "xsw") || !strings.Contains(ua, "https://") {
		t.Errorf("DefaultUserAgent() %q does not name the project and where to read about it", ua)
	}
	// This test binary is a development build: its version says so.
	if want := userAgent(buildinfo.Get().Version); ua != want || !strings.HasPrefix(ua, "xsw-precache/dev (") {
		t.Errorf("DefaultUserAgent() = %q, want this development build's %q", ua, want)
	}
}

// TestUserAgentCarriesTheVersion: the default User-Agent names the build's version, and
// "dev" for a development build or a version that is no valid product version.
func TestUserAgentCarriesTheVersion(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ version, want string }{
		{"v1.4.0", "xsw-precache/1.4.0 "},
		{"v0.0.0-20260102150405-abcdef123456", "xsw-precache/0.0.0-20260102150405-abcdef123456 "},
		{"2.1.0-rc.1+build.7", "xsw-precache/2.1.0-rc.1+build.7 "},
		{"devel", "xsw-precache/dev "},
		{"", "xsw-precache/dev "},
		{"v1 (x)", "xsw-precache/dev "},
	} {
		if got := userAgent(tt.version); !strings.HasPrefix(got, tt.want) || !strings.HasSuffix(got, "(+https://github.com/xswtw/xsw; polite pre-caching reader)") {
			t.Errorf("userAgent(%q) = %q, want it to start %q and name the project's page", tt.version, got, tt.want)
		}
	}
}

// TestRefusals: a 403, Cloudflare's challenge header or a challenge page is the site
// refusing us, told in words naming the site; a page that merely mentions the words is not.
func TestRefusals(t *testing.T) {
	t.Parallel()
	challenge := `<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>Checking your browser</body></html>`
	mux := http.NewServeMux()
	mux.HandleFunc("/forbidden", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) })
	mux.HandleFunc("/cf403", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "cloudflare")
		w.Header().Set("Cf-Ray", "8f1e2d3c4b5a6978-TPE")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(challenge))
	})
	mux.HandleFunc("/mitigated", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cf-Mitigated", "challenge")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(challenge))
	})
	mux.HandleFunc("/interstitial", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(challenge)) })
	mux.HandleFunc("/story", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`<html><head><title>第三章 Just a moment</title></head><body><p>"Just a moment..." she said.</p></body></html>`))
	})
	site := httptest.NewServer(mux)
	t.Cleanup(site.Close)
	base, _ := url.Parse(site.URL)
	c := New(base, politeness.New(nil, "", politeness.Config{}), Config{Site: "czbooks"})
	for path, want := range map[string]string{
		"/forbidden":    "czbooks: refused, HTTP 403",
		"/cf403":        "czbooks: refused, HTTP 403 (Cloudflare)",
		"/mitigated":    "czbooks: refused, HTTP 503, challenge page (Cloudflare)",
		"/interstitial": "czbooks: refused, HTTP 200, challenge page",
	} {
		_, err := c.Get(t.Context(), site.URL+path, politeness.Interactive)
		var re *RefusalError
		if !errors.As(err, &re) || !errors.Is(err, politeness.ErrRefused) || re.Reason != want {
			t.Errorf("%s: err = %v, want a refusal %q", path, err, want)
		}
		if Permanent(err) {
			t.Errorf("%s: a refusal counted as a permanent failure of the page", path)
		}
	}
	if p, err := c.Get(t.Context(), site.URL+"/story", politeness.Interactive); err != nil || len(p.Body) == 0 {
		t.Errorf("a story page quoting the words: %v", err)
	}
}

// TestBackgroundWaitsOutARefusal: a background request to a site that refuses us waits
// for the probes (one per cooldown) and gets its page once the site lets us in; an
// interactive request meanwhile hears of the refusal at once.
func TestBackgroundWaitsOutARefusal(t *testing.T) {
	const cooldown = 200 * time.Millisecond
	var mu sync.Mutex
	var seen []time.Time
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, time.Now())
		if len(seen) <= 3 {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte("<html>好</html>"))
	}))
	t.Cleanup(site.Close)
	ns := natstest.Start(t)
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketPoliteness)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse(site.URL)
	lim := politeness.New(kv, "site.test", politeness.Config{Interval: time.Millisecond, Cooldown: cooldown, MaxCooldown: cooldown})
	c := New(base, lim, Config{Site: "test"})

	got := make(chan error, 1)
	go func() {
		p, err := c.Get(t.Context(), site.URL+"/page", politeness.Background)
		if err == nil && string(p.Body) != "<html>好</html>" {
			err = fmt.Errorf("body %q", p.Body)
		}
		got <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for lim.Refused() == "" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	if _, err := c.Get(t.Context(), site.URL+"/other", politeness.Interactive); !errors.Is(err, politeness.ErrRefused) {
		t.Errorf("interactive request while refused: %v, want ErrRefused", err)
	}
	if took := time.Since(start); took > cooldown/2 {
		t.Errorf("interactive request took %v to hear of the refusal", took)
	}
	if err := <-got; err != nil {
		t.Fatalf("background request: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 4 {
		t.Fatalf("the site saw %d requests, want 4 (one refused, two refused probes, one served)", len(seen))
	}
	for i := 1; i < len(seen); i++ {
		if gap := seen[i].Sub(seen[i-1]); gap < cooldown*9/10 {
			t.Errorf("request %d came %v after the one before, within the cooldown %v", i+1, gap, cooldown)
		}
	}
	if lim.Refused() != "" {
		t.Errorf("still refused after the site served us: %q", lim.Refused())
	}
}

// TestNoRedirectFromHTTPSToHTTP: a site on https that redirects to plain http is not
// followed, even on its own host; the failure is permanent.
func TestNoRedirectFromHTTPSToHTTP(t *testing.T) {
	t.Parallel()
	site := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/ok", http.StatusFound) // on https: followed
			return
		}
		if r.URL.Path == "/ok" {
			_, _ = w.Write([]byte("<html>好</html>"))
			return
		}
		http.Redirect(w, r, "http://"+r.Host+"/ok", http.StatusMovedPermanently)
	}))
	t.Cleanup(site.Close)
	base, _ := url.Parse(site.URL)
	c := New(base, politeness.New(nil, "", politeness.Config{}), Config{InsecureTLS: true})
	if p, err := c.Get(t.Context(), site.URL+"/moved", politeness.Background); err != nil || string(p.Body) != "<html>好</html>" {
		t.Fatalf("an https redirect on the site: %v", err)
	}
	_, err := c.Get(t.Context(), site.URL+"/downgrade", politeness.Background)
	if !errors.Is(err, ErrOffSite) || !Permanent(err) || !strings.Contains(err.Error(), "https to http") {
		t.Errorf("a redirect to http: %v, want a permanent refusal naming the downgrade", err)
	}
}
