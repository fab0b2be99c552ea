package check

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/compose-spec/compose-go/v2/types"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
)

// The tests below break a copy of a good build, compose project or Dockerfile in one
// place and expect the check that owns the rule to say so: each rule can fail.

func deployment(t *testing.T, b *build, name string) *appsv1.Deployment {
	t.Helper()
	d := find[appsv1.Deployment](b, name)
	if d == nil {
		t.Fatalf("%s: no Deployment %s", b.overlay, name)
	}
	return d
}

func container(t *testing.T, b *build, name string) *corev1.Container {
	t.Helper()
	return &deployment(t, b, name).Spec.Template.Spec.Containers[0]
}

func remove(b *build, kind, name string) {
	for i, o := range b.objects {
		if o.kind == kind && o.name == name {
			b.objects = append(b.objects[:i], b.objects[i+1:]...)
			return
		}
	}
}

func TestBuildChecksCatch(t *testing.T) {
	v := serviceVars(t)
	r := readme(t)
	nats := embeddedNATS(t)
	workloadsCheck := func(b *build) error { return checkWorkloads(b, v) }
	referencesCheck := func(b *build) error { return checkReferences(b, r) }
	doc := r // deploy/README.md, for a test to break
	connectionsCheck := func(b *build) error { return checkConnections(b, commonConnections) }
	natsCheck := func(b *build) error { return checkNATSCluster(b, t.TempDir(), nats) }
	natsAuthCheck := func(b *build) error { return checkNATSAuth(b, t.TempDir()) }
	mpath, rules := metricsPath(t), alertRules(t)
	monitoringCheck := func(b *build) error { return checkMonitoring(b, v, mpath, rules) }
	prodConnections := func(b *build) error { return checkConnections(b, overlayConnections["prod"]) }
	podMonitor := func(t *testing.T, b *build, name string) *monitoringv1.PodMonitor {
		t.Helper()
		pm := find[monitoringv1.PodMonitor](b, name)
		if pm == nil {
			t.Fatalf("%s: no PodMonitor %s", b.overlay, name)
		}
		return pm
	}
	// editAuth changes the NATS users' file as the ConfigMap ships it.
	editAuth := func(t *testing.T, b *build, old, new string) {
		t.Helper()
		for _, cm := range all[corev1.ConfigMap](b) {
			if data, ok := cm.Data["nats-auth.conf"]; ok {
				if !strings.Contains(data, old) {
					t.Fatalf("nats-auth.conf has no %q", old)
				}
				cm.Data["nats-auth.conf"] = strings.Replace(data, old, new, 1)
			}
		}
	}
	envVar := func(c *corev1.Container, name string) *corev1.EnvVar {
		for i := range c.Env {
			if c.Env[i].Name == name {
				return &c.Env[i]
			}
		}
		t.Fatalf("container %s has no %s", c.Name, name)
		return nil
	}

	tests := []struct {
		name, overlay string
		check         func(*build) error
		breakIt       func(t *testing.T, b *build)
		want          string
	}{
		{"missing readiness probe", "dev", workloadsCheck, func(t *testing.T, b *build) {
			container(t, b, "gateway").ReadinessProbe = nil
		}, "gateway: liveness and readiness probes are both required"},
		{"missing probe on NATS", "prod", workloadsCheck, func(t *testing.T, b *build) {
			find[appsv1.StatefulSet](b, "nats").Spec.Template.Spec.Containers[0].LivenessProbe = nil
		}, "StatefulSet nats: container nats: liveness and readiness"},
		{"writable root filesystem", "prod", workloadsCheck, func(t *testing.T, b *build) {
			f := false
			container(t, b, "fetcher").SecurityContext.ReadOnlyRootFilesystem = &f
		}, "fetcher: readOnlyRootFilesystem is not true"},
		{"root user", "dev", workloadsCheck, func(t *testing.T, b *build) {
			spec := &find[appsv1.StatefulSet](b, "postgres").Spec.Template.Spec
			f, root := false, int64(0)
			spec.SecurityContext.RunAsNonRoot, spec.SecurityContext.RunAsUser = &f, &root
			spec.Containers[0].SecurityContext.RunAsNonRoot = nil
		}, "postgres: runAsNonRoot is not true"},
		{"capabilities kept", "dev", workloadsCheck, func(t *testing.T, b *build) {
			find[batchv1.Job](b, "migrate").Spec.Template.Spec.Containers[0].SecurityContext.Capabilities = nil
		}, "Job migrate: container migrate does not drop ALL"},
		{"privilege escalation", "dev", workloadsCheck, func(t *testing.T, b *build) {
			yes := true
			container(t, b, "indexer").SecurityContext.AllowPrivilegeEscalation = &yes
		}, "allowPrivilegeEscalation is not false"},
		{"no memory limit", "prod", workloadsCheck, func(t *testing.T, b *build) {
			delete(container(t, b, "indexer").Resources.Limits, corev1.ResourceMemory)
		}, "indexer: memory request and limit are both required"},
		{"request above limit", "prod", workloadsCheck, func(t *testing.T, b *build) {
			container(t, b, "gateway").Resources.Requests[corev1.ResourceCPU] = resource.MustParse("2")
		}, "cpu request 2 above its limit"},
		{"fetcher pages beyond its memory", "prod", workloadsCheck, func(t *testing.T, b *build) {
			c := container(t, b, "fetcher")
			c.Env = append(c.Env, corev1.EnvVar{Name: "MAX_PAGE_BYTES", Value: "8388608"})
		}, "Deployment fetcher: container fetcher: limits.memory 256Mi is under the 2144 MiB a fetcher may take: 64 MiB base + " +
			"(BG_JOB_WORKERS=2 × 2 sites + RPCConcurrency 16) × MAX_PAGE_BYTES=8388608 × 13; lower MAX_PAGE_BYTES to at most 774333, or raise the limit to at least 2144 MiB"},
		{"fetcher memory cut", "dev", workloadsCheck, func(t *testing.T, b *build) {
			c := container(t, b, "fetcher")
			c.Resources.Limits[corev1.ResourceMemory] = resource.MustParse("128Mi")
		}, "Deployment fetcher: container fetcher: limits.memory 128Mi is under the 194 MiB a fetcher may take: 64 MiB base + " +
			"(BG_JOB_WORKERS=2 × 2 sites + RPCConcurrency 16) × MAX_PAGE_BYTES=524288 × 13; lower MAX_PAGE_BYTES to at most 258111, or raise the limit to at least 194 MiB"},
		{"fetcher workers beyond its memory", "dev", workloadsCheck, func(t *testing.T, b *build) {
			for _, cm := range all[corev1.ConfigMap](b) {
				if strings.HasPrefix(cm.Name, "xsw-fetcher") {
					cm.Data["BG_JOB_WORKERS"] = "16"
				}
			}
		}, "Deployment fetcher: container fetcher: limits.memory 256Mi is under the 376 MiB a fetcher may take: 64 MiB base + " +
			"(BG_JOB_WORKERS=16 × 2 sites + RPCConcurrency 16) × MAX_PAGE_BYTES=524288 × 13; " +
			"lower MAX_PAGE_BYTES to at most 322638, or lower BG_JOB_WORKERS to at most 6, or raise the limit to at least 376 MiB"},
		{"unknown variable", "dev", workloadsCheck, func(t *testing.T, b *build) {
			c := container(t, b, "gateway")
			c.Env = append(c.Env, corev1.EnvVar{Name: "WEBHOOK_SECRET", Value: "x"})
		}, "WEBHOOK_SECRET is not a variable gateway reads"},
		{"database for the fetcher", "prod", workloadsCheck, func(t *testing.T, b *build) {
			c := container(t, b, "fetcher")
			c.Env = append(c.Env, corev1.EnvVar{Name: "DATABASE_URL", Value: "postgres://x"})
		}, "DATABASE_URL is not a variable fetcher reads"},
		{"unknown variable in a ConfigMap", "prod", workloadsCheck, func(t *testing.T, b *build) {
			for _, cm := range all[corev1.ConfigMap](b) {
				if strings.HasPrefix(cm.Name, "xsw-indexer") {
					cm.Data["INDEXER_BATCH"] = "10"
				}
			}
		}, "INDEXER_BATCH is not a variable indexer reads"},
		{"per-site variable of an unlisted site", "prod", workloadsCheck, func(t *testing.T, b *build) {
			for _, cm := range all[corev1.ConfigMap](b) {
				if strings.HasPrefix(cm.Name, "xsw-common") {
					cm.Data["SOURCE_TOY_URL"] = "https://toy.example"
				}
			}
		}, `Deployment gateway: container gateway: SOURCE_TOY_URL is for site toy, which SOURCES="xsw,czbooks" does not list`},
		{"per-site variable of no site", "dev", workloadsCheck, func(t *testing.T, b *build) {
			c := container(t, b, "fetcher")
			c.Env = append(c.Env, corev1.EnvVar{Name: "SOURCE_CZ_BOOKS_URL", Value: "https://czbooks.net"})
		}, "SOURCE_CZ_BOOKS_URL is not a variable fetcher reads"},
		{"services disagree on the sites", "prod", workloadsCheck, func(t *testing.T, b *build) {
			c := container(t, b, "fetcher")
			c.Env = append(c.Env, corev1.EnvVar{Name: "SOURCES", Value: "xsw"})
		}, `the services disagree on SOURCES: "xsw" for Deployment fetcher; "xsw,czbooks" for Deployment gateway, Deployment indexer`},
		{"sites left to the default", "dev", workloadsCheck, func(t *testing.T, b *build) {
			for _, cm := range all[corev1.ConfigMap](b) {
				delete(cm.Data, "SOURCES")
			}
		}, "Deployment indexer: container indexer: SOURCES is not given"},
		{"malformed site id", "prod", workloadsCheck, func(t *testing.T, b *build) {
			for _, cm := range all[corev1.ConfigMap](b) {
				if strings.HasPrefix(cm.Name, "xsw-common") {
					cm.Data["SOURCES"] = "xsw,cz.books"
				}
			}
		}, `SOURCES="xsw,cz.books": "cz.books" is not a site id`},
		{"site without an adapter", "prod", workloadsCheck, func(t *testing.T, b *build) {
			for _, cm := range all[corev1.ConfigMap](b) {
				if strings.HasPrefix(cm.Name, "xsw-common") {
					cm.Data["SOURCES"] += ",toy"
				}
			}
		}, `Deployment fetcher: container fetcher: SOURCES="xsw,czbooks,toy": site toy has no adapter built into the fetcher`},
		{"probe on the wrong port", "dev", workloadsCheck, func(t *testing.T, b *build) {
			container(t, b, "fetcher").LivenessProbe.HTTPGet.Port = intstr.FromInt32(8000)
		}, "the liveness probe's port 8000 is not the service's FETCHER_HEALTH_ADDR (8001)"},
		{"readiness on /healthz", "dev", workloadsCheck, func(t *testing.T, b *build) {
			container(t, b, "indexer").ReadinessProbe.HTTPGet.Path = "/healthz"
		}, "the readiness probe must GET /readyz"},
		{"grace period under the drain", "prod", workloadsCheck, func(t *testing.T, b *build) {
			g := int64(10)
			deployment(t, b, "fetcher").Spec.Template.Spec.TerminationGracePeriodSeconds = &g
		}, "terminationGracePeriodSeconds (10) must exceed SHUTDOWN_TIMEOUT"},
		{"single-replica streams on a cluster", "prod", workloadsCheck, func(t *testing.T, b *build) {
			c := container(t, b, "gateway")
			c.Env = append(c.Env, corev1.EnvVar{Name: "NATS_REPLICAS", Value: "1"})
		}, `NATS_REPLICAS="1", but NATS runs 3 servers`},
		{"NATS_URL to nowhere", "dev", workloadsCheck, func(t *testing.T, b *build) {
			c := container(t, b, "indexer")
			c.Env = append(c.Env, corev1.EnvVar{Name: "NATS_URL", Value: "nats://nats-cluster:4222"})
		}, "names no Service port"},
		{"latest image", "prod", workloadsCheck, func(t *testing.T, b *build) {
			container(t, b, "gateway").Image = "ghcr.io/xswtw/xsw-gateway:latest"
		}, "has no pinned tag"},
		{"selector misses the pods", "dev", workloadsCheck, func(t *testing.T, b *build) {
			deployment(t, b, "gateway").Spec.Selector.MatchLabels["app.kubernetes.io/name"] = "gw"
		}, "the selector does not match"},

		{"job runs the service", "prod", checkMigrationJob, func(t *testing.T, b *build) {
			find[batchv1.Job](b, "migrate").Spec.Template.Spec.Containers[0].Args = nil
		}, "Job migrate runs [], want [migrate]"},
		{"job on another image", "dev", checkMigrationJob, func(t *testing.T, b *build) {
			find[batchv1.Job](b, "migrate").Spec.Template.Spec.Containers[0].Image = "xsw-gateway:dev"
		}, "is not the indexer's"},

		{"migration applied with the services", "prod", func(b *build) error { return checkApplyOrder(b, r) }, func(t *testing.T, b *build) {
			find[batchv1.Job](b, "migrate").Labels[serviceLabel] = "service"
		}, "Job xsw/migrate: app.kubernetes.io/component=service is true, want false"},
		{"service not named after itself", "dev", func(b *build) error { return checkApplyOrder(b, r) }, func(t *testing.T, b *build) {
			deployment(t, b, "fetcher").Labels[nameLabel] = "fetchers"
		}, `app.kubernetes.io/name="fetchers", want "fetcher"`},

		{"ConfigMap renamed", "dev", referencesCheck, func(t *testing.T, b *build) {
			container(t, b, "gateway").EnvFrom[1].ConfigMapRef.Name = "xsw-gateway"
		}, "no ConfigMap xsw-gateway"},
		{"Secret key missing", "dev", referencesCheck, func(t *testing.T, b *build) {
			delete(find[corev1.Secret](b, "xsw-secrets").Data, "admin-token")
		}, "Secret xsw-secrets has no key admin-token"},
		{"undocumented external Secret", "prod", func(b *build) error { return checkReferences(b, doc) }, func(t *testing.T, b *build) {
			doc = strings.ReplaceAll(r, "admin-token", "admin token")
		}, "Secret xsw-secrets: deploy/README.md does not name its key admin-token"},
		{"Service selects nothing", "dev", referencesCheck, func(t *testing.T, b *build) {
			find[corev1.Service](b, "gateway").Spec.Selector = map[string]string{"app.kubernetes.io/name": "api"}
		}, "Service gateway selects no pods"},
		{"Service targets an undeclared port", "prod", referencesCheck, func(t *testing.T, b *build) {
			find[corev1.Service](b, "nats").Spec.Ports[1].TargetPort = intstr.FromString("monitoring")
		}, "targets monitoring"},
		{"Ingress to a missing port", "prod", referencesCheck, func(t *testing.T, b *build) {
			find[networkingv1.Ingress](b, "gateway").Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port.Name = "web"
		}, "Ingress gateway: backend gateway port web"},
		{"mount of no volume", "prod", referencesCheck, func(t *testing.T, b *build) {
			find[appsv1.StatefulSet](b, "nats").Spec.Template.Spec.Volumes[1].Name = "pid"
		}, "mounts run, which is no volume"},

		{"gateway may leave", "prod", checkExposure, func(t *testing.T, b *build) {
			b.add(t, "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: gateway-out, namespace: xsw}\n"+
				"spec:\n  podSelector: {matchLabels: {app.kubernetes.io/name: gateway}}\n  policyTypes: [Egress]\n"+
				"  egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0}}]}]\n")
		}, "NetworkPolicy gateway-out lets gateway out to everywhere"},
		{"egress rule without peers", "dev", checkExposure, func(t *testing.T, b *build) {
			find[networkingv1.NetworkPolicy](b, "nats").Spec.Egress[0].To = nil
		}, "NetworkPolicy nats lets nats out to everywhere"},
		{"LoadBalancer Service", "dev", checkExposure, func(t *testing.T, b *build) {
			find[corev1.Service](b, "gateway").Spec.Type = corev1.ServiceTypeLoadBalancer
		}, "Service gateway is of type LoadBalancer"},
		{"Ingress to NATS", "prod", checkExposure, func(t *testing.T, b *build) {
			be := find[networkingv1.Ingress](b, "gateway").Spec.Rules[0].HTTP.Paths[0].Backend.Service
			be.Name, be.Port.Name = "nats", "monitor"
		}, "Ingress gateway exposes nats"},
		{"no default deny", "dev", checkExposure, func(t *testing.T, b *build) {
			remove(b, "NetworkPolicy", "default-deny")
		}, "reaches fetcher:8001"},
		{"fetchers shut in", "prod", connectionsCheck, func(t *testing.T, b *build) {
			remove(b, "NetworkPolicy", "fetcher-internet")
		}, "fetcher -> the internet:443/TCP is denied, want allowed"},
		{"metadata endpoint open", "prod", connectionsCheck, func(t *testing.T, b *build) {
			ip := find[networkingv1.NetworkPolicy](b, "fetcher-internet").Spec.Egress[0].To[0].IPBlock
			ip.Except = ip.Except[:3] // drops 169.254.0.0/16 and the rest
		}, "the cloud metadata endpoint:80/TCP is allowed, want denied"},
		{"indexer out on any port", "dev", checkExposure, func(t *testing.T, b *build) {
			find[networkingv1.NetworkPolicy](b, "indexer-webhooks").Spec.Egress[0].Ports = nil
		}, "NetworkPolicy indexer-webhooks lets indexer"},
		{"webhook egress to private ranges", "prod", connectionsCheck, func(t *testing.T, b *build) {
			find[networkingv1.NetworkPolicy](b, "indexer-webhooks").Spec.Egress[0].To[0].IPBlock.Except = nil
		}, "indexer -> a private address:443/TCP is allowed, want denied"},
		{"NATS open to the cluster", "dev", connectionsCheck, func(t *testing.T, b *build) {
			find[networkingv1.NetworkPolicy](b, "nats").Spec.Ingress[0].From[0] = networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{}}
		}, "(the ingress controller) -> nats:4222/TCP is allowed, want denied"},

		{"PodMonitor on a port the pod does not name", "prod", monitoringCheck, func(t *testing.T, b *build) {
			podMonitor(t, b, "fetcher").Spec.PodMetricsEndpoints[0].Port = ptr("http")
		}, "PodMonitor fetcher scrapes port http, which the container does not name"},
		{"PodMonitor on another port", "prod", monitoringCheck, func(t *testing.T, b *build) {
			ep := &podMonitor(t, b, "indexer").Spec.PodMetricsEndpoints[0]
			ep.Port, ep.PortNumber = nil, ptr(int32(8000))
		}, "PodMonitor indexer scrapes port 8000, but the service serves its metrics on 8002"},
		{"PodMonitor at another path", "prod", monitoringCheck, func(t *testing.T, b *build) {
			podMonitor(t, b, "gateway").Spec.PodMetricsEndpoints[0].Path = "/xsw/api/metrics"
		}, "PodMonitor gateway scrapes /xsw/api/metrics, but the service serves its metrics at /metrics"},
		{"service not scraped", "prod", monitoringCheck, func(t *testing.T, b *build) {
			remove(b, "PodMonitor", "indexer")
		}, "Deployment xsw/indexer: no PodMonitor scrapes its pods"},
		{"PodMonitor selecting nothing", "prod", monitoringCheck, func(t *testing.T, b *build) {
			podMonitor(t, b, "gateway").Spec.Selector.MatchLabels["app.kubernetes.io/name"] = "gw"
		}, "PodMonitor xsw/gateway scrapes no xsw service"},
		{"annotation of another port", "prod", monitoringCheck, func(t *testing.T, b *build) {
			deployment(t, b, "fetcher").Spec.Template.Annotations["prometheus.io/port"] = "8000"
		}, `Deployment xsw/fetcher: pod annotation prometheus.io/port="8000", want "8001"`},
		{"Prometheus shut out", "prod", monitoringCheck, func(t *testing.T, b *build) {
			remove(b, "NetworkPolicy", "metrics-monitoring")
		}, "Deployment xsw/fetcher: Prometheus (namespace monitoring) cannot reach its metrics port 8001"},
		{"alert rule changed in the build", "prod", monitoringCheck, func(t *testing.T, b *build) {
			find[monitoringv1.PrometheusRule](b, "xsw-alerts").Spec.Groups[0].Rules[0].Expr = intstr.FromString("vector(1)")
		}, "rule 0 (XswSiteCircuitOpen) differs from deploy/prometheus/alerts.yaml"},
		{"metrics policy on every port", "prod", prodConnections, func(t *testing.T, b *build) {
			find[networkingv1.NetworkPolicy](b, "metrics-monitoring").Spec.Ingress[0].Ports = nil
		}, "prometheus -> fetcher:8000/TCP is allowed, want denied"},

		{"two autoscalers", "prod", checkAutoscaling, func(t *testing.T, b *build) {
			b.add(t, "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: fetcher-cpu, namespace: xsw}\n"+
				"spec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: fetcher}\n  maxReplicas: 4\n"+
				"  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}}]\n")
		}, "Deployment fetcher has 2 autoscalers"},
		{"replicas under an autoscaler", "dev", checkAutoscaling, func(t *testing.T, b *build) {
			n := int32(2)
			deployment(t, b, "fetcher").Spec.Replicas = &n
		}, "Deployment fetcher sets replicas"},
		{"lag of no consumer", "prod", checkAutoscaling, func(t *testing.T, b *build) {
			find[scaledObject](b, "fetcher").Spec.Triggers[0].Metadata["consumer"] = "fetcher-interactive"
		}, `reads consumer "fetcher-interactive", which is no lane's consumer for a site of SOURCES="xsw,czbooks"`},
		{"lag of a site not served", "prod", checkAutoscaling, func(t *testing.T, b *build) {
			find[scaledObject](b, "fetcher").Spec.Triggers[1].Metadata["consumer"] = "fetch-prefetch-toy"
		}, `ScaledObject fetcher: trigger prefetch-lag-xsw reads consumer "fetch-prefetch-toy", which is no lane's consumer for a site of SOURCES="xsw,czbooks"`},
		{"lag of the legacy whole-lane consumer", "prod", checkAutoscaling, func(t *testing.T, b *build) {
			find[scaledObject](b, "fetcher").Spec.Triggers[1].Metadata["consumer"] = "fetch-prefetch"
		}, `ScaledObject fetcher: trigger prefetch-lag-xsw reads consumer "fetch-prefetch", the legacy consumer of a lane's requests stored before sites (almost always empty); read the lane's per-site consumers, fetch-<lane>-<site>`},
		{"site without triggers", "prod", checkAutoscaling, func(t *testing.T, b *build) {
			for _, cm := range all[corev1.ConfigMap](b) {
				if strings.HasPrefix(cm.Name, "xsw-common") {
					cm.Data["SOURCES"] += ",toy"
				}
			}
		}, `ScaledObject fetcher: no trigger on consumer fetch-prefetch-toy, site toy's prefetch lane (SOURCES="xsw,czbooks,toy")`},
		{"site's triggers dropped", "prod", checkAutoscaling, func(t *testing.T, b *build) {
			so := find[scaledObject](b, "fetcher")
			so.Spec.Triggers = slices.DeleteFunc(so.Spec.Triggers, func(tr scaleTrigger) bool { return strings.HasSuffix(tr.Metadata["consumer"], "-czbooks") })
		}, `ScaledObject fetcher: no trigger on consumer fetch-interactive-czbooks, site czbooks's interactive lane (SOURCES="xsw,czbooks")`},
		{"monitoring in another namespace", "prod", checkAutoscaling, func(t *testing.T, b *build) {
			find[scaledObject](b, "fetcher").Spec.Triggers[1].Metadata["natsServerMonitoringEndpoint"] = "nats.default.svc.cluster.local:8222"
		}, "is not <service>.<namespace> of the build's NATS"},
		{"KEDA's own validation", "prod", checkAutoscaling, func(t *testing.T, b *build) {
			n := int32(1)
			find[scaledObject](b, "fetcher").Spec.MaxReplicaCount = &n
		}, "MinReplicaCount=2 must be less than MaxReplicaCount=1"},
		{"one fetcher", "dev", checkAutoscaling, func(t *testing.T, b *build) {
			n := int32(1)
			for _, h := range all[autoscalingv2.HorizontalPodAutoscaler](b) {
				h.Spec.MinReplicas = &n
			}
		}, "fetchers may run 1 replicas"},

		{"budget blocks drains", "prod", checkDisruptionBudgets, func(t *testing.T, b *build) {
			two := intstr.FromInt32(3)
			find[policyv1.PodDisruptionBudget](b, "gateway").Spec.MinAvailable = &two
		}, "minAvailable 3 of Deployment gateway's 3 replicas allows no eviction"},
		{"no budget", "dev", checkDisruptionBudgets, func(t *testing.T, b *build) {
			remove(b, "PodDisruptionBudget", "nats")
		}, "StatefulSet nats runs 3 replicas without a PodDisruptionBudget"},

		{"more servers than routes", "prod", natsCheck, func(t *testing.T, b *build) {
			n := int32(5)
			find[appsv1.StatefulSet](b, "nats").Spec.Replicas = &n
		}, "no route to nats-4.nats-headless:6222"},
		{"JetStream off the volume", "dev", natsCheck, func(t *testing.T, b *build) {
			for _, cm := range all[corev1.ConfigMap](b) {
				cm.Data["nats.conf"] = strings.Replace(cm.Data["nats.conf"], `store_dir: "/data"`, `store_dir: "/tmp/js"`, 1)
			}
		}, `store_dir "/tmp/js" is not on the StatefulSet's volume claim`},
		{"misspelt NATS setting", "dev", natsCheck, func(t *testing.T, b *build) {
			for _, cm := range all[corev1.ConfigMap](b) {
				cm.Data["nats.conf"] = strings.Replace(cm.Data["nats.conf"], "lame_duck_duration:", "lame_duck_durations:", 1)
			}
		}, "lame_duck_durations"},
		{"NATS release drift", "prod", natsCheck, func(t *testing.T, b *build) {
			find[appsv1.StatefulSet](b, "nats").Spec.Template.Spec.Containers[0].Image = "nats:2.9.25-alpine"
		}, "runs nats-server 2.9.25, but the tests embed"},
		{"NATS without users", "dev", natsAuthCheck, func(t *testing.T, b *build) {
			for _, cm := range all[corev1.ConfigMap](b) {
				if _, ok := cm.Data["nats-auth.conf"]; ok {
					cm.Data["nats-auth.conf"] = ""
				}
			}
		}, "nats.conf: no users: any client may connect"},
		{"NATS password in the configuration", "dev", natsAuthCheck, func(t *testing.T, b *build) {
			editAuth(t, b, "password: $GATEWAY_NATS_PASSWORD", `password: "hunter2"`)
		}, "the password of user gateway does not come from a Secret"},
		{"gateway may publish fetched events", "dev", natsAuthCheck, func(t *testing.T, b *build) {
			editAuth(t, b, `"xsw.fetched.>", "xsw.job.>", "xsw.dead.>", "xsw.indexed.>"`, `"xsw.job.>", "xsw.dead.>", "xsw.indexed.>"`)
			editAuth(t, b, `"xsw.crawl.>"`, `"xsw.crawl.>", "xsw.fetched.>"`)
		}, "NATS user gateway (gateway) may publish to xsw.fetched.book.xsw.1"},
		{"fetchers may purge", "prod", natsAuthCheck, func(t *testing.T, b *build) {
			editAuth(t, b, `"$JS.API.STREAM.PURGE.>", `, "")
			editAuth(t, b, `"xsw.book.requested.prefetch.>"`, `"xsw.book.requested.prefetch.>", "$JS.API.STREAM.PURGE.*"`)
		}, "NATS user fetcher (fetcher) may publish to $JS.API.STREAM.PURGE.XSW_EVENTS"},
		{"fetchers may shrink a stream by update", "prod", natsAuthCheck, func(t *testing.T, b *build) {
			editAuth(t, b, `"$JS.API.CONSUMER.DELETE.>", "$JS.API.STREAM.UPDATE.>"`, `"$JS.API.CONSUMER.DELETE.>"`)
			editAuth(t, b, `"xsw.book.requested.prefetch.>"`, `"xsw.book.requested.prefetch.>", "$JS.API.STREAM.UPDATE.*"`)
		}, "NATS user fetcher (fetcher) may publish to $JS.API.STREAM.UPDATE.XSW_EVENTS"},
		{"the gateway may update a stream", "dev", natsAuthCheck, func(t *testing.T, b *build) {
			editAuth(t, b, `"$JS.API.STREAM.UPDATE.>"`, `"xsw.never"`) // the gateway's deny comes first
			editAuth(t, b, `"$JS.API.STREAM.CREATE.XSW_CRAWLS"`, `"$JS.API.STREAM.CREATE.XSW_CRAWLS", "$JS.API.STREAM.UPDATE.XSW_DEAD"`)
		}, "NATS user gateway (gateway) may publish to $JS.API.STREAM.UPDATE.XSW_DEAD"},
		{"indexer may do anything", "prod", natsAuthCheck, func(t *testing.T, b *build) {
			editAuth(t, b, ", permissions: $INDEXER_PERMISSIONS }", " }\n{ user: spare, password: $INDEXER_NATS_PASSWORD, permissions: $INDEXER_PERMISSIONS }")
		}, "NATS user indexer (indexer) has no publish and subscribe permissions"},
		{"NATS password in a ConfigMap", "dev", natsAuthCheck, func(t *testing.T, b *build) {
			for _, cm := range all[corev1.ConfigMap](b) {
				if strings.HasPrefix(cm.Name, "xsw-common") {
					cm.Data["NATS_URL"] = "nats://gateway:gateway-dev@nats:4222"
				}
			}
		}, "holds a NATS URL with credentials"},
		{"NATS password written out", "prod", natsAuthCheck, func(t *testing.T, b *build) {
			envVar(container(t, b, "gateway"), "NATS_URL").Value = "nats://gateway:hunter2@nats:4222"
		}, "the password must be $(VAR), VAR from the Secret"},
		{"NATS_URL without credentials", "dev", natsAuthCheck, func(t *testing.T, b *build) {
			envVar(container(t, b, "indexer"), "NATS_URL").Value = "nats://nats:4222"
		}, `NATS_URL="nats://nats:4222" names no user`},
		{"NATS password from a ConfigMap", "dev", natsAuthCheck, func(t *testing.T, b *build) {
			e := envVar(container(t, b, "fetcher"), "NATS_PASSWORD")
			e.ValueFrom = &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "x"}}
		}, "NATS_URL takes its password from NATS_PASSWORD, which does not come from a Secret"},
		{"two services, one NATS user", "prod", natsAuthCheck, func(t *testing.T, b *build) {
			envVar(container(t, b, "fetcher"), "NATS_URL").Value = "nats://gateway:$(NATS_PASSWORD)@nats:4222"
		}, "connects to NATS as gateway: each service has its own user, fetcher"},
		{"NATS password from another user's key", "prod", natsAuthCheck, func(t *testing.T, b *build) {
			envVar(container(t, b, "indexer"), "NATS_PASSWORD").ValueFrom.SecretKeyRef.Key = "nats-admin-password"
		}, "takes the password of NATS user indexer from Secret key xsw-secrets/nats-admin-password"},
		{"NATS password defined below its use", "dev", workloadsCheck, func(t *testing.T, b *build) {
			c := container(t, b, "gateway")
			i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "NATS_PASSWORD" })
			j := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "NATS_URL" })
			c.Env[i], c.Env[j] = c.Env[j], c.Env[i]
		}, "NATS_URL refers to $(NATS_PASSWORD), which is not defined above it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := overlay(t, tt.overlay).clone(t)
			if err := tt.check(b); err != nil {
				t.Fatalf("the unbroken %s build fails already: %v", tt.overlay, err)
			}
			tt.breakIt(t, b)
			wantError(t, tt.check(b), tt.want)
		})
	}
}

