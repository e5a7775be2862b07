package history

import (
	"fmt"
	"testing"
	"time"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// TestScore pins the posture score: changing the formula must be a
// deliberate, visible change of these numbers and of docs/posture-score.md.
func TestScore(t *testing.T) {
	tests := []struct {
		name    string
		counts  *fleetscanv1.SeverityCounts
		objects int64
		want    int32
	}{
		{"nothing open", &fleetscanv1.SeverityCounts{}, 100, 100},
		{"only suppressed and info", &fleetscanv1.SeverityCounts{Info: 50, Suppressed: 50}, 100, 100},
		{"one low per object", &fleetscanv1.SeverityCounts{Low: 100}, 100, 67},
		{"one medium per object", &fleetscanv1.SeverityCounts{Medium: 100}, 100, 50},
		{"one critical per object", &fleetscanv1.SeverityCounts{Critical: 100}, 100, 17},
		{"same density, ten times the size", &fleetscanv1.SeverityCounts{Medium: 1000}, 1000, 50},
		{"a critical weighs ten lows", &fleetscanv1.SeverityCounts{Critical: 1}, 10, 67},
		{"demo acme-prod", &fleetscanv1.SeverityCounts{High: 2, Medium: 12, Low: 3}, 54, 74},
		{"no objects", &fleetscanv1.SeverityCounts{High: 1}, 0, 29},
	}
	for _, tt := range tests {
		if got := Score(tt.counts, tt.objects); got != tt.want {
			t.Errorf("%s: Score = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func summary(day int, high int64) store.Summary {
	return store.Summary{FinishMs: time.Date(2026, 11, day, 12, 0, 0, 0, time.UTC).UnixMilli(), Counts: &fleetscanv1.SeverityCounts{High: high}, Objects: 10}
}

func TestTrendCarriesStateForward(t *testing.T) {
	before := summary(1, 7)
	histories := []store.ClusterHistory{
		{Cluster: &storagev1.ClusterRecord{Id: "a"}, Before: &before, Summaries: []store.Summary{summary(3, 5), summary(3, 4), summary(5, 1)}},
		{Cluster: &storagev1.ClusterRecord{Id: "b"}, Summaries: []store.Summary{summary(4, 2)}},
		{Cluster: &storagev1.ClusterRecord{Id: "never"}},
	}
	since := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	now := time.Date(2026, 11, 6, 1, 0, 0, 0, time.UTC)
	points := Trend(histories, since, now, 24*time.Hour)
	want := []struct {
		high     int64
		clusters int
		scans    int
	}{{7, 1, 0}, {4, 1, 2}, {6, 2, 1}, {3, 2, 1}, {3, 2, 0}} // Nov 2 … Nov 6
	if len(points) != len(want) {
		t.Fatalf("%d points, want %d", len(points), len(want))
	}
	for i, w := range want {
		p := points[i]
		if p.Start.Day() != 2+i || p.Counts.High != w.high || p.Clusters != w.clusters || p.Scans != w.scans {
			t.Errorf("point %d: day %d high %d clusters %d scans %d, want day %d high %d clusters %d scans %d", i, p.Start.Day(), p.Counts.High, p.Clusters, p.Scans, 2+i, w.high, w.clusters, w.scans)
		}
	}
	weeks := Trend(histories, since, now, 7*24*time.Hour)
	if len(weeks) != 1 || weeks[0].Start.Weekday() != time.Monday || weeks[0].Counts.High != 3 {
		t.Errorf("weekly: %+v", weeks)
	}
}

func TestCompare(t *testing.T) {
	job := func(high int64, checks map[string]int64) *storagev1.JobRecord {
		return &storagev1.JobRecord{Findings: &fleetscanv1.SeverityCounts{High: high}, ObjectsScanned: 10, CheckCounts: checks, FinishMs: 1}
	}
	latest := []store.Latest{
		{Cluster: &storagev1.ClusterRecord{Id: "good"}, Job: job(0, nil)},
		{Cluster: &storagev1.ClusterRecord{Id: "new"}},
		{Cluster: &storagev1.ClusterRecord{Id: "bad"}, Job: job(8, map[string]int64{"POD-001": 5, "RBAC-001": 3})},
		{Cluster: &storagev1.ClusterRecord{Id: "meh"}, Job: job(2, map[string]int64{"POD-001": 2})},
	}
	ranked, matrix := Compare(latest)
	var ids []string
	for _, p := range ranked {
		ids = append(ids, p.ClusterID)
	}
	if got := ids; len(got) != 4 || got[0] != "bad" || got[1] != "meh" || got[2] != "good" || got[3] != "new" {
		t.Errorf("ranking %v, want [bad meh good new]", got)
	}
	if len(matrix) != 2 || matrix[0].CheckID != "POD-001" || matrix[0].Total != 7 || matrix[0].Counts[0] != 5 || matrix[0].Counts[1] != 2 {
		t.Errorf("matrix %+v", matrix)
	}
	s := Summarize(latest, 1)
	if s.Clusters != 4 || s.ClustersScanned != 3 || s.Counts.High != 10 || len(s.TopChecks) != 1 || s.Score != Score(&fleetscanv1.SeverityCounts{High: 10}, 30) {
		t.Errorf("summary %+v", s)
	}
}

// TestTrendGapBeforeFirstScan: buckets before a scope's first scan hold no
// cluster (a gap the API leaves unset), not zero findings.
func TestTrendGapBeforeFirstScan(t *testing.T) {
	histories := []store.ClusterHistory{{Cluster: &storagev1.ClusterRecord{Id: "late"}, Summaries: []store.Summary{summary(5, 3)}}}
	points := Trend(histories, time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 6, 1, 0, 0, 0, time.UTC), 24*time.Hour)
	for i, p := range points {
		gap := p.Start.Day() < 5
		if (p.Clusters == 0) != gap {
			t.Errorf("Nov %d: %d clusters; want a gap before Nov 5 only", p.Start.Day(), p.Clusters)
		}
		if i == len(points)-1 && (p.Scans != 0 || p.Counts.High != 3) {
			t.Errorf("Nov 6: %d scans, %d high; want 0 scans, the Nov 5 scan's 3 carried", p.Scans, p.Counts.High)
		}
	}
}

// yearOfFleet is 1,000 clusters with a year of daily summaries each, and
// their latest jobs with 40 checks' counts: the fleet the console's
// overview is measured on (issue 19).
func yearOfFleet() ([]store.ClusterHistory, []store.Latest, time.Time) {
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var hs []store.ClusterHistory
	var latest []store.Latest
	for c := range 1000 {
		rec := &storagev1.ClusterRecord{Id: fmt.Sprintf("cluster-%04d", c), Tenant: fmt.Sprintf("tenant-%d", c%10)}
		h := store.ClusterHistory{Cluster: rec}
		for d := 365; d >= 1; d-- {
			at := end.Add(-time.Duration(d)*24*time.Hour + time.Duration(c)*time.Second)
			h.Summaries = append(h.Summaries, store.Summary{FinishMs: at.UnixMilli(), Objects: 2500,
				Counts: &fleetscanv1.SeverityCounts{Critical: int64(d % 7), High: int64(40 + d%13), Medium: int64(300 + d%31), Low: int64(200 + c%17)}})
		}
		hs = append(hs, h)
		job := &storagev1.JobRecord{Findings: h.Summaries[len(h.Summaries)-1].Counts, ObjectsScanned: 2500, CheckCounts: map[string]int64{}}
		for k := range 40 {
			job.CheckCounts[fmt.Sprintf("CHK-%03d", k)] = int64((c + k) % 23)
		}
		latest = append(latest, store.Latest{Cluster: rec, Job: job})
	}
	return hs, latest, end
}

// BenchmarkOverviewCompute: what the server computes for the console's
// fleet overview once it has read the store (BenchmarkOverview in the
// store package times the reads): a year's daily trend of 1,000 clusters,
// their ranking and check by cluster matrix, and the fleet's summary.
func BenchmarkOverviewCompute(b *testing.B) {
	hs, latest, end := yearOfFleet()
	since := end.AddDate(-1, 0, 0)
	for b.Loop() {
		points := Trend(hs, since, end, 24*time.Hour)
		ranked, matrix := Compare(latest)
		sum := Summarize(latest, 10)
		if len(points) < 365 || len(ranked) != 1000 || len(matrix) != 40 || sum.ClustersScanned != 1000 {
			b.Fatalf("%d points, %d ranked, %d rows, %d scanned", len(points), len(ranked), len(matrix), sum.ClustersScanned)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/overview")
}
