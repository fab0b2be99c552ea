package e2e

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestGrafanaDashboardMatchesTheMetrics checks deploy/grafana/xsw-dashboard.json against
// the metrics the services define: every query names a metric that exists, and every
// xsw_ metric has a panel.
func TestGrafanaDashboardMatchesTheMetrics(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	data, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", "xsw-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	defined := map[string]bool{}
	name := regexp.MustCompile(`Name:\s+"(xsw_[a-z0-9_]+)"`)
	err = filepath.WalkDir(filepath.Join(root, "services"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		for _, m := range name.FindAllSubmatch(src, -1) {
			defined[string(m[1])] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(defined) < 15 {
		t.Fatalf("found only %d metric definitions: has their form changed? %v", len(defined), defined)
	}
	used := map[string]bool{}
	series := regexp.MustCompile(`xsw_[a-z0-9_]+`)
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, s := range series.FindAllString(tg.Expr, -1) {
				m := s
				for _, suffix := range []string{"_bucket", "_count", "_sum"} {
					if base, ok := strings.CutSuffix(s, suffix); ok && defined[base] {
						m = base
					}
				}
				if !defined[m] {
					t.Errorf("panel %q queries %s, which no service defines", p.Title, s)
				}
				used[m] = true
			}
		}
	}
	var missing []string
	for m := range defined {
		if !used[m] {
			missing = append(missing, m)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("metrics without a panel: %v", missing)
	}
}
