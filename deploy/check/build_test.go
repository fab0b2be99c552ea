package check

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// goTypes maps each built-in apiVersion/kind the overlays may produce to its Go type; the
// custom kinds are in customResources. A kind in neither fails the build check: add its
// type rather than skipping it.
var goTypes = map[string]func() any{
	"v1/Namespace":                           func() any { return new(corev1.Namespace) },
	"v1/ConfigMap":                           func() any { return new(corev1.ConfigMap) },
	"v1/Secret":                              func() any { return new(corev1.Secret) },
	"v1/Service":                             func() any { return new(corev1.Service) },
	"v1/ServiceAccount":                      func() any { return new(corev1.ServiceAccount) },
	"apps/v1/Deployment":                     func() any { return new(appsv1.Deployment) },
	"apps/v1/StatefulSet":                    func() any { return new(appsv1.StatefulSet) },
	"batch/v1/Job":                           func() any { return new(batchv1.Job) },
	"policy/v1/PodDisruptionBudget":          func() any { return new(policyv1.PodDisruptionBudget) },
	"networking.k8s.io/v1/NetworkPolicy":     func() any { return new(networkingv1.NetworkPolicy) },
	"networking.k8s.io/v1/Ingress":           func() any { return new(networkingv1.Ingress) },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	// The Prometheus Operator's kinds, from its own API module (which requires no more
	// than k8s.io/api does).
	"monitoring.coreos.com/v1/PodMonitor":     func() any { return new(monitoringv1.PodMonitor) },
	"monitoring.coreos.com/v1/PrometheusRule": func() any { return new(monitoringv1.PrometheusRule) },
}

// object is one manifest of a build: its YAML as kustomize wrote it and its decoded Go
// value (nil when decoding failed, with the reason in err).
type object struct {
	apiVersion, kind, name, namespace string
	yaml                              []byte
	obj                               any
	err                               error
}

func (o *object) String() string {
	return fmt.Sprintf("%s %s/%s", o.kind, o.namespace, o.name)
}

// build is the output of `kustomize build` for one overlay.
type build struct {
	overlay string
	objects []*object
}

// decode strictly decodes one manifest into its Go type the way the API server does
// (sigs.k8s.io/json): an unknown field, a field in the wrong case, a duplicate field or
// a value of the wrong type is an error, reported with its path. A custom resource is
// validated against its CRD's schema (decodeCustom).
func decode(apiVersion, kind string, data []byte) (any, error) {
	key := apiVersion + "/" + kind
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, err
	}
	if _, ok := customResources[key]; ok {
		return decodeCustom(key, js)
	}
	newObj, ok := goTypes[key]
	if !ok {
		return nil, fmt.Errorf("no Go type for %s %s: add it to goTypes or customResources", apiVersion, kind)
	}
	obj := newObj()
	strict, err := kjson.UnmarshalStrict(js, obj)
	if err != nil {
		return nil, err
	}
	if len(strict) > 0 {
		return nil, errors.Join(strict...)
	}
	return obj, nil
}

// kustomize builds dir in process, reading the files on disk.
func kustomize(dir string) (*build, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	b := &build{overlay: filepath.Base(dir)}
	for _, r := range m.Resources() {
		data, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", dir, r.CurId(), err)
		}
		gvk := r.GetGvk()
		o := &object{apiVersion: gvk.ApiVersion(), kind: gvk.Kind, name: r.GetName(), namespace: r.GetNamespace(), yaml: data}
		o.obj, o.err = decode(o.apiVersion, o.kind, data)
		b.objects = append(b.objects, o)
	}
	return b, nil
}

// clone decodes a build's YAML again, for a test to break a copy.
func (b *build) clone(t *testing.T) *build {
	t.Helper()
	c := &build{overlay: b.overlay}
	for _, o := range b.objects {
		n := *o
		n.obj, n.err = decode(o.apiVersion, o.kind, o.yaml)
		if n.err != nil {
			t.Fatalf("clone %s: %v", o, n.err)
		}
		c.objects = append(c.objects, &n)
	}
	return c
}

// all returns the decoded objects of type T, in build order.
func all[T any](b *build) []*T {
	var out []*T
	for _, o := range b.objects {
		if v, ok := o.obj.(*T); ok {
			out = append(out, v)
		}
	}
	return out
}

// find returns the object of type T with that name, or nil.
func find[T any](b *build, name string) *T {
	for _, o := range b.objects {
		if v, ok := o.obj.(*T); ok && o.name == name {
			return v
		}
	}
	return nil
}

