package check

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// prometheusRuleFile is the PrometheusRule generated from alertsFile.
const prometheusRuleFile = "deploy/k8s/components/monitoring/prometheusrule.yaml"

// monitoringNamespace is where Prometheus runs in a cluster (networkpolicy.yaml of the
// monitoring component).
const monitoringNamespace = "monitoring"

// Annotations on the pod templates for a Prometheus that discovers pods by annotation.
const (
	scrapeAnnotation = "prometheus.io/scrape"
	portAnnotation   = "prometheus.io/port"
	pathAnnotation   = "prometheus.io/path"
)

var metricsPathOnce = sync.OnceValues(func() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	return packageConst(filepath.Join(root, "platform", "metrics"), "Path")
})

// metricsPath returns where every service serves its metrics (platform/metrics.Path).
func metricsPath(t *testing.T) string {
	t.Helper()
	p, err := metricsPathOnce()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// generatePrometheusRule returns the PrometheusRule holding the rule file alerts: its
// groups, as they are, under spec. The file's own opening comment is left out.
func generatePrometheusRule(alerts []byte) []byte {
	var b bytes.Buffer
	b.WriteString(`# Generated from deploy/prometheus/alerts.yaml, the alert rules of docker compose's
# Prometheus: edit that file, then run
#   go test ./deploy/check -run TestPrometheusRule -update
# deploy/check fails while the two differ. The Prometheus Operator loads these rules into
# every Prometheus whose ruleSelector matches this object's labels.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: xsw-alerts
  labels:
    app.kubernetes.io/name: xsw
spec:
`)
	lines := strings.Split(strings.TrimRight(string(alerts), "\n"), "\n")
	for len(lines) > 0 && (strings.HasPrefix(lines[0], "#") || strings.TrimSpace(lines[0]) == "") {
		lines = lines[1:]
	}
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			b.WriteString("  " + l)
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

func TestPrometheusRule(t *testing.T) {
	root := mustRoot(t)
	alerts, err := os.ReadFile(filepath.Join(root, alertsFile))
	if err != nil {
		t.Fatal(err)
	}
	want := generatePrometheusRule(alerts)
	p := filepath.Join(root, prometheusRuleFile)
	if *update {
		if err := os.WriteFile(p, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what %s generates: run go test ./deploy/check -run TestPrometheusRule -update", prometheusRuleFile, alertsFile)
	}
}

// checkPrometheusRules reports a build whose PrometheusRules do not hold exactly the
// groups of the rule file, as kustomize built them (a patch could change them).
func checkPrometheusRules(b *build, want *rulefmt.RuleGroups) error {
	var got []monitoringv1.RuleGroup
	for _, pr := range all[monitoringv1.PrometheusRule](b) {
		got = append(got, pr.Spec.Groups...)
	}
	if len(got) != len(want.Groups) {
		return fmt.Errorf("the PrometheusRules hold %d groups, %s %d", len(got), alertsFile, len(want.Groups))
	}
	var errs []error
	for i, w := range want.Groups {
		g := got[i]
		if g.Name != w.Name || len(g.Rules) != len(w.Rules) {
			errs = append(errs, fmt.Errorf("PrometheusRule group %d: %s with %d rules, but %s has %s with %d", i, g.Name, len(g.Rules), alertsFile, w.Name, len(w.Rules)))
			continue
		}
		for j, wr := range w.Rules {
			r := g.Rules[j]
			var forDur model.Duration
			if r.For != nil {
				d, err := model.ParseDuration(string(*r.For))
				if err != nil {
					errs = append(errs, fmt.Errorf("PrometheusRule group %s rule %d: for: %w", g.Name, j, err))
				}
				forDur = d
			}
			same := r.Alert == wr.Alert && r.Record == wr.Record && sameExpr(r.Expr.String(), wr.Expr) && forDur == wr.For &&
				equalMaps(r.Labels, wr.Labels) && equalMaps(r.Annotations, wr.Annotations)
			if !same {
				errs = append(errs, fmt.Errorf("PrometheusRule group %s rule %d (%s%s) differs from %s", g.Name, j, r.Alert, r.Record, alertsFile))
			}
		}
	}
	return errors.Join(errs...)
}

// sameExpr reports whether two PromQL expressions are the same once parsed (however they
// are spread over lines).
func sameExpr(a, b string) bool {
	ea, err1 := promQL.ParseExpr(a)
	eb, err2 := promQL.ParseExpr(b)
	return err1 == nil && err2 == nil && ea.String() == eb.String()
}

func equalMaps(a, b map[string]string) bool {
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}

// checkMonitoring holds the rules for a build that sends metrics to Prometheus (one with
// PodMonitors): every pod of every xsw service is scraped by exactly one PodMonitor, on
// the port the service listens on (a named container port) at platform/metrics' path;
// its pod template carries the prometheus.io annotations saying the same; the
// NetworkPolicies let Prometheus' namespace reach that port; every PodMonitor scrapes
// some service; and the PrometheusRules hold the rule file's groups.
func checkMonitoring(b *build, vs map[string]vars, path string, rules *rulefmt.RuleGroups) error {
	monitors := all[monitoringv1.PodMonitor](b)
	if len(monitors) == 0 {
		return nil
	}
	var errs []error
	used := map[*monitoringv1.PodMonitor]bool{}
	for _, o := range b.objects {
		d, ok := o.obj.(*appsv1.Deployment)
		if !ok {
			continue
		}
		tpl := &d.Spec.Template
		for i := range tpl.Spec.Containers {
			c := &tpl.Spec.Containers[i]
			svc := serviceOf(c.Image)
			if svc == "" {
				continue
			}
			ref := fmt.Sprintf("%s: container %s", o, c.Name)
			port, err := addrPort(setting(containerEnv(b, o.namespace, c), vs[svc], services[svc]))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: %w", ref, services[svc], err))
				continue
			}
			var mine []*monitoringv1.PodMonitor
			for _, pm := range monitors {
				if pm.Namespace == o.namespace && selects(&pm.Spec.Selector, tpl.Labels) {
					mine = append(mine, pm)
					used[pm] = true
				}
			}
			switch len(mine) {
			case 0:
				errs = append(errs, fmt.Errorf("%s: no PodMonitor scrapes its pods", o))
			case 1:
				errs = append(errs, checkPodMetricsEndpoints(mine[0], ref, c, port, path)...)
			default:
				errs = append(errs, fmt.Errorf("%s: %d PodMonitors scrape its pods (each series twice)", o, len(mine)))
			}
			for k, want := range map[string]string{scrapeAnnotation: "true", portAnnotation: strconv.Itoa(int(port)), pathAnnotation: path} {
				if got := tpl.Annotations[k]; got != want {
					errs = append(errs, fmt.Errorf("%s: pod annotation %s=%q, want %q", o, k, got, want))
				}
			}
			from := endpoint{name: prometheusPod.name, namespace: monitoringNamespace, labels: prometheusPod.labels}
			to := endpoint{name: o.name, namespace: o.namespace, labels: tpl.Labels, ports: containerPorts(tpl)}
			if !allowed(b, from, to, port, corev1.ProtocolTCP) {
				errs = append(errs, fmt.Errorf("%s: Prometheus (namespace %s) cannot reach its metrics port %d", o, monitoringNamespace, port))
			}
		}
	}
	for _, pm := range monitors {
		if !used[pm] {
			errs = append(errs, fmt.Errorf("PodMonitor %s/%s scrapes no xsw service", pm.Namespace, pm.Name))
		}
	}
	if len(all[monitoringv1.PrometheusRule](b)) == 0 {
		errs = append(errs, errors.New("PodMonitors, but no PrometheusRule: the alert rules are missing"))
	} else if err := checkPrometheusRules(b, rules); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkPodMetricsEndpoints reports a PodMonitor that scrapes other than the service's
// metrics port and path.
func checkPodMetricsEndpoints(pm *monitoringv1.PodMonitor, ref string, c *corev1.Container, port int32, path string) []error {
	var errs []error
	if len(pm.Spec.PodMetricsEndpoints) == 0 {
		return []error{fmt.Errorf("%s: PodMonitor %s has no podMetricsEndpoints", ref, pm.Name)}
	}
	for _, ep := range pm.Spec.PodMetricsEndpoints {
		var got int32
		switch {
		case ep.Port != nil:
			n, ok := resolvePort(c, intstr.FromString(*ep.Port))
			if !ok {
				errs = append(errs, fmt.Errorf("%s: PodMonitor %s scrapes port %s, which the container does not name", ref, pm.Name, *ep.Port))
				continue
			}
			got = n
		case ep.PortNumber != nil:
			got = *ep.PortNumber
		default:
			errs = append(errs, fmt.Errorf("%s: PodMonitor %s names no port (it would scrape every port)", ref, pm.Name))
			continue
		}
		if got != port {
			errs = append(errs, fmt.Errorf("%s: PodMonitor %s scrapes port %d, but the service serves its metrics on %d", ref, pm.Name, got, port))
		}
		p := ep.Path
		if p == "" {
			p = "/metrics" // Prometheus' default
		}
		if p != path {
			errs = append(errs, fmt.Errorf("%s: PodMonitor %s scrapes %s, but the service serves its metrics at %s", ref, pm.Name, p, path))
		}
	}
	return errs
}

// containerPorts returns a pod template's named container ports.
func containerPorts(tpl *corev1.PodTemplateSpec) map[string]int32 {
	out := map[string]int32{}
	for _, c := range tpl.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name != "" {
				out[p.Name] = p.ContainerPort
			}
		}
	}
	return out
}

func alertRules(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	g, err := parseRules(filepath.Join(mustRoot(t), alertsFile))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestMonitoring(t *testing.T) {
	v, path, rules := serviceVars(t), metricsPath(t), alertRules(t)
	forEachBuild(t, func(b *build) error { return checkMonitoring(b, v, path, rules) })
	// Production sends its metrics to Prometheus.
	if len(all[monitoringv1.PodMonitor](overlay(t, "prod"))) == 0 {
		t.Errorf("prod: no PodMonitor: metrics reach no Prometheus (components/monitoring)")
	}
}
