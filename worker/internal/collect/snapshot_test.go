package collect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/worker/checks"
	"github.com/fleetscan/fleetscan/worker/policy"
)

func TestLoadSnapshot(t *testing.T) {
	inv, stats, err := LoadSnapshot("testdata/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	if stats.Files != 4 {
		t.Errorf("read %d files, want 4 (.yaml, .yml, .json only)", stats.Files)
	}
	var names []string
	for _, ns := range inv.Namespaces {
		names = append(names, ns.Name)
	}
	if !slices.Equal(names, []string{"fine", "shop"}) {
		t.Errorf("namespaces %v, want [fine shop]", names)
	}
	if len(inv.Deployments) != 1 || len(inv.ServiceAccounts) != 2 || len(inv.ClusterRoles) != 1 || len(inv.Pods) != 0 {
		t.Errorf("inventory: %+v", inv)
	}
	if stats.Objects != 7 || stats.Skipped != 1 {
		t.Errorf("objects %d skipped %d, want 7 and 1 (a CRD instance)", stats.Objects, stats.Skipped)
	}
	// Objects remember where they are defined, also inside a List.
	for _, loc := range []struct{ kind, ns, name, want string }{
		{"Deployment", "shop", "web", "multi.yaml:9"},
		{"ServiceAccount", "shop", "web", "list.yaml:1"},
		{"ClusterRole", "", "reader", "role.json:1"},
	} {
		if got := inv.Location(loc.kind, loc.ns, loc.name); !strings.HasSuffix(got, loc.want) {
			t.Errorf("location of %s %s/%s = %q, want …%s", loc.kind, loc.ns, loc.name, got, loc.want)
		}
	}
	// A misspelled field is reported with where it is; the object is kept.
	if len(stats.Warnings) != 1 || !strings.Contains(stats.Warnings[0], "multi.yaml:21:") || !strings.Contains(stats.Warnings[0], "automountServiceAccountTokn") {
		t.Errorf("warnings %q, want one naming multi.yaml:21 and the unknown field", stats.Warnings)
	}
	// Each broken document is named by file and first line, and skipped.
	want := []string{"broken.yaml:6:", "broken.yaml:14:", "broken.yaml:17:"}
	if len(stats.Problems) != len(want) {
		t.Fatalf("problems %q, want %d", stats.Problems, len(want))
	}
	for i, p := range stats.Problems {
		if !strings.Contains(p, filepath.Join("testdata", "snapshot", want[i])) {
			t.Errorf("problem %d = %q, want it to start with %s", i, p, want[i])
		}
	}
}

func TestLoadSnapshotErrors(t *testing.T) {
	if _, _, err := LoadSnapshot(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing directory loaded")
	}
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadSnapshot(empty); err == nil || !strings.Contains(err.Error(), "no .yaml") {
		t.Errorf("a directory without manifests: got %v", err)
	}
}

func FuzzDecodeManifests(f *testing.F) {
	for _, name := range []string{"multi.yaml", "list.yaml", "broken.yaml", "sub/role.json"} {
		b, err := os.ReadFile(filepath.Join("testdata/snapshot", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inv := &checks.Inventory{}
		_, _ = DecodeManifests(strings.NewReader(string(data)), "fuzz.yaml", inv)
	})
}

// TestSnapshotKeepsWhatTheChecksRead: a scan of a snapshot reduces its
// objects as a live cluster's are, merged in file order whatever the
// order files finish decoding in; the kinds a custom check reads stay
// whole.
func TestSnapshotKeepsWhatTheChecksRead(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := range 40 {
		// Many small files, so that several decode at once.
		name := fmt.Sprintf("app-%02d", i)
		want = append(want, name)
		doc := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s-x7k2p
  namespace: shop
  labels: {app: %s}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: %s-5d4f8c7b9, uid: u, controller: true}]
spec: {containers: [{name: app, image: nginx}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: %s, namespace: shop, labels: {app: %s}}
data: {theme: dark}
`, name, name, name, name, name)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%02d.yaml", i)), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	inv, err := (&Snapshot{Dir: dir}).Collect(context.Background(), policy.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range inv.ConfigMaps {
		got = append(got, c.Name)
		if c.Data != nil || c.Labels != nil {
			t.Errorf("ConfigMap %s keeps data or labels no check reads: %v %v", c.Name, c.Data, c.Labels)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("ConfigMaps in the order %v, want the files' %v", got, want)
	}
	if len(inv.Pods) != 0 || len(inv.ManagedPods) != 40 || inv.Len() != 80 {
		t.Errorf("%d whole pods, %d kept as metadata, %d objects; want 0, 40, 80", len(inv.Pods), len(inv.ManagedPods), inv.Len())
	}
	if inv.Location("Pod", "shop", "app-07-x7k2p") != filepath.Join(dir, "07.yaml")+":1" {
		t.Errorf("location of a managed pod: %q", inv.Location("Pod", "shop", "app-07-x7k2p"))
	}

	custom := policy.Selection{Custom: []*fleetscanv1.CustomCheck{{Id: "ORG-1", Title: "t", Severity: fleetscanv1.Severity_SEVERITY_LOW,
		Match: &fleetscanv1.CustomCheckMatch{Kinds: []string{"Pod"}}, Expression: "true"}}}
	inv, err = (&Snapshot{Dir: dir}).Collect(context.Background(), custom)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Pods) != 40 || len(inv.Pods[0].Spec.Containers) != 1 {
		t.Errorf("a custom check reads Pods: %d kept whole, want 40 with their specs", len(inv.Pods))
	}
}
