package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// TestIncompleteJobKeepsWhatItCouldNotSee: a worker that cannot read part
// of its cluster (here a snapshot document that no longer decodes) runs
// the job on the rest; the job succeeds with the problem listed, with
// where and why, and the open findings of what it could not read stay
// open instead of being resolved as if fixed: damage to the input never
// shows as a better posture.
func TestIncompleteJobKeepsWhatItCouldNotSee(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	dir := t.TempDir()
	writeShop(t, dir, map[string]bool{"a": true, "b": true})
	token := register(t, op, "shop", "acme", nil)
	ts.startWorker("shop", token, dir)
	scan := func() *fleetscanv1.Scan {
		t.Helper()
		return scanCluster(t, op, "shop", &fleetscanv1.ScanSpec{IncludeChecks: []string{"POD-001"}})
	}
	open := func() []string {
		t.Helper()
		var names []string
		for _, f := range allFindings(t, op, &fleetscanv1.ListFindingsRequest{ClusterId: "shop", Status: fleetscanv1.FindingStatus_FINDING_STATUS_OPEN}) {
			names = append(names, f.Resource.Name)
		}
		return names
	}
	first := scan()
	if p := first.Jobs[0].Problems; len(p) != 0 {
		t.Fatalf("a complete snapshot has problems: %q", p)
	}
	before := open()
	if len(before) != 2 {
		t.Fatalf("open findings %v, want a and b", before)
	}

	// Deployment b's document is damaged: it no longer decodes.
	b, err := os.ReadFile(filepath.Join(dir, "shop.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	damaged := strings.Replace(string(b), "metadata: {name: b, namespace: shop}", "metadata: {name: [b, namespace: shop}", 1)
	if damaged == string(b) {
		t.Fatal("the fixture changed: nothing to damage")
	}
	if err := os.WriteFile(filepath.Join(dir, "shop.yaml"), []byte(damaged), 0o644); err != nil {
		t.Fatal(err)
	}
	second := scan()
	j := second.Jobs[0]
	if len(j.Problems) != 1 || !strings.Contains(j.Problems[0], "shop.yaml:") {
		t.Fatalf("job problems %q, want the damaged document with its file and line", j.Problems)
	}
	if after := open(); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("open findings after an incomplete job: %v, want %v kept", after, before)
	}
	if j.Findings.GetHigh()+j.Findings.GetCritical() != first.Jobs[0].Findings.GetHigh()+first.Jobs[0].Findings.GetCritical() {
		t.Errorf("counts of the incomplete job %v, want the posture carried over: %v", j.Findings, first.Jobs[0].Findings)
	}
}

// TestJobListsWhatNoCheckReads: the documents a worker's snapshot holds
// that no check reads reach the job's result with where, what and why;
// the job is complete, and its workloads of kinds fleetscan reads
// generically (a Rollout) are checked.
func TestJobListsWhatNoCheckReads(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	dir := t.TempDir()
	manifests := "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: canary, namespace: shop}\n" +
		"spec: {template: {spec: {containers: [{name: app, image: nginx:1.27, securityContext: {privileged: true}}]}}}\n" +
		"---\napiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: shop}\n"
	if err := os.WriteFile(filepath.Join(dir, "shop.yaml"), []byte(manifests), 0o644); err != nil {
		t.Fatal(err)
	}
	ts.startWorker("shop", register(t, op, "shop", "acme", nil), dir)
	j := scanCluster(t, op, "shop", &fleetscanv1.ScanSpec{IncludeChecks: []string{"POD-001"}}).Jobs[0]
	if len(j.Problems) != 0 {
		t.Fatalf("problems %q", j.Problems)
	}
	if len(j.Unchecked) != 1 || !strings.Contains(j.Unchecked[0], "shop.yaml:6: v1 Secret shop/db: no check reads this kind") {
		t.Errorf("job unchecked %q, want the Secret with its file and line", j.Unchecked)
	}
	if j.Findings.GetCritical() != 1 {
		t.Errorf("findings %v, want the Rollout's privileged container", j.Findings)
	}
}
