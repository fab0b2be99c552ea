package check

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// workload is anything that runs pods.
type workload struct {
	kind, name, namespace string
	selector              *metav1.LabelSelector
	replicas              *int32
	template              *corev1.PodTemplateSpec
}

func (w workload) String() string { return w.kind + " " + w.name }

func workloads(b *build) []workload {
	var out []workload
	for _, o := range b.objects {
		switch v := o.obj.(type) {
		case *appsv1.Deployment:
			out = append(out, workload{o.kind, o.name, o.namespace, v.Spec.Selector, v.Spec.Replicas, &v.Spec.Template})
		case *appsv1.StatefulSet:
			out = append(out, workload{o.kind, o.name, o.namespace, v.Spec.Selector, v.Spec.Replicas, &v.Spec.Template})
		case *batchv1.Job:
			out = append(out, workload{o.kind, o.name, o.namespace, v.Spec.Selector, nil, &v.Spec.Template})
		}
	}
	return out
}

// serviceOf returns the xsw service an image holds ("gateway" for
// ghcr.io/xswtw/xsw-gateway:1.2), or "" for another image.
func serviceOf(image string) string {
	image, _, _ = strings.Cut(image, "@")
	base := path.Base(image)
	base, _, _ = strings.Cut(base, ":")
	svc, ok := strings.CutPrefix(base, "xsw-")
	if _, known := services[svc]; !ok || !known {
		return ""
	}
	return svc
}

// secretValue stands for a value a manifest takes from a Secret or the downward API.
const secretValue = "\x00from elsewhere"

// containerEnv returns the container's environment as the kubelet would set it:
// envFrom sources in order, then env. Values from a Secret or a field are secretValue.
func containerEnv(b *build, ns string, c *corev1.Container) map[string]string {
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			for _, cm := range all[corev1.ConfigMap](b) {
				if cm.Name == from.ConfigMapRef.Name && cm.Namespace == ns {
					for k, v := range cm.Data {
						env[from.Prefix+k] = v
					}
				}
			}
		case from.SecretRef != nil:
			for _, s := range all[corev1.Secret](b) {
				if s.Name == from.SecretRef.Name && s.Namespace == ns {
					for k := range s.Data {
						env[from.Prefix+k] = secretValue
					}
					for k := range s.StringData {
						env[from.Prefix+k] = secretValue
					}
				}
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			env[e.Name] = secretValue
		} else {
			env[e.Name] = e.Value
		}
	}
	return env
}

// parseDuration reads a duration as platform/config does: a bare number is seconds.
func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(f * float64(time.Second)), nil
	}
	return time.ParseDuration(s)
}

// addrPort returns the port of a listen address such as ":8000".
func addrPort(addr string) (int32, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(p, 10, 32)
	return int32(n), err
}

// setting returns the value a service runs with: the environment's, else its default.
func setting(env map[string]string, v vars, name string) string {
	if s, ok := env[name]; ok {
		return s
	}
	return v[name]
}

func resolvePort(c *corev1.Container, p intstr.IntOrString) (int32, bool) {
	if p.Type == intstr.Int {
		return p.IntVal, true
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// checkSecurity reports a pod that could run as root, write its root filesystem, gain
// privileges or capabilities, or run without the default seccomp profile.
func checkSecurity(w workload) []error {
	var errs []error
	spec := &w.template.Spec
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		errs = append(errs, fmt.Errorf("%s: automountServiceAccountToken is not false (nothing here calls the API server)", w))
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		errs = append(errs, fmt.Errorf("%s: shares a host namespace", w))
	}
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		sc := c.SecurityContext
		if sc == nil {
			errs = append(errs, fmt.Errorf("%s: container %s has no securityContext", w, c.Name))
			continue
		}
		nonRoot := sc.RunAsNonRoot
		if nonRoot == nil {
			nonRoot = psc.RunAsNonRoot
		}
		if nonRoot == nil || !*nonRoot {
			errs = append(errs, fmt.Errorf("%s: container %s: runAsNonRoot is not true", w, c.Name))
		}
		uid := sc.RunAsUser
		if uid == nil {
			uid = psc.RunAsUser
		}
		if uid != nil && *uid == 0 {
			errs = append(errs, fmt.Errorf("%s: container %s runs as uid 0", w, c.Name))
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			errs = append(errs, fmt.Errorf("%s: container %s: readOnlyRootFilesystem is not true", w, c.Name))
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			errs = append(errs, fmt.Errorf("%s: container %s: allowPrivilegeEscalation is not false", w, c.Name))
		}
		if sc.Privileged != nil && *sc.Privileged {
			errs = append(errs, fmt.Errorf("%s: container %s is privileged", w, c.Name))
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			errs = append(errs, fmt.Errorf("%s: container %s does not drop ALL capabilities (and add none)", w, c.Name))
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = psc.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			errs = append(errs, fmt.Errorf("%s: container %s: seccomp profile is not RuntimeDefault", w, c.Name))
		}
	}
	return errs
}

