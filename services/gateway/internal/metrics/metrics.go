// Package metrics measures the gateway for Prometheus: HTTP requests and their latency by
// method, route pattern (never the raw path, whose values are unbounded) and status, and
// book reads by site and where each was served from (the pre-cache hit rate).
package metrics

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"

	platformmetrics "github.com/xswtw/xsw/platform/metrics"
)

// Unrouted is the route label of a request answered before it reached a route: an
// unknown path, a refusal by the rate limiter, a CORS preflight.
const Unrouted = "unrouted"

// HTTP measures requests.
type HTTP struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New registers the gateway's HTTP metrics with reg.
func New(reg prometheus.Registerer) (*HTTP, error) {
	labels := []string{"method", "route", "status"}
	m := &HTTP{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xsw_gateway_http_requests_total",
			Help: `HTTP requests answered, by method, route pattern (or "unrouted") and status code.`,
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "xsw_gateway_http_request_duration_seconds",
			Help:    "Time from receiving a request to its answer (a stream's first bytes), by method, route pattern and status code.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, labels),
	}
	return m, platformmetrics.Register(reg, m.requests, m.duration)
}

// Middleware measures every request after it. It runs the application's error handler
// itself for a failed request, so that the status counted is the one the client gets.
func (m *HTTP) Middleware(c *fiber.Ctx) error {
	began := time.Now()
	if err := c.Next(); err != nil {
		if herr := c.App().ErrorHandler(c, err); herr != nil {
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
	}
	labels := []string{method(c.Method()), route(c.Route()), strconv.Itoa(c.Response().StatusCode())}
	m.requests.WithLabelValues(labels...).Inc()
	m.duration.WithLabelValues(labels...).Observe(time.Since(began).Seconds())
	return nil
}

// route is the pattern of the route that answered: a handler's path, the prefix of the
// group whose middleware answered (an admin call without the token), or Unrouted for the
// application's own middleware (which sits on "/").
func route(r *fiber.Route) string {
	if r == nil || r.Path == "/" || r.Path == "" {
		return Unrouted
	}
	return r.Path
}

// methods are the method labels; any other method is "OTHER".
var methods = []string{fiber.MethodGet, fiber.MethodHead, fiber.MethodPost, fiber.MethodPut, fiber.MethodDelete,
	fiber.MethodPatch, fiber.MethodOptions}

// method bounds the method label: whatever a client sends, it is one of a few values.
// It returns a constant, never m itself, which may live in a buffer fasthttp reuses.
func method(m string) string {
	for _, known := range methods {
		if m == known {
			return known
		}
	}
	return "OTHER"
}

// Serve answers a scrape of what g gathers.
func Serve(g prometheus.Gatherer) fiber.Handler {
	return adaptor.HTTPHandler(platformmetrics.Handler(g))
}