func TestComposeChecksCatch(t *testing.T) {
	root := mustRoot(t)
	v := serviceVars(t)
	nats := embeddedNATS(t)
	tests := []struct {
		name    string
		breakIt func(p *types.Project)
		want    string
	}{
		{"database for the fetcher", func(p *types.Project) {
			u := "postgres://x"
			p.Services["fetcher"].Environment["DATABASE_URL"] = &u
		}, "service fetcher: DATABASE_URL is not a variable fetcher reads"},
		{"per-site variable of an unlisted site", func(p *types.Project) {
			p.Services["fetcher"].Environment["SOURCE_TOY_RATE_LIMIT"] = ptr("5")
		}, `service fetcher: SOURCE_TOY_RATE_LIMIT is for site toy, which SOURCES="xsw,czbooks" does not list`},
		{"site without an adapter", func(p *types.Project) {
			for _, svc := range []string{"fetcher", "gateway", "indexer"} {
				p.Services[svc].Environment["SOURCES"] = ptr("xsw,czbooks,toy")
			}
		}, `service fetcher: SOURCES="xsw,czbooks,toy": site toy has no adapter built into the fetcher`},
		{"gateway without the sites", func(p *types.Project) {
			delete(p.Services["gateway"].Environment, "SOURCES")
		}, "service gateway: SOURCES is not given"},
		{"services disagree on the sites", func(p *types.Project) {
			p.Services["indexer"].Environment["SOURCES"] = ptr("xsw,czbooks,toy")
		}, `the services disagree on SOURCES: "xsw,czbooks" for service fetcher, service gateway; "xsw,czbooks,toy" for service indexer`},
		{"no health check", func(p *types.Project) {
			s := p.Services["gateway"]
			s.HealthCheck = nil
			p.Services["gateway"] = s
		}, "service gateway: no exec-form health check"},
		{"health check of another port", func(p *types.Project) {
			s := p.Services["indexer"]
			s.HealthCheck.Test[2] = "http://127.0.0.1:8000/readyz"
		}, "the health check asks port 8000, but indexer listens on 8002"},
		{"fetcher memory cut", func(p *types.Project) {
			s := p.Services["fetcher"]
			s.Deploy.Resources.Limits = &types.Resource{MemoryBytes: 128 << 20}
			p.Services["fetcher"] = s
		}, "service fetcher: the memory limit 128 MiB is under the 194 MiB a fetcher may take: 64 MiB base + " +
			"(BG_JOB_WORKERS=2 × 2 sites + RPCConcurrency 16) × MAX_PAGE_BYTES=524288 × 13; lower MAX_PAGE_BYTES to at most 258111, or raise the limit to at least 194 MiB"},
		{"fetcher pages beyond its memory", func(p *types.Project) {
			s := p.Services["fetcher"]
			s.MemLimit = 256 << 20
			s.Environment["MAX_PAGE_BYTES"] = ptr("8388608")
			p.Services["fetcher"] = s
		}, "service fetcher: the memory limit 256 MiB is under the 2144 MiB a fetcher may take: 64 MiB base + " +
			"(BG_JOB_WORKERS=2 × 2 sites + RPCConcurrency 16) × MAX_PAGE_BYTES=8388608 × 13; lower MAX_PAGE_BYTES to at most 774333, or raise the limit to at least 2144 MiB"},
		{"one fetcher", func(p *types.Project) {
			s := p.Services["fetcher"]
			one := 1
			s.Deploy.Replicas = &one
			p.Services["fetcher"] = s
		}, "the fetchers do not run two replicas"},
		{"no migration", func(p *types.Project) {
			s := p.Services["migrate"]
			s.Command = nil
			p.Services["migrate"] = s
		}, "0 services run `indexer migrate`"},
		{"gateway before the schema", func(p *types.Project) {
			delete(p.Services["gateway"].DependsOn, "migrate")
		}, "service gateway: reads DATABASE_URL but does not wait for the migration"},
		{"no restart", func(p *types.Project) {
			s := p.Services["indexer"]
			s.Restart = ""
			p.Services["indexer"] = s
		}, `service indexer: restart policy ""`},
		{"writable", func(p *types.Project) {
			s := p.Services["fetcher"]
			s.ReadOnly = false
			p.Services["fetcher"] = s
		}, "service fetcher: read_only is not set"},
		{"NATS without JetStream", func(p *types.Project) {
			s := p.Services["nats"]
			s.Command = types.ShellCommand{"-m", "8222"}
			p.Services["nats"] = s
		}, "service nats: JetStream is not enabled"},
		{"NATS release drift", func(p *types.Project) {
			s := p.Services["nats"]
			s.Image = "nats:2.10.0-alpine"
			p.Services["nats"] = s
		}, "runs nats-server 2.10.0, but the tests embed"},
		{"Postgres without a volume", func(p *types.Project) {
			s := p.Services["postgres"]
			s.Volumes = nil
			p.Services["postgres"] = s
		}, "service postgres: keeps its data in no volume"},
		{"image of another service", func(p *types.Project) {
			p.Services["fetcher"].Build.Args["SERVICE"] = ptr("gateway")
		}, `service fetcher: image xsw-fetcher:local is built from Dockerfile (SERVICE=gateway VERSION=), which runs "gateway"`},
		{"build argument the Dockerfile ignores", func(p *types.Project) {
			p.Services["indexer"].Build.Args["VERSON"] = ptr("v1")
		}, "service indexer: build argument VERSON: Dockerfile declares no such ARG"},
		{"cut drain", func(p *types.Project) {
			s := p.Services["fetcher"]
			s.StopGracePeriod = nil
			s.Environment["SHUTDOWN_TIMEOUT"] = ptr("30s")
			p.Services["fetcher"] = s
		}, "stop_grace_period (10s) must exceed SHUTDOWN_TIMEOUT (30s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := composeProject(t)
			if err := checkCompose(root, p, v, nats); err != nil {
				t.Fatalf("the unbroken compose file fails already: %v", err)
			}
			tt.breakIt(p)
			wantError(t, checkCompose(root, p, v, nats), tt.want)
		})
	}

	// The schema validation of compose-spec's loader, on a broken copy of the file.
	data, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	broken := strings.Replace(string(data), "    restart: unless-stopped\n", "    restart: unless-stopped\n    restart_policy: always\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = loadCompose(t.Context(), dir, composeEnv)
	wantError(t, err, "restart_policy")
}

