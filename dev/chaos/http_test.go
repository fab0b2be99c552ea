package chaos

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostile is one request a hostile or broken client sends: raw bytes on a new
// connection, so that nothing on the client side tidies it up.
type hostile struct {
	name string
	raw  string
}

// answer is what the gateway did with a hostile request: the status it answered (0 when
// it closed the connection without an answer) and whether it sent Retry-After.
type answer struct {
	status     int
	retryAfter bool
	err        error
}

// sendRaw writes raw on a new connection to addr and reads one response, all within
// timeout.
func sendRaw(addr, raw string, timeout time.Duration) answer {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return answer{err: err}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	// The server may answer (413, 431) and close before it has read everything: write
	// while reading.
	go func() { _, _ = io.WriteString(conn, raw) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return answer{err: fmt.Errorf("no answer within %v", timeout)}
		}
		return answer{} // closed without an answer
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After") != ""}
}

// hostileRequests are the malformed, oversized and hostile requests of the burst.
func hostileRequests(host string) []hostile {
	get := func(target string, headers ...string) string {
		return "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n" + strings.Join(headers, "") + "Connection: close\r\n\r\n"
	}
	api := "/xsw/api"
	big := strings.Repeat("A", 16<<10)
	manyParams := strings.Repeat("page=1&", 1000)
	hs := []hostile{
		{"raw garbage", "\x00\x01\x02\x03GARBAGE\xff\xfe\r\n\r\n"},
		{"binary noise", strings.Repeat("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 50)},
		{"request line only", "GET\r\n\r\n"},
		{"HTTP/0.9", "GET /xsw/api/health\r\n"},
		{"HTTP/9.9", "GET /xsw/api/health HTTP/9.9\r\nHost: x\r\n\r\n"},
		{"no host", "GET /xsw/api/health HTTP/1.1\r\nConnection: close\r\n\r\n"},
		{"bare LF", "GET /xsw/api/health HTTP/1.1\nHost: x\nConnection: close\n\n"},
		{"oversized header", get(api+"/health", "X-Big: "+big+"\r\n")},
		{"oversized request line", get(api + "/books/1?x=" + big)},
		{"many headers", get(api+"/health", strings.Repeat("X-A: b\r\n", 2000))},
		{"header without colon", get(api+"/health", "NoColonHere\r\n")},
		{"oversized body", "POST " + api + "/admin/jobs/sync/1000001 HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + adminToken +
			"\r\nContent-Length: 1048576\r\nConnection: close\r\n\r\n" + strings.Repeat("x", 1<<20)},
		{"lying content length", "POST " + api + "/admin/jobs/clear_history HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 100\r\nConnection: close\r\n\r\nshort"},
		{"negative content length", "POST " + api + "/health HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: -5\r\nConnection: close\r\n\r\n"},
		{"bad chunked body", "POST " + api + "/health HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nxx\r\n0\r\n\r\n"},
		{"smuggling headers", "POST " + api + "/health HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"},
		{"method BREW", "BREW " + api + "/health HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"},
		{"method PUT", "PUT " + api + "/books/1000001 HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
		{"method DELETE", "DELETE " + api + "/books/1000001 HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"},
		{"method TRACE", "TRACE " + api + "/health HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"},
		{"method CONNECT", "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\nConnection: close\r\n\r\n"},
		{"method OPTIONS", "OPTIONS * HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"},
		{"absolute URI to another host", get("http://example.org/xsw/api/health")},
		{"traversal", get(api + "/../../../../etc/passwd")},
		{"encoded traversal", get(api + "/books/..%2F..%2F..%2Fetc%2Fpasswd")},
		{"dot segments", get(api + "/books/%2e%2e/%2e%2e/chapters")},
		{"backslash traversal", get(api + "/books/..\\..\\windows")},
		{"double encoding", get(api + "/books/%252e%252e%252f")},
		{"NUL in path", get(api + "/books/1%00")},
		{"invalid UTF-8 in path", get(api + "/books/%ff%fe")},
		{"raw invalid UTF-8 in path", get(api + "/books/\xff\xfe\xfd")},
		{"invalid UTF-8 in query", get(api + "/search?q=%ff%fe%fd")},
		{"raw invalid UTF-8 in query", get(api + "/search?q=\xc3\x28")},
		{"broken percent-encoding", get(api + "/search?q=%zz%")},
		{"broken percent-encoding in path", get(api + "/books/1%")},
		{"overlong UTF-8", get(api + "/search?q=%c0%af%e0%80%af")},
		{"huge page", get(api + "/categories/1/books?page=99999999999999999999999")},
		{"negative page", get(api + "/categories/1/books?page=-1&bg_sync=false")},
		{"float page", get(api + "/books/1000001/chapters?page=1e9")},
		{"zero category", get(api + "/categories/0/books")},
		{"huge category", get(api + "/categories/18446744073709551616/books")},
		{"huge book id", get(api + "/books/99999999999999999999999999")},
		{"huge chapter", get(api + "/books/1000001/chapters/99999999999")},
		{"bad boolean", get(api + "/books/1000001/chapters?all=maybe&nocache=%00")},
		{"many params", get(api + "/books/1000001/chapters?" + manyParams)},
		{"long search", get(api + "/search?q=" + strings.Repeat("%E4%B8%80", 500))},
		{"bad search type", get(api + "/search?q=a&search_type=;DROP%20TABLE%20books;--&limit=1000000")},
		{"SQL in search", get(api + "/search?q=%27%3B%20DROP%20TABLE%20books%3B--&search_type=content")},
		{"LIKE wildcards", get(api + "/search?q=%25%25%25_%5C&search_type=content")},
		{"unknown route", get(api + "/admin/../../debug/pprof/")},
		{"no token", get(api + "/admin/stats")},
		{"wrong token", get(api+"/admin/stats", "Authorization: Bearer not-the-token\r\n")},
		{"token prefix", get(api+"/admin/jobs/dead", "Authorization: Bearer "+adminToken[:len(adminToken)-1]+"\r\n")},
		{"token with suffix", get(api+"/admin/jobs/dead", "Authorization: Bearer "+adminToken+"x\r\n")},
		{"empty bearer", get(api+"/admin/stats", "Authorization: Bearer \r\n")},
		{"basic auth", get(api+"/admin/stats", "Authorization: Basic YWRtaW46YWRtaW4=\r\n")},
		{"token not ASCII", get(api+"/admin/stats", "Authorization: Bearer \xff\xfe\r\n")},
		{"duplicate authorization headers", get(api+"/admin/stats", "Authorization: Bearer wrong\r\nAuthorization: Bearer "+adminToken+"\r\n")},
		{"admin POST without token", "POST " + api + "/admin/jobs/dead/replay_all HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
		{"admin purge bad lane", "POST " + api + "/admin/jobs/purge?lane=../../all HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + adminToken + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
		{"admin crawl absurd", "POST " + api + "/admin/crawl/categories?categories=1-99999999&pages=1-999999999 HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + adminToken + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
		{"admin sync bad priority", "POST " + api + "/admin/jobs/sync/1000001?priority=-99999999999 HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + adminToken + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
		{"admin dead absurd limit", get(api+"/admin/jobs/dead?limit=99999999999999", "Authorization: Bearer "+adminToken+"\r\n")},
		{"forwarded spoof", get(api+"/health", "X-Forwarded-For: 127.0.0.1, ::1, not-an-ip\r\nForwarded: for=\"[::1]\"\r\n")},
		{"CORS preflight from anywhere", "OPTIONS " + api + "/admin/stats HTTP/1.1\r\nHost: " + host + "\r\nOrigin: http://evil.example\r\nAccess-Control-Request-Method: DELETE\r\nAccess-Control-Request-Headers: authorization\r\nConnection: close\r\n\r\n"},
		{"accept garbage", get(api+"/books/1000001", "Accept: \xff/\xfe\r\nAccept-Encoding: br;q=nan, gzip;q=-1\r\nRange: bytes=99999999999-\r\n")},
		{"upgrade to websocket", get(api+"/health", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\n")},
	}
	return hs
}

// slowClient sends a request one byte at a time, half a second apart, and reports when
// the server hung up on it.
func slowClient(t *testing.T, addr string, closed chan<- time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		closed <- 0
		return
	}
	began := time.Now()
	go func() {
		defer conn.Close()
		req := "GET /xsw/api/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("s", 200) + "\r\n\r\n"
		// Read in the background: the server's answer (if any) or its hanging up.
		gone := make(chan struct{})
		go func() {
			_, _ = io.Copy(io.Discard, conn)
			close(gone)
		}()
		for i := 0; i < len(req); i++ {
			if _, err := conn.Write([]byte{req[i]}); err != nil {
				break
			}
			select {
			case <-gone:
			case <-time.After(500 * time.Millisecond):
				continue
			}
			break
		}
		<-gone
		closed <- time.Since(began)
	}()
}

// TestHostileHTTP sends the gateway a bounded burst of hostile requests from many
// connections at once: raw TCP garbage, oversized headers, request lines and bodies,
// lying and smuggling framing, unknown and unsupported methods, path traversal in every
// encoding, invalid UTF-8 and broken percent-encoding, absurd numbers and parameter
// counts, SQL and LIKE wildcards in searches, wrong and malformed admin tokens, while
// slow clients trickle a request one byte at a time. No request gets a 5xx other than a
// documented 503 with Retry-After (most get a 4xx or are hung up on), no wrong token gets
// in, the slow clients are cut off within the read timeout, and afterwards the health
// check passes, the gateway still runs without a logged 500 or panic, and good requests
// get correct answers.
func TestHostileHTTP(t *testing.T) {
	r := newRig(t, options{site: []string{"-categories", "2", "-books", "3", "-chapters", "41..60"}, fetchers: 1, gateway: true})
	ids := r.site.ids(t, 0)
	r.request(ids)
	r.settleAll(t, ids, 60*time.Second)
	u, err := url.Parse(r.gatewayURL)
	if err != nil {
		t.Fatal(err)
	}
	addr := u.Host

	// Slow clients, for the whole burst.
	const slow = 4
	slowClosed := make(chan time.Duration, slow)
	for i := 0; i < slow; i++ {
		slowClient(t, addr, slowClosed)
	}

	cases := hostileRequests(addr)
	const rounds, workers = 4, 16
	type result struct {
		name string
		answer
	}
	work := make(chan hostile)
	results := make(chan result, len(cases)*rounds)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Go(func() {
			for h := range work {
				results <- result{h.name, sendRaw(addr, h.raw, 20*time.Second)}
			}
		})
	}
	began := time.Now()
	for round := 0; round < rounds; round++ {
		for _, h := range cases {
			work <- h
		}
	}
	close(work)
	wg.Wait()
	close(results)
	t.Logf("%d hostile requests in %v", len(cases)*rounds, time.Since(began).Round(time.Millisecond))

	// The documented answers, where the API documents one: 401 for every wrong token,
	// 431 and 413 for oversized headers and bodies, 400 for malformed parameters; a path
	// that climbs out of the API is no route at all.
	want := map[string][]int{}
	for _, n := range []string{"no token", "wrong token", "token prefix", "token with suffix", "empty bearer", "basic auth",
		"token not ASCII", "duplicate authorization headers", "admin POST without token", "unknown route"} {
		want[n] = []int{http.StatusUnauthorized}
	}
	for _, n := range []string{"oversized header", "oversized request line", "many headers"} {
		want[n] = []int{http.StatusRequestHeaderFieldsTooLarge}
	}
	want["oversized body"] = []int{http.StatusRequestEntityTooLarge}
	for _, n := range []string{"huge page", "negative page", "float page", "zero category", "huge category", "huge book id", "huge chapter",
		"bad boolean", "long search", "bad search type", "invalid UTF-8 in path", "invalid UTF-8 in query", "raw invalid UTF-8 in path",
		"raw invalid UTF-8 in query", "overlong UTF-8", "NUL in path", "broken percent-encoding in path", "encoded traversal",
		"double encoding", "backslash traversal", "admin crawl absurd", "admin dead absurd limit", "admin purge bad lane", "admin sync bad priority"} {
		want[n] = []int{http.StatusBadRequest}
	}
	for _, n := range []string{"traversal", "dot segments"} {
		want[n] = []int{http.StatusBadRequest, http.StatusNotFound}
	}
	byName := map[string]map[int]int{}
	for res := range results {
		if byName[res.name] == nil {
			byName[res.name] = map[int]int{}
		}
		byName[res.name][res.status]++
		switch {
		case res.err != nil:
			t.Errorf("%s: %v", res.name, res.err)
		case res.status == http.StatusServiceUnavailable && !res.retryAfter:
			t.Errorf("%s: 503 without Retry-After", res.name)
		case res.status >= 500 && res.status != http.StatusServiceUnavailable:
			t.Errorf("%s: answered %d", res.name, res.status)
		case want[res.name] != nil && !slices.Contains(want[res.name], res.status):
			t.Errorf("%s: answered %d, want one of %v", res.name, res.status, want[res.name])
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	var summary strings.Builder
	for _, n := range names {
		fmt.Fprintf(&summary, "\n  %-32s %v", n, byName[n])
	}
	t.Logf("statuses (0: hung up without an answer):%s", summary.String())

	// The health check passes and good requests get correct answers.
	client := &http.Client{Timeout: 30 * time.Second}
	getJSON := func(path string, out any) {
		t.Helper()
		resp, err := client.Get(r.gatewayURL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, b)
		}
	}
	var health struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	getJSON("/health", &health)
	if health.Status != "ok" {
		t.Errorf("health after the burst: %+v, want ok", health)
	}
	for _, id := range ids {
		truth := r.site.books[id]
		var book struct {
			BookID       string `json:"book_id"`
			Name         string `json:"name"`
			ChapterCount int    `json:"chapter_count"`
		}
		getJSON("/books/"+id, &book)
		if book.BookID != id || book.Name != truth.Name || book.ChapterCount != truth.ChapterCount {
			t.Errorf("book %s: %+v, want %q with %d chapters", id, book, truth.Name, truth.ChapterCount)
		}
		var chapters []struct {
			Number int    `json:"number"`
			Title  string `json:"title"`
		}
		getJSON("/books/"+id+"/chapters?all=true", &chapters)
		if len(chapters) != truth.ChapterCount {
			t.Errorf("book %s: %d chapters listed, want %d", id, len(chapters), truth.ChapterCount)
		}
		for i, c := range chapters {
			if i < len(truth.Chapters) && (c.Number != i+1 || c.Title != truth.Chapters[i].Title) {
				t.Errorf("book %s chapter %d: %+v, want %q", id, i+1, c, truth.Chapters[i].Title)
				break
			}
		}
	}
	var cats []struct {
		ID string `json:"id"`
	}
	getJSON("/categories", &cats)
	if len(cats) != 2 {
		t.Errorf("categories %+v, want the site's 2", cats)
	}
	if status, body := adminGet(t, r.gatewayURL+"/admin/jobs/stats"); status != http.StatusOK {
		t.Errorf("admin stats with the right token: %d %s", status, body)
	}

	// The slow clients are cut off once the read timeout (15s) has passed.
	deadline := time.After(40 * time.Second)
	for i := 0; i < slow; i++ {
		select {
		case d := <-slowClosed:
			if d > 30*time.Second {
				t.Errorf("a slow client was cut off after %v, want within the 15s read timeout", d)
			}
		case <-deadline:
			t.Fatalf("%d slow clients still connected after 40s", slow-i)
		}
	}

	if !r.gateway.Running() {
		t.Fatalf("gateway exited: %v", r.gateway.Err())
	}
	b, err := os.ReadFile(r.gateway.Log)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.Contains(line, "panic") || strings.Contains(line, "status=500") {
			t.Errorf("gateway log: %s", line)
		}
	}
}
