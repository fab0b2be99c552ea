package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// raw sends req through the app and returns the status, headers and body. An answer
// other than a CORS preflight's is checked against openapi.json (see conform).
func (e *env) raw(req *http.Request) (int, http.Header, []byte) {
	e.t.Helper()
	resp, err := e.srv.App().Test(req, -1)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if req.Method != http.MethodOptions { // the CORS middleware's, not an operation's
		conform(e.t, req, resp.StatusCode, resp.Header, body)
	}
	return resp.StatusCode, resp.Header, body
}

// listen serves the app on a loopback listener until the test ends and returns its URL.
func (e *env) listen() string {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ln) }()
	e.t.Cleanup(func() {
		if err := e.srv.App().ShutdownWithTimeout(5 * time.Second); err != nil {
			e.t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			e.t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// TestRequestSizeLimits sends oversized requests to a real listener: the limits are
// enforced while reading, before any handler runs.
func TestRequestSizeLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	base := e.listen()
	client := &http.Client{Timeout: 10 * time.Second}
	tests := []struct {
		name string
		req  func() *http.Request
		want int
	}{
		{"headers too large", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, base+"/xsw/api/books/1", nil)
			r.Header.Set("X-Padding", strings.Repeat("a", headerLimit))
			return r
		}, http.StatusRequestHeaderFieldsTooLarge},
		{"headers within the limit", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, base+"/xsw/api/books/x", nil)
			r.Header.Set("X-Padding", strings.Repeat("a", headerLimit-1024))
			return r
		}, http.StatusBadRequest},
		{"body too large", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, base+"/xsw/api/admin/cache/clear", bytes.NewReader(make([]byte, bodyLimit+1)))
			r.Header.Set("Authorization", "Bearer "+adminToken)
			return r
		}, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req()
			var resp *http.Response
			var err error
			if req.ContentLength > bodyLimit {
				// The server answers 413 from the headers and closes the connection: a
				// client still writing the body may get a reset instead of the answer.
				// Send the headers alone, as a client that waits for an interim answer does.
				resp, err = headersOnly(base, req)
			} else {
				resp, err = client.Do(req)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			conform(t, req, resp.StatusCode, resp.Header, body)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d; %s", resp.StatusCode, tt.want, body)
			}
			var d struct {
				Detail string `json:"detail"`
			}
			if err := json.Unmarshal(body, &d); err != nil || d.Detail == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Errorf("body %q (%s), want JSON with a detail", body, resp.Header.Get("Content-Type"))
			}
		})
	}
}

// headersOnly sends req's request line and headers to base, without its body, and reads
// the answer.
func headersOnly(base string, req *http.Request) (*http.Response, error) {
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", req.Method, req.URL.RequestURI(), req.URL.Host, req.ContentLength)
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		conn.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		conn.Close()
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	conn.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, err
}

func TestCORS(t *testing.T) {
	t.Parallel()
	preflight := func(e *env, origin string) http.Header {
		req := httptest.NewRequest(http.MethodOptions, "/xsw/api/books/1/chapters", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		_, h, _ := e.raw(req)
		return h
	}
	t.Run("any origin by default", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		if h := preflight(e, "https://reader.example.org"); h.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("preflight headers %v", h)
		}
		req := httptest.NewRequest(http.MethodGet, "/xsw/api/books/x", nil)
		req.Header.Set("Origin", "https://reader.example.org")
		_, h, _ := e.raw(req)
		if h.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(h.Get("Access-Control-Expose-Headers"), "X-Total-Count") {
			t.Errorf("answer headers %v", h)
		}
	})
	t.Run("listed origins", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(c *Config) { c.CORSAllowOrigins = "https://reader.example.org" })
		if got := preflight(e, "https://reader.example.org").Get("Access-Control-Allow-Origin"); got != "https://reader.example.org" {
			t.Errorf("listed origin: Access-Control-Allow-Origin %q", got)
		}
		if got := preflight(e, "https://evil.example").Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("other origin: Access-Control-Allow-Origin %q, want none", got)
		}
	})
}
