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

type openAPIDocument struct {
	OpenAPI string `json:"openapi"`
	Servers []struct {
		URL string `json:"url"`
	} `json:"servers"`
	Paths map[string]map[string]json.RawMessage `json:"paths"`
}

var (
	fiberParam   = regexp.MustCompile(`:([a-z_]+)`)
	openAPIParam = regexp.MustCompile(`\{([a-z_]+)\}`)
)

// documentedRoutes lists "METHOD /full/path/:param" for every operation of the
// document, with its path parameters by route.
func documentedRoutes(t *testing.T) map[string][]string {
	t.Helper()
	var doc openAPIDocument
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") || len(doc.Servers) != 1 || doc.Servers[0].URL != Prefix {
		t.Fatalf("openapi %q, servers %+v: want 3.x served under %s", doc.OpenAPI, doc.Servers, Prefix)
	}
	out := map[string][]string{}
	for path, item := range doc.Paths {
		servers := []string{Prefix}
		if raw, ok := item["servers"]; ok {
			var ss []struct {
				URL string `json:"url"`
			}
			if err := json.Unmarshal(raw, &ss); err != nil {
				t.Fatal(err)
			}
			servers = nil
			for _, s := range ss {
				servers = append(servers, strings.TrimSuffix(s.URL, "/"))
			}
		}
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
			slices.Sort(params)
			for _, s := range servers {
				route := strings.ToUpper(method) + " " + s + openAPIParam.ReplaceAllString(path, ":$1")
				out[route] = params
			}
		}
	}
	return out
}

// TestOpenAPIMatchesRoutes walks the routes the Fiber app registered and checks that
// the document has each (with its path parameters) and nothing else.
func TestOpenAPIMatchesRoutes(t *testing.T) {
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
	e := newEnv(t)
	r := e.get("/xsw/api/openapi.json")
	expect(t, r, http.StatusOK)
	var doc map[string]any
	r.decode(t, &doc)
	if doc["openapi"] != "3.0.3" || doc["paths"] == nil {
		t.Errorf("document %.200s", r.body)
	}
}
