package checks

import (
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
)

// CategoryPSS is the category of the Pod Security Standards checks.
const CategoryPSS = "pod-security-standards"

// pssEvaluator is Kubernetes' own implementation of the Pod Security
// Standards, the one the PodSecurity admission plugin runs: fleetscan
// reports what admission would decide, not a re-implementation of it.
var pssEvaluator = sync.OnceValue(func() psapolicy.Evaluator {
	e, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		panic(fmt.Sprintf("checks: pod security evaluator: %v", err))
	}
	return e
})

// pssLevels are the levels from the strictest down.
var pssLevels = []psaapi.Level{psaapi.LevelRestricted, psaapi.LevelBaseline}

// pssResult is how a workload fares against the Pod Security Standards.
type pssResult struct {
	// level is the strictest level it meets: restricted, baseline or
	// privileged.
	level psaapi.Level
	// violations of the next stricter level, as admission words them.
	baseline, restricted string
}

func evaluatePSS(w *Workload, version psaapi.Version) pssResult {
	res := pssResult{level: psaapi.LevelRestricted}
	for _, level := range pssLevels {
		agg := psapolicy.AggregateCheckResults(pssEvaluator().EvaluatePod(psaapi.LevelVersion{Level: level, Version: version}, w.PodMeta, w.Spec))
		if agg.Allowed {
			continue
		}
		if level == psaapi.LevelRestricted {
			res.restricted = agg.ForbiddenDetail()
			res.level = psaapi.LevelBaseline
		} else {
			res.baseline = agg.ForbiddenDetail()
			res.level = psaapi.LevelPrivileged
		}
	}
	return res
}

// pss evaluates a workload against the latest Pod Security Standards once
// per run, however many checks ask.
func (r *reporter) pss(w *Workload) pssResult {
	if res, ok := r.pssCache[w.Spec]; ok {
		return res
	}
	if r.pssCache == nil {
		r.pssCache = map[*corev1.PodSpec]pssResult{}
	}
	res := evaluatePSS(w, psaapi.LatestVersion())
	r.pssCache[w.Spec] = res
	return res
}

// namespaceLevel is the level a namespace enforces and its policy version,
// read from its pod-security.kubernetes.io labels as the admission plugin
// reads them: privileged when unlabelled, restricted when the label is
// invalid (admission fails closed).
func namespaceLevel(inv *Inventory, ns string) (psaapi.Level, psaapi.Version) {
	for i := range inv.Namespaces {
		if n := &inv.Namespaces[i]; n.Name == ns {
			policy, _ := psaapi.PolicyToEvaluate(n.Labels, psaapi.Policy{
				Enforce: psaapi.LevelVersion{Level: psaapi.LevelPrivileged, Version: psaapi.LatestVersion()},
			})
			return policy.Enforce.Level, policy.Enforce.Version
		}
	}
	return psaapi.LevelPrivileged, psaapi.LatestVersion()
}

var pssChecks = []*Check{
	{
		Meta: Meta{
			ID: "PSS-001", Title: "Violates the baseline Pod Security Standard", Severity: high, Category: CategoryPSS, Party: partyWorkload,
			Description: "The pods do not meet the baseline Pod Security Standard, which prevents known privilege escalations; the PodSecurity admission plugin would reject them in a namespace that enforces baseline. Evaluated with Kubernetes' own pod-security-admission library.",
			Remediation: "Remove what the message lists (host namespaces, privileged mode, hostPath volumes, added capabilities, …), then aim for restricted.",
			Frameworks:  []string{"PSS Baseline", "CIS 5.2.1", "NSA 1.0"},
		},
		workload: func(r *reporter, w *Workload) {
			if res := r.pss(w); res.level == psaapi.LevelPrivileged {
				r.report(w.Resource, "", "pods meet only the privileged level; baseline forbids: %s", res.baseline)
			}
		},
	},
	{
		Meta: Meta{
			ID: "PSS-002", Title: "Meets baseline but not restricted", Severity: low, Category: CategoryPSS, Party: partyWorkload,
			Description: "The pods meet the baseline Pod Security Standard but not restricted, the current hardening best practice. Evaluated with Kubernetes' own pod-security-admission library.",
			Remediation: "Apply what the message lists: runAsNonRoot, allowPrivilegeEscalation: false, capabilities drop ALL, a RuntimeDefault seccomp profile, restricted volume types.",
			Frameworks:  []string{"PSS Restricted", "CIS 5.2.1"},
		},
		workload: func(r *reporter, w *Workload) {
			if res := r.pss(w); res.level == psaapi.LevelBaseline {
				r.report(w.Resource, "", "pods meet baseline, not restricted: %s", res.restricted)
			}
		},
	},
	{
		Meta: Meta{
			ID: "PSS-003", Title: "Namespace enforces less than its workloads meet", Severity: low, Category: CategoryPSS, Party: partyPlatform,
			Description: "Every workload of the namespace already meets a stricter Pod Security Standard than the namespace enforces: raising pod-security.kubernetes.io/enforce costs nothing today and stops a weaker pod tomorrow.",
			Remediation: "Label the namespace pod-security.kubernetes.io/enforce with the level the message names.",
			Frameworks:  []string{"CIS 5.2.1", "PSS"},
		},
		inventory: func(r *reporter, inv *Inventory) {
			strictest := map[string]psaapi.Level{}
			for _, w := range r.workloads(inv) {
				level := r.pss(&w).level
				if cur, ok := strictest[w.Namespace]; !ok || levelRank(level) < levelRank(cur) {
					strictest[w.Namespace] = level
				}
			}
			for i := range inv.Namespaces {
				ns := &inv.Namespaces[i]
				meets, ok := strictest[ns.Name]
				if !ok || systemNamespace(ns.Name) {
					continue
				}
				enforced, _ := namespaceLevel(inv, ns.Name)
				if levelRank(meets) > levelRank(enforced) {
					r.report(resourceOf("v1", "Namespace", &ns.ObjectMeta), "", "namespace %q enforces %s, but all its workloads meet %s", ns.Name, enforced, meets)
				}
			}
		},
	},
	{
		Meta: Meta{
			ID: "PSS-004", Title: "Workload violates its namespace's enforced level", Severity: medium, Category: CategoryPSS, Party: partyWorkload,
			Description: "The namespace enforces a Pod Security Standard the workload's pods do not meet: they predate the label or were admitted another way, and will be rejected the next time they are re-created (a rollout, a node drain).",
			Remediation: "Fix the pod spec to meet the namespace's level before the next rollout.",
			Frameworks:  []string{"CIS 5.2.1", "PSS"},
		},
		inventory: func(r *reporter, inv *Inventory) {
			for _, w := range r.workloads(inv) {
				enforced, version := namespaceLevel(inv, w.Namespace)
				if enforced == psaapi.LevelPrivileged {
					continue
				}
				agg := psapolicy.AggregateCheckResults(pssEvaluator().EvaluatePod(psaapi.LevelVersion{Level: enforced, Version: version}, w.PodMeta, w.Spec))
				if !agg.Allowed {
					r.report(w.Resource, "", "namespace %q enforces %s, which forbids: %s", w.Namespace, enforced, agg.ForbiddenDetail())
				}
			}
		},
	},
}

// levelRank orders levels: restricted is the strictest.
func levelRank(l psaapi.Level) int {
	switch l {
	case psaapi.LevelRestricted:
		return 2
	case psaapi.LevelBaseline:
		return 1
	}
	return 0
}
