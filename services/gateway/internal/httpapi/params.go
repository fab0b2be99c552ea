package httpapi

import (
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/xswtw/xsw/events"
)

// Bounds of the path and query parameters.
const (
	maxPage     = events.MaxListingPage
	maxChapter  = 1_000_000
	maxPriority = 100
)

// intParam reads path parameter name as an integer in [lo, hi].
func intParam(c *fiber.Ctx, name string, lo, hi int) (int, error) {
	return boundedInt(name, c.Params(name), lo, hi, lo)
}

// intQuery reads query parameter name as an integer in [lo, hi], def when absent.
func intQuery(c *fiber.Ctx, name string, lo, hi, def int) (int, error) {
	return boundedInt(name, c.Query(name), lo, hi, def)
}

func boundedInt(name, v string, lo, hi, def int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || len(v) > 12 {
		return 0, badRequest("%s must be an integer from %d to %d, got %q", name, lo, hi, v)
	}
	if n < lo || n > hi {
		return 0, badRequest("%s must be from %d to %d, got %d", name, lo, hi, n)
	}
	return n, nil
}

// boolQuery reads query parameter name as true/false/1/0, def when absent.
func boolQuery(c *fiber.Ctx, name string, def bool) (bool, error) {
	switch v := strings.ToLower(c.Query(name)); v {
	case "":
		return def, nil
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	default:
		return false, badRequest("%s must be true, false, 1 or 0, got %q", name, c.Query(name))
	}
}
