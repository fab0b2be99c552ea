package source

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/xswtw/xsw/services/fetcher/internal/politeness"
)

func TestGet(t *testing.T) {
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
		{name: "403 is permanent", url: site.URL + "/forbidden", status: 403, permanent: true},
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
	got := make(chan string, 2)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.UserAgent()
		_, _ = w.Write([]byte("<p>ok</p>"))
	}))
	defer site.Close()
	base, _ := url.Parse(site.URL)
	for _, tt := range []struct{ configured, want string }{
		{"", DefaultUserAgent},
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
	for _, word := range []string{"Mozilla", "AppleWebKit", "Safari", "Chrome", "Gecko"} {
		if strings.Contains(DefaultUserAgent, word) {
			t.Errorf("DefaultUserAgent %q imitates a browser (%s)", DefaultUserAgent, word)
		}
	}
	if !strings.Contains(DefaultUserAgent, "xsw") || !strings.Contains(DefaultUserAgent, "https://") {
		t.Errorf("DefaultUserAgent %q does not name the project and where to read about it", DefaultUserAgent)
	}
}
