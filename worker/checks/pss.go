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
			// Restricted holds every baseline control: a pod it admits,
			// baseline admits too, and a second evaluation is waste.
			break
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
	// details holds each distinct violation text once: workloads made
	// from one chart share theirs, and at 100,000 objects the copies
	// were 10 MiB of the heap the scan keeps to its end.
	details map[string]string
}

// intern returns the held copy of s, holding s if none is; c.mu is held.
func (c *pssCache) intern(s string) string {
	if s == "" {
		return s
	}
	if held, ok := c.details[s]; ok {
		return held
	}
	if c.details == nil {
		c.details = map[string]string{}
	}
	c.details[s] = s
	return s
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
	res.baseline, res.restricted = c.intern(res.baseline), c.intern(res.restricted)
	c.results[w.Spec] = res
	c.mu.Unlock()
	return res
}

// enforcedLevel is the level a namespace enforces and its policy version,
// read from its pod-security.kubernetes.io labels as the admission plugin
// reads them: privileged when unlabelled, restricted when the label is
// invalid (admission fails closed).
func enforcedLevel(n *corev1.Namespace) (psaapi.Level, psaapi.Version) {
	policy, _ := psaapi.PolicyToEvaluate(n.Labels, psaapi.Policy{
		Enforce: psaapi.LevelVersion{Level: psaapi.LevelPrivileged, Version: psaapi.LatestVersion()},
	})
	return policy.Enforce.Level, policy.Enforce.Version
}

// namespaceLevels returns the enforced level of a namespace by name
// (privileged for one the inventory does not hold), each namespace read
// once: finding it by scanning them all for every workload grew as
// workloads times namespaces.
func namespaceLevels(inv *Inventory) func(ns string) (psaapi.Level, psaapi.Version) {
	levels := make(map[string]psaapi.LevelVersion, len(inv.Namespaces))
	for i := range inv.Namespaces {
		n := &inv.Namespaces[i]
		if _, seen := levels[n.Name]; !seen {
			level, version := enforcedLevel(n)
			levels[n.Name] = psaapi.LevelVersion{Level: level, Version: version}
		}
	}
	return func(ns string) (psaapi.Level, psaapi.Version) {
		if lv, ok := levels[ns]; ok {
			return lv.Level, lv.Version
		}
		return psaapi.LevelPrivileged, psaapi.LatestVersion()
	}
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
			levelOf := namespaceLevels(inv)
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
				enforced, _ := levelOf(ns.Name)
				if levelRank(meets) > levelRank(enforced) {
					r.report(resourceOf("v1", "Namespace", &ns.ObjectMeta), "", "namespace %q enforces %s, but all its workloads meet %s", ns.Name, enforced, meets)
				}
			}
		},
	},
	{
		ID: "PSS-004",
		inventory: func(r *reporter, inv *Inventory) {
			levelOf := namespaceLevels(inv)
			for _, w := range r.workloads(inv) {
				enforced, version := levelOf(w.Namespace)
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