func TestComposeNATSAuthCatches(t *testing.T) {
	root := mustRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	good := string(data)
	tests := []struct {
		name    string
		breakIt func(raw *string, p *types.Project)
		want    string
	}{
		{"password written out", func(raw *string, p *types.Project) {
			*raw = strings.Replace(*raw, "${FETCHER_NATS_PASSWORD:-fetcher-local}@nats", "hunter2@nats", 1)
		}, `NATS_URL: the NATS password "hunter2" is written out`},
		{"server password written out", func(raw *string, p *types.Project) {
			*raw = strings.Replace(*raw, "INDEXER_NATS_PASSWORD: ${INDEXER_NATS_PASSWORD:-indexer-local}", "INDEXER_NATS_PASSWORD: indexer-local", 1)
		}, `INDEXER_NATS_PASSWORD: the NATS password "indexer-local" is written out`},
		{"another service's user", func(raw *string, p *types.Project) {
			p.Services["indexer"].Environment["NATS_URL"] = ptr("nats://fetcher:fetcher-local@nats:4222")
		}, "service indexer connects to NATS as fetcher: each service has its own user, indexer"},
		{"passwords that disagree", func(raw *string, p *types.Project) {
			p.Services["gateway"].Environment["NATS_URL"] = ptr("nats://gateway:other@nats:4222")
		}, "service gateway: the password in NATS_URL is not user gateway's"},
		{"no users", func(raw *string, p *types.Project) {
			s := p.Services["nats"]
			s.Command = types.ShellCommand{"--jetstream", "--store_dir", "/data"}
			p.Services["nats"] = s
		}, "service nats: no --config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, raw := composeProject(t), good
			if err := checkComposeNATSAuth(raw, p); err != nil {
				t.Fatalf("the unbroken compose file fails already: %v", err)
			}
			tt.breakIt(&raw, p)
			wantError(t, checkComposeNATSAuth(raw, p), tt.want)
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestDockerfileChecksCatch(t *testing.T) {
	root := mustRoot(t)
	v := serviceVars(t)
	svc := func(s string) map[string]string { return map[string]string{"SERVICE": s} }
	tests := []struct {
		name, file string
		args       map[string]string
		old, new   string
		want       string
	}{
		{"workspace mode", serviceDockerfile, svc("gateway"), "ENV GOWORK=off CGO_ENABLED=0\nWORKDIR /src\n", "ENV CGO_ENABLED=0\nWORKDIR /src\n", "runs go without GOWORK=off"},
		{"dynamic binary", serviceDockerfile, svc("fetcher"), "ENV GOWORK=off CGO_ENABLED=0\nWORKDIR /src\n", "ENV GOWORK=off\nWORKDIR /src\n", "go build without CGO_ENABLED=0"},
		{"root user", serviceDockerfile, svc("indexer"), "USER 65532:65532", "USER root", `final stage USER "root"`},
		{"named user", allInOneDockerfile, nil, "USER 65532:65532", "USER nonroot:nonroot", "want a numeric uid"},
		{"fat base", serviceDockerfile, svc("gateway"), "FROM gcr.io/distroless/static-debian12:nonroot", "FROM debian:12", "final stage FROM debian:12"},
		{"floating base", serviceDockerfile, svc("fetcher"), "FROM golang:1.26 AS build", "FROM golang AS build", `base image "golang" has no pinned tag`},
		{"copy of nothing", serviceDockerfile, svc("indexer"), "COPY platform/ platform/", "COPY platfrom/ platform/", "COPY platfrom/: no such path"}, //nolint:misspell // the misspelt path is what the check must catch
		{"replacement not copied", serviceDockerfile, svc("gateway"), "COPY platform/go.mod platform/go.sum platform/\n", "", "replaces github.com/xswtw/xsw/platform with platform"},
		{"shell entrypoint", serviceDockerfile, svc("fetcher"), `ENTRYPOINT ["/fetcher"]`, "ENTRYPOINT /fetcher", "ENTRYPOINT in shell form"},
		{"entrypoint not copied", serviceDockerfile, svc("gateway"), `ENTRYPOINT ["/gateway"]`, `ENTRYPOINT ["/server"]`, "is not a file the final stage copies"},
		{"another service's image", serviceDockerfile, svc("gateway"), "COPY --from=build /out/gateway /gateway\nEXPOSE 8000\nENTRYPOINT [\"/gateway\"]",
			"COPY --from=build /out/gateway /fetcher\nEXPOSE 8000\nENTRYPOINT [\"/fetcher\"]", `SERVICE=gateway builds an image that runs "fetcher"`},
		{"build argument no ARG declares", serviceDockerfile, map[string]string{"SERVICE": "indexer", "VERSION": "v1"}, "ARG VERSION\n", "", "build argument VERSION: no ARG"},
		{"copy from no stage", allInOneDockerfile, nil, "COPY --from=healthcheck", "COPY --from=probe", "COPY --from=probe is no earlier stage"},
		{"unread variable", allInOneDockerfile, nil, "ENV DATA_DIR=/data HTTP_ADDR=:8000", "ENV DATA_DIR=/data HTTP_ADDR=:8000 STORE=/data", "final stage ENV STORE"},
		{"per-site variable of an unlisted site", allInOneDockerfile, nil, "ENV DATA_DIR=/data HTTP_ADDR=:8000", "ENV DATA_DIR=/data HTTP_ADDR=:8000 SOURCE_TOY_URL=http://toy",
			`final stage ENV: SOURCE_TOY_URL is for site toy, which SOURCES="xsw" does not list`},
		{"wrong port", serviceDockerfile, svc("indexer"), "EXPOSE 8002", "EXPOSE 8000", "does not include 8002"},
		{"single stage", serviceDockerfile, nil, "", "FROM gcr.io/distroless/static-debian12:nonroot\nCOPY services/gateway/go.mod /gateway\n" +
			"USER 65532\nEXPOSE 8000\nENTRYPOINT [\"/gateway\"]\n", "one stage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(root, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if tt.old != "" {
				good, err := parseDockerfileText(tt.file, data, tt.args)
				if err != nil {
					t.Fatal(err)
				}
				if err := checkDockerfile(root, good, v); err != nil {
					t.Fatalf("the unbroken %s fails already: %v", good, err)
				}
			}
			text := tt.new // an empty old replaces the whole file
			if tt.old != "" {
				if !strings.Contains(string(data), tt.old) {
					t.Fatalf("%s does not contain %q any more: update the test", tt.file, tt.old)
				}
				text = strings.Replace(string(data), tt.old, tt.new, 1)
			}
			bad, err := parseDockerfileText(tt.file, []byte(text), tt.args)
			if err != nil {
				t.Fatal(err)
			}
			wantError(t, checkDockerfile(root, bad, v), tt.want)
		})
	}
}

// The services' Dockerfile builds the service SERVICE names, and nothing without it.
func TestDockerfileNeedsService(t *testing.T) {
	for _, args := range []map[string]string{nil, {"SERVICE": ""}} {
		_, err := parseDockerfile(mustRoot(t), serviceDockerfile, args)
		wantError(t, err, "FROM ${SERVICE} names no image or stage")
	}
}
