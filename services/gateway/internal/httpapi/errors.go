package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/xswtw/xsw/events"
)

// retryAfterSeconds is the Retry-After of every 202 and 503 answer.
const retryAfterSeconds = 5

// httpError is an error with the status and detail the client gets.
type httpError struct {
	status     int
	detail     string
	retryAfter int // seconds; 0: no Retry-After header
	err        error
}

func (e *httpError) Error() string {
	if e.err != nil {
		return e.detail + ": " + e.err.Error()
	}
	return e.detail
}

func (e *httpError) Unwrap() error { return e.err }

func newError(status int, format string, args ...any) *httpError {
	return &httpError{status: status, detail: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return newError(fiber.StatusBadRequest, format, args...)
}

func notFound(format string, args ...any) error {
	return newError(fiber.StatusNotFound, format, args...)
}

// unavailable reports that a dependency (Postgres, NATS, the fetchers) does not answer.
func unavailable(what string, err error) error {
	return &httpError{status: fiber.StatusServiceUnavailable, detail: what + " unavailable", retryAfter: retryAfterSeconds, err: err}
}

func databaseError(err error) error { return unavailable("database", err) }

func busError(err error) error { return unavailable("message bus", err) }

// errPending means the answer is not ready within the wait: the handler answers 202.
var errPending = errors.New("not ready within the wait")

// errNoFetcher means no fetcher answers request/reply subjects.
var errNoFetcher = &httpError{status: fiber.StatusServiceUnavailable, detail: "no fetcher is running", retryAfter: retryAfterSeconds}

// rpcFailure maps a fetcher's error reply to the client's status.
func rpcFailure(e *events.RPCError) error {
	switch e.Kind {
	case events.ErrKindNotFound:
		return newError(fiber.StatusNotFound, "the source has no such page: %s", e.Message)
	case events.ErrKindBadRequest:
		return newError(fiber.StatusBadRequest, "the fetcher refused the request: %s", e.Message)
	case events.ErrKindTimeout:
		return newError(fiber.StatusGatewayTimeout, "the source timed out: %s", e.Message)
	case events.ErrKindBusy:
		return &httpError{status: fiber.StatusServiceUnavailable, detail: "the source site is busy with other readers' requests; try again shortly", retryAfter: 10}
	case events.ErrKindRefused:
		return &httpError{status: fiber.StatusServiceUnavailable, detail: e.Message, retryAfter: 60}
	case events.ErrKindCircuit:
		return &httpError{status: fiber.StatusBadGateway, detail: "the source is failing, requests are paused: " + e.Message, retryAfter: 30}
	case events.ErrKindParse:
		return newError(fiber.StatusBadGateway, "the source page could not be read: %s", e.Message)
	}
	return newError(fiber.StatusBadGateway, "the source failed: %s", e.Message)
}

// errorHandler answers every error as JSON {"detail": ...} and logs server-side failures.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	status, detail := fiber.StatusInternalServerError, "internal error"
	var he *httpError
	var fe *fiber.Error
	switch {
	case errors.As(err, &he):
		status, detail = he.status, he.detail
		if he.retryAfter > 0 {
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(he.retryAfter))
		}
	case errors.As(err, &fe):
		status, detail = fe.Code, fe.Message
	}
	level := slog.LevelDebug
	switch {
	case status == fiber.StatusInternalServerError:
		level = slog.LevelError
	case status >= 500:
		level = slog.LevelWarn
	}
	s.log.Log(c.UserContext(), level, "request failed",
		"method", c.Method(), "path", c.Path(), "status", status, "err", err)
	return c.Status(status).JSON(fiber.Map{"detail": detail})
}
