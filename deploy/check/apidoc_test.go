package check

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated parts of the documentation (the endpoint index of docs/api.md)")

// The OpenAPI document the gateway serves, and the page that documents it.
const (
	openAPIPath = "services/gateway/internal/httpapi/openapi.json"
	apiDocPath  = "docs/api.md"
)

// Markers of docs/api.md's endpoint index, which TestAPIDoc -update rewrites from
// openapi.json.
const (
	apiIndexStart = "<!-- openapi:index -->"
	apiIndexEnd   = "<!-- /openapi:index -->"
)

// apiOperation is one operation of openapi.json: a method on a path (relative to the
// document's server, /xsw/api).
type apiOperation struct {
	Method  string // upper case
	Path    string // "/books/{book_id}"
	Summary string
	Also    []string // where else the path is served: "/healthz", "/sites/{site}"
}

func (o apiOperation) String() string { return o.Method + " " + o.Path }

// httpMethods are the keys of an OpenAPI path item that are operations.
var httpMethods = map[string]bool{"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true}

// readOpenAPI returns the operations of an OpenAPI 3 document in the order it lists them.
func readOpenAPI(doc []byte) ([]apiOperation, error) {
	var top struct {
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
		Paths json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &top); err != nil {
		return nil, err
	}
	if len(top.Servers) != 1 {
		return nil, fmt.Errorf("want one server, got %d", len(top.Servers))
	}
	base := strings.TrimSuffix(top.Servers[0].URL, "/")
	paths, err := orderedKeys(top.Paths)
	if err != nil {
		return nil, fmt.Errorf("paths: %w", err)
	}
	var out []apiOperation
	for _, p := range paths {
		item := p.value
		keys, err := orderedKeys(item)
		if err != nil {
			return nil, fmt.Errorf("path %s: %w", p.key, err)
		}
		var servers struct {
			Servers []struct {
				URL string `json:"url"`
			} `json:"servers"`
		}
		if err := json.Unmarshal(item, &servers); err != nil {
			return nil, fmt.Errorf("path %s: %w", p.key, err)
		}
		var also []string
		for _, s := range servers.Servers {
			u := strings.TrimSuffix(s.URL, "/")
			switch {
			case u == base:
			case strings.HasPrefix(u, base+"/"):
				also = append(also, strings.TrimPrefix(u, base))
			default:
				also = append(also, u+p.key)
			}
		}
		for _, k := range keys {
			if !httpMethods[k.key] {
				continue
			}
			var op struct {
				Summary string `json:"summary"`
			}
			if err := json.Unmarshal(k.value, &op); err != nil {
				return nil, fmt.Errorf("%s %s: %w", k.key, p.key, err)
			}
			out = append(out, apiOperation{Method: strings.ToUpper(k.key), Path: p.key, Summary: op.Summary, Also: also})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no operation")
	}
	return out, nil
}

type jsonMember struct {
	key   string
	value json.RawMessage
}

// orderedKeys returns the members of a JSON object in the order they are written.
func orderedKeys(obj json.RawMessage) ([]jsonMember, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("not an object")
	}
	var out []jsonMember
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, jsonMember{key: t.(string), value: v})
	}
	return out, nil
}

var (
	// An endpoint's section: a heading that is the operation in code, "### `GET /sites`".
	apiHeading = regexp.MustCompile("^`([A-Z]+) (/[^`\\s]*)`$")
	// An operation named in prose: "`GET /sites`", "`POST /xsw/api/admin/jobs/purge?lane=refresh`".
	apiMention = regexp.MustCompile(`^(GET|PUT|POST|DELETE|OPTIONS|HEAD|PATCH|TRACE) (/\S*)$`)
)

