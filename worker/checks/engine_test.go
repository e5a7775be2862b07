package checks_test

import (
	"context"
	"strings"
	"testing"

	"github.com/fleetscan/fleetscan/worker/checks"
	"github.com/fleetscan/fleetscan/worker/internal/collect"
	"github.com/fleetscan/fleetscan/worker/policy"
)

const exempted = `
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: node-agent
  namespace: monitoring
  annotations:
    fleetscan.io/exempt: "POD-005, pod-007"
    fleetscan.io/exempt-reason: "reads node metrics; reviewed in SEC-1234"
spec:
  selector: {matchLabels: {app: node-agent}}
  template:
    metadata: {labels: {app: node-agent}}
    spec:
      hostNetwork: true
      hostPID: true
      volumes: [{name: proc, hostPath: {path: /proc}}]
      containers: [{name: agent, image: "agent:1.0"}]
`

// TestExemptionAnnotation: an exempted finding is still reported, marked
// suppressed with the reason; other checks on the object are unaffected.
func TestExemptionAnnotation(t *testing.T) {
	inv := &checks.Inventory{}
	if _, err := collect.DecodeManifests(strings.NewReader(exempted), "exempt.yaml", inv); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	_, err := checks.Run(context.Background(), inv, policy.Selection{Include: []string{"POD-003", "POD-005", "POD-007"}}, func(f checks.Finding) error {
		got[f.CheckID] = f.Suppressed
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"POD-003": "",
		"POD-005": "reads node metrics; reviewed in SEC-1234",
		"POD-007": "reads node metrics; reviewed in SEC-1234",
	}
	for id, reason := range want {
		r, ok := got[id]
		if !ok {
			t.Errorf("%s not reported: an exemption must not drop the finding", id)
		} else if r != reason {
			t.Errorf("%s suppressed %q, want %q", id, r, reason)
		}
	}
}

func TestSelection(t *testing.T) {
	inv := &checks.Inventory{}
	if _, err := collect.DecodeManifests(strings.NewReader(exempted), "exempt.yaml", inv); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	_, err := checks.Run(context.Background(), inv, policy.Selection{Exclude: []string{"POD-003"}}, func(f checks.Finding) error {
		seen[f.CheckID] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen["POD-003"] || !seen["POD-005"] {
		t.Errorf("exclude POD-003: saw %v", seen)
	}
	seen = map[string]bool{}
	_, err = checks.Run(context.Background(), inv, policy.Selection{Namespaces: []string{"other"}}, func(f checks.Finding) error {
		if f.Resource.Namespace != "" {
			t.Errorf("finding in namespace %q outside the selection", f.Resource.Namespace)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checks.Run(context.Background(), inv, policy.Selection{Include: []string{"NOPE-1"}}, nil); err == nil {
		t.Error("unknown check id accepted")
	}
}
