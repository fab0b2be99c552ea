package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			_, _ = io.WriteString(w, "ready\n")
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		default:
			http.Error(w, "nats not connected", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name string
		args []string
		want int
	}{
		{"ready", []string{srv.URL + "/readyz"}, 0},
		{"unavailable", []string{srv.URL + "/down"}, 1},
		{"timeout", []string{"-timeout", "50ms", srv.URL + "/slow"}, 1},
		{"refused", []string{"http://127.0.0.1:1/readyz"}, 1},
		{"bad url", []string{"://"}, 1},
		{"no url", nil, 2},
		{"two urls", []string{srv.URL, srv.URL}, 2},
		{"bad flag", []string{"-nope", srv.URL}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(tt.args, io.Discard); got != tt.want {
				t.Errorf("run(%q) = %d, want %d", tt.args, got, tt.want)
			}
		})
	}
}
