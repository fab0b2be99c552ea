package sitesim

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// smallConfig is a quick site: 3 categories of 5 books, 3 per listing page.
func smallConfig() Config {
	cfg := DefaultConfig()
	cfg.Seed = 42
	cfg.Categories = 3
	cfg.BooksPerCategory = 5
	cfg.BooksPerPage = 3
	cfg.MinChapters, cfg.MaxChapters = 25, 70
	cfg.ChaptersPerTOCPage = 20
	return cfg
}

// startServer serves a site for cfg on a loopback port until the test ends.
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return srv
}

// newClient returns a client that does not follow redirects and whose idle
// connections close with the test.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport: tr,
		Timeout:   10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// fetched is a response with its body read.
type fetched struct {
	status int
	header http.Header
	body   []byte
}

func (f fetched) doc(t *testing.T) *goquery.Document {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(f.body))
	if err != nil {
		t.Fatalf("parse html: %v", err)
	}
	return doc
}

// fetch sends a request to the server and reads the whole answer.
func fetch(t *testing.T, c *http.Client, method, url string, header http.Header) (fetched, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return fetched{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return fetched{status: resp.StatusCode, header: resp.Header, body: body}, err
}

// get fetches url and fails the test on a transport error or another status
// than want.
func get(t *testing.T, c *http.Client, url string, want int) fetched {
	t.Helper()
	f, err := fetch(t, c, http.MethodGet, url, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if f.status != want {
		t.Fatalf("GET %s: status %d, want %d", url, f.status, want)
	}
	return f
}

// texts returns the trimmed text of each selected node.
func texts(sel *goquery.Selection) []string {
	var out []string
	sel.Each(func(_ int, s *goquery.Selection) {
		out = append(out, strings.TrimSpace(s.Text()))
	})
	return out
}

// attrs returns the attribute of each selected node.
func attrs(sel *goquery.Selection, name string) []string {
	var out []string
	sel.Each(func(_ int, s *goquery.Selection) {
		v, _ := s.Attr(name)
		out = append(out, v)
	})
	return out
}