func (b *build) add(t *testing.T, manifest string) {
	t.Helper()
	var meta struct{ APIVersion, Kind string }
	if err := yaml.Unmarshal([]byte(manifest), &meta); err != nil {
		t.Fatal(err)
	}
	obj, err := decode(meta.APIVersion, meta.Kind, []byte(manifest))
	if err != nil {
		t.Fatalf("add: %v", err)
	}
	var m struct {
		Metadata struct{ Name, Namespace string }
	}
	_ = yaml.Unmarshal([]byte(manifest), &m)
	b.objects = append(b.objects, &object{apiVersion: meta.APIVersion, kind: meta.Kind, name: m.Metadata.Name, namespace: m.Metadata.Namespace, yaml: []byte(manifest), obj: obj})
}

func k8sDir() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "deploy", "k8s"), nil
}

var buildsOnce = sync.OnceValues(func() ([]*build, error) {
	dir, err := k8sDir()
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(dir, "overlays"))
	if err != nil {
		return nil, err
	}
	var out []*build
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		b, err := kustomize(filepath.Join(dir, "overlays", e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("no overlay under deploy/k8s/overlays")
	}
	return out, nil
})

// builds returns every overlay's build, made once per test binary.
func builds(t *testing.T) []*build {
	t.Helper()
	bs, err := buildsOnce()
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// overlay returns the build of one overlay.
func overlay(t *testing.T, name string) *build {
	t.Helper()
	for _, b := range builds(t) {
		if b.overlay == name {
			return b
		}
	}
	t.Fatalf("no overlay %q", name)
	return nil
}

// forEachBuild runs check on every overlay as a subtest, failing it with each error.
func forEachBuild(t *testing.T, check func(*build) error) {
	t.Helper()
	for _, b := range builds(t) {
		t.Run(b.overlay, func(t *testing.T) {
			if err := check(b); err != nil {
				for _, e := range unwrap(err) {
					t.Error(e)
				}
			}
		})
	}
}

// unwrap flattens a joined error into its parts.
func unwrap(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unwrap(e)...)
		}
		return out
	}
	return []error{err}
}

// wantError fails t unless err has a part containing substr.
func wantError(t *testing.T, err error, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one containing %q", substr)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Fatalf("error %q does not contain %q", err, substr)
	}
}

// checkDecoded reports every object that did not decode strictly, and the objects every
// deployment needs.
func checkDecoded(b *build) error {
	var errs []error
	for _, o := range b.objects {
		if o.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o, o.err))
		}
	}
	for _, want := range []struct{ kind, name string }{
		{"Namespace", "xsw"},
		{"Deployment", "gateway"}, {"Deployment", "fetcher"}, {"Deployment", "indexer"},
		{"Job", "migrate"}, {"StatefulSet", "nats"}, {"Ingress", "gateway"},
	} {
		if !slices.ContainsFunc(b.objects, func(o *object) bool { return o.kind == want.kind && o.name == want.name }) {
			errs = append(errs, fmt.Errorf("no %s %s in the build", want.kind, want.name))
		}
	}
	for _, o := range b.objects {
		if o.kind != "Namespace" && o.namespace == "" {
			errs = append(errs, fmt.Errorf("%s: no namespace (set one in the overlay)", o))
		}
		if m, ok := o.obj.(metav1.Object); ok && m.GetLabels()["app.kubernetes.io/part-of"] != "xsw" {
			errs = append(errs, fmt.Errorf("%s: no label app.kubernetes.io/part-of=xsw (set by the overlay)", o))
		}
	}
	return errors.Join(errs...)
}

func TestManifestsDecodeStrictly(t *testing.T) {
	forEachBuild(t, checkDecoded)
}

