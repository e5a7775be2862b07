package collect

import (
	"context"
	"slices"
	"testing"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/fleetscan/fleetscan/worker/checks"
)

const workerManifests = "../../../deploy/kubernetes/worker"

// TestWorkerClusterRoleMatchesCollectors derives what the collectors list
// and compares it with the ClusterRole shipped in deploy/: get and list on
// exactly those resources, nothing else, and never Secrets.
func TestWorkerClusterRoleMatchesCollectors(t *testing.T) {
	inv, stats, err := LoadSnapshot(workerManifests)
	if err != nil || len(stats.Problems) > 0 {
		t.Fatalf("load %s: %v %v", workerManifests, err, stats.Problems)
	}
	var role *struct{}
	var granted []string
	for _, cr := range inv.ClusterRoles {
		if cr.Name != "fleetscan-worker" {
			continue
		}
		role = &struct{}{}
		for _, rule := range cr.Rules {
			if !slices.Equal(rule.Verbs, []string{"get", "list"}) {
				t.Errorf("rule %v grants verbs %v, want exactly [get list]", rule.Resources, rule.Verbs)
			}
			if len(rule.ResourceNames) > 0 || len(rule.NonResourceURLs) > 0 {
				t.Errorf("unexpected rule %v", rule)
			}
			for _, g := range rule.APIGroups {
				for _, r := range rule.Resources {
					name := r
					if g != "" {
						name += "." + g
					}
					granted = append(granted, name)
				}
			}
		}
	}
	if role == nil {
		t.Fatal("no ClusterRole fleetscan-worker in deploy/")
	}
	want := (&Kube{Client: fake.NewClientset()}).Resources()
	slices.Sort(want)
	slices.Sort(granted)
	if !slices.Equal(granted, want) {
		t.Errorf("ClusterRole grants %v\ncollectors list  %v", granted, want)
	}
	if slices.Contains(granted, "secrets") {
		t.Error("the worker may read Secrets")
	}
}

// TestWorkerManifestsPassOwnChecks: fleetscan's own worker manifests have
// no HIGH or CRITICAL finding.
func TestWorkerManifestsPassOwnChecks(t *testing.T) {
	inv, _, err := LoadSnapshot(workerManifests)
	if err != nil {
		t.Fatal(err)
	}
	_, err = checks.Run(context.Background(), inv, checks.Selection{}, func(f checks.Finding) error {
		if f.Severity >= checks.SeverityHigh {
			t.Errorf("%s on %s/%s %s: %s", f.CheckID, f.Resource.Kind, f.Resource.Name, f.Resource.SubPath, f.Message)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
