package check

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/promqltest"
)

// alertScenario is series for Prometheus' PromQL engine (promqltest's load syntax, one
// sample a minute from 0) and whether an alert's expression selects anything at the
// end of them: its condition holds (it fires once the condition has held for its for:).
type alertScenario struct {
	name   string
	series string
	at     string // when to evaluate
	fires  bool
}

// alertScenarios hold each alert of alerts.yaml to the situation it is about: it fires
// there, and stays quiet in the healthy situations next to it. Every alert needs both.
var alertScenarios = map[string][]alertScenario{
	"XswSiteCircuitOpen": {
		{"open on every fetcher", `
xsw_fetcher_circuit_state{site="xsw", instance="f1"} 2x10
xsw_fetcher_circuit_state{site="xsw", instance="f2"} 2x10
xsw_fetcher_circuit_state{site="czbooks", instance="f1"} 0x10
xsw_fetcher_circuit_state{site="czbooks", instance="f2"} 0x10`, "10m", true},
		{"half-open between probes", `
xsw_fetcher_circuit_state{site="xsw", instance="f1"} 1x10
xsw_fetcher_circuit_state{site="xsw", instance="f2"} 2x10`, "10m", true},
		{"closed on one fetcher", `
xsw_fetcher_circuit_state{site="xsw", instance="f1"} 2x10
xsw_fetcher_circuit_state{site="xsw", instance="f2"} 0x10`, "10m", false},
		{"closed", `
xsw_fetcher_circuit_state{site="xsw", instance="f1"} 0x10`, "10m", false},
	},
	"XswSiteRefused": {
		{"refused", `
xsw_fetcher_site_refused{site="czbooks", instance="f1"} 1x10
xsw_fetcher_site_refused{site="xsw", instance="f1"} 0x10`, "10m", true},
		{"served", `
xsw_fetcher_site_refused{site="czbooks", instance="f1"} 0x10`, "10m", false},
	},
	"XswNoLiveFetchers": {
		{"no fetcher scraped", `
xsw_indexer_events_total{kind="job", site="xsw"} 0+1x10`, "10m", true},
		{"fetchers scraped", `
xsw_fetcher_jobs_in_flight{instance="f1"} 0x10`, "10m", false},
	},
	"XswDeadLettersRising": {
		{"new dead letters", `
xsw_fetcher_dead_letters{instance="f1"} 0 0 0 1 1 1 2 2 2 3 3`, "10m", true},
		{"new dead letters across a change of exporter", `
xsw_fetcher_dead_letters{instance="f1"} 2x5 stale
xsw_fetcher_dead_letters{instance="f2"} _x6 3x4`, "10m", true},
		{"as many as before", `
xsw_fetcher_dead_letters{instance="f1"} 3x40`, "40m", false},
		{"a change of exporter", `
xsw_fetcher_dead_letters{instance="f1"} 3x5 stale
xsw_fetcher_dead_letters{instance="f2"} _x6 3x4`, "10m", false},
		{"replayed", `
xsw_fetcher_dead_letters{instance="f1"} 3 3 3 2 2 1 1 0 0 0 0`, "10m", false},
	},
	"XswFetcherPoisonMessages": {
		{"a request terminated", `
xsw_fetcher_poison_total{consumer="requests", instance="f1"} 0 0 0 1 1 1 1 1 1 1 1
xsw_fetcher_poison_total{consumer="crawls", instance="f1"} 0x10`, "10m", true},
		{"none", `
xsw_fetcher_poison_total{consumer="requests", instance="f1"} 2x40
xsw_fetcher_poison_total{consumer="crawls", instance="f1"} 0x40`, "40m", false},
	},
	"XswWebhooksNotDelivered": {
		{"a delivery failed", `
xsw_indexer_webhook_deliveries_total{result="failed"} 0 0 0 1 1 1 1 1 1 1 1
xsw_indexer_webhook_deliveries_total{result="delivered"} 0+3x10
xsw_indexer_webhook_dropped_total 0x10`, "10m", true},
		{"a delivery dropped", `
xsw_indexer_webhook_deliveries_total{result="failed"} 0x10
xsw_indexer_webhook_dropped_total 0 0 0 0 0 2 2 2 2 2 2`, "10m", true},
		{"all delivered", `
xsw_indexer_webhook_deliveries_total{result="failed"} 1x70
xsw_indexer_webhook_deliveries_total{result="delivered"} 0+3x70
xsw_indexer_webhook_dropped_total 0x70`, "70m", false},
	},
	"XswIndexerDown": {
		{"indexer not scraped", `
xsw_fetcher_jobs_in_flight{instance="f1"} 0x10`, "10m", true},
		{"indexer scraped", `
xsw_indexer_events_total{kind="job", site="xsw"} 0x10`, "10m", false},
	},
	"XswIndexerFailing": {
		{"transactions failing", `
xsw_indexer_batch_failures_total 0+1x10`, "10m", true},
		{"no failure", `
xsw_indexer_batch_failures_total 3x10`, "10m", false},
	},
	"XswIndexerPoisonEvents": {
		{"an event terminated", `
xsw_indexer_poison_total 0 0 0 1 1 1 1 1 1 1 1`, "10m", true},
		{"none", `
xsw_indexer_poison_total 2x40`, "40m", false},
	},
	"XswIndexerFallingBehind": {
		{"fewer job events written than jobs ended", `
xsw_fetcher_jobs_total{lane="prefetch", outcome="completed", instance="f1"} 0+2x30
xsw_indexer_events_total{kind="job", site="xsw"} 0+1x30`, "30m", true},
		{"keeping up (two job events a job)", `
xsw_fetcher_jobs_total{lane="prefetch", outcome="completed", instance="f1"} 0+2x30
xsw_indexer_events_total{kind="job", site="xsw"} 0+4x30`, "30m", false},
		{"too little work to tell", `
xsw_fetcher_jobs_total{lane="prefetch", outcome="completed", instance="f1"} 0+0.2x30
xsw_indexer_events_total{kind="job", site="xsw"} 0x30`, "30m", false},
	},
	"XswRefreshStalled": {
		{"waiting, none done", `
xsw_fetcher_queue_size{lane="refresh", instance="f1"} 5x70
xsw_fetcher_jobs_total{lane="refresh", outcome="completed", instance="f1"} 4x70
xsw_fetcher_jobs_total{lane="refresh", outcome="retrying", instance="f1"} 0+1x70`, "70m", true},
		{"waiting, and done", `
xsw_fetcher_queue_size{lane="refresh", instance="f1"} 5x70
xsw_fetcher_jobs_total{lane="refresh", outcome="completed", instance="f1"} 0+1x70`, "70m", false},
		{"nothing waiting", `
xsw_fetcher_queue_size{lane="refresh", instance="f1"} 0x70
xsw_fetcher_jobs_total{lane="refresh", outcome="completed", instance="f1"} 4x70`, "70m", false},
	},
	"XswRefreshFallingBehind": {
		{"never empty for 3 hours", `
xsw_fetcher_queue_size{lane="refresh", instance="f1"} 5x200`, "200m", true},
		{"never empty for 3 hours, across a change of exporter", `
xsw_fetcher_queue_size{lane="refresh", instance="f1"} 5x100 stale
xsw_fetcher_queue_size{lane="refresh", instance="f2"} _x101 5x99`, "200m", true},
		{"emptied for a minute within 3 hours", `
xsw_fetcher_queue_size{lane="refresh", instance="f1"} 5x100 0 5x99`, "200m", false},
		{"not seen for 3 hours yet", `
xsw_fetcher_queue_size{lane="refresh", instance="f1"} _x100 5x100`, "200m", false},
	},
}

