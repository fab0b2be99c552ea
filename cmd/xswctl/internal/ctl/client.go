package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/xswtw/xsw/api"
)

// client calls the gateway's API.
type client struct {
	base   *url.URL
	token  string       // "" for the public routes when XSW_ADMIN_TOKEN is unset
	http   *http.Client // bounded by --timeout
	stream *http.Client // unbounded, for the event stream
}

// APIError is an answer other than a success, with the gateway's {"detail": ...}.
type APIError struct {
	Status int
	Detail string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("the gateway answered %d %s", e.Status, http.StatusText(e.Status))
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	switch e.Status {
	case http.StatusUnauthorized:
		msg += " (is XSW_ADMIN_TOKEN the gateway's token?)"
	case http.StatusNotFound:
		switch {
		case strings.Contains(e.Detail, "no route"):
			msg += " (is this gateway older than xswctl?)"
		case strings.HasPrefix(e.Detail, "unknown site"):
			msg += " ('xswctl sites' lists the gateway's sites)"
		}
	}
	return msg
}

func (c *client) request(ctx context.Context, method, path string, query url.Values) (*http.Request, error) {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "xswctl")
	return req, nil
}

// call sends one API request and returns the status and body of a success (any 2xx),
// or an *APIError.
func (c *client) call(ctx context.Context, method, path string, query url.Values) (int, []byte, error) {
	req, err := c.request(ctx, method, path, query)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 0, nil, apiError(resp.StatusCode, body)
	}
	return resp.StatusCode, body, nil
}

// apiError is the error of an answer with status and body (an api.Error, when the
// gateway answered).
func apiError(status int, body []byte) *APIError {
	e := &APIError{Status: status}
	var d api.Error
	if json.Unmarshal(body, &d) == nil {
		e.Detail = d.Detail
	}
	return e
}

// do is call that decodes the answer into v and returns the raw body too.
func (c *client) do(ctx context.Context, method, path string, query url.Values, v any) ([]byte, error) {
	_, body, err := c.call(ctx, method, path, query)
	if err != nil {
		return nil, err
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			return nil, fmt.Errorf("%s %s: unreadable answer: %w", method, path, err)
		}
	}
	return body, nil
}
