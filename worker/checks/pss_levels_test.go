package checks

import (
	"testing"

	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"

	"github.com/fleetscan/fleetscan/worker/checks/checkstest"
)

// TestRestrictedAdmitsWhatBaselineAdmits: evaluatePSS stops at
// restricted when restricted admits a pod, on the ground that every
// baseline control is a restricted one. Every workload of the generated
// corpora bears that out.
func TestRestrictedAdmitsWhatBaselineAdmits(t *testing.T) {
	inv := &Inventory{}
	for _, o := range append(checkstest.Objects(2000), checkstest.Cluster(2000)...) {
		inv.Add(o)
	}
	admits := func(w *Workload, l psaapi.Level) bool {
		return psapolicy.AggregateCheckResults(pssEvaluator().EvaluatePod(psaapi.LevelVersion{Level: l, Version: psaapi.LatestVersion()}, w.PodMeta, w.Spec)).Allowed
	}
	restricted, baselineOnly := 0, 0
	for _, w := range inv.Workloads() {
		switch r, b := admits(&w, psaapi.LevelRestricted), admits(&w, psaapi.LevelBaseline); {
		case r && !b:
			t.Fatalf("%v: restricted admits it, baseline does not", w.Resource)
		case r:
			restricted++
		case b:
			baselineOnly++
		}
	}
	if restricted == 0 || baselineOnly == 0 {
		t.Fatalf("%d workloads meet restricted, %d baseline only: the corpora do not test both", restricted, baselineOnly)
	}
}
