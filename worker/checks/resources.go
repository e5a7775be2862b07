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
		Meta: Meta{
			ID: "RES-003", Title: "No CPU request", Severity: low, Category: CategoryResources, Party: partyWorkload,
			Description: "A container without a CPU request is scheduled as if it needed no CPU and is the first to be starved under contention.",
			Remediation: "Set resources.requests.cpu to what the container uses under normal load.",
		},
		container: func(r *reporter, w *Workload, c *Container) {
			if !c.Ephemeral && !requested(w, c, corev1.ResourceCPU) {
				r.report(w.Resource, c.Path, "container %q has no CPU request", c.Name)
			}
		},
	},
	{
		Meta: Meta{
			ID: "RES-004", Title: "No memory request", Severity: low, Category: CategoryResources, Party: partyWorkload,
			Description: "A container without a memory request is scheduled as if it needed no memory, overcommits its node and is among the first evicted under memory pressure.",
			Remediation: "Set resources.requests.memory to what the container uses under normal load.",
		},
		container: func(r *reporter, w *Workload, c *Container) {
			if !c.Ephemeral && !requested(w, c, corev1.ResourceMemory) {
				r.report(w.Resource, c.Path, "container %q has no memory request", c.Name)
			}
		},
	},
	{
		Meta: Meta{
			ID: "RES-005", Title: "No readiness probe", Severity: low, Category: CategoryResources, Party: partyWorkload,
			Description: "Without a readiness probe a long-running container receives traffic from Services as soon as it starts, and still when it can no longer serve. Jobs, run-to-completion pods and init containers are left out; sidecars (init containers with restartPolicy: Always) are not.",
			Remediation: "Add a readinessProbe that checks the container can serve.",
		},
		container: func(r *reporter, w *Workload, c *Container) {
			if spec := containerSpec(w, c); longRunning(w, c, spec) && spec.ReadinessProbe == nil {
				r.report(w.Resource, c.Path, "container %q has no readiness probe", c.Name)
			}
		},
	},
	{
		Meta: Meta{
			ID: "RES-006", Title: "No liveness probe", Severity: low, Category: CategoryResources, Party: partyWorkload,
			Description: "Without a liveness probe a long-running container that hangs without exiting is never restarted. Jobs, run-to-completion pods and init containers are left out; sidecars (init containers with restartPolicy: Always) are not.",
			Remediation: "Add a livenessProbe that fails only when the process cannot recover by itself.",
		},
		container: func(r *reporter, w *Workload, c *Container) {
			if spec := containerSpec(w, c); longRunning(w, c, spec) && spec.LivenessProbe == nil {
				r.report(w.Resource, c.Path, "container %q has no liveness probe", c.Name)
			}
		},
	},
	{
		Meta: Meta{
			ID: "RES-007", Title: "Naked pod", Severity: low, Category: CategoryResources, Party: partyWorkload,
			Description: "A Pod that no controller manages is not re-created when its node fails or drains, nor rolled out, nor scaled.",
			Remediation: "Run it from a Deployment, StatefulSet, DaemonSet or Job.",
		},
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
		Meta: Meta{
			ID: "RES-008", Title: "Single point of failure", Severity: low, Category: CategoryResources, Party: partyWorkload,
			Description: "A Deployment or StatefulSet with a single replica is down whenever its pod is; without a PodDisruptionBudget a node drain may evict all its replicas at once.",
			Remediation: "Run at least 2 replicas, spread over nodes, and add a PodDisruptionBudget that selects the pods.",
		},
		inventory: func(r *reporter, inv *Inventory) {
			for _, c := range inv.replicated() {
				if c.replicas == 0 {
					continue // scaled down: nothing runs, nothing can fail
				}
				covered := anyBudgetSelects(inv.PodDisruptionBudgets, c.Namespace, c.podLabels)
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
		Meta: Meta{
			ID: "RES-009", Title: "PodDisruptionBudget allows no eviction", Severity: medium, Category: CategoryResources, Party: partyWorkload,
			Description: "A PodDisruptionBudget with maxUnavailable 0 (or 0%), minAvailable 100%, or minAvailable at least the replicas of what it selects never lets a pod be evicted: node drains, upgrades and autoscaler scale-downs hang until someone deletes it.",
			Remediation: "Allow at least one disruption: maxUnavailable: 1, or minAvailable below the replica count.",
		},
		inventory: func(r *reporter, inv *Inventory) {
			controllers := inv.replicated()
			for i := range inv.PodDisruptionBudgets {
				b := &inv.PodDisruptionBudgets[i]
				res := resourceOf("policy/v1", "PodDisruptionBudget", &b.ObjectMeta)
				if why := blocksEvictions(b, controllers); why != "" {
					r.report(res, "spec", "PodDisruptionBudget %q %s", b.Name, why)
				}
			}
		},
	},
	{
		Meta: Meta{
			ID: "RES-010", Title: "PodDisruptionBudget selects no pod", Severity: low, Category: CategoryResources, Party: partyWorkload,
			Description: "A PodDisruptionBudget whose selector matches no pod of its namespace protects nothing: the workload it was written for is evicted freely. A missing selector selects no pod. Pods of every controller count, operators' included.",
			Remediation: "Fix the selector to match the labels of the pods it should protect, or delete the budget.",
		},
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
	var out []replicatedController
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

// blocksEvictions says why a budget lets no pod be evicted, or "".
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

// anyBudgetSelects reports whether a PodDisruptionBudget of the namespace
// selects pods with these labels. An empty selector selects every pod of
// the namespace; a missing one selects none.
func anyBudgetSelects(budgets []policyv1.PodDisruptionBudget, namespace string, podLabels map[string]string) bool {
	for i := range budgets {
		b := &budgets[i]
		if b.Namespace != namespace || b.Spec.Selector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if err != nil {
			continue // an invalid selector selects nothing
		}
		if sel.Matches(labels.Set(podLabels)) {
			return true
		}
	}
	return false
}
