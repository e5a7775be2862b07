package checks

import (
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TemplatedObject is an object of a kind fleetscan has no type for that
// runs pods from a template at a well-known path (see TemplatePaths): an
// Argo Rollout, an OpenShift DeploymentConfig, a Knative Service, a
// PodTemplate. Only its metadata and template are kept; the workload
// checks read them as they read a Deployment's.
type TemplatedObject struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	// Path is where the template sits in the object, e.g. "spec.template".
	Path     string
	Template corev1.PodTemplateSpec
}

// DeepCopyObject makes TemplatedObject a runtime.Object.
func (o *TemplatedObject) DeepCopyObject() runtime.Object {
	out := &TemplatedObject{TypeMeta: o.TypeMeta, Path: o.Path}
	o.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	o.Template.DeepCopyInto(&out.Template)
	return out
}

// TemplatePaths are where objects keep a pod template, as Kubernetes'
// own kinds do: spec.template (Deployments and the controllers modelled
// on them), spec.jobTemplate.spec.template (CronJobs and their likes) and
// template (PodTemplate).
var TemplatePaths = [][]string{
	{"spec", "template"},
	{"spec", "jobTemplate", "spec", "template"},
	{"template"},
}

// Templated reads obj, an object of any kind in its JSON form, as a
// TemplatedObject. It reports false when obj has no pod template (no
// template with containers at any of TemplatePaths), and an error when
// it has one that does not decode as a pod template.
func Templated(obj map[string]any) (*TemplatedObject, bool, error) {
	for _, path := range TemplatePaths {
		tmpl, ok := lookup(obj, path)
		if !ok || !hasContainers(tmpl) {
			continue
		}
		out := &TemplatedObject{Path: strings.Join(path, ".")}
		out.APIVersion, _ = obj["apiVersion"].(string)
		out.Kind, _ = obj["kind"].(string)
		if err := remarshal(obj["metadata"], &out.ObjectMeta); err != nil {
			return nil, false, fmt.Errorf("metadata: %w", err)
		}
		// Fields a CRD adds to its template (Knative's
		// containerConcurrency, …) are not the pod's: they are ignored,
		// not errors.
		if err := remarshal(tmpl, &out.Template); err != nil {
			return nil, false, fmt.Errorf("%s is not a pod template: %w", out.Path, err)
		}
		return out, true, nil
	}
	return nil, false, nil
}

func lookup(obj map[string]any, path []string) (map[string]any, bool) {
	var cur any = obj
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur = m[p]
	}
	m, ok := cur.(map[string]any)
	return m, ok
}

func hasContainers(tmpl map[string]any) bool {
	spec, ok := tmpl["spec"].(map[string]any)
	if !ok {
		return false
	}
	containers, ok := spec["containers"].([]any)
	return ok && len(containers) > 0
}

func remarshal(in any, out any) error {
	if in == nil {
		return nil
	}
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// clusterScoped are the kinds an Inventory holds that live outside any
// namespace.
var clusterScoped = map[string]bool{
	"Namespace": true, "Node": true, "ClusterRole": true, "ClusterRoleBinding": true,
	"ValidatingWebhookConfiguration": true, "MutatingWebhookConfiguration": true,
}

// Namespaced reports whether objects of kind live in a namespace: every
// kind but the cluster-scoped ones an Inventory holds, and the other
// cluster-scoped kinds of Kubernetes itself.
func Namespaced(kind string) bool {
	switch kind {
	case "PersistentVolume", "StorageClass", "CustomResourceDefinition", "PriorityClass", "APIService",
		"CertificateSigningRequest", "RuntimeClass", "IngressClass", "CSIDriver", "CSINode", "VolumeAttachment",
		"ComponentStatus", "PodSecurityPolicy", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
		"FlowSchema", "PriorityLevelConfiguration":
		return false
	}
	return !clusterScoped[kind]
}
