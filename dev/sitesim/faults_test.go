package sitesim

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestFaults(t *testing.T) {
	t.Parallel()
	cfg := smallConfig()
	normal := New(cfg)
	book := normal.Books()[0]
	listing := "/fenlei1_1.html"
	chapterPath := "/" + book.ID + "/" + book.Chapters[0].ID + ".html"
	normalListing := serve(t, normal, http.MethodGet, listing).Body.Bytes()

	type step struct {
		path   string
		status int // 0: the request must fail in transport
		check  func(t *testing.T, f fetched)
	}
	ok := func(path string) step { return step{path: path, status: 200} }
	tests := []struct {
		name  string
		rules []FaultRule
		steps []step
		// fired is how many logged requests must carry the fault.
		fired int
	}{
		{
			name:  "429 for the next 2 requests",
			rules: []FaultRule{{Kind: FaultTooManyRequests, Next: 2, RetryAfter: 2500 * time.Millisecond}},
			steps: []step{
				{path: "/", status: 429, check: header("Retry-After", "3")},
				{path: listing, status: 429},
				ok("/"), ok(listing),
			},
			fired: 2,
		},
		{
			name:  "429 every third request, default Retry-After",
			rules: []FaultRule{{Kind: FaultTooManyRequests, Every: 3}},
			steps: []step{ok("/"), ok("/"), {path: "/", status: 429, check: header("Retry-After", "1")}, ok("/"), ok("/"), {path: "/", status: 429}},
			fired: 2,
		},
		{
			name:  "500",
			rules: []FaultRule{{Kind: FaultServerError, Next: 1}},
			steps: []step{{path: "/", status: 500}, ok("/")},
			fired: 1,
		},
		{
			name:  "503 with Retry-After",
			rules: []FaultRule{{Kind: FaultUnavailable, RetryAfter: 30 * time.Second}},
			steps: []step{{path: "/", status: 503, check: header("Retry-After", "30")}, {path: chapterPath, status: 503}},
			fired: 2,
		},
		{
			name:  "503 without Retry-After",
			rules: []FaultRule{{Kind: FaultUnavailable, Next: 1}},
			steps: []step{{path: "/", status: 503, check: header("Retry-After", "")}},
			fired: 1,
		},
		{
			name:  "404 for everything",
			rules: []FaultRule{{Kind: FaultNotFound}},
			steps: []step{{path: "/", status: 404}, {path: listing, status: 404}, {path: chapterPath, status: 404}},
			fired: 3,
		},
		{
			name:  "connection reset",
			rules: []FaultRule{{Kind: FaultReset, Next: 1}},
			steps: []step{{path: "/"}, ok("/")},
			fired: 1,
		},
		{
			name:  "hang past the client's timeout",
			rules: []FaultRule{{Kind: FaultHang, Next: 1, Hang: time.Minute}},
			steps: []step{{path: "/"}, ok("/")},
			fired: 1,
		},
		{
			name:  "short hang, then the page",
			rules: []FaultRule{{Kind: FaultHang, Next: 1, Hang: 100 * time.Millisecond}},
			steps: []step{{path: listing, status: 200, check: func(t *testing.T, f fetched) {
				if !bytes.Equal(f.body, normalListing) {
					t.Error("page after a hang differs from the normal page")
				}
			}}},
			fired: 1,
		},
		{
			name:  "truncated page",
			rules: []FaultRule{{Kind: FaultTruncate, Next: 1}},
			steps: []step{{path: listing, status: 200, check: func(t *testing.T, f fetched) {
				if len(f.body) == 0 || len(f.body) > len(normalListing)/2 || !bytes.HasPrefix(normalListing, f.body) {
					t.Errorf("truncated body: %d bytes of %d, prefix %v", len(f.body), len(normalListing), bytes.HasPrefix(normalListing, f.body))
				}
				if !utf8.Valid(f.body) {
					t.Error("truncated body cut a character")
				}
				if bytes.Contains(f.body, []byte("</html>")) {
					t.Error("truncated body has the end of the document")
				}
			}}},
			fired: 1,
		},
		{
			name:  "200 without the expected elements",
			rules: []FaultRule{{Kind: FaultBlank}},
			steps: []step{
				{path: listing, status: 200, check: func(t *testing.T, f fetched) {
					if f.doc(t).Find("div.bookbox").Length() != 0 {
						t.Error("blank listing has books")
					}
				}},
				{path: chapterPath, status: 200, check: func(t *testing.T, f fetched) {
					doc := f.doc(t)
					if doc.Find("#nr1, #nr_title, #pb_next").Length() != 0 {
						t.Error("blank chapter has chapter elements")
					}
				}},
			},
			fired: 2,
		},
		{
			name:  "redirect to another host",
			rules: []FaultRule{{Kind: FaultRedirect, Next: 2}},
			steps: []step{
				{path: listing + "?x=1", status: 302, check: header("Location", DefaultRedirectTo+listing+"?x=1")},
				{path: "/", status: 302, check: header("Location", DefaultRedirectTo+"/")},
				ok("/"),
			},
			fired: 2,
		},
		{
			name:  "redirect to a chosen host",
			rules: []FaultRule{{Kind: FaultRedirect, RedirectTo: "https://127.0.0.2:8443/"}},
			steps: []step{{path: "/", status: 302, check: header("Location", "https://127.0.0.2:8443/")}},
			fired: 1,
		},
		{
			name:  "Cloudflare refusal",
			rules: []FaultRule{{Kind: FaultRefuse, Next: 1}},
			steps: []step{{path: chapterPath, status: 403, check: challenge}, ok(chapterPath)},
			fired: 1,
		},
		{
			name:  "only under a prefix",
			rules: []FaultRule{{Kind: FaultServerError, PathPrefix: "/" + book.ID + "/"}},
			steps: []step{ok("/"), ok(listing), {path: chapterPath, status: 500}, {path: "/" + book.ID + "/", status: 500}},
			fired: 2,
		},
		{
			name: "first rule that fires wins",
			rules: []FaultRule{
				{Kind: FaultTooManyRequests, Next: 1},
				{Kind: FaultServerError, Every: 2},
			},
			steps: []step{{path: "/", status: 429}, ok("/"), {path: "/", status: 500}},
			fired: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := cfg
			cfg.Faults = tt.rules
			srv := startServer(t, cfg)
			c := newClient(t)
			c.Timeout = 2 * time.Second
			for i, st := range tt.steps {
				f, err := fetch(t, c, http.MethodGet, srv.URL()+st.path, nil)
				if st.status == 0 {
					if err == nil {
						t.Errorf("step %d: GET %s: status %d, want a transport error", i, st.path, f.status)
					}
					continue
				}
				if err != nil || f.status != st.status {
					t.Fatalf("step %d: GET %s: status %d, err %v; want %d", i, st.path, f.status, err, st.status)
				}
				if st.check != nil {
					st.check(t, f)
				}
			}
			// The log records each fault; a hang ends when the client gives up.
			deadline := time.Now().Add(5 * time.Second)
			for {
				fired := 0
				for _, r := range srv.Site().Requests() {
					if r.Fault != "" {
						fired++
					}
				}
				if fired == tt.fired {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d requests logged with a fault, want %d: %+v", fired, tt.fired, srv.Site().Requests())
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func header(name, want string) func(t *testing.T, f fetched) {
	return func(t *testing.T, f fetched) {
		t.Helper()
		if got := f.header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

// challenge checks a Cloudflare challenge answer.
func challenge(t *testing.T, f fetched) {
	t.Helper()
	for name, want := range map[string]string{"cf-mitigated": "challenge", "Server": "cloudflare"} {
		if got := f.header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if !strings.HasPrefix(f.header.Get("Content-Type"), "text/html") {
		t.Errorf("Content-Type %q", f.header.Get("Content-Type"))
	}
	if got := f.doc(t).Find("title").Text(); got != ChallengeTitle {
		t.Errorf("title %q, want %q", got, ChallengeTitle)
	}
}

func TestRefuse(t *testing.T) {
	t.Parallel()
	for _, site := range []string{SiteXSW, SiteCzbooks} {
		t.Run(site, func(t *testing.T) {
			cfg := smallConfig()
			cfg.Site = site
			cfg.Big5 = true // the challenge page is not re-encoded
			cfg.Faults = []FaultRule{{Kind: FaultRefuse, PathPrefix: "/"}}
			srv := startServer(t, cfg)
			c := newClient(t)
			for _, p := range []string{"/", "/nothing-here"} {
				f := get(t, c, srv.URL()+p, http.StatusForbidden)
				challenge(t, f)
				if !utf8.Valid(f.body) {
					t.Error("challenge page is not UTF-8")
				}
			}
			head, err := fetch(t, c, http.MethodHead, srv.URL()+"/", nil)
			if err != nil || head.status != http.StatusForbidden || len(head.body) != 0 || head.header.Get("cf-mitigated") != "challenge" {
				t.Errorf("HEAD: status %d, %d bytes, err %v", head.status, len(head.body), err)
			}
			reqs := srv.Site().Requests()
			if len(reqs) != 3 {
				t.Fatalf("%d requests logged, want 3", len(reqs))
			}
			for _, r := range reqs {
				if r.Status != http.StatusForbidden || r.Fault != FaultRefuse {
					t.Errorf("logged %s: status %d, fault %q", r.Path, r.Status, r.Fault)
				}
			}
			if st := srv.Site().Stats(time.Second); st.ByFault[FaultRefuse] != 3 {
				t.Errorf("stats by fault %v", st.ByFault)
			}
		})
	}
}

func TestFaultProbability(t *testing.T) {
	t.Parallel()
	run := func() []int {
		cfg := smallConfig()
		cfg.Faults = []FaultRule{{Kind: FaultUnavailable, Probability: 0.3}}
		s := New(cfg)
		var statuses []int
		for range 200 {
			statuses = append(statuses, serve(t, s, http.MethodGet, "/").Code)
		}
		return statuses
	}
	a, b := run(), run()
	if !slices.Equal(a, b) {
		t.Error("same seed, different fault sequence")
	}
	n := 0
	for _, code := range a {
		if code == http.StatusServiceUnavailable {
			n++
		}
	}
	if n < 35 || n > 85 {
		t.Errorf("%d of 200 requests got 503 with probability 0.3", n)
	}
}

func TestFaultControl(t *testing.T) {
	t.Parallel()
	srv := startServer(t, smallConfig())
	c := newClient(t)
	post := func(path, body string) fetched {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		return fetched{status: resp.StatusCode, header: resp.Header, body: buf.Bytes()}
	}

	f := post("/_sim/faults", `[{"kind":"429","next":1,"retry_after":"5s"}]`)
	if f.status != 200 {
		t.Fatalf("POST /_sim/faults: %d %s", f.status, f.body)
	}
	get(t, c, srv.URL()+"/", 429)
	get(t, c, srv.URL()+"/", 200)
	get(t, c, srv.URL()+"/_sim/health", 200) // never faulted

	if f := post("/_sim/faults?append=1", `[{"kind":"hang","hang":"10ms","path_prefix":"/fenlei"}]`); f.status != 200 {
		t.Fatalf("append: %d %s", f.status, f.body)
	}
	var states []FaultState
	if err := json.Unmarshal(get(t, c, srv.URL()+"/_sim/faults", 200).body, &states); err != nil {
		t.Fatal(err)
	}
	want := []FaultState{
		{Rule: FaultRule{Kind: FaultTooManyRequests, Next: 1, RetryAfter: 5 * time.Second}, Seen: 1, Fired: 1, Left: 0},
		{Rule: FaultRule{Kind: FaultHang, Hang: 10 * time.Millisecond, PathPrefix: "/fenlei"}},
	}
	if len(states) != 2 || states[0] != want[0] || states[1] != want[1] {
		t.Errorf("GET /_sim/faults = %+v, want %+v", states, want)
	}

	for _, body := range []string{`{}`, `[{"kind":"nope"}]`, `[{"kind":"500","probability":2}]`, `[{"kind":"hang","hang":"soon"}]`, `[{"kind":"redirect","redirect_to":"ftp://x"}]`} {
		if f := post("/_sim/faults", body); f.status != 400 {
			t.Errorf("POST %s: status %d, want 400", body, f.status)
		}
	}
	if len(srv.Site().Faults()) != 2 {
		t.Errorf("a rejected POST changed the rules")
	}
	if f, err := fetch(t, c, http.MethodDelete, srv.URL()+"/_sim/faults", nil); err != nil || f.status != 204 {
		t.Fatalf("DELETE /_sim/faults: %d %v", f.status, err)
	}
	if n := len(srv.Site().Faults()); n != 0 {
		t.Errorf("%d rules after DELETE", n)
	}

	if f := post("/_sim/faults", `[{"kind":"refuse","next":1}]`); f.status != 200 {
		t.Fatalf("POST refuse: %d %s", f.status, f.body)
	}
	challenge(t, get(t, c, srv.URL()+"/", 403))
	get(t, c, srv.URL()+"/", 200)

	s := srv.Site()
	if err := s.SetFaults(FaultRule{Kind: "bogus"}); !errors.Is(err, ErrBadFault) {
		t.Errorf("SetFaults(bogus) = %v, want ErrBadFault", err)
	}
	if err := s.AddFault(FaultRule{Kind: FaultNotFound, Next: 1}); err != nil {
		t.Fatal(err)
	}
	get(t, c, srv.URL()+"/", 404)
	get(t, c, srv.URL()+"/", 200)
}
