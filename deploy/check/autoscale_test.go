package check

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/xswtw/xsw/events"
)

// minReplicas returns the fewest replicas a Deployment runs: its autoscaler's minimum
// when it has one, else its replica count.
func minReplicas(b *build, name string) int32 {
	for _, h := range all[autoscalingv2.HorizontalPodAutoscaler](b) {
		if h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == name {
			if h.Spec.MinReplicas == nil {
				return 1
			}
			return *h.Spec.MinReplicas
		}
	}
	for _, so := range all[scaledObject](b) {
		if so.Spec.ScaleTargetRef.Name == name {
			if so.Spec.MinReplicaCount == nil {
				return 0
			}
			return *so.Spec.MinReplicaCount
		}
	}
	for _, w := range workloads(b) {
		if w.name == name {
			if w.replicas == nil {
				return 1
			}
			return *w.replicas
		}
	}
	return 0
}

// checkAutoscaling reports a Deployment with two autoscalers (KEDA makes its own HPA, so
// a ScaledObject and an HPA on one target fight), an autoscaled Deployment that still
// sets replicas (each apply would reset the autoscaler's count), fetchers that could
// scale below two, and a ScaledObject that does not read the lag of the request lanes of
// every site the fetchers serve.
func checkAutoscaling(b *build) error {
	var errs []error
	targets := map[string][]string{}
	for _, h := range all[autoscalingv2.HorizontalPodAutoscaler](b) {
		targets[h.Spec.ScaleTargetRef.Name] = append(targets[h.Spec.ScaleTargetRef.Name], "HorizontalPodAutoscaler "+h.Name)
		if len(h.Spec.Metrics) == 0 {
			errs = append(errs, fmt.Errorf("HorizontalPodAutoscaler %s: no metric", h.Name))
		}
	}
	for _, so := range all[scaledObject](b) {
		targets[so.Spec.ScaleTargetRef.Name] = append(targets[so.Spec.ScaleTargetRef.Name], "ScaledObject "+so.Name)
		errs = append(errs, checkScaledObject(b, so)...)
	}
	for name, by := range targets {
		if len(by) > 1 {
			errs = append(errs, fmt.Errorf("Deployment %s has %d autoscalers (%s): use one", name, len(by), strings.Join(by, ", ")))
		}
		if d := find[appsv1.Deployment](b, name); d != nil && d.Spec.Replicas != nil {
			errs = append(errs, fmt.Errorf("Deployment %s sets replicas, but %s owns the count", name, by[0]))
		}
	}
	if len(targets["fetcher"]) == 0 {
		errs = append(errs, errors.New("no autoscaler for the fetchers (components/fetcher-keda or fetcher-hpa)"))
	}
	if n := minReplicas(b, "fetcher"); n < 2 {
		errs = append(errs, fmt.Errorf("fetchers may run %d replicas; keep at least two", n))
	}
	return errors.Join(errs...)
}

// scaledSites returns the sites the fetchers of Deployment name serve: the SOURCES their
// containers are given, else its default (checkWorkloads holds every service to one list).
func scaledSites(b *build, name string) ([]string, error) {
	d := find[appsv1.Deployment](b, name)
	if d == nil {
		return nil, fmt.Errorf("scales Deployment %s, which the build does not hold", name)
	}
	v, err := sourceVarsOnce()
	if err != nil {
		return nil, err
	}
	for i := range d.Spec.Template.Spec.Containers {
		c := &d.Spec.Template.Spec.Containers[i]
		if serviceOf(c.Image) != "fetcher" {
			continue
		}
		sources, given := containerEnv(b, d.Namespace, c)[sourcesVar]
		if !given {
			sources = v[sourcesVar]
		}
		var sites []string
		for _, s := range siteList(sources) {
			if !slices.Contains(sites, s) {
				sites = append(sites, s)
			}
		}
		return sites, nil
	}
	return nil, fmt.Errorf("scales Deployment %s, which runs no fetcher: its triggers read the fetchers' consumers", name)
}

// scaledLanes are the lanes whose lag must scale the fetchers, for every site: readers
// wait on the interactive lane, and the prefetch lane is where the bulk of the work
// queues.
var scaledLanes = []events.Lane{events.LaneInteractive, events.LanePrefetch}

