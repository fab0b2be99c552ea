package httpapi

import (
	_ "embed"

	"github.com/gofiber/fiber/v2"
)

// openAPIDoc describes every route of the API; TestOpenAPIMatchesRoutes keeps the two
// in step.
//
//go:embed openapi.json
var openAPIDoc []byte

// openAPI answers GET /openapi.json.
func (s *Server) openAPI(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	return c.Send(openAPIDoc)
}
