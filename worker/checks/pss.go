package checks

import (
	"fmt"
	corev1 "k8s.io/api/core/v1"
	"sync"

	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
)

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

// pssCache holds each workload's evaluation once per run, for all the
// run's reporters (a plain map under a lock: a sync.Map's boxed entries
// cost several MiB on a large cluster).
type pssCache struct {
	mu      sync.Mutex
	results map[*corev1.PodSpec]pssResult
}

// pss evaluates a workload against the latest Pod Security Standards once
// per run, however many checks ask, on whichever goroutine.
func (r *reporter) pss(w *Workload) pssResult {
	if r.pssCache == nil {
		r.pssCache = &pssCache{}
	}
	c := r.pssCache
	c.mu.Lock()
	res, ok := c.results[w.Spec]
	c.mu.Unlock()
	if ok {
		return res
	}
	res = evaluatePSS(w, psaapi.LatestVersion())
	c.mu.Lock()
	if c.results == nil {
		c.results = map[*corev1.PodSpec]pssResult{}
	}
	c.results[w.Spec] = res
	c.mu.Unlock()
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
		ID: "PSS-001",
		workload: func(r *reporter, w *Workload) {
			if res := r.pss(w); res.level == psaapi.LevelPrivileged {
				r.report(w.Resource, "", "pods meet only the privileged level; baseline forbids: %s", res.baseline)
			}
		},
	},
	{
		ID: "PSS-002",
		workload: func(r *reporter, w *Workload) {
			if res := r.pss(w); res.level == psaapi.LevelBaseline {
				r.report(w.Resource, "", "pods meet baseline, not restricted: %s", res.restricted)
			}
		},
	},
	{
		ID: "PSS-003",
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
		ID: "PSS-004",
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
