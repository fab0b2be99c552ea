package httpapi

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

type openAPIOperation struct {
	Parameters []struct {
		Name string `json:"name"`
		In   string `json:"in"`
	} `json:"parameters"`
	Responses map[string]json.RawMessage `json:"responses"`
}

type openAPIServer struct {
	URL       string                     `json:"url"`
	Variables map[string]json.RawMessage `json:"variables"`
}

type openAPIDocument struct {
	OpenAPI    string                                `json:"openapi"`
	Servers    []openAPIServer                       `json:"servers"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
			Required   []string                   `json:"required"`
		} `json:"schemas"`
	} `json:"components"`
}

func openAPI(t *testing.T) openAPIDocument {
	t.Helper()
	var doc openAPIDocument
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return doc
}

// pathServers returns the servers of a path item: its own, else the document's.
func pathServers(t *testing.T, doc openAPIDocument, item map[string]json.RawMessage) []openAPIServer {
	t.Helper()
	raw, ok := item["servers"]
	if !ok {
		return doc.Servers
	}
	var ss []openAPIServer
	if err := json.Unmarshal(raw, &ss); err != nil {
		t.Fatal(err)
	}
	return ss
}

var (
	fiberParam   = regexp.MustCompile(`:([a-z_]+)`)
	openAPIParam = regexp.MustCompile(`\{([a-z_]+)\}`)
)

// documentedRoutes lists "METHOD /full/path/:param" for every operation of the
// document, with its path parameters by route: those of the path and those of the
// server URL it is served under (a server variable, such as {site} of
// /xsw/api/sites/{site}, is a path parameter of the route).
func documentedRoutes(t *testing.T) map[string][]string {
	t.Helper()
	doc := openAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.") || len(doc.Servers) != 1 || doc.Servers[0].URL != Prefix {
		t.Fatalf("openapi %q, servers %+v: want 3.x served under %s", doc.OpenAPI, doc.Servers, Prefix)
	}
	out := map[string][]string{}
	for path, item := range doc.Paths {
		servers := pathServers(t, doc, item)
		for method, raw := range item {
			if method == "servers" || method == "parameters" || method == "summary" || method == "description" {
				continue
			}
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			if len(op.Responses) == 0 {
				t.Errorf("%s %s documents no response", method, path)
			}
			var params []string
			for _, p := range op.Parameters {
				if p.In == "path" {
					params = append(params, p.Name)
				}
			}
			for _, s := range servers {
				url := strings.TrimSuffix(s.URL, "/")
				all := slices.Clone(params)
				for _, m := range openAPIParam.FindAllStringSubmatch(url, -1) {
					if _, ok := s.Variables[m[1]]; !ok {
						t.Errorf("server %s of %s has no variable %s", s.URL, path, m[1])
					}
					all = append(all, m[1])
				}
				slices.Sort(all)
				route := strings.ToUpper(method) + " " + openAPIParam.ReplaceAllString(url+path, ":$1")
				out[route] = all
			}
		}
	}
	return out
}

// TestOpenAPIMatchesRoutes walks the routes the Fiber app registered and checks that
// the document has each (with its path parameters) and nothing else.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	documented := documentedRoutes(t)
	registered := map[string]bool{}
	for _, r := range e.srv.App().GetRoutes(true) {
		if r.Method == http.MethodHead || r.Method == http.MethodOptions {
			continue // Fiber adds HEAD to every GET; CORS answers OPTIONS
		}
		route := r.Method + " " + r.Path
		registered[route] = true
		params, ok := documented[route]
		if !ok {
			t.Errorf("route %s is not in openapi.json", route)
			continue
		}
		var want []string
		for _, m := range fiberParam.FindAllStringSubmatch(r.Path, -1) {
			want = append(want, m[1])
		}
		slices.Sort(want)
		if !slices.Equal(params, want) {
			t.Errorf("%s: documented path parameters %v, route has %v", route, params, want)
		}
	}
	for route := range documented {
		if !registered[route] {
			t.Errorf("openapi.json documents %s, which no route serves", route)
		}
	}
	if len(registered) < 20 {
		t.Errorf("only %d routes registered: the walk is broken", len(registered))
	}
}

func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.get("/xsw/api/openapi.json")
	expect(t, r, http.StatusOK)
	var doc map[string]any
	r.decode(t, &doc)
	if doc["openapi"] != "3.0.3" || doc["paths"] == nil {
		t.Errorf("document %.200s", r.body)
	}
}

// TestOpenAPISites checks what the document says of sites: GET /sites and its schema,
// every reader route under the default site and /sites/{site}, the site of every answer
// naming a book, and ?site= on every admin operation that names a book.
func TestOpenAPISites(t *testing.T) {
	t.Parallel()
	doc := openAPI(t)
	routes := documentedRoutes(t)
	for _, path := range []string{"/categories", "/categories/:cat_id/books", "/books/:book_id", "/books/:book_id/chapters",
		"/books/:book_id/chapters/:num", "/search"} {
		for _, route := range []string{"GET " + Prefix + path, "GET " + Prefix + "/sites/:site" + path} {
			if _, ok := routes[route]; !ok {
				t.Errorf("%s is not documented", route)
			}
		}
	}
	if _, ok := routes["GET "+Prefix+"/sites"]; !ok {
		t.Error("GET /sites is not documented")
	}
	for schema, props := range map[string][]string{
		"Site":           {"id", "name", "base_url", "default", "state", "rate_interval_seconds"},
		"Book":           {"site", "book_id", "volumes"},
		"Volume":         {"title", "first_chapter"},
		"Chapter":        {"site", "book_id"},
		"ListingBook":    {"site", "book_id"},
		"SearchHit":      {"site", "book_id"},
		"Queued":         {"site", "book_id"},
		"SyncAnswer":     {"site", "book_id"},
		"DeadLetter":     {"site", "book_id"},
		"Replay":         {"site", "book_id"},
		"ShrinkAccepted": {"site", "book_id"},
		"TextsPurged":    {"site", "book_id"},
		"PurgeQueued":    {"site", "book_id"},
		"CrawlQueued":    {"site", "categories"},
		"AdminStats":     {"sites"},
		"CacheCleared":   {},
		"QueuedChapter":  {"site", "book_id", "chapter_num"},
	} {
		s, ok := doc.Components.Schemas[schema]
		if !ok {
			t.Errorf("no schema %s", schema)
			continue
		}
		for _, p := range props {
			if _, ok := s.Properties[p]; !ok {
				t.Errorf("schema %s lacks %s", schema, p)
			}
		}
	}
	for _, op := range []struct{ method, path string }{
		{"post", "/admin/jobs/sync/{book_id}"}, {"post", "/admin/jobs/force-resync/{book_id}"},
		{"post", "/admin/jobs/dead/{book_id}/replay"}, {"post", "/admin/books/{book_id}/accept-shrink"},
		{"post", "/admin/cache/invalidate/{book_id}"},
		{"delete", "/admin/cache/chapters/{book_id}"}, {"post", "/admin/crawl/categories"},
	} {
		var o openAPIOperation
		if err := json.Unmarshal(doc.Paths[op.path][op.method], &o); err != nil {
			t.Fatalf("%s %s: %v", op.method, op.path, err)
		}
		if !slices.ContainsFunc(o.Parameters, func(p struct {
			Name string `json:"name"`
			In   string `json:"in"`
		}) bool {
			return p.Name == "site" && p.In == "query"
		}) {
			t.Errorf("%s %s does not take ?site=", op.method, op.path)
		}
		if _, ok := o.Responses["404"]; !ok {
			t.Errorf("%s %s documents no 404 for an unknown site", op.method, op.path)
		}
	}
}