// checkAPIDoc compares the page with the operations: every operation has a section
// (a heading "`METHOD /path`"), every section and every operation the prose names in
// code ("`METHOD /xsw/api/path?query`") is one of them, and the index between the
// markers is what apiIndex makes of them.
func checkAPIDoc(ops []apiOperation, page string) []error {
	var errs []error
	d := parseMarkdown(page)
	known := map[string]bool{}
	for _, o := range ops {
		known[o.String()] = true
	}
	sections := map[string]int{}
	for _, h := range d.headings {
		m := apiHeading.FindStringSubmatch(strings.TrimSpace(h.text))
		if m == nil {
			continue
		}
		op := m[1] + " " + m[2]
		if line, dup := sections[op]; dup {
			errs = append(errs, fmt.Errorf("%s:%d: a second section for %s (the first is on line %d)", apiDocPath, h.line, op, line))
			continue
		}
		sections[op] = h.line
		if !known[op] {
			errs = append(errs, fmt.Errorf("%s:%d: a section for %s, which %s does not have", apiDocPath, h.line, op, openAPIPath))
		}
	}
	for _, o := range ops {
		if _, ok := sections[o.String()]; !ok {
			errs = append(errs, fmt.Errorf("%s has %s, which %s does not document: add a section headed ### `%s`", openAPIPath, o, apiDocPath, o))
		}
	}
	for _, p := range d.paragraphs() {
		_, spans := splitCodeSpans(p.text)
		for _, s := range spans {
			m := apiMention.FindStringSubmatch(s)
			if m == nil {
				continue
			}
			if _, ok := matchOperation(ops, m[1], m[2]); !ok {
				errs = append(errs, fmt.Errorf("%s:%d: `%s` names an operation %s does not have", apiDocPath, p.line, s, openAPIPath))
			}
		}
	}
	i, j := strings.Index(page, apiIndexStart), strings.Index(page, apiIndexEnd)
	switch {
	case i < 0 || j < i:
		errs = append(errs, fmt.Errorf("%s: the index markers %s and %s are gone", apiDocPath, apiIndexStart, apiIndexEnd))
	case page[i+len(apiIndexStart):j] != "\n"+apiIndex(ops):
		errs = append(errs, fmt.Errorf("%s: the endpoint index is not %s's: go test ./deploy/check -run TestAPIDoc -update rewrites it", apiDocPath, openAPIPath))
	}
	return errs
}

// matchOperation finds the operation a path written in prose names: the query is
// dropped, and the prefix of the API (/xsw/api, or /xsw/api/sites/<site> for a route
// served for any site) too; a concrete segment matches a {parameter}.
func matchOperation(ops []apiOperation, method, path string) (apiOperation, bool) {
	path, _, _ = strings.Cut(path, "?")
	rel, api := strings.CutPrefix(path, "/xsw/api")
	if !api || !strings.HasPrefix(rel, "/") {
		rel = path
	}
	var site string // the path under /sites/<site>, when it is one
	if rest, ok := strings.CutPrefix(rel, "/sites/"); ok {
		if _, r, ok := strings.Cut(rest, "/"); ok {
			site = "/" + r
		}
	}
	for _, o := range ops {
		if o.Method != method {
			continue
		}
		if pathMatches(o.Path, rel) {
			return o, true
		}
		if site != "" && slices.ContainsFunc(o.Also, func(a string) bool { return strings.Contains(a, "{site}") }) && pathMatches(o.Path, site) {
			return o, true
		}
	}
	return apiOperation{}, false
}

func pathMatches(template, path string) bool {
	ts, ps := strings.Split(template, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false
	}
	for i := range ts {
		if ts[i] != ps[i] && !(strings.HasPrefix(ts[i], "{") && strings.HasSuffix(ts[i], "}") && ps[i] != "") {
			return false
		}
	}
	return true
}

// apiIndex renders the endpoint index: one row per operation, linked to its section.
func apiIndex(ops []apiOperation) string {
	var b strings.Builder
	b.WriteString("| operation | what | also served at |\n|---|---|---|\n")
	for _, o := range ops {
		var also []string
		for _, a := range o.Also {
			if strings.Contains(a, "{site}") {
				also = append(also, "any site")
				continue
			}
			also = append(also, "`"+a+"`")
		}
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s | %s |\n", o, githubSlug("`"+o.String()+"`"),
			strings.ReplaceAll(o.Summary, "|", `\|`), strings.Join(also, ", "))
	}
	return b.String()
}

