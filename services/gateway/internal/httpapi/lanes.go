package httpapi

import (
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
)

// laneQuery reads ?lane=, which must name a lane.
func laneQuery(c *fiber.Ctx) (events.Lane, error) {
	lane := events.Lane(c.Query("lane"))
	if !lane.Valid() {
		names := make([]string, len(events.Lanes))
		for i, l := range events.Lanes {
			names[i] = string(l)
		}
		return "", badRequest("lane must be one of %s, got %.40q", strings.Join(names, ", "), c.Query("lane"))
	}
	return lane, nil
}

// newLaneConsumers writes fetch consumers as the API does.
func newLaneConsumers(cs []jobs.LaneConsumer) []api.LaneConsumer {
	out := make([]api.LaneConsumer, len(cs))
	for i, c := range cs {
		out[i] = api.LaneConsumer{Consumer: c.Name, Lane: c.Lane, Site: c.Site, Paused: c.Paused, Waiting: c.Waiting, InFlight: c.InFlight}
		if c.Paused {
			until := c.PauseUntil
			out[i].PauseUntil = &until
		}
	}
	return out
}

// lanes answers GET /admin/jobs/lanes: every fetch consumer, paused or not, with what
// waits for it.
func (s *Server) lanes(c *fiber.Ctx) error {
	cs, err := s.jobs.Lanes(c.UserContext())
	if err != nil {
		return busError(err)
	}
	return c.JSON(api.Lanes{Consumers: newLaneConsumers(cs)})
}

// pauseLane answers POST /admin/jobs/pause?lane=L&site=S&until=T: the fetch consumers of
// the lane (the site's, or every site's without site) deliver nothing until T (RFC 3339,
// in the future; without it, until resumed). Requests keep coming into the lane and wait;
// jobs already running finish. With resume, it answers POST
// /admin/jobs/resume?lane=L&site=S.
func (s *Server) pauseLane(resume bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		lane, err := laneQuery(c)
		if err != nil {
			return err
		}
		var site *string
		if c.Query("site") != "" {
			id, err := s.knownSite(c.Query("site"))
			if err != nil {
				return err
			}
			site = &id
		}
		out := api.LanePause{Status: "resumed", Lane: lane, Site: site}
		var until time.Time
		if !resume {
			out.Status = "paused"
			if until, err = untilQuery(c); err != nil {
				return err
			}
			out.PauseUntil = &until
		}
		var siteID string
		if site != nil {
			siteID = *site
		}
		cs, err := s.jobs.PauseLane(c.UserContext(), lane, siteID, until)
		switch {
		case errors.Is(err, jobs.ErrNoConsumer):
			return notFound("%v: no fetcher serving it has started yet, so nothing takes its requests", err)
		case err != nil:
			return busError(err)
		}
		out.Consumers = newLaneConsumers(cs)
		return c.JSON(out)
	}
}

// untilQuery reads ?until=, the end of a pause: a time in RFC 3339, in the future, or
// api.NoEnd() without it.
func untilQuery(c *fiber.Ctx) (time.Time, error) {
	raw := c.Query("until")
	if raw == "" {
		return api.NoEnd(), nil
	}
	until, err := time.Parse(time.RFC3339, raw)
	if err != nil {
		return time.Time{}, badRequest("until must be a time in RFC 3339, such as 2026-01-21T12:00:00Z, got %.40q", raw)
	}
	if !until.After(time.Now()) {
		return time.Time{}, badRequest("until must be in the future, got %s", raw)
	}
	return until.UTC(), nil
}
