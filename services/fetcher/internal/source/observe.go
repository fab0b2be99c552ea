package source

import (
	"net/http"
	"time"
)

// observe tells Config.Observe, when set, of a request's answer (nil: none came).
func (c *Client) observe(resp *http.Response, took time.Duration) {
	if c.cfg.Observe == nil {
		return
	}
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	c.cfg.Observe(status, took)
}
