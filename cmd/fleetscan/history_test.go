package main

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

func TestParseAge(t *testing.T) {
	for in, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "36h": 36 * time.Hour, "90m": 90 * time.Minute} {
		if got, err := parseAge(in); err != nil || got != want {
			t.Errorf("parseAge(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "0d", "-3d", "soon", "1y"} {
		if _, err := parseAge(in); err == nil {
			t.Errorf("parseAge(%q) accepted", in)
		}
	}
}

func TestSparkline(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want string
	}{
		{[]float64{0, 7}, "▁█"},
		{[]float64{3, 3, 3}, "▅▅▅"},
		{[]float64{-1, 0, 10, 5}, " ▁█▅"},
		{nil, ""},
	} {
		if got := sparkline(tt.in); got != tt.want {
			t.Errorf("sparkline(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestTrendShowsGaps: a bucket before any scan prints "-", never zero
// findings and score 100; a bucket without a scan of its own is marked as
// carried.
func TestTrendShowsGaps(t *testing.T) {
	day := func(d int) *timestamppb.Timestamp {
		return timestamppb.New(time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC))
	}
	points := []*fleetscanv1.TrendPoint{
		{Time: day(1)},
		{Time: day(2), Counts: &fleetscanv1.SeverityCounts{High: 4}, Score: proto.Int32(61), Clusters: 1, Scans: 1},
		{Time: day(3), Counts: &fleetscanv1.SeverityCounts{High: 4}, Score: proto.Int32(61), Clusters: 1},
	}
	var out strings.Builder
	if err := printTrend(&out, "cluster a", "day", points); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if strings.Contains(text, "100") || !strings.Contains(text, "2026-11-01  -") || !strings.Contains(text, "0*") || !strings.Contains(text, "61 → 61") {
		t.Errorf("trend with a gap:\n%s", text)
	}
	out.Reset()
	if err := printTrend(&out, "cluster a", "day", points[:1]); err != nil || !strings.Contains(out.String(), "No scan of cluster a") {
		t.Errorf("trend of nothing but a gap: %v\n%s", err, out.String())
	}
}

// TestDiffWorstFirst: new and resolved findings are listed worst first
// and counted by severity.
func TestDiffWorstFirst(t *testing.T) {
	f := func(sev fleetscanv1.Severity, check string) *fleetscanv1.Finding {
		return &fleetscanv1.Finding{Severity: sev, CheckId: check, Resource: &fleetscanv1.ResourceRef{Kind: "Pod", Name: "p"}}
	}
	list := []*fleetscanv1.Finding{f(fleetscanv1.Severity_SEVERITY_LOW, "POD-009"), f(fleetscanv1.Severity_SEVERITY_CRITICAL, "POD-002"), f(fleetscanv1.Severity_SEVERITY_HIGH, "RBAC-001"), f(fleetscanv1.Severity_SEVERITY_HIGH, "POD-001")}
	if got := bySeverity(list); got != " (1 critical, 2 high, 1 low)" {
		t.Errorf("bySeverity = %q", got)
	}
	worstFirst(list)
	var order []string
	for _, x := range list {
		order = append(order, x.CheckId)
	}
	if got := strings.Join(order, " "); got != "POD-002 POD-001 RBAC-001 POD-009" {
		t.Errorf("worst first: %s", got)
	}
	if bySeverity(nil) != "" {
		t.Error("no findings counted as something")
	}
}

// TestMoversWorstFirst: with a baseline, the clusters whose score fell
// are listed by the size of the fall; a cluster new since the baseline or
// never scanned is not a mover, and its columns say why.
func TestMoversWorstFirst(t *testing.T) {
	now := timestamppb.Now()
	posture := func(id string, score int32, before *int32) *fleetscanv1.ClusterPosture {
		return &fleetscanv1.ClusterPosture{ClusterId: id, Score: score, ScanTime: now, BaselineScore: before}
	}
	clusters := []*fleetscanv1.ClusterPosture{
		posture("a", 40, proto.Int32(45)),
		posture("b", 50, proto.Int32(80)),
		posture("c", 60, nil),
		posture("d", 90, proto.Int32(70)),
		{ClusterId: "e", BaselineScore: proto.Int32(90)},
		posture("f", 55, proto.Int32(65)),
	}
	var out strings.Builder
	printMovers(&out, clusters, "7d")
	want := "\nWorst movers in the last 7d (3 of 6 clusters fell):\n  b: 80 → 50 (-30)\n  f: 65 → 55 (-10)\n  a: 45 → 40 (-5)\n"
	if out.String() != want {
		t.Errorf("movers:\n%s\nwant:\n%s", out.String(), want)
	}
	for _, tc := range []struct {
		p              *fleetscanv1.ClusterPosture
		before, change string
	}{{clusters[1], "80", "-30"}, {clusters[2], "-", "new"}, {clusters[3], "70", "+20"}, {clusters[4], "90", "-"}} {
		if before, change := baselineColumns(tc.p); before != tc.before || change != tc.change {
			t.Errorf("%s: %q %q, want %q %q", tc.p.ClusterId, before, change, tc.before, tc.change)
		}
	}
	out.Reset()
	printMovers(&out, clusters[2:4], "7d")
	if !strings.Contains(out.String(), "No cluster's score fell in the last 7d") {
		t.Errorf("no movers:\n%s", out.String())
	}
}
