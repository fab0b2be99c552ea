package source

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/xswtw/xsw/services/fetcher/internal/politeness"
)

func TestObserveSeesEveryAnswer(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			http.NotFound(w, r)
		case "/broken":
			w.WriteHeader(http.StatusBadGateway)
		default:
			_, _ = w.Write([]byte("<html></html>"))
		}
	}))
	defer srv.Close()
	base, _ := url.Parse(srv.URL)
	var (
		mu  sync.Mutex
		got []int
	)
	c := New(base, politeness.New(nil, "", politeness.Config{}), Config{Timeout: 2 * time.Second, Observe: func(status int, took time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if took <= 0 {
			t.Errorf("status %d took %v", status, took)
		}
		got = append(got, status)
	}})
	for _, path := range []string{"/ok", "/missing", "/broken"} {
		_, _ = c.Get(t.Context(), srv.URL+path, politeness.Background)
	}
	srv.Close()
	_, _ = c.Get(t.Context(), srv.URL+"/gone", politeness.Background) // nothing listens: no answer
	want := []int{http.StatusOK, http.StatusNotFound, http.StatusBadGateway, 0}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("observed %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("observed %v, want %v", got, want)
			break
		}
	}
}
