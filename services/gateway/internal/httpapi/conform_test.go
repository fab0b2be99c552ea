package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// conformDoc is openapi.json as every answer of the tests is checked against (see
// conform): loaded and validated once, with every object schema that says nothing of
// additionalProperties closed, so that an answer with a field the document does not name
// (a renamed field, say) fails like one without a required field.
var conformDoc = sync.OnceValues(func() (*conformance, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPIDoc)
	if err != nil {
		return nil, fmt.Errorf("load openapi.json: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("openapi.json is not a valid document: %w", err)
	}
	closeSchemas(doc)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route openapi.json: %w", err)
	}
	return &conformance{doc: doc, router: router}, nil
})

type conformance struct {
	doc    *openapi3.T
	router routers.Router
}

// closeSchemas sets additionalProperties false on every object schema of doc that has
// properties and says nothing of additional ones.
func closeSchemas(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var walk func(ref *openapi3.SchemaRef)
	walk = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
			closed := false
			s.AdditionalProperties.Has = &closed
		}
		for _, p := range s.Properties {
			walk(p)
		}
		walk(s.Items)
		walk(s.AdditionalProperties.Schema)
		for _, group := range []openapi3.SchemaRefs{s.AllOf, s.OneOf, s.AnyOf} {
			for _, sub := range group {
				walk(sub)
			}
		}
	}
	for _, s := range doc.Components.Schemas {
		walk(s)
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, r := range op.Responses.Map() {
				if r.Value == nil {
					continue
				}
				for _, mt := range r.Value.Content {
					walk(mt.Schema)
				}
			}
		}
	}
}

// conform checks an answer of the API to req against openapi.json: the operation must
// document its status, and its body must match the schema documented for that status
// (and its Content-Type the media type). An answer to a path no operation has must be a
// 404 or 405 with an Error body. The answers of the server's own limits (413, 431) come
// before any route and are checked as Error bodies too. Benchmarks are not checked: the
// check would be part of what they time.
func conform(t testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	if _, bench := t.(*testing.B); bench {
		return
	}
	if err := conformErr(req, status, header, body); err != nil {
		t.Errorf("%s %s answered %d, which does not match openapi.json: %s\nbody: %.500s", req.Method, req.URL.RequestURI(), status, describe(err), body)
	}
}

// describe says what is wrong with an answer in a line or a few, without the schemas
// kin-openapi quotes.
func describe(err error) string {
	switch e := err.(type) { //nolint:errorlint // describe walks kin-openapi's tree of errors itself, a level at a time
	case *openapi3filter.ResponseError:
		if e.Err == nil {
			return e.Reason
		}
		return e.Reason + ": " + describe(e.Err)
	case openapi3.MultiError:
		parts := make([]string, len(e))
		for i, err := range e {
			parts[i] = describe(err)
		}
		return strings.Join(parts, "; ")
	case *openapi3.SchemaError:
		return fmt.Sprintf("at /%s: %s", strings.Join(e.JSONPointer(), "/"), e.Reason)
	}
	return err.Error()
}

func conformErr(req *http.Request, status int, header http.Header, body []byte) error {
	c, err := conformDoc()
	if err != nil {
		return err
	}
	if status == http.StatusRequestEntityTooLarge || status == http.StatusRequestHeaderFieldsTooLarge {
		return c.isError(body)
	}
	// Match the route on the path alone: the request may carry a body the answer did
	// not wait for.
	match := httptest.NewRequest(req.Method, req.URL.RequestURI(), nil)
	route, params, err := c.router.FindRoute(match)
	if errors.Is(err, routers.ErrPathNotFound) || errors.Is(err, routers.ErrMethodNotAllowed) {
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			return fmt.Errorf("no operation for %s %s, yet it answered %d", req.Method, req.URL.Path, status)
		}
		return c.isError(body)
	}
	if err != nil {
		return err
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: match, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(context.Background(), in)
}

// isError checks that body is an Error.
func (c *conformance) isError(body []byte) error {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return c.doc.Components.Schemas["Error"].Value.VisitJSON(v)
}
