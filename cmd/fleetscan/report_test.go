package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReportHTML writes the fleet's, a tenant's and a cluster's reports
// through the CLI from a scanned fleet: one self-contained file each,
// holding what the API gives that token and nothing else.
func TestReportHTML(t *testing.T) {
	c := startCLI(t)
	dir := t.TempDir()
	for _, id := range []string{"acme-prod", "globex-prod"} {
		tokenFile := filepath.Join(dir, id+".token")
		c.must("cluster", "register", id, "--tenant", strings.Split(id, "-")[0], "--join-token-file", tokenFile)
		c.worker(id, tokenFile, filepath.Join("../../deploy/demo/clusters", id))
	}
	c.must("scan", "start", "--all", "--wait", "--timeout", "60s")
	c.must("token", "create", "--name", "acme-ci", "--tenant", "acme", "--secret-file", filepath.Join(dir, "acme.token"))

	fleet := c.must("report", "--fleet", "--framework", "cis", "-o", "html")
	selfContained(t, "fleet report", fleet)
	for _, want := range []string{"Posture of the fleet", "acme-prod", "globex-prod", `<svg class="trend"`, "Clusters, worst first", "Open findings by check and cluster", "CIS Kubernetes Benchmark: controls", "CIS 5.", "All open critical and high findings"} {
		if !strings.Contains(fleet, want) {
			t.Errorf("fleet report lacks %q", want)
		}
	}
	// Each status appears: the demo clusters fail some controls, and the
	// control plane's are not assessable on a snapshot.
	for _, status := range []string{">failed<", ">not assessable<"} {
		if !strings.Contains(fleet, status) {
			t.Errorf("fleet CIS report has no control %s", status)
		}
	}

	tenant := &cli{t: t, addr: c.addr, tok: filepath.Join(dir, "acme.token")}
	acme := tenant.must("report", "--tenant", "acme", "--framework", "cis", "-o", "html")
	selfContained(t, "tenant report", acme)
	if !strings.Contains(acme, "acme-prod") || strings.Contains(acme, "globex") {
		t.Errorf("acme's report names globex's cluster or lacks its own")
	}
	if !strings.Contains(acme, "no open finding") || strings.Contains(acme, ">passed<") {
		t.Errorf("a tenant, who cannot read scans, is told controls passed, or not that they have no finding")
	}
	if _, err := tenant.run("report", "--cluster", "globex-prod", "-o", "html"); err == nil {
		t.Error("acme's token wrote a report of globex's cluster")
	}

	one := c.must("report", "--cluster", "globex-prod", "--framework", "cis", "-o", "html")
	selfContained(t, "cluster report", one)
	if !strings.Contains(one, ">failed<") || !strings.Contains(one, "globex-prod: ") {
		t.Errorf("the cluster's CIS controls name none it fails")
	}
	if !strings.Contains(one, "Posture of cluster globex-prod") || !strings.Contains(one, "All open findings:") || strings.Contains(one, "acme-prod") {
		t.Errorf("cluster report: wrong scope or findings note")
	}

	for _, args := range [][]string{
		{"report", "--fleet"}, // not -o html
		{"report", "--fleet", "--cluster", "x", "-o", "html"},     // two scopes
		{"report", "--fleet", "--framework", "iso", "-o", "html"}, // unknown framework
		{"findings", "list", "-o", "html"},                        // html is the report's
	} {
		if _, err := c.run(args...); err == nil {
			t.Errorf("fleetscan %s: no error", strings.Join(args, " "))
		}
	}
}

// selfContained fails when a report would load anything, or run script.
func selfContained(t *testing.T, what, html string) {
	t.Helper()
	if !strings.HasPrefix(html, "<!DOCTYPE html>") || !strings.HasSuffix(strings.TrimSpace(html), "</html>") {
		t.Fatalf("%s is not a whole HTML document", what)
	}
	if m := regexp.MustCompile(`(?i)<script|<link|<img|<iframe|\bsrc=|url\(|@import|https?://`).FindString(html); m != "" {
		t.Errorf("%s loads or runs something: %q", what, m)
	}
}
