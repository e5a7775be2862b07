package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func openTest(t testing.TB) (*DB, *clock, string) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "fleetscan.db")
	db, err := Open(path, Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, clk, path
}

func finding(check, ns, name string, sev fleetscanv1.Severity) *workerv1.Finding {
	return &workerv1.Finding{
		CheckId: check, Severity: sev, Category: "pod-security",
		ResponsibleParty: fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_WORKLOAD,
		Resource:         &fleetscanv1.ResourceRef{ApiVersion: "apps/v1", Kind: "Deployment", Namespace: ns, Name: name},
		Message:          check + " on " + name,
	}
}

// runJob stages the findings in batches of two, planning each as the
// server does, and completes the job.
func runJob(t *testing.T, db *DB, clusterID string, findings ...*workerv1.Finding) *Scan {
	t.Helper()
	ctx := context.Background()
	scan, err := db.CreateScan(ctx, &fleetscanv1.ScanTarget{ClusterIds: []string{clusterID}}, nil, []string{clusterID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.DispatchPending(ctx, clusterID, 0); err != nil {
		t.Fatal(err)
	}
	jobID := scan.Jobs[0].ID
	var seq int64
	plan := &JobPlan{}
	for i := 0; i < len(findings); i += 2 {
		seq++
		batch := &workerv1.FindingBatch{JobId: jobID.String(), Seq: seq, Findings: findings[i:min(i+2, len(findings))]}
		if err := db.StageBatch(ctx, jobID, batch); err != nil {
			t.Fatal(err)
		}
		if err := db.PlanBatch(ctx, jobID, plan, batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CompleteJob(ctx, jobID, Completion{Batches: seq, Findings: int64(len(findings)), Plan: plan}); err != nil {
		t.Fatal(err)
	}
	return scan
}

func listAll(t *testing.T, db *DB, f FindingFilter) []string {
	t.Helper()
	var out []string
	var after []byte
	for {
		page, next, err := db.ListFindings(context.Background(), f, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page {
			out = append(out, fmt.Sprintf("%s %s %s", v.ClusterID, v.Record.CheckId, v.Record.Resource.Name))
		}
		if next == nil {
			return out
		}
		after = next
	}
}

func register(t testing.TB, db *DB, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := db.CreateCluster(context.Background(), &storagev1.ClusterRecord{Id: id, Tenant: "acme"}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func TestClusters(t *testing.T) {
	db, _, _ := openTest(t)
	ctx := context.Background()
	register(t, db, "b", "a", "c")
	if err := db.CreateCluster(ctx, &storagev1.ClusterRecord{Id: "a"}, nil, nil); !errors.Is(err, ErrAlreadyExists) {
		t.Errorf("duplicate cluster: got %v, want ErrAlreadyExists", err)
	}
	if _, err := db.GetCluster(ctx, "zz"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetCluster(zz): got %v, want ErrNotFound", err)
	}
	page, more, err := db.ListClusters(ctx, "", 2, nil)
	if err != nil || !more || len(page) != 2 || page[0].Id != "a" || page[1].Id != "b" {
		t.Fatalf("first page: %v %v %v", page, more, err)
	}
	page, more, err = db.ListClusters(ctx, "b", 2, nil)
	if err != nil || more || len(page) != 1 || page[0].Id != "c" {
		t.Fatalf("second page: %v %v %v", page, more, err)
	}
}

func TestFindingLifecycle(t *testing.T) {
	db, clk, _ := openTest(t)
	register(t, db, "c1", "c2")
	t0 := clk.t
	runJob(t, db, "c1",
		finding("POD-001", "shop", "web", fleetscanv1.Severity_SEVERITY_CRITICAL),
		finding("POD-018", "shop", "web", fleetscanv1.Severity_SEVERITY_MEDIUM),
		finding("POD-018", "shop", "api", fleetscanv1.Severity_SEVERITY_MEDIUM))
	runJob(t, db, "c2", finding("POD-001", "shop", "web", fleetscanv1.Severity_SEVERITY_CRITICAL))

	// A day later: web is fixed, a new problem appears on db.
	clk.t = t0.Add(24 * time.Hour)
	second := runJob(t, db, "c1",
		finding("POD-018", "shop", "web", fleetscanv1.Severity_SEVERITY_MEDIUM),
		finding("POD-018", "shop", "api", fleetscanv1.Severity_SEVERITY_MEDIUM),
		finding("POD-018", "shop", "db", fleetscanv1.Severity_SEVERITY_MEDIUM))

	open := listAll(t, db, FindingFilter{})
	want := []string{"c1 POD-018 api", "c1 POD-018 db", "c1 POD-018 web", "c2 POD-001 web"}
	if fmt.Sprint(sorted(open)) != fmt.Sprint(want) {
		t.Errorf("open findings: got %q, want %q", open, want)
	}
	resolved := listAll(t, db, FindingFilter{Status: fleetscanv1.FindingStatus_FINDING_STATUS_RESOLVED})
	if fmt.Sprint(resolved) != fmt.Sprint([]string{"c1 POD-001 web"}) {
		t.Errorf("resolved findings: got %q", resolved)
	}
	if got := listAll(t, db, FindingFilter{ClusterID: "c1", MinSeverity: fleetscanv1.Severity_SEVERITY_HIGH}); len(got) != 0 {
		t.Errorf("c1 high or worse: got %q, want none", got)
	}
	if got := listAll(t, db, FindingFilter{ClusterID: "c2", CheckID: "POD-001"}); fmt.Sprint(got) != "[c2 POD-001 web]" {
		t.Errorf("c2 POD-001: got %q", got)
	}

	page, _, err := db.ListFindings(context.Background(), FindingFilter{ClusterID: "c1"}, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range page {
		first, last := time.UnixMilli(v.Record.FirstSeenMs), time.UnixMilli(v.LastSeenMs)
		if !last.Equal(clk.t) || v.ScanID != second.ID {
			t.Errorf("%s: last seen %v in %v, want %v in %v", v.Record.Resource.Name, last, v.ScanID, clk.t, second.ID)
		}
		wantFirst := t0
		if v.Record.Resource.Name == "db" {
			wantFirst = clk.t
		}
		if !first.Equal(wantFirst) {
			t.Errorf("%s: first seen %v, want %v", v.Record.Resource.Name, first, wantFirst)
		}
	}
	scan, err := db.GetScan(context.Background(), second.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j := scan.Jobs[0].Record; j.State != fleetscanv1.JobState_JOB_STATE_SUCCEEDED || j.Findings.Medium != 3 {
		t.Errorf("job after completion: %v", j)
	}
}

func TestJobStaysInvisibleUntilComplete(t *testing.T) {
	db, _, _ := openTest(t)
	ctx := context.Background()
	register(t, db, "c1")
	scan, err := db.CreateScan(ctx, &fleetscanv1.ScanTarget{AllClusters: true}, nil, []string{"c1"})
	if err != nil {
		t.Fatal(err)
	}
	assigned, err := db.DispatchPending(ctx, "c1", 0)
	if err != nil || len(assigned) != 1 || assigned[0].JobID != scan.Jobs[0].ID {
		t.Fatalf("dispatch: %v %v", assigned, err)
	}
	jobID := scan.Jobs[0].ID
	batch := &workerv1.FindingBatch{Seq: 1, Findings: []*workerv1.Finding{finding("POD-001", "a", "x", fleetscanv1.Severity_SEVERITY_HIGH)}}
	for range 2 { // a re-sent batch is stored once
		if err := db.StageBatch(ctx, jobID, batch); err != nil {
			t.Fatal(err)
		}
	}
	if got := listAll(t, db, FindingFilter{}); len(got) != 0 {
		t.Fatalf("staged findings visible before JobDone: %q", got)
	}
	if err := db.CompleteJob(ctx, jobID, Completion{Batches: 2, Findings: 2}); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("JobDone claiming a missing batch: got %v, want ErrIncomplete", err)
	}
	if err := db.CompleteJob(ctx, jobID, Completion{Batches: 1, Findings: 1}); err != nil {
		t.Fatal(err)
	}
	if err := db.CompleteJob(ctx, jobID, Completion{Batches: 1, Findings: 1}); err != nil {
		t.Fatalf("re-sent JobDone: %v", err)
	}
	if got := listAll(t, db, FindingFilter{}); len(got) != 1 {
		t.Fatalf("after JobDone: %q", got)
	}
	if err := db.StageBatch(ctx, jobID, batch); !errors.Is(err, ErrConflict) {
		t.Errorf("batch for a finished job: got %v, want ErrConflict", err)
	}
}

func TestRecoverAfterRestart(t *testing.T) {
	db, _, path := openTest(t)
	ctx := context.Background()
	register(t, db, "c1")
	scan, err := db.CreateScan(ctx, &fleetscanv1.ScanTarget{AllClusters: true}, nil, []string{"c1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.DispatchPending(ctx, "c1", 0); err != nil {
		t.Fatal(err)
	}
	if err := db.StageBatch(ctx, scan.Jobs[0].ID, &workerv1.FindingBatch{Seq: 1}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n, err := db.RecoverJobs(ctx, 3)
	if err != nil || n != 1 {
		t.Fatalf("RecoverJobs: %d, %v", n, err)
	}
	assigned, err := db.DispatchPending(ctx, "c1", 0)
	if err != nil || len(assigned) != 1 {
		t.Fatalf("interrupted job not requeued: %v %v", assigned, err)
	}
	job, err := db.GetJob(ctx, scan.Jobs[0].ID)
	if err != nil || job.Record.StagedBatches != 0 {
		t.Errorf("requeued job kept staged batches: %v %v", job, err)
	}
}

func TestListScansNewestFirst(t *testing.T) {
	db, clk, _ := openTest(t)
	register(t, db, "c1")
	var ids []string
	for i := range 5 {
		clk.t = clk.t.Add(time.Minute)
		s, err := db.CreateScan(context.Background(), &fleetscanv1.ScanTarget{AllClusters: true}, nil, []string{"c1"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append([]string{s.ID.String()}, ids...)
		_ = i
	}
	var got []string
	var before [16]byte
	for {
		page, more, err := db.ListScans(context.Background(), before, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page {
			got = append(got, s.ID.String())
		}
		if !more {
			break
		}
		before = page[len(page)-1].ID
	}
	if fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Errorf("scans: got %v, want %v", got, ids)
	}
}

func TestScanOfUnknownCluster(t *testing.T) {
	db, _, _ := openTest(t)
	_, err := db.CreateScan(context.Background(), &fleetscanv1.ScanTarget{ClusterIds: []string{"nope"}}, nil, []string{"nope"})
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("got %v, want ErrNotFound", err)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestPartialScansCarryTheRest: findings a job could not see — outside its
// checks, or of a check not assessable this time — stay open, and the
// job's set and counts still describe the whole cluster.
func TestPartialScansCarryTheRest(t *testing.T) {
	db, clk, _ := openTest(t)
	register(t, db, "c1")
	ctx := context.Background()
	runJob(t, db, "c1",
		finding("POD-001", "shop", "web", fleetscanv1.Severity_SEVERITY_CRITICAL),
		finding("IMG-003", "shop", "web", fleetscanv1.Severity_SEVERITY_MEDIUM),
		finding("POD-018", "shop", "api", fleetscanv1.Severity_SEVERITY_MEDIUM))
	full := 3

	// Only POD-018 checked: POD-018 on api fixed; the others carried.
	clk.t = clk.t.Add(time.Hour)
	scan, err := db.CreateScan(ctx, &fleetscanv1.ScanTarget{AllClusters: true}, &fleetscanv1.ScanSpec{IncludeChecks: []string{"POD-018"}}, []string{"c1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.DispatchPending(ctx, "c1", 0); err != nil {
		t.Fatal(err)
	}
	if err := db.CompleteJob(ctx, scan.Jobs[0].ID, Completion{}); err != nil {
		t.Fatal(err)
	}
	if got := listAll(t, db, FindingFilter{}); len(got) != full-1 {
		t.Errorf("after a POD-018-only scan: open %q, want POD-001 and IMG-003 still open", got)
	}
	// IMG-003 not assessable (no registry allow-list this time): not resolved.
	clk.t = clk.t.Add(time.Hour)
	scan, err = db.CreateScan(ctx, &fleetscanv1.ScanTarget{AllClusters: true}, nil, []string{"c1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.DispatchPending(ctx, "c1", 0); err != nil {
		t.Fatal(err)
	}
	if err := db.StageBatch(ctx, scan.Jobs[0].ID, &workerv1.FindingBatch{Seq: 1, Findings: []*workerv1.Finding{finding("POD-001", "shop", "web", fleetscanv1.Severity_SEVERITY_CRITICAL)}}); err != nil {
		t.Fatal(err)
	}
	done := Completion{Batches: 1, Findings: 1, NotAssessable: []*fleetscanv1.CheckNotAssessable{{CheckId: "IMG-003", Reason: "no allow-list"}}}
	if err := db.CompleteJob(ctx, scan.Jobs[0].ID, done); err != nil {
		t.Fatal(err)
	}
	if got := listAll(t, db, FindingFilter{}); fmt.Sprint(got) != "[c1 IMG-003 web c1 POD-001 web]" {
		t.Errorf("after IMG-003 was not assessable: open %q, want IMG-003 kept", got)
	}
	latest, err := db.LatestJobs(ctx, func(*storagev1.ClusterRecord) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if c := latest[0].Job.Findings; c.Critical != 1 || c.Medium != 1 {
		t.Errorf("posture of the latest job %v, want the whole cluster: 1 critical, 1 medium", c)
	}
}

// TestRequeueGivesUp: a job whose worker connection ends every time is
// failed after maxAttempts instead of retried forever.
func TestRequeueGivesUp(t *testing.T) {
	db, _, _ := openTest(t)
	register(t, db, "c1")
	ctx := context.Background()
	scan, err := db.CreateScan(ctx, &fleetscanv1.ScanTarget{AllClusters: true}, nil, []string{"c1"})
	if err != nil {
		t.Fatal(err)
	}
	id := scan.Jobs[0].ID
	for attempt := 1; attempt <= 3; attempt++ {
		got, err := db.DispatchPending(ctx, "c1", 0)
		if err != nil || len(got) != 1 {
			t.Fatalf("attempt %d: dispatched %v, %v", attempt, got, err)
		}
		if err := db.RequeueJobs(ctx, 3, id); err != nil {
			t.Fatal(err)
		}
	}
	job, err := db.GetJob(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if job.Record.State != fleetscanv1.JobState_JOB_STATE_FAILED || job.Record.Attempts != 3 || !strings.Contains(job.Record.Error, "3 attempts") {
		t.Errorf("after 3 lost attempts: %v", job.Record)
	}
	if got, _ := db.DispatchPending(ctx, "c1", 0); len(got) != 0 {
		t.Errorf("a failed job was dispatched again: %v", got)
	}
}