// checkResources reports a container without CPU and memory requests and limits.
func checkResources(w workload) []error {
	var errs []error
	for _, c := range slices.Concat(w.template.Spec.InitContainers, w.template.Spec.Containers) {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[r]
			lim, hasLim := c.Resources.Limits[r]
			switch {
			case !hasReq || !hasLim:
				errs = append(errs, fmt.Errorf("%s: container %s: %s request and limit are both required", w, c.Name, r))
			case req.Cmp(lim) > 0:
				errs = append(errs, fmt.Errorf("%s: container %s: %s request %s above its limit %s", w, c.Name, r, req.String(), lim.String()))
			}
		}
	}
	return errs
}

// checkWorkloads holds every per-workload rule: security, resources, probes, images, and
// for xsw's own containers the variables, the sites (the same for every service, each
// built into the fetcher), the fetcher's memory limit against the pages it may hold
// (memory_test.go), probe paths and ports and the drain time.
func checkWorkloads(b *build, all map[string]vars) error {
	var errs []error
	bySites := map[string][]string{} // the sites in force: the services given them
	for _, w := range workloads(b) {
		errs = append(errs, checkSecurity(w)...)
		errs = append(errs, checkResources(w)...)
		spec := &w.template.Spec

		if w.selector == nil {
			if w.kind != "Job" {
				errs = append(errs, fmt.Errorf("%s: no selector", w))
			}
		} else if sel, err := metav1.LabelSelectorAsSelector(w.selector); err != nil || !sel.Matches(labels.Set(w.template.Labels)) {
			errs = append(errs, fmt.Errorf("%s: the selector does not match the pod template's labels", w))
		}

		for i := range spec.Containers {
			c := &spec.Containers[i]
			ref := fmt.Sprintf("%s: container %s", w, c.Name)
			if tag := imageTag(c.Image); tag == "" || tag == "latest" {
				errs = append(errs, fmt.Errorf("%s: image %q has no pinned tag", ref, c.Image))
			}
			if w.kind != "Job" && (c.LivenessProbe == nil || c.ReadinessProbe == nil) {
				errs = append(errs, fmt.Errorf("%s: liveness and readiness probes are both required", ref))
			}
			svc := serviceOf(c.Image)
			if svc == "" {
				continue
			}
			v := all[svc]
			env := containerEnv(b, w.namespace, c)
			// A variable may also be there only for the kubelet to expand into another
			// ($(NATS_PASSWORD) in NATS_URL), defined above the one using it.
			expanded := map[string]bool{}
			for i, e := range c.Env {
				for _, name := range k8sVarRefs(e.Value) {
					expanded[name] = true
					if !slices.ContainsFunc(c.Env[:i], func(d corev1.EnvVar) bool { return d.Name == name }) {
						errs = append(errs, fmt.Errorf("%s: %s refers to $(%s), which is not defined above it (the kubelet would leave the text as it is)", ref, e.Name, name))
					}
				}
			}
			for name := range env {
				if !v.allows(name) && !expanded[name] {
					errs = append(errs, fmt.Errorf("%s: %s is not a variable %s reads (it reads %v)", ref, name, svc, v.names()))
				}
			}
			sites, siteErrs := checkSites(env, v, w.kind != "Job")
			for _, err := range siteErrs {
				errs = append(errs, fmt.Errorf("%s: %w", ref, err))
			}
			if w.kind == "Job" {
				continue
			}
			if sites != "" {
				bySites[sites] = append(bySites[sites], w.String())
			}
			if svc == "fetcher" {
				for _, err := range checkAdapters(sites) {
					errs = append(errs, fmt.Errorf("%s: %w", ref, err))
				}
				if lim, ok := c.Resources.Limits[corev1.ResourceMemory]; ok { // else checkResources complains
					if err := checkFetcherMemory(env, sites, "limits.memory "+lim.String(), lim.Value()); err != nil {
						errs = append(errs, fmt.Errorf("%s: %w", ref, err))
					}
				}
			}
			addr := setting(env, v, services[svc])
			port, err := addrPort(addr)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %s=%q: %w", ref, services[svc], addr, err))
			}
			for _, p := range []struct {
				what, path string
				probe      *corev1.Probe
			}{{"liveness", "/healthz", c.LivenessProbe}, {"readiness", "/readyz", c.ReadinessProbe}} {
				if p.probe == nil {
					continue
				}
				g := p.probe.HTTPGet
				if g == nil || g.Path != p.path {
					errs = append(errs, fmt.Errorf("%s: the %s probe must GET %s", ref, p.what, p.path))
					continue
				}
				if got, ok := resolvePort(c, g.Port); !ok || got != port {
					errs = append(errs, fmt.Errorf("%s: the %s probe's port %s is not the service's %s (%d)", ref, p.what, g.Port.String(), services[svc], port))
				}
			}
			if s, ok := env["SHUTDOWN_TIMEOUT"]; ok {
				d, err := parseDuration(s)
				grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
				if spec.TerminationGracePeriodSeconds != nil {
					grace = *spec.TerminationGracePeriodSeconds
				}
				if err != nil || time.Duration(grace)*time.Second <= d {
					errs = append(errs, fmt.Errorf("%s: terminationGracePeriodSeconds (%d) must exceed SHUTDOWN_TIMEOUT (%s) to drain", ref, grace, s))
				}
			}
			if w.kind == "Deployment" {
				errs = append(errs, checkNATSURL(b, w, ref, env, v)...)
			}
		}
	}
	if err := sameSites(bySites); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkNATSURL reports a service not pointed at the cluster's NATS, or provisioning