// checkScaledObject validates one ScaledObject with KEDA's rules (kedaRules) and against
// the events contract and the build: the nats-jetstream triggers read, from the
// monitoring port of the build's NATS Service, the request stream's per-site consumers
// (events.FetcherConsumer) of the sites the scaled fetchers serve (their SOURCES), and
// every such site has a trigger on its interactive and prefetch consumers.
//
// A trigger on any other consumer is an error even when the name is well formed: KEDA
// reads the lag of a consumer that does not exist as the stream's last sequence number,
// which would hold the fetchers at their maximum; and a site's consumers exist only
// while fetchers serve it. The legacy whole-lane consumer (events.LegacyFetcherConsumer)
// exists, but only holds requests stored before sites, and is almost always empty.
func checkScaledObject(b *build, so *scaledObject) []error {
	ref := "ScaledObject " + so.Name
	var errs []error
	for _, err := range kedaRules(so) {
		errs = append(errs, fmt.Errorf("%s: %w", ref, err))
	}
	sites, err := scaledSites(b, so.Spec.ScaleTargetRef.Name)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", ref, err))
	}
	sources := fmt.Sprintf("%s=%q", sourcesVar, strings.Join(sites, ","))
	consumers, legacy := map[string]bool{}, map[string]bool{}
	for _, l := range events.Lanes {
		for _, site := range sites {
			consumers[events.FetcherConsumer(l, site, 0, 0).Durable] = true
		}
		legacy[events.LegacyFetcherConsumer(l, 0, 0).Durable] = true
	}
	read := map[string]bool{}
	for _, tr := range so.Spec.Triggers {
		if tr.Type != "nats-jetstream" {
			errs = append(errs, fmt.Errorf("%s: trigger %s is %q; fetchers scale on JetStream consumer lag", ref, tr.Name, tr.Type))
			continue
		}
		m := tr.Metadata
		if m["stream"] != events.StreamRequests {
			errs = append(errs, fmt.Errorf("%s: trigger %s reads stream %q, want %s", ref, tr.Name, m["stream"], events.StreamRequests))
		}
		switch c := m["consumer"]; {
		case consumers[c]:
		case legacy[c]:
			errs = append(errs, fmt.Errorf("%s: trigger %s reads consumer %q, the legacy consumer of a lane's requests stored before sites (almost always empty); read the lane's per-site consumers, fetch-<lane>-<site>", ref, tr.Name, c))
		default:
			errs = append(errs, fmt.Errorf("%s: trigger %s reads consumer %q, which is no lane's consumer for a site of %s (KEDA would read the lag of a consumer no fetcher creates as the stream's last sequence number)", ref, tr.Name, c, sources))
		}
		read[m["consumer"]] = true
		if m["account"] == "" && m["accountID"] == "" {
			errs = append(errs, fmt.Errorf("%s: trigger %s names no account ($G without NATS accounts)", ref, tr.Name))
		}
		if n, err := strconv.Atoi(m["lagThreshold"]); err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("%s: trigger %s: lagThreshold %q is not a positive number", ref, tr.Name, m["lagThreshold"]))
		}
		host, port, err := net.SplitHostPort(m["natsServerMonitoringEndpoint"])
		svcName, ns, _ := strings.Cut(host, ".")
		ns, _, _ = strings.Cut(ns, ".")
		svc := find[corev1.Service](b, svcName)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: trigger %s: natsServerMonitoringEndpoint: %w", ref, tr.Name, err))
		case svc == nil || ns != svc.Namespace:
			errs = append(errs, fmt.Errorf("%s: trigger %s: natsServerMonitoringEndpoint %q is not <service>.<namespace> of the build's NATS (namespace %q)", ref, tr.Name, host, so.Namespace))
		case !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return strconv.Itoa(int(p.Port)) == port }):
			errs = append(errs, fmt.Errorf("%s: trigger %s: Service %s has no port %s", ref, tr.Name, svcName, port))
		}
	}
	for _, site := range sites {
		for _, l := range scaledLanes {
			if c := events.FetcherConsumer(l, site, 0, 0).Durable; !read[c] {
				errs = append(errs, fmt.Errorf("%s: no trigger on consumer %s, site %s's %s lane (%s)", ref, c, site, l, sources))
			}
		}
	}
	return errs
}

func TestAutoscaling(t *testing.T) {
	forEachBuild(t, checkAutoscaling)
}

// checkDisruptionBudgets reports a PodDisruptionBudget that could never allow an
// eviction (node drains would hang), and a replicated Deployment or StatefulSet
// without one.
func checkDisruptionBudgets(b *build) error {
	var errs []error
	covered := map[string]bool{}
	for _, pdb := range all[policyv1.PodDisruptionBudget](b) {
		for _, w := range workloads(b) {
			if w.kind == "Job" || !selects(pdb.Spec.Selector, w.template.Labels) {
				continue
			}
			covered[w.name] = true
			n := minReplicas(b, w.name)
			if mu := pdb.Spec.MaxUnavailable; mu != nil {
				if v, err := intstr.GetScaledValueFromIntOrPercent(mu, int(n), true); err != nil || v < 1 {
					errs = append(errs, fmt.Errorf("PodDisruptionBudget %s: maxUnavailable %s of %s allows no eviction", pdb.Name, mu.String(), w))
				}
			}
			if ma := pdb.Spec.MinAvailable; ma != nil {
				if v, err := intstr.GetScaledValueFromIntOrPercent(ma, int(n), true); err != nil || v >= int(n) {
					errs = append(errs, fmt.Errorf("PodDisruptionBudget %s: minAvailable %s of %s's %d replicas allows no eviction", pdb.Name, ma.String(), w, n))
				}
			}
		}
	}
	for _, w := range workloads(b) {
		if w.kind != "Job" && minReplicas(b, w.name) > 1 && !covered[w.name] {
			errs = append(errs, fmt.Errorf("%s runs %d replicas without a PodDisruptionBudget", w, minReplicas(b, w.name)))
		}
	}
	return errors.Join(errs...)
}

func TestDisruptionBudgets(t *testing.T) {
	forEachBuild(t, checkDisruptionBudgets)
}
