package checks

import (
	"encoding/json"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Trim reduces an object to what the checks read of it, as it arrives
// from a List page or a manifest, so that the inventory of a large
// cluster costs what the checks need and not what the API server keeps.
// On a live cluster most of an object's bytes are bookkeeping:
//
//   - managedFields: every field manager's field set. The checks read
//     only which API versions server-side apply used (NS-008): the Apply
//     entries are kept with their operation and API version, the field
//     sets and the other entries dropped.
//   - the kubectl.kubernetes.io/last-applied-configuration annotation: a
//     copy of the whole manifest. The checks read its apiVersion (NS-008),
//     the entries of a ConfigMap's data that look like credentials, and
//     the names and keys of Secret manifests embedded at any depth
//     (SEC-003): it is rewritten to a JSON document of just those, in the
//     order they appear.
//
// The findings of every check are the same on a trimmed object as on the
// untrimmed one (TestTrimKeepsFindings). Custom CEL checks see the trimmed
// object. Trim is idempotent.
func Trim(obj metav1.Object) {
	if mf := obj.GetManagedFields(); len(mf) > 0 {
		var kept []metav1.ManagedFieldsEntry
		for _, f := range mf {
			if f.Operation == metav1.ManagedFieldsOperationApply && f.APIVersion != "" {
				kept = append(kept, metav1.ManagedFieldsEntry{Operation: f.Operation, APIVersion: f.APIVersion})
			}
		}
		obj.SetManagedFields(kept)
	}
	if ann := obj.GetAnnotations(); ann != nil {
		if applied, ok := ann[corev1.LastAppliedConfigAnnotation]; ok {
			ann[corev1.LastAppliedConfigAnnotation] = compactLastApplied(applied)
		}
	}
}

// compactLastApplied keeps of an applied configuration what the checks
// read (see Trim). A configuration that is not a JSON object is kept as
// it is: the checks skip it alike.
func compactLastApplied(applied string) string {
	var doc any
	if json.Unmarshal([]byte(applied), &doc) != nil {
		return applied
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return applied
	}
	var secrets []any
	secretManifests(doc, func(secret map[string]any) {
		meta, _ := secret["metadata"].(map[string]any)
		kept := map[string]any{"kind": "Secret", "metadata": map[string]any{"name": meta["name"]}}
		for _, field := range []string{"data", "stringData"} {
			if values, ok := secret[field].(map[string]any); ok {
				keys := make(map[string]any, len(values))
				for k := range values {
					keys[k] = ""
				}
				kept[field] = keys
			}
		}
		secrets = append(secrets, kept)
	})
	out := map[string]any{}
	for _, k := range []string{"apiVersion", "kind"} {
		if v, ok := top[k]; ok {
			out[k] = v
		}
	}
	switch {
	case top["kind"] == "Secret":
		for _, s := range secrets {
			for k, v := range s.(map[string]any) {
				out[k] = v
			}
		}
		out["kind"] = "Secret"
	default:
		if data, ok := top["data"].(map[string]any); ok && top["kind"] == "ConfigMap" {
			// SEC-003 reports what the applied data holds of credentials
			// and the current data no longer does: only those entries.
			creds := map[string]any{}
			for k, v := range data {
				if value, _ := v.(string); credentialIn(k, value) != "" {
					creds[k] = v
				}
			}
			if len(creds) > 0 {
				out["data"] = creds
			}
		}
		if len(secrets) > 0 {
			out["items"] = secrets
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return applied
	}
	return string(b)
}

// workloadControllers are the kinds whose pod template the checks report
// on (Inventory.Workloads): what they manage is reported through them.
var workloadControllers = map[string]bool{
	"ReplicaSet": true, "StatefulSet": true, "DaemonSet": true, "Job": true, "Deployment": true, "CronJob": true,
	"ReplicationController": true,
}

// DropUnread drops from obj what no built-in check reads, unless custom
// checks read its kind (whole):
//
//   - the status of every kind but Node (the checks read what is
//     declared; of a Node, the kubelet's and the OS's versions);
//
//   - the pod spec of a Pod, ReplicaSet or Job that a workload controller
//     manages, outside kube-system. A managed object is reported through
//     its controller's template, once, not per replica; what the checks
//     read of it (labels for network policies, annotations, owners)
//     stays. kube-system keeps its pods whole: the control-plane checks
//     read the flags of components that run there under DaemonSets
//     (kube-proxy).
//
//   - of a ConfigMap outside kube-system, the entries that hold no
//     credential (SEC-003 reads those) and that no check reads by name
//     (ingress-nginx's allow-snippet-annotations). kube-system keeps its
//     ConfigMaps whole: the control-plane checks read kube-proxy's
//     configuration there;
//
//   - of every object, the UIDs and resource versions no check reads,
//     the labels of kinds whose labels no check reads (labelsUnread),
//     and a last-applied-configuration that Trim reduced to an API
//     version still served for the kind: NS-008 has nothing to report
//     in it and SEC-003 nothing to find.
//
// On a live cluster the replicas are half of the objects, and a Pod's
// status is as large as its spec; ConfigMaps are often the most numerous
// kind, and their values the largest strings a cluster holds.
func DropUnread(obj runtime.Object, whole map[string]bool) {
	if m, ok := obj.(metav1.Object); ok {
		if kind := kindOf(obj); !whole[kind] {
			dropUnreadMeta(m, kind)
		}
	}
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		if !whole["ConfigMap"] && o.Namespace != metav1.NamespaceSystem {
			for k, v := range o.Data {
				if !readValue(k, v) {
					delete(o.Data, k)
				}
			}
			for k, v := range o.BinaryData {
				if !readValue(k, string(v)) {
					delete(o.BinaryData, k)
				}
			}
			if len(o.Data) == 0 {
				o.Data = nil
			}
			if len(o.BinaryData) == 0 {
				o.BinaryData = nil
			}
		}
	case *corev1.Pod:
		if !whole["Pod"] {
			o.Status = corev1.PodStatus{}
			if managed(&o.ObjectMeta) {
				o.Spec = corev1.PodSpec{}
			}
		}
	case *appsv1.ReplicaSet:
		if !whole["ReplicaSet"] {
			o.Status = appsv1.ReplicaSetStatus{}
			if managed(&o.ObjectMeta) {
				o.Spec.Template.Spec = corev1.PodSpec{}
			}
		}
	case *batchv1.Job:
		if !whole["Job"] {
			o.Status = batchv1.JobStatus{}
			if managed(&o.ObjectMeta) {
				o.Spec.Template.Spec = corev1.PodSpec{}
			}
		}
	case *appsv1.Deployment:
		if !whole["Deployment"] {
			o.Status = appsv1.DeploymentStatus{}
		}
	case *appsv1.StatefulSet:
		if !whole["StatefulSet"] {
			o.Status = appsv1.StatefulSetStatus{}
		}
	case *appsv1.DaemonSet:
		if !whole["DaemonSet"] {
			o.Status = appsv1.DaemonSetStatus{}
		}
	case *batchv1.CronJob:
		if !whole["CronJob"] {
			o.Status = batchv1.CronJobStatus{}
		}
	case *autoscalingv2.HorizontalPodAutoscaler:
		if !whole["HorizontalPodAutoscaler"] {
			o.Status = autoscalingv2.HorizontalPodAutoscalerStatus{}
		}
	case *corev1.ReplicationController:
		if !whole["ReplicationController"] {
			o.Status = corev1.ReplicationControllerStatus{}
		}
	case *corev1.Service:
		if !whole["Service"] {
			o.Status = corev1.ServiceStatus{}
		}
	case *corev1.Namespace:
		if !whole["Namespace"] {
			o.Status = corev1.NamespaceStatus{}
		}
	case *corev1.ResourceQuota:
		if !whole["ResourceQuota"] {
			o.Status = corev1.ResourceQuotaStatus{}
		}
	case *policyv1.PodDisruptionBudget:
		if !whole["PodDisruptionBudget"] {
			o.Status = policyv1.PodDisruptionBudgetStatus{}
		}
	case *networkingv1.Ingress:
		if !whole["Ingress"] {
			o.Status = networkingv1.IngressStatus{}
		}
	}
}

// readValue reports whether a check reads a ConfigMap entry outside
// kube-system: SEC-003 reports what holds a credential, and compares
// what the last-applied configuration held with the current value (an
// entry dropped here must read as no credential there too);
// snippetsAllowed reads allow-snippet-annotations.
func readValue(key, value string) bool {
	return key == "allow-snippet-annotations" || credentialIn(key, value) != "" || credentialIn(key, "") != ""
}

// dropUnreadMeta drops of an object's metadata what no check reads (see
// DropUnread).
func dropUnreadMeta(m metav1.Object, kind string) {
	m.SetUID("")
	m.SetResourceVersion("")
	m.SetGeneration(0)
	if labelsUnread[kind] {
		m.SetLabels(nil)
	}
	if refs := m.GetOwnerReferences(); len(refs) > 0 {
		for i := range refs {
			refs[i].UID = ""
		}
	}
	ann := m.GetAnnotations()
	applied, ok := ann[corev1.LastAppliedConfigAnnotation]
	if !ok {
		return
	}
	var doc map[string]any
	if json.Unmarshal([]byte(applied), &doc) != nil {
		return
	}
	for k := range doc {
		if k != "apiVersion" && k != "kind" {
			return // what SEC-003 reads: credentials, embedded Secrets
		}
	}
	apiVersion, _ := doc["apiVersion"].(string)
	if _, removed := removedAPIs[apiVersion+" "+kind]; removed {
		return // what NS-008 reports
	}
	delete(ann, corev1.LastAppliedConfigAnnotation)
	if len(ann) == 0 {
		m.SetAnnotations(nil)
	}
}

// labelsUnread are the kinds whose own labels no built-in check reads:
// selectors match the labels of pods, pod templates and namespaces, and
// aggregation those of ClusterRoles; the owner checks read workloads' and
// namespaces'. A kind not listed keeps its labels.
var labelsUnread = map[string]bool{
	"ConfigMap": true, "Service": true, "ServiceAccount": true, "Role": true, "RoleBinding": true,
	"ClusterRoleBinding": true, "NetworkPolicy": true, "Ingress": true, "PodDisruptionBudget": true,
	"HorizontalPodAutoscaler": true, "LimitRange": true, "ResourceQuota": true,
	"ValidatingWebhookConfiguration": true, "MutatingWebhookConfiguration": true,
}

// kindOf names the kind of an object the inventory holds, or "" for one
// it does not; TemplatedObjects name theirs.
func kindOf(obj runtime.Object) string {
	switch o := obj.(type) {
	case *TemplatedObject:
		return o.Kind
	case *metav1.PartialObjectMetadata:
		return o.Kind
	case *ReplicaSetMeta:
		return o.Kind
	}
	return kindsByType[reflect.TypeOf(obj)]
}

// kindsByType maps the pointer types of the inventory's objects to their
// kinds, as walk names them.
var kindsByType = func() map[reflect.Type]string {
	// One zero object of every kind, for walk to name.
	inv := &Inventory{}
	v := reflect.ValueOf(inv).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct {
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		}
	}
	out := map[reflect.Type]string{}
	inv.walk(nil, func(_, kind string, _ metav1.Object, obj runtime.Object) {
		if _, templated := obj.(*TemplatedObject); !templated {
			out[reflect.TypeOf(obj)] = kind
		}
	})
	return out
}()

// managed reports whether a workload controller of the inventory manages
// the object, outside kube-system.
func managed(m *metav1.ObjectMeta) bool {
	if m.Namespace == metav1.NamespaceSystem {
		return false
	}
	ref := metav1.GetControllerOfNoCopy(m)
	return ref != nil && workloadControllers[ref.Kind]
}