// streams with more or fewer replicas than it has servers.
func checkNATSURL(b *build, w workload, ref string, env map[string]string, v vars) []error {
	var errs []error
	sts := find[appsv1.StatefulSet](b, "nats")
	if sts == nil || sts.Spec.Replicas == nil {
		return []error{fmt.Errorf("%s: no NATS StatefulSet with a replica count", ref)}
	}
	if got, want := setting(env, v, "NATS_REPLICAS"), strconv.Itoa(int(*sts.Spec.Replicas)); got != want {
		errs = append(errs, fmt.Errorf("%s: NATS_REPLICAS=%q, but NATS runs %s servers", ref, got, want))
	}
	raw := setting(env, v, "NATS_URL")
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "nats" || u.Port() == "" || u.Path != "" {
		return append(errs, fmt.Errorf("%s: NATS_URL=%q is not nats://user:password@service:port", ref, raw))
	}
	host, port := u.Hostname(), u.Port()
	svc := find[corev1.Service](b, strings.TrimSuffix(strings.TrimSuffix(host, ".svc.cluster.local"), "."+w.namespace))
	if svc == nil || !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return strconv.Itoa(int(p.Port)) == port }) {
		errs = append(errs, fmt.Errorf("%s: NATS_URL=%q names no Service port of the build", ref, raw))
	}
	return errs
}

// imageTag returns the tag (or digest) of an image reference, "" when it has none.
func imageTag(image string) string {
	if _, digest, ok := strings.Cut(image, "@"); ok {
		return digest
	}
	base := path.Base(image)
	_, tag, _ := strings.Cut(base, ":")
	return tag
}

func TestWorkloads(t *testing.T) {
	v := serviceVars(t)
	forEachBuild(t, func(b *build) error { return checkWorkloads(b, v) })
}

