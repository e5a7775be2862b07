package collect

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetscan/fleetscan/worker/checks"
)

// oldManifest is a manifest of kind in apiVersion, with a privileged pod
// template where the kind has one, at the path the old versions kept it.
func oldManifest(apiVersion, kind string) string {
	pod := "template: {metadata: {labels: {app: old}}, spec: {containers: [{name: app, image: nginx, securityContext: {privileged: true}}]}}"
	spec := map[string]string{
		"Deployment": "spec: {" + pod + "}", "DaemonSet": "spec: {" + pod + "}", "ReplicaSet": "spec: {" + pod + "}", "StatefulSet": "spec: {serviceName: old, " + pod + "}",
		"CronJob":             `spec: {schedule: "* * * * *", jobTemplate: {spec: {` + pod + `}}}`,
		"PodDisruptionBudget": "spec: {minAvailable: 1, selector: {matchLabels: {app: old}}}",
		"NetworkPolicy":       "spec: {podSelector: {}}",
		"Ingress":             "spec: {rules: [{host: old.example.com}]}",
		"Role":                "rules: [{apiGroups: [''], resources: [secrets], verbs: [get]}]",
		"ClusterRole":         "rules: [{apiGroups: [''], resources: [secrets], verbs: [get]}]",
		"RoleBinding":         "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: old}\nsubjects: [{kind: ServiceAccount, name: default, namespace: shop}]",
		"ClusterRoleBinding":  "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: old}\nsubjects: [{kind: ServiceAccount, name: default, namespace: shop}]",
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
			if got := checks.CanonicalAPIVersion(kind); got != current {
				t.Errorf("read as %s, the inventory holds %s in %s", current, kind, got)
			}
			if got := inv.WrittenAs[kind+"/shop/old"]; got != apiVersion {
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
			_, err = checks.Run(t.Context(), inv, checks.Selection{Include: []string{"NS-008"}}, func(f checks.Finding) error {
				ns8 = append(ns8, f.Message)
				return nil
			})
			if err != nil || len(ns8) != 1 || !strings.Contains(ns8[0], "written as "+apiVersion) {
				t.Errorf("NS-008: %q %v, want the removed version reported", ns8, err)
			}
		})
	}
}