// evalScript is the promqltest script that loads s and checks whether expr selects
// exactly one series at its end (fires) or none.
func evalScript(s alertScenario, expr string) string {
	var b strings.Builder
	b.WriteString("load 1m\n")
	for _, l := range strings.Split(strings.TrimSpace(s.series), "\n") {
		b.WriteString("  " + strings.TrimSpace(l) + "\n")
	}
	expr = strings.Join(strings.Fields(expr), " ")
	if s.fires {
		fmt.Fprintf(&b, "\neval instant at %s count(%s)\n  {} 1\n", s.at, expr)
	} else {
		fmt.Fprintf(&b, "\neval instant at %s %s\n", s.at, expr)
	}
	return b.String()
}

// TestAlertScenarios evaluates each alert's expression with Prometheus' own engine.
func TestAlertScenarios(t *testing.T) {
	exprs := map[string]string{}
	for _, g := range alertRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				exprs[r.Alert] = r.Expr
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(exprs)) {
		sc := alertScenarios[name]
		if !slices.ContainsFunc(sc, func(s alertScenario) bool { return s.fires }) || !slices.ContainsFunc(sc, func(s alertScenario) bool { return !s.fires }) {
			t.Errorf("%s: give it a scenario where it fires and one where it does not (alertScenarios)", name)
		}
	}
	for name := range alertScenarios {
		if _, ok := exprs[name]; !ok {
			t.Errorf("alertScenarios has %s, which %s does not", name, alertsFile)
		}
	}
	engine := promqltest.NewTestEngine(t, false, 0, 1_000_000)
	for _, name := range slices.Sorted(maps.Keys(exprs)) {
		for _, s := range alertScenarios[name] {
			t.Run(name+"/"+s.name, func(t *testing.T) {
				promqltest.RunTest(t, evalScript(s, exprs[name]), engine)
			})
		}
	}
}
