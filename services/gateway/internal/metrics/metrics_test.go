package metrics

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var errTeapot = errors.New("a teapot")

func TestMiddlewareLabelsByRoutePatternAndStatus(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		if errors.Is(err, errTeapot) {
			return c.Status(fiber.StatusTeapot).JSON(fiber.Map{"detail": err.Error()})
		}
		return fiber.DefaultErrorHandler(c, err)
	}})
	app.Use(m.Middleware)
	app.Get("/metrics", Serve(reg))
	api := app.Group("/xsw/api")
	api.Get("/books/:book_id", func(c *fiber.Ctx) error { return c.SendString("book " + c.Params("book_id")) })
	api.Get("/teapot", func(*fiber.Ctx) error { return errTeapot })
	api.Get("/panic", func(*fiber.Ctx) error { return errors.New("unexpected") })
	admin := api.Group("/admin", func(c *fiber.Ctx) error { return fiber.NewError(fiber.StatusUnauthorized, "no token") })
	admin.Get("/stats", func(c *fiber.Ctx) error { return c.SendString("never") })
	app.Use(func(c *fiber.Ctx) error { return fiber.NewError(fiber.StatusNotFound, "no route") })

	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/xsw/api/books/1", 200},
		{"GET", "/xsw/api/books/2", 200},
		{"GET", "/xsw/api/teapot", 418},
		{"GET", "/xsw/api/panic", 500},
		{"GET", "/xsw/api/admin/stats", 401},
		{"GET", "/no/such/path/123", 404},
		{"BREW", "/xsw/api/books/1", 0}, // fasthttp may refuse it; whatever it answers is counted as OTHER
	} {
		resp, err := app.Test(httptest.NewRequest(tc.method, tc.path, nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if tc.status != 0 && resp.StatusCode != tc.status {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
		}
	}
	for _, tc := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"GET", "/xsw/api/books/:book_id", "200"}, 2},
		{[]string{"GET", "/xsw/api/teapot", "418"}, 1},
		{[]string{"GET", "/xsw/api/panic", "500"}, 1},
		{[]string{"GET", "/xsw/api/admin", "401"}, 1},
		{[]string{"GET", Unrouted, "404"}, 1},
	} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(tc.labels...)); got != tc.want {
			t.Errorf("requests%v = %v, want %v", tc.labels, got, tc.want)
		}
	}
	// No raw path ever becomes a label.
	resp, err := app.Test(httptest.NewRequest("GET", "/metrics", nil))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	body := b.String()
	for _, raw := range []string{"/xsw/api/books/1\"", "/no/such/path", "BREW"} {
		if strings.Contains(body, raw) {
			t.Errorf("metrics contain %q:\n%s", raw, body)
		}
	}
	if !strings.Contains(body, `xsw_gateway_http_request_duration_seconds_count{method="GET",route="/xsw/api/books/:book_id",status="200"} 2`) {
		t.Errorf("no latency by route:\n%s", body)
	}
}