// checkMigrationJob reports a migration Job that does not run `indexer migrate` once.
func checkMigrationJob(b *build) error {
	j := find[batchv1.Job](b, "migrate")
	if j == nil {
		return errors.New("no Job migrate")
	}
	var errs []error
	spec := j.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		return fmt.Errorf("Job migrate: %d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	if serviceOf(c.Image) != "indexer" {
		errs = append(errs, fmt.Errorf("Job migrate: image %q is not the indexer's", c.Image))
	}
	if args := slices.Concat(c.Command, c.Args); !slices.Equal(args, []string{"migrate"}) {
		errs = append(errs, fmt.Errorf("Job migrate runs %q, want [migrate] (the image's entrypoint is the indexer)", args))
	}
	if spec.RestartPolicy != corev1.RestartPolicyNever && spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		errs = append(errs, fmt.Errorf("Job migrate: restartPolicy %q", spec.RestartPolicy))
	}
	if j.Spec.BackoffLimit == nil || j.Spec.ActiveDeadlineSeconds == nil {
		errs = append(errs, errors.New("Job migrate: backoffLimit and activeDeadlineSeconds bound its retries"))
	}
	if p := j.Spec.Parallelism; p != nil && *p != 1 {
		errs = append(errs, errors.New("Job migrate: one migration at a time"))
	}
	return errors.Join(errs...)
}

func TestMigrationJob(t *testing.T) {
	forEachBuild(t, checkMigrationJob)
}

