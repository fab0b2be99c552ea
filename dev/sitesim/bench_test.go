package sitesim

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func BenchmarkNew(b *testing.B) {
	cfg := DefaultConfig()
	for b.Loop() {
		New(cfg)
	}
}

func BenchmarkPages(b *testing.B) {
	s := New(DefaultConfig())
	bk := s.Books()[0]
	paths := map[string]string{
		"listing": "/fenlei1_1.html",
		"book":    "/" + bk.ID + "/",
		"toc":     "/" + bk.ID + "/page-1.html",
		"chapter": "/" + bk.ID + "/" + bk.Chapters[0].ID + ".html",
	}
	for name, p := range paths {
		b.Run(name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, p, nil)
			for b.Loop() {
				s.Handler().ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}

func BenchmarkCzbooksPages(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Site = SiteCzbooks
	s := New(cfg)
	bk := s.Books()[0]
	paths := map[string]string{
		"listing": "/c/xuanhuan",
		"book":    "/n/" + bk.ID,
		"chapter": "/n/" + bk.ID + "/" + bk.Chapters[0].ID,
	}
	for name, p := range paths {
		b.Run(name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, p, nil)
			for b.Loop() {
				s.Handler().ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
