package dashboard

import (
	"bufio"
	"embed"
	"io/fs"
	"mime"
	"path"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

//go:embed static
var static embed.FS

// securityHeaders keep the page to its own origin: its scripts, styles and calls come
// from this gateway only, and no other site may frame it.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
		"img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	"X-Content-Type-Options": "nosniff",
	"Referrer-Policy":        "no-referrer",
	"X-Frame-Options":        "DENY",
	"Cache-Control":          "no-cache",
}

// Mount adds the page, its assets and its event stream to r: GET /xsw/admin/ (the page;
// /xsw/admin redirects there), GET /xsw/admin/app.js and app.css, GET /xsw/admin/events.
func (d *Dashboard) Mount(r fiber.Router) {
	files, _ := fs.Sub(static, "static")
	asset := func(name string) fiber.Handler {
		body, _ := fs.ReadFile(files, name) // embedded: cannot fail
		ctype := mime.TypeByExtension(path.Ext(name))
		return func(c *fiber.Ctx) error {
			for k, v := range securityHeaders {
				c.Set(k, v)
			}
			c.Set(fiber.HeaderContentType, ctype)
			return c.Send(body)
		}
	}
	page := asset("index.html")
	// Without strict routing, one route answers both forms of the path.
	root := func(c *fiber.Ctx) error {
		if !strings.HasSuffix(c.Path(), "/") {
			return c.Redirect(Path+"/", fiber.StatusMovedPermanently)
		}
		return page(c)
	}
	r.Get(Path, root)
	r.Get(Path+"/", root)
	r.Get(Path+"/app.js", asset("app.js"))
	r.Get(Path+"/app.css", asset("app.css"))
	r.Get(Path+"/events", d.events)
}

// events answers GET /xsw/admin/events: a text/event-stream of the recent activity (event
// "recent", at once), every activity as it happens (event "job", its id the activity's
// sequence number) and a snapshot every StatsEvery (event "stats"). The stream ends after
// StreamLifetime; clients reconnect.
func (d *Dashboard) events(c *fiber.Ctx) error {
	if err := d.authorize(c); err != nil {
		return err
	}
	cl, first := d.subscribe()
	if cl == nil {
		return fiber.NewError(fiber.StatusServiceUnavailable, errStopped.Error())
	}
	c.Set(fiber.HeaderContentType, "text/event-stream; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "no-cache, no-store")
	c.Set("X-Accel-Buffering", "no") // tell a reverse proxy not to buffer the stream
	lifetime := d.cfg.StreamLifetime
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer d.unsubscribe(cl)
		_, _ = w.WriteString("retry: 1000\n\n")
		for _, f := range first {
			_, _ = w.Write(f)
		}
		if w.Flush() != nil {
			return
		}
		end := time.NewTimer(lifetime)
		defer end.Stop()
		keepAlive := time.NewTicker(15 * time.Second)
		defer keepAlive.Stop()
		for {
			select {
			case f, ok := <-cl.frames:
				if !ok {
					return // dropped as too slow, or the dashboard stopped
				}
				_, _ = w.Write(f)
			case <-keepAlive.C:
				_, _ = w.WriteString(": keep-alive\n\n")
			case <-end.C:
				return
			}
			if w.Flush() != nil {
				return // the client went away
			}
		}
	})
	return nil
}
