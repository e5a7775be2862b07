package collect

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetscan/fleetscan/worker/catalog"
	"github.com/fleetscan/fleetscan/worker/checks"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// oldManifest is a manifest of kind in apiVersion, with a privileged pod
// template where the kind has one, at the path the old versions kept it.
func oldManifest(apiVersion, kind string) string {
	pod := "template: {metadata: {labels: {app: old}}, spec: {containers: [{name: app, image: nginx, securityContext: {privileged: true}}]}}"
	spec := map[string]string{
		"Deployment": "spec: {" + pod + "}", "DaemonSet": "spec: {" + pod + "}", "ReplicaSet": "spec: {" + pod + "}", "StatefulSet": "spec: {serviceName: old, " + pod + "}",
		"CronJob":                 `spec: {schedule: "* * * * *", jobTemplate: {spec: {` + pod + `}}}`,
		"PodDisruptionBudget":     "spec: {minAvailable: 1, selector: {matchLabels: {app: old}}}",
		"HorizontalPodAutoscaler": "spec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: old}, minReplicas: 2, maxReplicas: 5, targetCPUUtilizationPercentage: 80}",
		"NetworkPolicy":           "spec: {podSelector: {}}",
		"Ingress":                 "spec: {rules: [{host: old.example.com}]}",
		"Role":                    "rules: [{apiGroups: [''], resources: [secrets], verbs: [get]}]",
		"ClusterRole":             "rules: [{apiGroups: [''], resources: [secrets], verbs: [get]}]",
		"RoleBinding":             "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: old}\nsubjects: [{kind: ServiceAccount, name: default, namespace: shop}]",
		"ClusterRoleBinding":      "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: old}\nsubjects: [{kind: ServiceAccount, name: default, namespace: shop}]",
	}[kind]
	return fmt.Sprintf("apiVersion: %s\nkind: %s\nmetadata: {name: old, namespace: shop}\n%s\n", apiVersion, kind, spec)
}

// TestRemovedVersionsAreChecked: a manifest in a version Kubernetes
// removed is read in the current version, not skipped: its pod template
// is there for the workload checks, and the version it is written in is
// kept for NS-008. Before, such a manifest scanned as "0 objects".
func TestRemovedVersionsAreChecked(t *testing.T) {
	for key, current := range upgrades {
		apiVersion, kind, _ := strings.Cut(key, " ")
		t.Run(apiVersion+"/"+kind, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "old.yaml")
			if err := os.WriteFile(path, []byte(oldManifest(apiVersion, kind)), 0o644); err != nil {
				t.Fatal(err)
			}
			inv, stats, err := LoadSnapshotFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if stats.Objects != 1 || stats.Skipped != 0 || len(stats.Problems) != 0 {
				t.Fatalf("objects %d, skipped %d, problems %q; want the object read", stats.Objects, stats.Skipped, stats.Problems)
			}
			if got := catalog.CanonicalAPIVersion(kind); got != current {
				t.Errorf("read as %s, the inventory holds %s in %s", current, kind, got)
			}
			// autoscaling/v1 is still served: read as v2, not reported.
			stillServed := apiVersion == "autoscaling/v1"
			if got := inv.WrittenAs[kind+"/shop/old"]; got != apiVersion && !(stillServed && got == "") {
				t.Errorf("written as %q, want %q", got, apiVersion)
			}
			var specs []*corev1.PodSpec
			for _, w := range inv.Workloads() {
				specs = append(specs, w.Spec)
			}
			if strings.Contains(oldManifest(apiVersion, kind), "template") {
				if len(specs) != 1 || len(specs[0].Containers) != 1 || !*specs[0].Containers[0].SecurityContext.Privileged {
					t.Errorf("pod template not read: %d workloads", len(specs))
				}
			}
			var ns8 []string
			_, err = checks.Run(t.Context(), inv, policy.Selection{Include: []string{"NS-008"}}, func(f checks.Finding) error {
				ns8 = append(ns8, f.Message)
				return nil
			})
			if stillServed {
				if err != nil || len(ns8) != 0 {
					t.Errorf("NS-008: %q %v, want nothing for a version still served", ns8, err)
				}
				return
			}
			if err != nil || len(ns8) != 1 || !strings.Contains(ns8[0], "written as "+apiVersion) {
				t.Errorf("NS-008: %q %v, want the removed version reported", ns8, err)
			}
		})
	}
}

// TestAutoscalingV1IsReadAsV2: an autoscaling/v1 HPA, still served, is
// read as v2 with its CPU target as v2's metric, without a warning.
func TestAutoscalingV1IsReadAsV2(t *testing.T) {
	inv := &checks.Inventory{}
	stats, err := DecodeManifests(strings.NewReader(oldManifest("autoscaling/v1", "HorizontalPodAutoscaler")), "hpa.yaml", inv)
	if err != nil || len(stats.Problems)+len(stats.Warnings) > 0 || len(inv.HorizontalPodAutoscalers) != 1 {
		t.Fatalf("decode: %v %q %q, %d HPAs", err, stats.Problems, stats.Warnings, len(inv.HorizontalPodAutoscalers))
	}
	spec := inv.HorizontalPodAutoscalers[0].Spec
	if len(spec.Metrics) != 1 || spec.Metrics[0].Resource == nil || *spec.Metrics[0].Resource.Target.AverageUtilization != 80 || *spec.MinReplicas != 2 {
		t.Errorf("spec %+v", spec)
	}
}
