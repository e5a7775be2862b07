package collect

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/fleetscan/fleetscan/worker/catalog"
	"github.com/fleetscan/fleetscan/worker/checks"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// findings runs the checks of ids on inv and returns "CHECK Kind ns/name"
// per finding, sorted.
func findings(t *testing.T, inv *checks.Inventory, ids ...string) []string {
	t.Helper()
	var got []string
	_, err := checks.Run(t.Context(), inv, policy.Selection{Include: ids}, func(f checks.Finding) error {
		got = append(got, f.CheckID+" "+f.Resource.APIVersion+" "+f.Resource.Kind+" "+f.Resource.Namespace+"/"+f.Resource.Name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	return got
}

// TestPodTemplatesAreChecked: objects of kinds fleetscan has no type for
// run pods all the same (Argo Rollouts, OpenShift DeploymentConfigs,
// Knative Services, anything with a CronJob-like job template), as do
// ReplicationControllers and PodTemplates: their pod templates get the
// workload checks, read from the well-known paths. Before, every one of
// them scanned as "skipped".
func TestPodTemplatesAreChecked(t *testing.T) {
	inv, stats, err := LoadSnapshotFile(filepath.Join("testdata", "templated", "workloads.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if stats.Objects != 6 || stats.Skipped != 0 || len(inv.Unchecked) != 0 || len(stats.Problems) != 0 {
		t.Fatalf("objects %d, skipped %d, unchecked %v, problems %q; want all 6 read", stats.Objects, stats.Skipped, inv.Unchecked, stats.Problems)
	}
	want := []string{
		"POD-001 argoproj.io/v1alpha1 CronWorkflowLike shop/nightly",
		"POD-001 argoproj.io/v1alpha1 Rollout shop/checkout",
		"POD-001 serving.knative.dev/v1 Service shop/hello",
		"POD-001 v1 PodTemplate shop/runner",
		"POD-001 v1 ReplicationController shop/old-web",
		"POD-003 apps.openshift.io/v1 DeploymentConfig shop/legacy",
	}
	if got := findings(t, inv, "POD-001", "POD-003"); !slices.Equal(got, want) {
		t.Errorf("findings:\n got %q\nwant %q", got, want)
	}
	// Findings point at the manifest, like those of built-in kinds.
	if loc := inv.Location("Rollout", "shop", "checkout"); !strings.HasSuffix(loc, "workloads.yaml:1") {
		t.Errorf("Rollout located at %q, want workloads.yaml:1", loc)
	}
}

// TestUncheckedDocumentsAreListed: a document no check reads is listed
// with where, what and why, not merely counted.
func TestUncheckedDocumentsAreListed(t *testing.T) {
	path := filepath.Join("testdata", "templated", "unchecked.yaml")
	inv, stats, err := LoadSnapshotFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range inv.Unchecked {
		got = append(got, u.String())
	}
	want := []string{
		path + ":1: apiextensions.k8s.io/v1 CustomResourceDefinition rollouts.argoproj.io: " + catalog.ReasonUnknown,
		path + ":12: v1 Secret shop/db: " + catalog.ReasonNoChecks,
		path + ":20: cert-manager.io/v1 Certificate shop/shop-tls: " + catalog.ReasonUnknown,
		path + ":30: argoproj.io/v1alpha1 Rollout shop/by-reference: " + catalog.ReasonUnknown,
	}
	if !slices.Equal(got, want) {
		t.Errorf("unchecked:\n got %q\nwant %q", got, want)
	}
	if stats.Skipped != len(want) || stats.Objects != 0 {
		t.Errorf("objects %d, skipped %d; want 0 and %d", stats.Objects, stats.Skipped, len(want))
	}
	// A directory load keeps them, in file order.
	dir := t.TempDir()
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	inv, _, err = LoadSnapshot(dir)
	if err != nil || len(inv.Unchecked) != len(want) {
		t.Fatalf("LoadSnapshot: %v, %d unchecked; want %d", err, len(inv.Unchecked), len(want))
	}
}

// TestNoNamespaceMeansDefault: kubectl apply puts an object whose
// manifest names no namespace in the default one, and it is judged there.
func TestNoNamespaceMeansDefault(t *testing.T) {
	inv := &checks.Inventory{}
	_, err := DecodeManifests(strings.NewReader(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec: {template: {spec: {containers: [{name: web, image: nginx}]}}}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: canary}
spec: {template: {spec: {containers: [{name: web, image: nginx}]}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
rules: []
`), "m.yaml", inv)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"NS-001 apps/v1 Deployment default/web",
		"NS-001 argoproj.io/v1alpha1 Rollout default/canary",
	}
	if got := findings(t, inv, "NS-001"); !slices.Equal(got, want) {
		t.Errorf("NS-001:\n got %q\nwant %q", got, want)
	}
	if ns := inv.ClusterRoles[0].Namespace; ns != "" {
		t.Errorf("a ClusterRole got namespace %q", ns)
	}
}

// TestV1beta1WebhooksKeepTheirDefaults: an admissionregistration v1beta1
// webhook that leaves failurePolicy out fails open (Ignore), where v1's
// default is Fail: read as v1, it keeps the default it was written with.
func TestV1beta1WebhooksKeepTheirDefaults(t *testing.T) {
	inv := &checks.Inventory{}
	_, err := DecodeManifests(strings.NewReader(`
apiVersion: admissionregistration.k8s.io/v1beta1
kind: ValidatingWebhookConfiguration
metadata: {name: policy}
webhooks:
  - name: open.example.com
    clientConfig: {url: "https://open.example.com"}
  - name: closed.example.com
    clientConfig: {url: "https://closed.example.com"}
    failurePolicy: Fail
`), "w.yaml", inv)
	if err != nil || len(inv.ValidatingWebhooks) != 1 {
		t.Fatalf("decode: %v, %d configurations", err, len(inv.ValidatingWebhooks))
	}
	hooks := inv.ValidatingWebhooks[0].Webhooks
	if *hooks[0].FailurePolicy != admissionregistrationv1.Ignore || *hooks[1].FailurePolicy != admissionregistrationv1.Fail {
		t.Errorf("failure policies %s, %s; want Ignore (v1beta1's default), Fail", *hooks[0].FailurePolicy, *hooks[1].FailurePolicy)
	}
	if inv.WrittenAs["ValidatingWebhookConfiguration//policy"] != "admissionregistration.k8s.io/v1beta1" {
		t.Errorf("written as %q", inv.WrittenAs)
	}
}
