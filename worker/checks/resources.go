package checks

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// resourceChecks are about requests, probes and availability: what keeps a
// workload scheduled, healthy and running through node maintenance.
var resourceChecks = []*Check{
	{
		ID: "RES-003",
		container: func(r *reporter, w *Workload, c *Container) {
			if !c.Ephemeral && !requested(w, c, corev1.ResourceCPU) {
				r.report(w.Resource, c.Path, "container %q has no CPU request", c.Name)
			}
		},
	},
	{
		ID: "RES-004",
		container: func(r *reporter, w *Workload, c *Container) {
			if !c.Ephemeral && !requested(w, c, corev1.ResourceMemory) {
				r.report(w.Resource, c.Path, "container %q has no memory request", c.Name)
			}
		},
	},
	{
		ID: "RES-005",
		container: func(r *reporter, w *Workload, c *Container) {
			if spec := containerSpec(w, c); longRunning(w, c, spec) && spec.ReadinessProbe == nil {
				r.report(w.Resource, c.Path, "container %q has no readiness probe", c.Name)
			}
		},
	},
	{
		ID: "RES-006",
		container: func(r *reporter, w *Workload, c *Container) {
			if spec := containerSpec(w, c); longRunning(w, c, spec) && spec.LivenessProbe == nil {
				r.report(w.Resource, c.Path, "container %q has no liveness probe", c.Name)
			}
		},
	},
	{
		ID: "RES-007",
		inventory: func(r *reporter, inv *Inventory) {
			for i := range inv.Pods {
				p := &inv.Pods[i]
				// A mirror pod stands for a static pod, which the kubelet
				// manages; any controller, of any kind, re-creates its pods.
				if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; mirror || metav1.GetControllerOfNoCopy(&p.ObjectMeta) != nil {
					continue
				}
				r.report(resourceOf("v1", "Pod", &p.ObjectMeta), "", "Pod %q is not managed by a controller", p.Name)
			}
		},
	},
	{
		ID: "RES-008",
		inventory: func(r *reporter, inv *Inventory) {
			budgets := budgetSelectors(inv.PodDisruptionBudgets)
			for _, c := range inv.replicated() {
				if c.replicas == 0 {
					continue // scaled down: nothing runs, nothing can fail
				}
				covered := anyBudgetSelects(budgets[c.Namespace], c.podLabels)
				switch {
				case c.replicas < 2 && !covered:
					r.report(c.Resource, "", "%s %q runs 1 replica and no PodDisruptionBudget selects its pods", c.Kind, c.Name)
				case c.replicas < 2:
					r.report(c.Resource, "", "%s %q runs 1 replica", c.Kind, c.Name)
				case !covered:
					r.report(c.Resource, "", "no PodDisruptionBudget selects the %d replicas of %s %q", c.replicas, c.Kind, c.Name)
				}
			}
		},
	},
	{
		ID: "RES-009",
		inventory: func(r *reporter, inv *Inventory) {
			// By namespace, so that each budget is held against its own
			// namespace's controllers, not every controller of the cluster.
			controllers := map[string][]replicatedController{}
			for _, c := range inv.replicated() {
				controllers[c.Namespace] = append(controllers[c.Namespace], c)
			}
			for i := range inv.PodDisruptionBudgets {
				b := &inv.PodDisruptionBudgets[i]
				res := resourceOf("policy/v1", "PodDisruptionBudget", &b.ObjectMeta)
				if why := blocksEvictions(b, controllers[b.Namespace]); why != "" {
					r.report(res, "spec", "PodDisruptionBudget %q %s", b.Name, why)
				}
			}
		},
	},
	{
		ID: "RES-010",
		inventory: func(r *reporter, inv *Inventory) {
			pods := inv.podLabels()
			for i := range inv.PodDisruptionBudgets {
				b := &inv.PodDisruptionBudgets[i]
				res := resourceOf("policy/v1", "PodDisruptionBudget", &b.ObjectMeta)
				if b.Spec.Selector == nil {
					r.report(res, "spec.selector", "PodDisruptionBudget %q has no selector: it selects no pod", b.Name)
					continue
				}
				sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
				if err != nil {
					r.report(res, "spec.selector", "PodDisruptionBudget %q has an invalid selector: %v", b.Name, err)
					continue
				}
				if !slices.ContainsFunc(pods[b.Namespace], sel.Matches) {
					r.report(res, "spec.selector", "PodDisruptionBudget %q selects %s, which matches no pod in namespace %q", b.Name, sel, b.Namespace)
				}
			}
		},
	},
}

// replicatedController is a Deployment or StatefulSet seen through what the
// availability checks read.
type replicatedController struct {
	Resource
	replicas  int32
	podLabels map[string]string
}

