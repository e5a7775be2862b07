package htmlreport

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/report.html")

func sample() *Report {
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	score := func(n int) *int { return &n }
	r := &Report{
		Scope: "the fleet", Server: "fleetscan.example.com:8443", Generated: day.AddDate(0, 0, 5).Add(9 * time.Hour),
		Summary: Summary{Score: 72, Counts: Counts{Critical: 3, High: 1204, Medium: 40, Low: 7, Suppressed: 2}, Clusters: 3, Scanned: 2},
		Trend: []Point{
			{Time: day},
			{Time: day.AddDate(0, 0, 1), Score: score(60), Counts: Counts{High: 10}},
			{Time: day.AddDate(0, 0, 2), Score: score(65), Counts: Counts{High: 8}},
			{Time: day.AddDate(0, 0, 3)},
			{Time: day.AddDate(0, 0, 4), Score: score(72), Counts: Counts{High: 5}},
		},
		Clusters: []Cluster{
			{ID: "prod-eu-1", Tenant: "acme", Score: 55, Counts: Counts{Critical: 3, High: 1200}, LastScan: day.AddDate(0, 0, 4)},
			{ID: "dev-1", Tenant: "globex", Score: 90, Counts: Counts{High: 4}, LastScan: day.AddDate(0, 0, 4)},
			{ID: "new-1", Tenant: "globex"},
		},
		Matrix: &Matrix{Clusters: []string{"prod-eu-1", "dev-1", "new-1"}, Rows: []MatrixRow{
			{CheckID: "POD-001", Counts: []int64{1000, 4, 0}, Total: 1004},
			{CheckID: "RBAC-002", Counts: []int64{200, 0, 0}, Total: 200},
		}},
		TopChecks:    []CheckCount{{CheckID: "POD-001", Title: "Container runs as root", Count: 1004}},
		FindingsNote: "The first 2 of 1207 open critical and high findings.",
		Findings: []Finding{{Cluster: "prod-eu-1", CheckID: "POD-001", Severity: "HIGH", Title: "Container runs as root",
			Resource: "apps/v1 Deployment shop/web", Message: `container "<script>alert(1)</script>" runs as root`, Party: "workload owner", FirstSeen: day}},
		Compliance: &Compliance{Framework: "CIS Kubernetes Benchmark", Note: "Judged on each cluster's latest scan.", Controls: []Control{
			{Ref: "CIS 5.2.6", Checks: []string{"POD-001"}, Status: Failed, Why: []string{"prod-eu-1: 1000 open finding(s) of POD-001"}},
			{Ref: "CIS 1.2.1", Checks: []string{"CP-001"}, Status: NotAssessable, Why: []string{"prod-eu-1: CP-001 not assessable: managed control plane"}},
			{Ref: "CIS 5.1.1", Checks: []string{"RBAC-001"}, Status: Passed},
		}},
	}
	return r
}

// TestWrite holds the report's HTML to testdata/report.html (go test
// -update rewrites it after a deliberate change; look at it in a
// browser then).
func TestWrite(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, sample()); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	if *update {
		if err := os.WriteFile("testdata/report.html", b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/report.html")
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("the report differs from testdata/report.html (go test -update after a deliberate change)")
	}
	// What the golden file would hide in its bulk.
	if strings.Contains(got, "<script>alert") || !strings.Contains(got, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("a finding's message is not escaped")
	}
	if n := strings.Count(got, "<polyline"); n != 1 || strings.Count(got, `<circle class="line"`) != 1 {
		t.Errorf("trend with two gaps: %d lines and %d points, want the two days before the gap as a line and the day after as a point", n, strings.Count(got, `<circle class="line"`))
	}
	for _, want := range []string{"1,204", `class="h4">1,000<`, `class="h1">4<`, `class="h0">0<`, "never", "not scanned yet"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestHeat(t *testing.T) {
	for _, tt := range []struct {
		n, top int64
		want   string
	}{{0, 10, "h0"}, {1, 1000, "h1"}, {250, 1000, "h1"}, {251, 1000, "h2"}, {1000, 1000, "h4"}, {5, 0, "h0"}} {
		if got := heat(tt.n, tt.top); got != tt.want {
			t.Errorf("heat(%d, %d) = %s, want %s", tt.n, tt.top, got, tt.want)
		}
	}
}
