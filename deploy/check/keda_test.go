package check

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// KEDA's ScaledObject is checked against KEDA's own CustomResourceDefinition, pinned in
// testdata/keda (v2.21.0), rather than against its Go types: the module that holds those
// (github.com/kedacore/keda/v2) requires hundreds of modules, and in the go.work
// workspace its requirements would raise the versions the other modules build with
// (fasthttp under the gateway's Fiber, among others).

// scaledObject holds the fields of a ScaledObject (keda.sh/v1alpha1) the checks read.
// decode validates the whole object against the CRD's schema first, so the fields not
// listed here are checked too.
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              scaledObjectSpec `json:"spec"`
}

type scaledObjectSpec struct {
	ScaleTargetRef struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Name       string `json:"name"`
	} `json:"scaleTargetRef"`
	IdleReplicaCount *int32 `json:"idleReplicaCount"`
	MinReplicaCount  *int32 `json:"minReplicaCount"`
	MaxReplicaCount  *int32 `json:"maxReplicaCount"`
	Fallback         *struct {
		FailureThreshold int32  `json:"failureThreshold"`
		Replicas         int32  `json:"replicas"`
		Behavior         string `json:"behavior"`
	} `json:"fallback"`
	Advanced *struct {
		ScalingModifiers *struct {
			Formula string `json:"formula"`
		} `json:"scalingModifiers"`
	} `json:"advanced"`
	Triggers []scaleTrigger `json:"triggers"`
}

type scaleTrigger struct {
	Type             string            `json:"type"`
	Name             string            `json:"name"`
	MetricType       string            `json:"metricType"`
	UseCachedMetrics bool              `json:"useCachedMetrics"`
	Metadata         map[string]string `json:"metadata"`
}

// customResources maps the custom kinds the overlays may produce to their pinned CRD and
// Go type.
var customResources = map[string]struct {
	crd, version string
	newObj       func() any
}{
	"keda.sh/v1alpha1/ScaledObject": {"testdata/keda/keda.sh_scaledobjects.yaml", "v1alpha1", func() any { return new(scaledObject) }},
}

var crdSchemas sync.Map // CRD file -> func() (*jsonschema.Schema, error)

// crdSchema compiles the version's openAPIV3Schema of a CRD file as the API server
// applies it: an object with properties takes no other field (unless it says
// x-kubernetes-preserve-unknown-fields), an int-or-string is either.
func crdSchema(file, version string) (*jsonschema.Schema, error) {
	f, _ := crdSchemas.LoadOrStore(file+"#"+version, sync.OnceValues(func() (*jsonschema.Schema, error) {
		data, err := os.ReadFile(filepath.FromSlash(file))
		if err != nil {
			return nil, err
		}
		var crd struct {
			Spec struct {
				Versions []struct {
					Name   string
					Schema struct {
						OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
					}
				}
			}
		}
		if err := yaml.Unmarshal(data, &crd); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		for _, v := range crd.Spec.Versions {
			if v.Name != version {
				continue
			}
			c := jsonschema.NewCompiler()
			if err := c.AddResource(file, structural(v.Schema.OpenAPIV3Schema)); err != nil {
				return nil, err
			}
			return c.Compile(file)
		}
		return nil, fmt.Errorf("%s: no version %s", file, version)
	}))
	return f.(func() (*jsonschema.Schema, error))()
}

