package httpapi

import "github.com/gofiber/fiber/v2"

// jsonBody is an answer's JSON, encoded once when it is cached and written as it is on
// every hit: a cached read encodes nothing.
type jsonBody []byte

// CacheSize is what the body costs in a cache (cache.Sizer).
func (b jsonBody) CacheSize() int { return len(b) }

// encodeJSON encodes v as c.JSON does, with the application's JSON encoder.
func encodeJSON(c *fiber.Ctx, v any) (jsonBody, error) {
	return c.App().Config().JSONEncoder(v)
}

// send answers with b as c.JSON answers with the value b was encoded from: the same
// body and content type. The body is not copied: a jsonBody is never changed.
func (b jsonBody) send(c *fiber.Ctx) error {
	c.Response().SetBodyRaw(b)
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	return nil
}