// TestAPIDoc keeps docs/api.md and openapi.json in step (-update rewrites the index).
func TestAPIDoc(t *testing.T) {
	root := mustRoot(t)
	spec, err := os.ReadFile(filepath.Join(root, openAPIPath))
	if err != nil {
		t.Fatal(err)
	}
	ops, err := readOpenAPI(spec)
	if err != nil {
		t.Fatalf("%s: %v", openAPIPath, err)
	}
	pagePath := filepath.Join(root, filepath.FromSlash(apiDocPath))
	b, err := os.ReadFile(pagePath)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if *update {
		i, j := strings.Index(page, apiIndexStart), strings.Index(page, apiIndexEnd)
		if i < 0 || j < i {
			t.Fatalf("%s: no index markers %s and %s to rewrite between", apiDocPath, apiIndexStart, apiIndexEnd)
		}
		page = page[:i+len(apiIndexStart)] + "\n" + apiIndex(ops) + page[j:]
		if err := os.WriteFile(pagePath, []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range checkAPIDoc(ops, page) {
		t.Error(e)
	}
}

// TestAPIDocCatches breaks the page, or the document, in each way the check looks for.
func TestAPIDocCatches(t *testing.T) {
	spec := []byte(`{"openapi":"3.0.3","servers":[{"url":"/xsw/api"}],"paths":{
		"/healthz":{"servers":[{"url":"/xsw/api"},{"url":"/"}],"get":{"summary":"Liveness"}},
		"/books/{book_id}":{"servers":[{"url":"/xsw/api"},{"url":"/xsw/api/sites/{site}"}],"parameters":[],"get":{"summary":"A book | its metadata"}},
		"/admin/jobs/purge":{"post":{"summary":"Drop a lane's waiting requests"}}}}`)
	ops, err := readOpenAPI(spec)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(ops); got != "[GET /healthz GET /books/{book_id} POST /admin/jobs/purge]" {
		t.Fatalf("readOpenAPI = %s, want the three operations in the document's order", got)
	}
	good := "# API\n\n" + apiIndexStart + "\n" + apiIndex(ops) + apiIndexEnd + "\n\n" +
		"### `GET /healthz`\n\nSee `GET /xsw/api/books/1001055`, `GET /xsw/api/sites/czbooks/books/n125nm`\n" +
		"and `POST /xsw/api/admin/jobs/purge?lane=refresh`.\n\n" +
		"### `GET /books/{book_id}`\n\n### `POST /admin/jobs/purge`\n"
	if errs := checkAPIDoc(ops, good); len(errs) > 0 {
		t.Fatalf("a good page: %v", errs)
	}
	if idx := apiIndex(ops); !strings.Contains(idx, "| [`GET /books/{book_id}`](#get-booksbook_id) | A book \\| its metadata | any site |") ||
		!strings.Contains(idx, "| [`GET /healthz`](#get-healthz) | Liveness | `/healthz` |") {
		t.Errorf("apiIndex:\n%s", idx)
	}
	for _, tc := range []struct {
		name, page, want string
	}{
		{"an operation without a section", strings.Replace(good, "### `POST /admin/jobs/purge`\n", "", 1),
			"has POST /admin/jobs/purge, which docs/api.md does not document"},
		{"a section without an operation", good + "\n### `POST /admin/lanes/{lane}/pause`\n",
			"a section for POST /admin/lanes/{lane}/pause, which"},
		{"a method the document lacks", good + "\n### `DELETE /books/{book_id}`\n",
			"a section for DELETE /books/{book_id}, which"},
		{"a section twice", good + "\n### `GET /healthz`\n", "a second section for GET /healthz"},
		{"prose naming what does not exist", good + "\nCall `POST /xsw/api/admin/jobs/pause` first.\n",
			"`POST /xsw/api/admin/jobs/pause` names an operation"},
		{"a site prefix on a route of no site", good + "\nCall `POST /xsw/api/sites/xsw/admin/jobs/purge`.\n",
			"`POST /xsw/api/sites/xsw/admin/jobs/purge` names an operation"},
		{"a stale index", strings.Replace(good, "| Liveness |", "| Alive |", 1), "the endpoint index is not"},
		{"no index", strings.Replace(good, apiIndexEnd, "", 1), "the index markers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := checkAPIDoc(ops, tc.page)
			if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), tc.want) }) {
				t.Errorf("checkAPIDoc = %v, want an error containing %q", errs, tc.want)
			}
		})
	}
}
