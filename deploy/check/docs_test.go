package check

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// readmeMaxBytes bounds the README: it is the front page, and everything else lives
// under docs/.
const readmeMaxBytes = 12 << 10

// The markers of the README's block of headline figures, which dev/bench rewrites
// (dev/bench/report.go, headlineStart and headlineEnd).
const (
	benchStart = "<!-- bench:headline -->"
	benchEnd   = "<!-- /bench:headline -->"
)

// docFiles are the documents whose links are checked, relative to the repository root:
// the README and every page under docs/.
func docFiles(root string) ([]string, error) {
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, err
	}
	if len(pages) == 0 {
		return nil, errors.New("no docs/*.md: has the documentation moved?")
	}
	out := []string{"README.md"}
	for _, p := range pages {
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return nil, err
		}
		out = append(out, filepath.ToSlash(rel))
	}
	return out, nil
}

func TestDocLinks(t *testing.T) {
	root := mustRoot(t)
	files, err := docFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	errs, err := checkDocLinks(root, files)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Error(e)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(readme); n > readmeMaxBytes {
		t.Errorf("README.md is %d bytes, more than %d: move the detail to a page under docs/ and link it", n, readmeMaxBytes)
	}
	if err := checkBenchBlock(string(readme)); err != nil {
		t.Errorf("README.md: %v", err)
	}
}

// checkBenchBlock reports whether the README keeps the block dev/bench rewrites.
func checkBenchBlock(readme string) error {
	i, j := strings.Index(readme, benchStart), strings.Index(readme, benchEnd)
	switch {
	case i < 0 || j < 0:
		return fmt.Errorf("the markers %s and %s of the headline figures are gone: dev/bench rewrites what lies between them", benchStart, benchEnd)
	case j < i || strings.Count(readme, benchStart) != 1 || strings.Count(readme, benchEnd) != 1:
		return fmt.Errorf("the markers %s and %s must appear once each, in that order", benchStart, benchEnd)
	}
	return nil
}

var uriScheme = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)

// checkDocLinks checks every relative link of the documents (paths relative to root):
// the file or directory it names exists, inside the repository, and an #anchor into a
// Markdown file is the id of one of its headings (GitHub's) or an HTML id.
func checkDocLinks(root string, files []string) ([]error, error) {
	docs := map[string]mdDoc{} // by path relative to root
	load := func(rel string) (mdDoc, error) {
		if d, ok := docs[rel]; ok {
			return d, nil
		}
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			return mdDoc{}, err
		}
		d := parseMarkdown(string(b))
		docs[rel] = d
		return d, nil
	}
	var errs []error
	for _, file := range files {
		d, err := load(file)
		if err != nil {
			return nil, err
		}
		for _, l := range d.links() {
			if l.target == "" || uriScheme.MatchString(l.target) || strings.HasPrefix(l.target, "//") {
				continue // external, or mailto: and the like
			}
			where := fmt.Sprintf("%s:%d: link %s", file, l.line, l.target)
			pathPart, anchor, _ := strings.Cut(l.target, "#")
			if p, err := url.PathUnescape(pathPart); err == nil {
				pathPart = p
			}
			target := file
			if pathPart != "" {
				if strings.HasPrefix(pathPart, "/") {
					errs = append(errs, fmt.Errorf("%s: absolute path; write it relative to %s", where, file))
					continue
				}
				target = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(file), pathPart)))
				if target == ".." || strings.HasPrefix(target, "../") {
					errs = append(errs, fmt.Errorf("%s: leads out of the repository", where))
					continue
				}
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(target))); err != nil {
					errs = append(errs, fmt.Errorf("%s: %s does not exist", where, target))
					continue
				}
			}
			if anchor == "" || !strings.HasSuffix(target, ".md") {
				continue
			}
			td, err := load(target)
			if err != nil {
				return nil, err
			}
			if !td.anchors[anchor] {
				errs = append(errs, fmt.Errorf("%s: %s has no heading with the id #%s (ids: %s)", where, target, anchor, anchorList(td)))
			}
		}
	}
	return errs, nil
}

