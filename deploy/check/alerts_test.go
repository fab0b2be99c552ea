package check

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// alertsFile holds the alert rules: docker compose's Prometheus loads it, the monitoring
// component ships it as a PrometheusRule, and the end-to-end tests evaluate it.
const alertsFile = "deploy/prometheus/alerts.yaml"

// targetLabels are the labels Prometheus gives every series it scrapes, wherever it runs.
// (The Prometheus Operator adds namespace, pod and more; compose's Prometheus does not,
// so the rules, which serve both, may not use them.)
var targetLabels = []string{"instance", "job"}

// severities are the values of an alert's severity label.
var severities = []string{"critical", "warning"}

// promQL parses PromQL as Prometheus does by default: no experimental features.
var promQL = parser.NewParser(parser.Options{})

// parseRules parses a rule file with Prometheus' own parser, which validates it as
// Prometheus does when it loads the file: unknown fields, PromQL, templates, durations.
func parseRules(path string) (*rulefmt.RuleGroups, error) {
	groups, errs := rulefmt.ParseFile(path, false, model.LegacyValidation, promQL, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return groups, nil
}

// checkRules holds the rules for alerting rules beyond Prometheus' own validation: each
// alert is named once and has a severity, a summary and a description; each expression
// selects only series the services export (or a recording rule of the file records),
// matches and groups by labels they carry, and matches label values they set.
func checkRules(g *rulefmt.RuleGroups, m *exportedMetrics) error {
	var errs []error
	recorded := map[string]bool{}
	for _, grp := range g.Groups {
		for _, r := range grp.Rules {
			if r.Record != "" {
				recorded[r.Record] = true
			}
		}
	}
	seen := map[string]bool{}
	for _, grp := range g.Groups {
		for _, r := range grp.Rules {
			name := r.Alert
			if name == "" {
				name = r.Record
			}
			ref := fmt.Sprintf("group %s: %s", grp.Name, name)
			if r.Alert != "" {
				if seen[r.Alert] {
					errs = append(errs, fmt.Errorf("%s: a second alert of that name", ref))
				}
				seen[r.Alert] = true
				if !slices.Contains(severities, r.Labels["severity"]) {
					errs = append(errs, fmt.Errorf("%s: severity %q, want one of %v", ref, r.Labels["severity"], severities))
				}
				for _, a := range []string{"summary", "description"} {
					if strings.TrimSpace(r.Annotations[a]) == "" {
						errs = append(errs, fmt.Errorf("%s: no %s annotation", ref, a))
					}
				}
			}
			expr, err := promQL.ParseExpr(r.Expr)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", ref, err))
				continue
			}
			for _, err := range checkExpr(expr, m, recorded) {
				errs = append(errs, fmt.Errorf("%s: %w", ref, err))
			}
		}
	}
	return errors.Join(errs...)
}

// literals matches a regular expression that is an alternation of plain values.
var literals = regexp.MustCompile(`^[A-Za-z0-9_.:-]+(\|[A-Za-z0-9_.:-]+)*$`)

// checkExpr reports what an expression selects that no service exports.
func checkExpr(expr parser.Expr, m *exportedMetrics, recorded map[string]bool) []error {
	var errs []error
	// labelsOf returns the labels of the series a node selects, and whether they are
	// all known (a recorded or runtime series' are not).
	labelsOf := func(n parser.Node) (map[string]bool, bool) {
		out, known := map[string]bool{}, true
		for _, l := range targetLabels {
			out[l] = true
		}
		parser.Inspect(n, func(n parser.Node, _ []parser.Node) error {
			vs, ok := n.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			s, _ := m.lookup(metricName(vs))
			if s == nil {
				known = false
				return nil
			}
			for _, l := range s.labels {
				out[l] = true
			}
			return nil
		})
		return out, known
	}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			name := metricName(n)
			if name == "" {
				errs = append(errs, fmt.Errorf("%s selects no metric by name", n))
				return nil
			}
			s, ok := m.lookup(name)
			switch {
			case recorded[name]:
				return nil
			case !ok:
				errs = append(errs, fmt.Errorf("%s: no service exports %s", n, name))
				return nil
			case s == nil: // a runtime family: its labels are not read
				return nil
			}
			for _, lm := range n.LabelMatchers {
				if lm.Name == model.MetricNameLabel {
					continue
				}
				if !slices.Contains(s.labels, lm.Name) && !slices.Contains(targetLabels, lm.Name) {
					errs = append(errs, fmt.Errorf("%s: %s has no label %s (it has %v)", n, name, lm.Name, s.labels))
					continue
				}
				if slices.Contains(targetLabels, lm.Name) || lm.Value == "" {
					continue
				}
				vals := []string{lm.Value}
				if lm.Type == labels.MatchRegexp || lm.Type == labels.MatchNotRegexp {
					if !literals.MatchString(lm.Value) {
						continue // a pattern: not checked
					}
					vals = strings.Split(lm.Value, "|")
				}
				for _, v := range vals {
					if !s.values[v] {
						errs = append(errs, fmt.Errorf("%s: %s=%q: no service sets that value (defined at %s)", n, lm.Name, v, s.pos))
					}
				}
			}
		case *parser.AggregateExpr:
			if n.Without || len(n.Grouping) == 0 {
				return nil
			}
			have, known := labelsOf(n.Expr)
			for _, l := range n.Grouping {
				if known && !have[l] {
					errs = append(errs, fmt.Errorf("%s: groups by %s, which the series it aggregates do not have (%v)", n, l, slices.Sorted(maps.Keys(have))))
				}
			}
		case *parser.BinaryExpr:
			vm := n.VectorMatching
			if vm == nil || !vm.On {
				return nil
			}
			for _, side := range []parser.Expr{n.LHS, n.RHS} {
				have, known := labelsOf(side)
				for _, l := range vm.MatchingLabels {
					if known && !have[l] {
						errs = append(errs, fmt.Errorf("%s: matches on %s, which %s does not have", n, l, side))
					}
				}
			}
		}
		return nil
	})
	return errs
}

