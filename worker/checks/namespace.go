package checks

import (
	"encoding/json"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Labels of the PodSecurity admission plugin on a namespace.
const (
	labelPSAEnforce = "pod-security.kubernetes.io/enforce"
	labelPSAWarn    = "pod-security.kubernetes.io/warn"
	labelPSAAudit   = "pod-security.kubernetes.io/audit"
)

// tenantNamespaces returns the namespaces that are not Kubernetes' own.
func (inv *Inventory) tenantNamespaces() []*corev1.Namespace {
	var out []*corev1.Namespace
	for i := range inv.Namespaces {
		if ns := &inv.Namespaces[i]; !systemNamespace(ns.Name) {
			out = append(out, ns)
		}
	}
	return out
}

func namespaceResource(ns *corev1.Namespace) Resource {
	return resourceOf("v1", "Namespace", &ns.ObjectMeta)
}

var namespaceChecks = []*Check{
	{
		ID: "NS-001",
		inventory: func(r *reporter, inv *Inventory) {
			owners := inv.templateOwners()
			inv.eachObject(func(apiVersion, kind string, m metav1.Object, _ runtime.Object) {
				if m.GetNamespace() != metav1.NamespaceDefault || defaultNamespaceObject(kind, m.GetName()) {
					return
				}
				meta := objectMeta(m)
				if controlledBy(meta, owners) {
					return // reported on its controller
				}
				r.report(resourceOf(apiVersion, kind, meta), "", "%s %q is in the default namespace", kind, m.GetName())
			})
		},
	},
	{
		ID: "NS-002",
		workload: func(r *reporter, w *Workload) {
			if systemNamespace(w.Namespace) && !clusterComponent(w) {
				r.report(w.Resource, "", "%s %q in %s does not look like a cluster component", w.Kind, w.Name, w.Namespace)
			}
		},
	},
	{
		ID: "NS-003",
		inventory: func(r *reporter, inv *Inventory) {
			has := map[string]bool{}
			for i := range inv.ResourceQuotas {
				has[inv.ResourceQuotas[i].Namespace] = true
			}
			for _, ns := range inv.tenantNamespaces() {
				if !has[ns.Name] {
					r.report(namespaceResource(ns), "", "namespace %q has no ResourceQuota", ns.Name)
				}
			}
		},
	},
	{
		ID: "NS-004",
		inventory: func(r *reporter, inv *Inventory) {
			has := map[string]bool{}
			for i := range inv.LimitRanges {
				has[inv.LimitRanges[i].Namespace] = true
			}
			for _, ns := range inv.tenantNamespaces() {
				if !has[ns.Name] {
					r.report(namespaceResource(ns), "", "namespace %q has no LimitRange", ns.Name)
				}
			}
		},
	},
	{
		ID: "NS-005",
		inventory: func(r *reporter, inv *Inventory) {
			if policyEngine(inv) {
				return
			}
			for _, ns := range inv.tenantNamespaces() {
				if ns.Labels[labelPSAEnforce] != "" {
					continue
				}
				if ns.Labels[labelPSAWarn] != "" || ns.Labels[labelPSAAudit] != "" {
					r.report(namespaceResource(ns), "", "namespace %q only warns or audits: it has no %s label", ns.Name, labelPSAEnforce)
				} else {
					r.report(namespaceResource(ns), "", "namespace %q has no %s label", ns.Name, labelPSAEnforce)
				}
			}
		},
	},
	{
		ID: "NS-006",
		inventory: func(r *reporter, inv *Inventory) {
			for _, ns := range inv.tenantNamespaces() {
				if ns.Labels[labelPSAEnforce] == "privileged" {
					r.report(namespaceResource(ns), "", "namespace %q enforces the privileged level, which admits any pod", ns.Name)
				}
			}
		},
	},
	{
		ID: "NS-007",
		inventory: func(r *reporter, inv *Inventory) {
			for _, ns := range inv.tenantNamespaces() {
				if ns.Name != metav1.NamespaceDefault && !owned(ns.Labels, true) && !owned(ns.Annotations, false) {
					r.report(namespaceResource(ns), "", "namespace %q has no owner or team label", ns.Name)
				}
			}
		},
	},
	{
		ID: "NS-008",
		inventory: func(r *reporter, inv *Inventory) {
			inv.eachObject(func(apiVersion, kind string, m metav1.Object, _ runtime.Object) {
				if written := inv.WrittenAs[kind+"/"+m.GetNamespace()+"/"+m.GetName()]; written != "" {
					if release, ok := removedAPIs[written+" "+kind]; ok {
						r.report(resourceOf(apiVersion, kind, objectMeta(m)), "", "%s %q is written as %s, which Kubernetes no longer serves since %s", kind, m.GetName(), written, release)
						return
					}
				}
				for _, used := range appliedVersions(m) {
					if release, ok := removedAPIs[used+" "+kind]; ok {
						r.report(resourceOf(apiVersion, kind, objectMeta(m)), "", "%s %q was last applied as %s, which Kubernetes no longer serves since %s", kind, m.GetName(), used, release)
						return
					}
				}
			})
		},
	},
}

// defaultNamespaceObject reports the objects Kubernetes itself keeps in the
// default namespace, and the policies that protect it.
func defaultNamespaceObject(kind, name string) bool {
	switch kind {
	case "Service":
		return name == "kubernetes"
	case "ServiceAccount":
		return name == "default"
	case "ConfigMap":
		return name == "kube-root-ca.crt"
	case "NetworkPolicy", "LimitRange", "ResourceQuota":
		return true
	}
	return false
}

// componentLabels are labels that Kubernetes add-ons and managed providers
// put on the components they run in kube-system.
var componentLabels = []string{
	"k8s-app", "addonmanager.kubernetes.io/mode", "kubernetes.io/cluster-service",
	"eks.amazonaws.com/component", "kubernetes.azure.com/managedby",
}

// clusterComponent reports whether a workload looks like one of the
// cluster's own components.
func clusterComponent(w *Workload) bool {
	switch w.Spec.PriorityClassName {
	case "system-cluster-critical", "system-node-critical":
		return true
	}
	for _, l := range []map[string]string{w.Meta.Labels, w.PodLabels} {
		if l["tier"] == "control-plane" {
			return true
		}
		for _, key := range componentLabels {
			if _, ok := l[key]; ok {
				return true
			}
		}
	}
	return false
}

// policyEngine reports whether an admission policy engine validates
// requests: its validating webhook configuration is in the inventory.
func policyEngine(inv *Inventory) bool {
	for i := range inv.ValidatingWebhooks {
		vw := &inv.ValidatingWebhooks[i]
		names := []string{vw.Name}
		for _, h := range vw.Webhooks {
			names = append(names, h.Name)
		}
		for _, name := range names {
			name = strings.ToLower(name)
			for _, engine := range []string{"gatekeeper", "kyverno", "kubewarden", "jspolicy"} {
				if strings.Contains(name, engine) {
					return true
				}
			}
		}
	}
	return false
}

// owned reports whether labels (or annotations) name an owner or a team, in
// any key prefix (owner, example.com/team), or, for labels, carry an
// app.kubernetes.io/* label.
func owned(m map[string]string, appLabels bool) bool {
	for key, value := range m {
		if value == "" {
			continue
		}
		if appLabels && strings.HasPrefix(key, "app.kubernetes.io/") {
			return true
		}
		name := strings.ToLower(key[strings.LastIndexByte(key, '/')+1:])
		if strings.Contains(name, "owner") || strings.Contains(name, "team") {
			return true
		}
	}
	return false
}

// appliedVersions returns the API versions an object's manifests were
// applied with: by kubectl apply, as its last-applied-configuration
// annotation records, and by server-side apply, as managedFields record.
func appliedVersions(m metav1.Object) []string {
	var out []string
	if a := m.GetAnnotations()[corev1.LastAppliedConfigAnnotation]; a != "" {
		var applied struct {
			APIVersion string `json:"apiVersion"`
		}
		if json.Unmarshal([]byte(a), &applied) == nil && applied.APIVersion != "" {
			out = append(out, applied.APIVersion)
		}
	}
	for _, f := range m.GetManagedFields() {
		if f.Operation == metav1.ManagedFieldsOperationApply && f.APIVersion != "" {
			out = append(out, f.APIVersion)
		}
	}
	return out
}

// removedAPIs maps "apiVersion Kind", for the kinds of the inventory, to the
// Kubernetes release that stopped serving it.
var removedAPIs = func() map[string]string {
	out := map[string]string{}
	add := func(release, apiVersion string, kinds ...string) {
		for _, kind := range kinds {
			out[apiVersion+" "+kind] = release
		}
	}
	add("1.16", "extensions/v1beta1", "Deployment", "DaemonSet", "ReplicaSet", "NetworkPolicy")
	add("1.16", "apps/v1beta1", "Deployment", "StatefulSet")
	add("1.16", "apps/v1beta2", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
	add("1.22", "extensions/v1beta1", "Ingress")
	add("1.22", "networking.k8s.io/v1beta1", "Ingress")
	add("1.22", "rbac.authorization.k8s.io/v1beta1", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
	add("1.22", "rbac.authorization.k8s.io/v1alpha1", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
	add("1.22", "admissionregistration.k8s.io/v1beta1", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
	add("1.21", "batch/v2alpha1", "CronJob")
	add("1.25", "batch/v1beta1", "CronJob")
	add("1.25", "policy/v1beta1", "PodDisruptionBudget")
	add("1.25", "autoscaling/v2beta1", "HorizontalPodAutoscaler")
	add("1.26", "autoscaling/v2beta2", "HorizontalPodAutoscaler")
	return out
}()