// checkReferences reports a name one object uses to find another that the build does not
// hold. A Secret missing from the build is one the operator creates: deploy/README.md
// must name it and each key read from it.
func checkReferences(b *build, readme string) error {
	var errs []error
	has := func(kind, name string) bool {
		return slices.ContainsFunc(b.objects, func(o *object) bool { return o.kind == kind && o.name == name })
	}
	external := map[string]map[string]bool{} // Secret -> keys
	needSecret := func(ref, name, key string) {
		if has("Secret", name) {
			if key != "" {
				for _, s := range all[corev1.Secret](b) {
					_, inData := s.Data[key]
					_, inString := s.StringData[key]
					if s.Name == name && !inData && !inString {
						errs = append(errs, fmt.Errorf("%s: Secret %s has no key %s", ref, name, key))
					}
				}
			}
			return
		}
		if external[name] == nil {
			external[name] = map[string]bool{}
		}
		if key != "" {
			external[name][key] = true
		}
	}
	needConfigMap := func(ref, name, key string) {
		cm := find[corev1.ConfigMap](b, name)
		switch {
		case cm == nil:
			errs = append(errs, fmt.Errorf("%s: no ConfigMap %s", ref, name))
		case key != "":
			if _, ok := cm.Data[key]; !ok {
				errs = append(errs, fmt.Errorf("%s: ConfigMap %s has no key %s", ref, name, key))
			}
		}
	}
	pods := workloads(b)
	for _, w := range pods {
		spec := &w.template.Spec
		for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
			ref := fmt.Sprintf("%s: container %s", w, c.Name)
			for _, from := range c.EnvFrom {
				if from.ConfigMapRef != nil {
					needConfigMap(ref, from.ConfigMapRef.Name, "")
				}
				if from.SecretRef != nil {
					needSecret(ref, from.SecretRef.Name, "")
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					continue
				}
				if r := e.ValueFrom.SecretKeyRef; r != nil {
					key := r.Key
					if r.Optional != nil && *r.Optional && has("Secret", r.Name) {
						key = "" // an optional key may be absent from a Secret the build makes
					}
					needSecret(ref, r.Name, key)
				}
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
					needConfigMap(ref, r.Name, r.Key)
				}
			}
			mounts := map[string]bool{}
			for _, vol := range spec.Volumes {
				mounts[vol.Name] = true
			}
			if sts := find[appsv1.StatefulSet](b, w.name); sts != nil && w.kind == "StatefulSet" {
				for _, pvc := range sts.Spec.VolumeClaimTemplates {
					mounts[pvc.Name] = true
				}
			}
			for _, m := range c.VolumeMounts {
				if !mounts[m.Name] {
					errs = append(errs, fmt.Errorf("%s: mounts %s, which is no volume", ref, m.Name))
				}
			}
		}
		for _, vol := range spec.Volumes {
			if vol.ConfigMap != nil {
				needConfigMap(w.String(), vol.ConfigMap.Name, "")
			}
			if vol.Secret != nil {
				needSecret(w.String(), vol.Secret.SecretName, "")
			}
		}
	}
	for name, keys := range external {
		if !strings.Contains(readme, name) {
			errs = append(errs, fmt.Errorf("Secret %s is not in the build, and deploy/README.md does not say to create it", name))
		}
		for k := range keys {
			if !strings.Contains(readme, k) {
				errs = append(errs, fmt.Errorf("Secret %s: deploy/README.md does not name its key %s", name, k))
			}
		}
	}

	selects := func(sel labels.Selector) []workload {
		var out []workload
		for _, w := range pods {
			if sel.Matches(labels.Set(w.template.Labels)) {
				out = append(out, w)
			}
		}
		return out
	}
	for _, s := range all[corev1.Service](b) {
		ref := "Service " + s.Name
		if len(s.Spec.Selector) == 0 {
			errs = append(errs, fmt.Errorf("%s: no selector", ref))
			continue
		}
		backends := selects(labels.SelectorFromSet(s.Spec.Selector))
		if len(backends) == 0 {
			errs = append(errs, fmt.Errorf("%s selects no pods", ref))
		}
		for _, p := range s.Spec.Ports {
			if p.TargetPort.Type != intstr.String {
				continue // a number needs no declaration
			}
			for _, w := range backends {
				if !slices.ContainsFunc(w.template.Spec.Containers, func(c corev1.Container) bool {
					_, ok := resolvePort(&c, p.TargetPort)
					return ok
				}) {
					errs = append(errs, fmt.Errorf("%s: port %s targets %s, which %s does not declare", ref, p.Name, p.TargetPort.String(), w))
				}
			}
		}
	}
	for _, sts := range all[appsv1.StatefulSet](b) {
		s := find[corev1.Service](b, sts.Spec.ServiceName)
		if s == nil || s.Spec.ClusterIP != corev1.ClusterIPNone {
			errs = append(errs, fmt.Errorf("StatefulSet %s: serviceName %q is no headless Service", sts.Name, sts.Spec.ServiceName))
		}
	}
	for _, ing := range all[networkingv1.Ingress](b) {
		for _, be := range ingressBackends(ing) {
			s := find[corev1.Service](b, be.Name)
			if s == nil || !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool {
				return (be.Port.Name != "" && p.Name == be.Port.Name) || (be.Port.Number != 0 && p.Port == be.Port.Number)
			}) {
				errs = append(errs, fmt.Errorf("Ingress %s: backend %s port %s%d is no Service port", ing.Name, be.Name, be.Port.Name, be.Port.Number))
			}
		}
	}
	for _, pdb := range all[policyv1.PodDisruptionBudget](b) {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || len(selects(sel)) == 0 {
			errs = append(errs, fmt.Errorf("PodDisruptionBudget %s selects no pods", pdb.Name))
		}
	}
	for _, h := range all[autoscalingv2.HorizontalPodAutoscaler](b) {
		if !has(h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name) {
			errs = append(errs, fmt.Errorf("HorizontalPodAutoscaler %s: no %s %s", h.Name, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name))
		}
	}
	for _, so := range all[scaledObject](b) {
		kind := so.Spec.ScaleTargetRef.Kind
		if kind == "" {
			kind = "Deployment"
		}
		if !has(kind, so.Spec.ScaleTargetRef.Name) {
			errs = append(errs, fmt.Errorf("ScaledObject %s: no %s %s", so.Name, kind, so.Spec.ScaleTargetRef.Name))
		}
	}
	return errors.Join(errs...)
}

func ingressBackends(ing *networkingv1.Ingress) []*networkingv1.IngressServiceBackend {
	var out []*networkingv1.IngressServiceBackend
	if d := ing.Spec.DefaultBackend; d != nil && d.Service != nil {
		out = append(out, d.Service)
	}
	for _, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for _, p := range r.HTTP.Paths {
			if p.Backend.Service != nil {
				out = append(out, p.Backend.Service)
			}
		}
	}
	return out
}

func readme(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(mustRoot(t), "deploy", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestReferences(t *testing.T) {
	r := readme(t)
	forEachBuild(t, func(b *build) error { return checkReferences(b, r) })
}
