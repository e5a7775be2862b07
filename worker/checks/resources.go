package checks

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
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
			Description: "A Deployment with a single replica is down whenever its pod is; without a PodDisruptionBudget a node drain may evict all its replicas at once.",
			Remediation: "Run at least 2 replicas, spread over nodes, and add a PodDisruptionBudget that selects the pods.",
		},
		inventory: func(r *reporter, inv *Inventory) {
			for i := range inv.Deployments {
				d := &inv.Deployments[i]
				replicas := int32(1)
				if d.Spec.Replicas != nil {
					replicas = *d.Spec.Replicas
				}
				if replicas == 0 {
					continue // scaled down: nothing runs, nothing can fail
				}
				covered := anyBudgetSelects(inv.PodDisruptionBudgets, d.Namespace, d.Spec.Template.Labels)
				res := resourceOf("apps/v1", "Deployment", &d.ObjectMeta)
				switch {
				case replicas < 2 && !covered:
					r.report(res, "", "Deployment %q runs 1 replica and no PodDisruptionBudget selects its pods", d.Name)
				case replicas < 2:
					r.report(res, "", "Deployment %q runs 1 replica", d.Name)
				case !covered:
					r.report(res, "", "no PodDisruptionBudget selects the %d replicas of Deployment %q", replicas, d.Name)
				}
			}
		},
	},
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
