package server_test

import (
	"os"
	"path/filepath"
	"testing"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// TestScanSpecDeniesRegistries: a scan's registry deny-list travels with
// the job to the worker: IMG-005 reports the images it names, next to the
// frozen registries it always reports.
func TestScanSpecDeniesRegistries(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	dir := t.TempDir()
	pods := "apiVersion: v1\nkind: Pod\nmetadata: {name: hub, namespace: shop}\nspec: {containers: [{name: app, image: nginx:1.27}]}\n" +
		"---\napiVersion: v1\nkind: Pod\nmetadata: {name: frozen, namespace: shop}\nspec: {containers: [{name: app, image: k8s.gcr.io/pause:3.1}]}\n" +
		"---\napiVersion: v1\nkind: Pod\nmetadata: {name: own, namespace: shop}\nspec: {containers: [{name: app, image: registry.example.com/app:1}]}\n"
	if err := os.WriteFile(filepath.Join(dir, "shop.yaml"), []byte(pods), 0o644); err != nil {
		t.Fatal(err)
	}
	ts.startWorker("shop", register(t, op, "shop", "acme", nil), dir)
	scanCluster(t, op, "shop", &fleetscanv1.ScanSpec{IncludeChecks: []string{"IMG-005"}, DeniedRegistries: []string{"docker.io"}})
	var got []string
	for _, f := range allFindings(t, op, &fleetscanv1.ListFindingsRequest{ClusterId: "shop"}) {
		got = append(got, f.Resource.Name)
	}
	if len(got) != 2 || got[0] == got[1] || (got[0] != "hub" && got[0] != "frozen") || (got[1] != "hub" && got[1] != "frozen") {
		t.Errorf("IMG-005 findings on %q, want hub (denied) and frozen (k8s.gcr.io)", got)
	}
}