func TestOverlays(t *testing.T) {
	// Production's database is external: nothing of Postgres in the cluster.
	if b := overlay(t, "prod"); find[appsv1.StatefulSet](b, "postgres") != nil || find[corev1.Service](b, "postgres") != nil {
		t.Errorf("prod: an in-cluster Postgres; it uses an external database")
	}
	if b := overlay(t, "dev"); find[appsv1.StatefulSet](b, "postgres") == nil {
		t.Errorf("dev: no in-cluster Postgres")
	}

	// Every component is used by some overlay, so that the checks see all of it.
	dir, err := k8sDir()
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, b := range builds(t) {
		data, err := os.ReadFile(filepath.Join(dir, "overlays", b.overlay, "kustomization.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var k types.Kustomization
		if err := yaml.Unmarshal(data, &k); err != nil {
			t.Fatalf("%s: %v", b.overlay, err)
		}
		for _, c := range k.Components {
			used[filepath.Base(c)] = true
		}
	}
	comps, err := os.ReadDir(filepath.Join(dir, "components"))
	if err != nil {
		t.Fatal(err)
	}
	var unused []string
	for _, c := range comps {
		if c.IsDir() && !used[c.Name()] {
			unused = append(unused, c.Name())
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		t.Errorf("components no overlay uses, so no check sees: %v", unused)
	}
}

func TestDecodeCatches(t *testing.T) {
	tests := []struct {
		name, apiVersion, kind, yaml, want string
	}{
		{"unknown field", "apps/v1", "Deployment",
			"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 2}\n", `unknown field "spec.replica"`},
		{"field in the wrong case", "apps/v1", "Deployment",
			"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {Replicas: 2}\n", `unknown field "spec.Replicas"`},
		{"misplaced field", "v1", "Service",
			"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 80, path: /}]}\n", `unknown field`},
		{"wrong type", "apps/v1", "Deployment",
			"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: two}\n", "cannot unmarshal"},
		{"duplicate field", "v1", "ConfigMap",
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\ndata: {c: d}\n", "already set"},
		{"unknown CRD field", "keda.sh/v1alpha1", "ScaledObject",
			"apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\nspec: {scaleTargetRef: {name: fetcher}, minReplicas: 2, triggers: []}\n", "additional properties 'minReplicas' not allowed"},
		{"nested unknown CRD field", "keda.sh/v1alpha1", "ScaledObject",
			"apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\nspec: {scaleTargetRef: {name: fetcher}, triggers: [{type: nats-jetstream, metdata: {}}]}\n", "additional properties 'metdata' not allowed"},
		{"CRD field of the wrong type", "keda.sh/v1alpha1", "ScaledObject",
			"apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\nspec: {scaleTargetRef: {name: fetcher}, maxReplicaCount: six, triggers: []}\n", "maxReplicaCount"},
		{"CRD field missing", "keda.sh/v1alpha1", "ScaledObject",
			"apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\nspec: {triggers: [{type: cpu, metadata: {value: \"50\"}}]}\n", "scaleTargetRef"},
		{"CRD metadata", "keda.sh/v1alpha1", "ScaledObject",
			"apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x, label: {a: b}}\nspec: {scaleTargetRef: {name: fetcher}, triggers: []}\n", `unknown field "metadata.label"`},
		{"unknown kind", "v1", "Pod", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n", "no Go type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode(tt.apiVersion, tt.kind, []byte(tt.yaml))
			wantError(t, err, tt.want)
		})
	}
}

// serviceLabel marks the three services' Deployments: deploy/README.md applies everything
// else first (the migration Job must complete before they roll), then them.
const serviceLabel = "app.kubernetes.io/component"

// nameLabel names a service's Deployment: app.kubernetes.io/name=gateway.
const nameLabel = "app.kubernetes.io/name"

// checkApplyOrder reports a build whose service label does not split it the way
// deploy/README.md's procedure assumes: the label on exactly the xsw Deployments.
func checkApplyOrder(b *build, readme string) error {
	var errs []error
	for _, o := range b.objects {
		m, ok := o.obj.(metav1.Object)
		if !ok {
			continue
		}
		marked := m.GetLabels()[serviceLabel] == "service"
		isService, svc := false, ""
		if d, ok := o.obj.(*appsv1.Deployment); ok {
			for _, c := range d.Spec.Template.Spec.Containers {
				if s := serviceOf(c.Image); s != "" {
					isService, svc = true, s
				}
			}
		}
		if marked != isService {
			errs = append(errs, fmt.Errorf("%s: %s=service is %v, want %v (only the services' Deployments)", o, serviceLabel, marked, isService))
		}
		// The upgrade steps roll the services one by one, each selected by its name.
		if isService && m.GetLabels()[nameLabel] != svc {
			errs = append(errs, fmt.Errorf("%s: %s=%q, want %q (deploy/README.md selects each service by it)", o, nameLabel, m.GetLabels()[nameLabel], svc))
		}
	}
	if sel := "-l '" + serviceLabel + "!=service'"; !strings.Contains(readme, sel) {
		errs = append(errs, fmt.Errorf("deploy/README.md no longer applies in two steps with %s", sel))
	}
	return errors.Join(errs...)
}

func TestApplyOrder(t *testing.T) {
	r := readme(t)
	forEachBuild(t, func(b *build) error { return checkApplyOrder(b, r) })
}