// replicated lists the inventory's Deployments and StatefulSets, with
// their replica counts: 1 when unset, as the API server defaults it, and
// an autoscaler's minReplicas when one scales them.
func (inv *Inventory) replicated() []replicatedController {
	out := make([]replicatedController, 0, len(inv.Deployments)+len(inv.StatefulSets))
	autoscaled := inv.autoscaledMinimum()
	add := func(kind string, meta *metav1.ObjectMeta, replicas *int32, podLabels map[string]string) {
		n := int32(1)
		if replicas != nil {
			n = *replicas
		}
		if min, ok := autoscaled[kind+"/"+meta.Namespace+"/"+meta.Name]; ok && n != 0 {
			n = min
		}
		out = append(out, replicatedController{Resource: resourceOf("apps/v1", kind, meta), replicas: n, podLabels: podLabels})
	}
	for i := range inv.Deployments {
		d := &inv.Deployments[i]
		add("Deployment", &d.ObjectMeta, d.Spec.Replicas, d.Spec.Template.Labels)
	}
	for i := range inv.StatefulSets {
		s := &inv.StatefulSets[i]
		add("StatefulSet", &s.ObjectMeta, s.Spec.Replicas, s.Spec.Template.Labels)
	}
	return out
}

// blocksEvictions says why a budget lets no pod be evicted, or "", from
// the controllers of its namespace.
func blocksEvictions(b *policyv1.PodDisruptionBudget, controllers []replicatedController) string {
	if mu := b.Spec.MaxUnavailable; mu != nil {
		if (mu.Type == intstr.Int && mu.IntVal == 0) || (mu.Type == intstr.String && strings.TrimSpace(mu.StrVal) == "0%") {
			return fmt.Sprintf("sets maxUnavailable %s: no pod may ever be evicted", mu.String())
		}
		return ""
	}
	ma := b.Spec.MinAvailable
	if ma == nil {
		return ""
	}
	if ma.Type == intstr.String {
		if strings.TrimSpace(ma.StrVal) == "100%" {
			return "sets minAvailable 100%: no pod may ever be evicted"
		}
		return ""
	}
	if b.Spec.Selector == nil || ma.IntVal <= 0 {
		return ""
	}
	sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
	if err != nil {
		return ""
	}
	// Judged against the controllers it selects: minAvailable at or above
	// the replicas of every one of them blocks every eviction.
	var selected []string
	for _, c := range controllers {
		if c.Namespace != b.Namespace || c.replicas == 0 || !sel.Matches(labels.Set(c.podLabels)) {
			continue
		}
		if ma.IntVal < c.replicas {
			return ""
		}
		selected = append(selected, fmt.Sprintf("%s %q (%d)", c.Kind, c.Name, c.replicas))
	}
	if len(selected) == 0 {
		return ""
	}
	return fmt.Sprintf("sets minAvailable %d, at least the replicas of %s: no pod may ever be evicted", ma.IntVal, strings.Join(selected, ", "))
}

// requested reports whether a container requests the resource: by its own
// request, by a limit (a limit without a request is also the request, as the
// API server defaults it), or by the pod-level resources.
func requested(w *Workload, c *Container, name corev1.ResourceName) bool {
	for _, list := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
		if _, ok := list[name]; ok {
			return true
		}
	}
	if pod := w.Spec.Resources; pod != nil {
		for _, list := range []corev1.ResourceList{pod.Requests, pod.Limits} {
			if _, ok := list[name]; ok {
				return true
			}
		}
	}
	return false
}

// longRunning reports whether a container is expected to run as long as
// its pod: not in a Job, a CronJob or a Pod that runs to completion, and
// not an init container unless a sidecar, nor an ephemeral container,
// which cannot have probes.
func longRunning(w *Workload, c *Container, spec *corev1.Container) bool {
	switch w.Kind {
	case "Job", "CronJob":
		return false
	case "Pod":
		if p := w.Spec.RestartPolicy; p != "" && p != corev1.RestartPolicyAlways {
			return false
		}
	}
	switch {
	case c.Ephemeral:
		return false
	case strings.HasPrefix(c.Path, "initContainers["):
		return spec.RestartPolicy != nil && *spec.RestartPolicy == corev1.ContainerRestartPolicyAlways
	}
	return true
}

// budgetSelectors returns by namespace the selectors of the
// PodDisruptionBudgets, each converted once: RES-008 holds every
// controller against its namespace's budgets, where scanning every budget
// of the cluster for each controller grew as controllers times budgets.
// An empty selector selects every pod of the namespace; a missing or
// invalid one selects none and is left out.
func budgetSelectors(budgets []policyv1.PodDisruptionBudget) map[string][]labels.Selector {
	out := map[string][]labels.Selector{}
	for i := range budgets {
		b := &budgets[i]
		if b.Spec.Selector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if err != nil {
			continue
		}
		out[b.Namespace] = append(out[b.Namespace], sel)
	}
	return out
}

// anyBudgetSelects reports whether one of the selectors matches podLabels.
func anyBudgetSelects(selectors []labels.Selector, podLabels map[string]string) bool {
	set := labels.Set(podLabels)
	return slices.ContainsFunc(selectors, func(s labels.Selector) bool { return s.Matches(set) })
}
