package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/database"
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

// databaseError reports a failed query: the database is unavailable, or took longer than
// DB_STATEMENT_TIMEOUT (Postgres cancelled the statement). The client gets a fixed
// detail; the error goes to the log.
func databaseError(err error) error {
	if database.IsStatementTimeout(err) {
		return &httpError{status: fiber.StatusServiceUnavailable, retryAfter: retryAfterSeconds, err: err,
			detail: "the database took too long to answer; try again shortly"}
	}
	return unavailable("database", err)
}

func busError(err error) error { return unavailable("message bus", err) }

// errPending means the answer is not ready within the wait: the handler answers 202.
var errPending = errors.New("not ready within the wait")

// errQueued marks an error answer that queued the book all the same (a 503 while the
// site refuses us): the book is fetched once it can be.
var errQueued = errors.New("the book is queued")

// errNoFetcher means no fetcher answers request/reply subjects.
var errNoFetcher = &httpError{status: fiber.StatusServiceUnavailable, detail: "no fetcher is running", retryAfter: retryAfterSeconds}

// busyRetryAfter is the Retry-After, in seconds, of a call a fetcher turned away because
// the site's budget is booked too far ahead: when the fetcher expects a slot (its
// retry-after, in seconds), rounded up and kept within 1 s to 1 min; 10 s when it does
// not say.
func busyRetryAfter(secs float64) int {
	if secs <= 0 {
		return 10
	}
	return int(min(60, max(1, math.Ceil(secs))))
}

// rpcFailure maps a fetcher's error reply about site to the client's status, with a
// fixed detail by kind: the fetcher's message (a Go error chain: URLs, addresses, the
// fetcher's own wording) goes to the log only. A site that refuses us is described in
// the words the fetchers publish for /sites.
func (s *Server) rpcFailure(site string, e *events.RPCError) error {
	fail := func(status, retryAfter int, detail string) error {
		return &httpError{status: status, detail: detail, retryAfter: retryAfter, err: e}
	}
	switch e.Kind {
	case events.ErrKindNotFound:
		return fail(fiber.StatusNotFound, 0, "the source has no such page")
	case events.ErrKindBadRequest:
		return fail(fiber.StatusBadRequest, 0, "the fetcher refused the request")
	case events.ErrKindTimeout:
		return fail(fiber.StatusGatewayTimeout, 0, "the source timed out")
	case events.ErrKindBusy:
		return fail(fiber.StatusServiceUnavailable, busyRetryAfter(e.RetryAfter), "the source site is busy with other readers' requests; try again shortly")
	case events.ErrKindRefused:
		if st, refused := s.sites.Refused(site); refused {
			err := refusedError(st, false).(*httpError) //nolint:errorlint // refusedError returns a *httpError, never a wrapped one
			err.err = e
			return err
		}
		return fail(fiber.StatusServiceUnavailable, 60, site+": the site refuses us")
	case events.ErrKindCircuit:
		return fail(fiber.StatusBadGateway, 30, "the source is failing, requests are paused")
	case events.ErrKindParse:
		return fail(fiber.StatusBadGateway, 0, "the source page could not be read")
	}
	return fail(fiber.StatusBadGateway, 0, "the source failed")
}

// spared reports whether a fetcher's error reply says that it asked the site nothing: it
// refused the request as malformed, or held it back (the site's budget booked too far
// ahead, its circuit open).
func spared(e *events.RPCError) bool {
	switch e.Kind {
	case events.ErrKindBadRequest, events.ErrKindBusy, events.ErrKindCircuit:
		return true
	}
	return false
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
	case database.IsStatementTimeout(err): // a query error a handler did not map
		he = databaseError(err).(*httpError) //nolint:errorlint // databaseError returns a *httpError, never a wrapped one
		status, detail = he.status, he.detail
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(he.retryAfter))
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
	return c.Status(status).JSON(api.Error{Detail: detail})
}