// metricName returns the metric a selector names, or "".
func metricName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, lm := range vs.LabelMatchers {
		if lm.Name == model.MetricNameLabel && lm.Type == labels.MatchEqual {
			return lm.Value
		}
	}
	return ""
}

func TestAlertRules(t *testing.T) {
	g, err := parseRules(filepath.Join(mustRoot(t), alertsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Groups) == 0 {
		t.Fatalf("%s holds no rule", alertsFile)
	}
	if err := checkRules(g, exported(t)); err != nil {
		for _, e := range unwrap(err) {
			t.Error(e)
		}
	}
}

func TestAlertRulesCatch(t *testing.T) {
	m := exported(t)
	rule := func(expr string, extra ...string) string {
		return "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: " + expr + "\n" +
			"        labels: {severity: warning}\n        annotations: {summary: s, description: d}\n" + strings.Join(extra, "")
	}
	tests := []struct {
		name, file, want string
	}{
		{"unknown metric", rule("xsw_fetcher_circuit_states > 1"), "no service exports xsw_fetcher_circuit_states"},
		{"histogram without its suffix", rule("xsw_indexer_batch_duration_seconds > 1"), "no service exports xsw_indexer_batch_duration_seconds"},
		{"unknown label", rule(`xsw_fetcher_queue_size{lanes="refresh"} > 0`), "xsw_fetcher_queue_size has no label lanes"},
		{"misspelt value", rule(`xsw_fetcher_queue_size{lane="refreshing"} > 0`), `lane="refreshing": no service sets that value`},
		{"misspelt value in an alternation", rule(`xsw_fetcher_jobs_total{outcome=~"failed|deadd"} > 0`), `outcome="deadd"`},
		{"grouping by a label the series lack", rule("max by (lane) (xsw_fetcher_circuit_state) > 1"), "groups by lane"},
		{"selector without a name", rule(`'{site="xsw"} > 1'`), "selects no metric by name"},
		{"no severity", strings.Replace(rule("xsw_fetcher_dead_letters > 1"), "severity: warning", "team: ops", 1), `severity ""`},
		{"unknown severity", strings.Replace(rule("xsw_fetcher_dead_letters > 1"), "severity: warning", "severity: page", 1), `severity "page"`},
		{"no description", strings.Replace(rule("xsw_fetcher_dead_letters > 1"), ", description: d", "", 1), "no description annotation"},
		{"alert twice", rule("xsw_fetcher_dead_letters > 1", "      - alert: A\n        expr: xsw_fetcher_dead_letters > 2\n",
			"        labels: {severity: warning}\n        annotations: {summary: s, description: d}\n"), "a second alert of that name"},
		// Prometheus' own validation.
		{"invalid PromQL", rule("rate(xsw_fetcher_jobs_total) > 0"), "expected type range vector"},
		{"unknown field", rule("xsw_fetcher_dead_letters > 1", "        fore: 5m\n"), "field fore not found"},
		{"broken template", strings.Replace(rule("xsw_fetcher_dead_letters > 1"), "summary: s", `summary: "{{ $labels.site "`, 1), "summary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "alerts.yaml")
			if err := os.WriteFile(p, []byte(tt.file), 0o644); err != nil {
				t.Fatal(err)
			}
			g, err := parseRules(p)
			if err == nil {
				err = checkRules(g, m)
			}
			wantError(t, err, tt.want)
		})
	}
	// The rule above, unbroken, passes.
	p := filepath.Join(t.TempDir(), "alerts.yaml")
	if err := os.WriteFile(p, []byte(rule(`max by (site) (xsw_fetcher_site_refused{site="czbooks"}) == 1`)), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := parseRules(p)
	if err == nil {
		err = checkRules(g, m)
	}
	if err != nil {
		t.Fatalf("a good rule fails: %v", err)
	}
}