// anchorList names a document's anchors for an error message.
func anchorList(d mdDoc) string {
	var ids []string
	for _, h := range d.headings {
		ids = append(ids, h.slug)
	}
	if len(ids) > 12 {
		ids = append(ids[:12], "...")
	}
	return strings.Join(ids, " ")
}

// TestDocLinksCatches breaks links in every way the check looks for and expects it to
// say so; links that are fine must pass.
func TestDocLinksCatches(t *testing.T) {
	root := t.TempDir()
	write := func(rel, text string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("docs/api.md", "# API\n\n## Reader endpoints\n\n### `GET /books/{book_id}`\n\n## Limits\n\n## Limits\n\n<a id=\"custom\"></a>\n")
	write("deploy/README.md", "# Deploying\n\n## What to watch\n")
	write("docs/dashboard.png", "png")
	write("README.md", strings.Join([]string{
		"# xsw",
		"",
		"[ok](docs/api.md) [ok](docs/api.md#reader-endpoints) [ok](docs/api.md#get-booksbook_id)",
		"[ok](docs/api.md#limits-1) [ok](docs/api.md#custom) [ok](deploy/README.md#what-to-watch)",
		"![ok](docs/dashboard.png) [ok](docs/) [ok](#xsw) [ok](https://example.org/nowhere.md)",
		"`[not a link](docs/nothing.md)` and",
		"```",
		"[not a link either](docs/nothing.md)",
		"```",
		"[missing file](docs/configuration.md)",
		"[missing anchor](docs/api.md#writer-endpoints)",
		"[missing anchor here](#nowhere)",
		"[out of the repository](../outside.md)",
		"[absolute](/docs/api.md)",
		"[ref]: docs/missing-ref.md",
		`<img src="docs/missing.png">`,
		"",
	}, "\n"))
	errs, err := checkDocLinks(root, []string{"README.md"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{
		"README.md:10: link docs/configuration.md: docs/configuration.md does not exist",
		"README.md:11: link docs/api.md#writer-endpoints: docs/api.md has no heading with the id #writer-endpoints",
		"README.md:12: link #nowhere: README.md has no heading with the id #nowhere",
		"README.md:13: link ../outside.md: leads out of the repository",
		"README.md:14: link /docs/api.md: absolute path",
		"README.md:15: link docs/missing-ref.md: docs/missing-ref.md does not exist",
		"README.md:16: link docs/missing.png: docs/missing.png does not exist",
	}
	if len(got) != len(want) {
		t.Errorf("the check found %d broken links, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("the check missed %q; it found:\n%s", w, strings.Join(got, "\n"))
		}
	}
}

func TestCheckBenchBlock(t *testing.T) {
	for _, tc := range []struct {
		name, readme string
		ok           bool
	}{
		{"kept", "x\n" + benchStart + "\nfigures\n" + benchEnd + "\n", true},
		{"gone", "x\nfigures\n", false},
		{"end lost", benchStart + "\nfigures\n", false},
		{"reversed", benchEnd + "\n" + benchStart + "\n", false},
		{"twice", benchStart + benchEnd + benchStart + benchEnd, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkBenchBlock(tc.readme); (err == nil) != tc.ok {
				t.Errorf("checkBenchBlock = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestGitHubSlug(t *testing.T) {
	for heading, want := range map[string]string{
		"Three commands":                    "three-commands",
		"`GET /books/{book_id}/chapters`":   "get-booksbook_idchapters",
		"A site's circuit is open":          "a-sites-circuit-is-open",
		"Health and readiness":              "health-and-readiness",
		"[`xswctl`](operations.md) tail":    "xswctl-tail",
		"Upgrading to site-qualified books": "upgrading-to-site-qualified-books",
		"czbooks.net: 小說狂人":                 "czbooksnet-小說狂人",
	} {
		if got := githubSlug(heading); got != want {
			t.Errorf("githubSlug(%q) = %q, want %q", heading, got, want)
		}
	}
}
