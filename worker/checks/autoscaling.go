package checks

import (
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// autoscalingChecks judge HorizontalPodAutoscalers: what they scale, and
// how far down.
var autoscalingChecks = []*Check{
	{
		ID: "HPA-001",
		inventory: func(r *reporter, inv *Inventory) {
			for i := range inv.HorizontalPodAutoscalers {
				h := &inv.HorizontalPodAutoscalers[i]
				if min := hpaMin(h); min < 2 {
					r.report(hpaResource(h), "spec.minReplicas", "HorizontalPodAutoscaler %q may scale %s %q in to %d replica", h.Name, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name, min)
				}
			}
		},
	},
	{
		ID: "HPA-002",
		inventory: func(r *reporter, inv *Inventory) {
			exists, seen := map[string]bool{}, map[string]bool{}
			for _, c := range inv.scalable() {
				exists[c.Kind+"/"+c.Namespace+"/"+c.Name] = true
				seen[c.Namespace] = true
			}
			for i := range inv.HorizontalPodAutoscalers {
				h := &inv.HorizontalPodAutoscalers[i]
				ref := h.Spec.ScaleTargetRef
				if !scalableKinds[ref.Kind] || !seen[h.Namespace] || exists[ref.Kind+"/"+h.Namespace+"/"+ref.Name] {
					continue
				}
				r.report(hpaResource(h), "spec.scaleTargetRef", "HorizontalPodAutoscaler %q scales %s %q, which does not exist in namespace %q", h.Name, ref.Kind, ref.Name, h.Namespace)
			}
		},
	},
	{
		ID: "HPA-003",
		inventory: func(r *reporter, inv *Inventory) {
			targets := map[string]scalableController{}
			for _, c := range inv.scalable() {
				targets[c.Kind+"/"+c.Namespace+"/"+c.Name] = c
			}
			budgets := map[string][]*policyv1.PodDisruptionBudget{}
			for j := range inv.PodDisruptionBudgets {
				b := &inv.PodDisruptionBudgets[j]
				budgets[b.Namespace] = append(budgets[b.Namespace], b)
			}
			for i := range inv.HorizontalPodAutoscalers {
				h := &inv.HorizontalPodAutoscalers[i]
				ref := h.Spec.ScaleTargetRef
				c, ok := targets[ref.Kind+"/"+h.Namespace+"/"+ref.Name]
				if !ok {
					continue
				}
				min := hpaMin(h)
				for _, b := range budgets[h.Namespace] {
					ma := b.Spec.MinAvailable
					if b.Spec.Selector == nil || ma == nil || ma.Type != intstr.Int || ma.IntVal < min {
						continue
					}
					sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
					if err != nil || !sel.Matches(labels.Set(c.podLabels)) {
						continue
					}
					r.report(hpaResource(h), "spec.minReplicas", "HorizontalPodAutoscaler %q may scale %s %q in to %d replicas, and PodDisruptionBudget %q keeps %d available: no pod may then be evicted", h.Name, ref.Kind, ref.Name, min, b.Name, ma.IntVal)
				}
			}
		},
	},
}

// scalableKinds are the kinds of workloads an autoscaler scales that the
// inventory holds.
var scalableKinds = map[string]bool{"Deployment": true, "StatefulSet": true, "ReplicaSet": true, "ReplicationController": true}

// scalableController is a workload an autoscaler may scale.
type scalableController struct {
	Resource
	podLabels map[string]string
}

func (inv *Inventory) scalable() []scalableController {
	out := make([]scalableController, 0, len(inv.Deployments)+len(inv.StatefulSets)+len(inv.ReplicaSets)+len(inv.ManagedReplicaSets)+len(inv.ReplicationControllers))
	add := func(apiVersion, kind string, meta *metav1.ObjectMeta, podLabels map[string]string) {
		out = append(out, scalableController{Resource: resourceOf(apiVersion, kind, meta), podLabels: podLabels})
	}
	for i := range inv.Deployments {
		o := &inv.Deployments[i]
		add("apps/v1", "Deployment", &o.ObjectMeta, o.Spec.Template.Labels)
	}
	for i := range inv.StatefulSets {
		o := &inv.StatefulSets[i]
		add("apps/v1", "StatefulSet", &o.ObjectMeta, o.Spec.Template.Labels)
	}
	for i := range inv.ReplicaSets {
		o := &inv.ReplicaSets[i]
		add("apps/v1", "ReplicaSet", &o.ObjectMeta, o.Spec.Template.Labels)
	}
	for i := range inv.ManagedReplicaSets {
		o := &inv.ManagedReplicaSets[i]
		add("apps/v1", "ReplicaSet", &o.ObjectMeta, o.PodLabels)
	}
	for i := range inv.ReplicationControllers {
		o := &inv.ReplicationControllers[i]
		var podLabels map[string]string
		if o.Spec.Template != nil {
			podLabels = o.Spec.Template.Labels
		}
		add("v1", "ReplicationController", &o.ObjectMeta, podLabels)
	}
	return out
}

// hpaMin is an autoscaler's minReplicas, 1 when unset as the API server
// defaults it.
func hpaMin(h *autoscalingv2.HorizontalPodAutoscaler) int32 {
	if h.Spec.MinReplicas == nil {
		return 1
	}
	return *h.Spec.MinReplicas
}

func hpaResource(h *autoscalingv2.HorizontalPodAutoscaler) Resource {
	return resourceOf("autoscaling/v2", "HorizontalPodAutoscaler", &h.ObjectMeta)
}

// autoscaledMinimum returns, by "Kind/namespace/name", the minReplicas of
// the workloads an autoscaler scales: their replica count is the
// autoscaler's to set, not their spec's.
func (inv *Inventory) autoscaledMinimum() map[string]int32 {
	out := map[string]int32{}
	for i := range inv.HorizontalPodAutoscalers {
		h := &inv.HorizontalPodAutoscalers[i]
		out[fmt.Sprintf("%s/%s/%s", h.Spec.ScaleTargetRef.Kind, h.Namespace, h.Spec.ScaleTargetRef.Name)] = hpaMin(h)
	}
	return out
}