// structural turns a Kubernetes structural schema into JSON Schema with the API
// server's meaning.
func structural(node any) any {
	switch n := node.(type) {
	case []any:
		out := make([]any, len(n))
		for i, v := range n {
			out[i] = structural(v)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, v := range n {
			switch k {
			case "properties":
				props := map[string]any{}
				for name, s := range v.(map[string]any) {
					props[name] = structural(s)
				}
				out[k] = props
			case "items", "additionalProperties", "anyOf", "allOf", "oneOf", "not":
				out[k] = structural(v)
			default:
				out[k] = v
			}
		}
		if n["x-kubernetes-int-or-string"] == true {
			delete(out, "type")
			if _, ok := out["anyOf"]; !ok {
				out["anyOf"] = []any{map[string]any{"type": "integer"}, map[string]any{"type": "string"}}
			}
		}
		if n["nullable"] == true {
			if t, ok := out["type"].(string); ok {
				out["type"] = []any{t, "null"}
			}
		}
		_, hasProps := n["properties"]
		_, hasAdditional := n["additionalProperties"]
		if n["type"] == "object" && hasProps && !hasAdditional && n["x-kubernetes-preserve-unknown-fields"] != true {
			out["additionalProperties"] = false
		}
		return out
	}
	return node
}

// decodeCustom decodes a custom resource: its metadata strictly into ObjectMeta, all of it
// against the pinned CRD's schema, then the fields the checks read into its Go type.
func decodeCustom(key string, js []byte) (any, error) {
	cr := customResources[key]
	var envelope struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
		Spec              json.RawMessage `json:"spec"`
		Status            json.RawMessage `json:"status"`
	}
	strict, err := kjson.UnmarshalStrict(js, &envelope)
	if err != nil {
		return nil, err
	}
	if len(strict) > 0 {
		return nil, errors.Join(strict...)
	}
	sch, err := crdSchema(cr.crd, cr.version)
	if err != nil {
		return nil, err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return nil, err
	}
	if err := sch.Validate(inst); err != nil {
		// The first line names the schema file; the others say what is wrong where.
		_, detail, _ := strings.Cut(err.Error(), "\n")
		return nil, fmt.Errorf("not valid by %s: %s", filepath.Base(cr.crd), strings.ReplaceAll(strings.TrimSpace(detail), "\n", "; "))
	}
	obj := cr.newObj()
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// kedaRules are the rules KEDA's admission webhook and the CRD's CEL rule add to the
// schema (apis/keda/v1alpha1 of KEDA v2.21.0: CheckReplicaCountBoundsAreValid,
// CheckFallbackValid, ValidateTriggers).
func kedaRules(so *scaledObject) []error {
	var errs []error
	s := so.Spec
	minR, maxR := int32(0), int32(100)
	if s.MinReplicaCount != nil {
		minR = *s.MinReplicaCount
	}
	if s.MaxReplicaCount != nil {
		maxR = *s.MaxReplicaCount
	}
	if minR > maxR {
		errs = append(errs, fmt.Errorf("MinReplicaCount=%d must be less than MaxReplicaCount=%d", minR, maxR))
	}
	if s.IdleReplicaCount != nil && *s.IdleReplicaCount >= minR {
		errs = append(errs, fmt.Errorf("IdleReplicaCount=%d must be less than MinReplicaCount=%d", *s.IdleReplicaCount, minR))
	}
	if f := s.Fallback; f != nil {
		if f.FailureThreshold < 0 || f.Replicas < 0 {
			errs = append(errs, errors.New("fallback: failureThreshold and replicas must be 0 or more"))
		}
		modifiers := s.Advanced != nil && s.Advanced.ScalingModifiers != nil && s.Advanced.ScalingModifiers.Formula != ""
		ok := modifiers
		for _, t := range s.Triggers {
			ok = ok || (t.Type != "cpu" && t.Type != "memory")
		}
		if !ok {
			errs = append(errs, errors.New("fallback: at least one trigger (not cpu or memory) must have the AverageValue type"))
		}
	}
	if len(s.Triggers) == 0 {
		errs = append(errs, errors.New("no triggers"))
	}
	names := map[string]bool{}
	for _, t := range s.Triggers {
		if t.UseCachedMetrics && (t.Type == "cpu" || t.Type == "memory" || t.Type == "cron") {
			errs = append(errs, fmt.Errorf("useCachedMetrics is not supported for the %q scaler", t.Type))
		}
		if t.Name != "" && names[t.Name] {
			errs = append(errs, fmt.Errorf("trigger name %q is used twice", t.Name))
		}
		names[t.Name] = true
		if s.Fallback != nil && t.MetricType == "Value" {
			errs = append(errs, fmt.Errorf("trigger %s: fallback needs the AverageValue metric type", t.Name))
		}
	}
	return errs
}
