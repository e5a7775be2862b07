package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
	"github.com/fleetscan/fleetscan/worker/catalog"
)

// finding is a worker's finding on a Deployment.
func finding(check, ns, name string, sev fleetscanv1.Severity) *workerv1.Finding {
	return &workerv1.Finding{
		CheckId: check, Severity: sev, Category: "pod-security",
		ResponsibleParty: fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_WORKLOAD,
		Resource:         &fleetscanv1.ResourceRef{ApiVersion: "apps/v1", Kind: "Deployment", Namespace: ns, Name: name},
		Message:          check + " on " + name,
	}
}

const (
	critical = fleetscanv1.Severity_SEVERITY_CRITICAL
	high     = fleetscanv1.Severity_SEVERITY_HIGH
	medium   = fleetscanv1.Severity_SEVERITY_MEDIUM
	low      = fleetscanv1.Severity_SEVERITY_LOW
)

// startJob creates a scan of one cluster with spec and dispatches its job,
// as the scheduler and a worker's Hello do.
func startJob(t *testing.T, ctx context.Context, db Backend, clusterID string, spec *fleetscanv1.ScanSpec) *store.Scan {
	t.Helper()
	scan, err := db.CreateScan(ctx, &fleetscanv1.ScanTarget{ClusterIds: []string{clusterID}}, spec, []string{clusterID})
	must(t, "CreateScan", err)
	if len(scan.Jobs) != 1 {
		t.Fatalf("scan of %q has %d jobs, want 1", clusterID, len(scan.Jobs))
	}
	_, err = db.DispatchPending(ctx, clusterID, 0)
	must(t, "DispatchPending", err)
	return scan
}

// stageFindings stores findings in batches of two, planning each as ingest does,
// and returns the completion that reports them.
func stageFindings(t *testing.T, ctx context.Context, db Backend, jobID ulid.ULID, findings ...*workerv1.Finding) store.Completion {
	t.Helper()
	plan := &store.JobPlan{}
	var seq int64
	for i := 0; i < len(findings); i += 2 {
		seq++
		batch := &workerv1.FindingBatch{JobId: jobID.String(), Seq: seq, Findings: findings[i:min(i+2, len(findings))]}
		must(t, "StageBatch", db.StageBatch(ctx, jobID, batch))
		must(t, "PlanBatch", db.PlanBatch(ctx, jobID, plan, batch))
	}
	return store.Completion{Batches: seq, Findings: int64(len(findings)), Plan: plan}
}

// runJob runs a whole job of a scan of clusterID that found findings.
// The clock moves on a little first, so that each job of a case ends in a
// millisecond of its own, as the stores' times are in milliseconds.
func runJob(t *testing.T, ctx context.Context, db Backend, clusterID string, spec *fleetscanv1.ScanSpec, findings ...*workerv1.Finding) *store.Scan {
	t.Helper()
	time.Sleep(3 * time.Millisecond)
	scan := startJob(t, ctx, db, clusterID, spec)
	done := stageFindings(t, ctx, db, scan.Jobs[0].ID, findings...)
	must(t, "CompleteJob", db.CompleteJob(ctx, scan.Jobs[0].ID, done))
	return scan
}

// jobOf reads the one job of a scan as it is now.
func jobOf(t *testing.T, ctx context.Context, db Backend, scan *store.Scan) *storagev1.JobRecord {
	t.Helper()
	j, err := db.GetJob(ctx, scan.Jobs[0].ID)
	must(t, "GetJob", err)
	return j.Record
}

// listAll pages through ListFindings two at a time and names each
// finding "cluster check name".
func listAll(t *testing.T, ctx context.Context, db Backend, f store.FindingFilter) []string {
	t.Helper()
	var out []string
	for _, v := range listViews(t, ctx, db, f, 2) {
		out = append(out, fmt.Sprintf("%s %s %s", v.ClusterID, v.Record.CheckId, v.Record.GetResource().GetName()))
	}
	return out
}

func listViews(t *testing.T, ctx context.Context, db Backend, f store.FindingFilter, limit int) []store.FindingView {
	t.Helper()
	var out []store.FindingView
	var after []byte
	for range 1000 {
		page, next, err := db.ListFindings(ctx, f, after, limit)
		must(t, "ListFindings", err)
		if len(page) > limit {
			t.Fatalf("ListFindings returned %d, limit %d", len(page), limit)
		}
		out = append(out, page...)
		if next == nil {
			return out
		}
		after = next
	}
	t.Fatal("ListFindings never ends")
	return nil
}

// wantList compares findings as sets: a list is in (cluster, fingerprint)
// order, and a fingerprint's order is a hash's.
func wantList(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got  %q\n want %q", what, got, want)
	}
}

// viewNamed returns the view of the finding on resource name among views.
func viewNamed(t *testing.T, views []store.FindingView, check, name string) store.FindingView {
	t.Helper()
	for _, v := range views {
		if v.Record.CheckId == check && v.Record.GetResource().GetName() == name {
			return v
		}
	}
	t.Fatalf("no finding %s on %s among %d", check, name, len(views))
	return store.FindingView{}
}

func fingerprintOf(clusterID string, f *workerv1.Finding) [catalog.FingerprintSize]byte {
	r := f.Resource
	return catalog.Fingerprint(clusterID, f.CheckId, catalog.Resource{APIVersion: r.GetApiVersion(), Kind: r.GetKind(), Namespace: r.GetNamespace(), Name: r.GetName(), SubPath: r.GetSubPath()})
}

func counts(c *fleetscanv1.SeverityCounts) string {
	return fmt.Sprintf("c%d h%d m%d l%d i%d s%d", c.GetCritical(), c.GetHigh(), c.GetMedium(), c.GetLow(), c.GetInfo(), c.GetSuppressed())
}

var findingCases = []contractCase{
	{"findings/a job's findings are visible only once CompleteJob commits them", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "c1")
		before, err := db.GetCluster(ctx, "c1")
		must(t, "GetCluster", err)

		// A job not yet dispatched cannot complete.
		scan, err := db.CreateScan(ctx, &fleetscanv1.ScanTarget{ClusterIds: []string{"c1"}}, nil, []string{"c1"})
		must(t, "CreateScan", err)
		jobID := scan.Jobs[0].ID
		err = db.CompleteJob(ctx, jobID, store.Completion{})
		wantErr(t, "CompleteJob of a pending job", err, store.ErrConflict)
		_, err = db.DispatchPending(ctx, "c1", 0)
		must(t, "DispatchPending", err)

		x := finding("POD-001", "shop", "web", high)
		batch := &workerv1.FindingBatch{Seq: 1, Findings: []*workerv1.Finding{x, finding("POD-001", "shop", "api", medium)}}
		for range 2 { // a re-sent batch is stored once
			must(t, "StageBatch", db.StageBatch(ctx, jobID, batch))
		}
		// The same object listed twice in a snapshot is one finding.
		must(t, "StageBatch", db.StageBatch(ctx, jobID, &workerv1.FindingBatch{Seq: 2, Findings: []*workerv1.Finding{x}}))
		wantList(t, "findings while staged", listAll(t, ctx, db, store.FindingFilter{}))

		err = db.CompleteJob(ctx, jobID, store.Completion{Batches: 3, Findings: 3})
		wantErr(t, "CompleteJob claiming a batch not stored", err, store.ErrIncomplete)
		if want := fmt.Sprintf("job %s: 2 of 3 batches stored: incomplete", jobID); err.Error() != want {
			t.Fatalf("CompleteJob's error %q, want %q", err, want)
		}
		err = db.CompleteJob(ctx, jobID, store.Completion{Batches: 2, Findings: 4})
		wantErr(t, "CompleteJob claiming a finding not stored", err, store.ErrIncomplete)
		if want := fmt.Sprintf("job %s: 3 of 4 findings stored: incomplete", jobID); err.Error() != want {
			t.Fatalf("CompleteJob's error %q, want %q", err, want)
		}
		wantList(t, "findings after refused completions", listAll(t, ctx, db, store.FindingFilter{}))
		if j := jobOf(t, ctx, db, scan); j.State != fleetscanv1.JobState_JOB_STATE_RUNNING || j.StagedBatches != 2 || j.StagedFindings != 3 {
			t.Fatalf("job after refused completions: %v, staged %d/%d", j.State, j.StagedBatches, j.StagedFindings)
		}

		done := store.Completion{Batches: 2, Findings: 3, ObjectsScanned: 7,
			NotAssessable: []*fleetscanv1.CheckNotAssessable{{CheckId: "IMG-003", Reason: "no allow-list"}},
			Unchecked:     []string{"v1/ConfigMap"}}
		must(t, "CompleteJob", db.CompleteJob(ctx, jobID, done))
		// A JobDone the worker re-sends is a no-op.
		must(t, "CompleteJob again", db.CompleteJob(ctx, jobID, done))
		wantList(t, "findings after CompleteJob", listAll(t, ctx, db, store.FindingFilter{}), "c1 POD-001 api", "c1 POD-001 web")

		j := jobOf(t, ctx, db, scan)
		if j.State != fleetscanv1.JobState_JOB_STATE_SUCCEEDED || j.FinishMs == 0 || j.StagedBatches != 0 || j.StagedFindings != 0 {
			t.Fatalf("job after CompleteJob: %v, finish %d, staged %d/%d", j.State, j.FinishMs, j.StagedBatches, j.StagedFindings)
		}
		if got := counts(j.Findings); got != "c0 h1 m1 l0 i0 s0" || j.ObjectsScanned != 7 {
			t.Fatalf("job's counts %s, %d objects", got, j.ObjectsScanned)
		}
		if j.CheckCounts["POD-001"] != 2 || len(j.CheckCounts) != 1 {
			t.Fatalf("job's check counts %v", j.CheckCounts)
		}
		party := int32(fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_WORKLOAD)
		if len(j.PartyCounts) != 1 || counts(j.PartyCounts[party]) != "c0 h1 m1 l0 i0 s0" {
			t.Fatalf("job's party counts %v", j.PartyCounts)
		}
		if len(j.NotAssessable) != 1 || j.NotAssessable[0].CheckId != "IMG-003" || !slices.Equal(j.Unchecked, []string{"v1/ConfigMap"}) {
			t.Fatalf("job's not assessable %v, unchecked %v", j.NotAssessable, j.Unchecked)
		}
		c, err := db.GetCluster(ctx, "c1")
		must(t, "GetCluster", err)
		if ulid.ULID(c.LastJobId) != jobID || ulid.ULID(c.LastScanId) != scan.ID || c.LastJobMs != j.FinishMs {
			t.Fatalf("cluster's latest job %x in scan %x at %d, want %s in %s at %d", c.LastJobId, c.LastScanId, c.LastJobMs, jobID, scan.ID, j.FinishMs)
		}
		if before.LastJobId != nil {
			t.Fatalf("cluster had a latest job before any: %x", before.LastJobId)
		}
		err = db.StageBatch(ctx, jobID, batch)
		wantErr(t, "StageBatch of a succeeded job", err, store.ErrConflict)

		// An open finding was last seen by the cluster's latest job.
		v := viewNamed(t, listViews(t, ctx, db, store.FindingFilter{}, 10), "POD-001", "web")
		if v.Record.FirstSeenMs != j.FinishMs || v.LastSeenMs != j.FinishMs || v.ScanID != scan.ID || v.Record.ResolvedMs != 0 {
			t.Fatalf("web: first %d, last %d in %s, resolved %d; want %d, %d in %s", v.Record.FirstSeenMs, v.LastSeenMs, v.ScanID, v.Record.ResolvedMs, j.FinishMs, j.FinishMs, scan.ID)
		}
		if v.Fingerprint != fingerprintOf("c1", x) || v.Record.Message != x.Message || v.Record.Severity != high {
			t.Fatalf("web's view %x %v", v.Fingerprint, v.Record)
		}
	}},
	{"findings/a later job resolves what it did not see and reopens what came back", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "c1", "c2")
		web := finding("POD-001", "shop", "web", critical)
		first := runJob(t, ctx, db, "c1", nil, web, finding("POD-018", "shop", "web", medium), finding("POD-018", "shop", "api", medium))
		runJob(t, ctx, db, "c2", nil, web)
		f1 := jobOf(t, ctx, db, first).FinishMs

		// web fixed, db new, api's details changed.
		api := finding("POD-018", "shop", "api", high)
		api.Message = "worse"
		second := runJob(t, ctx, db, "c1", nil, finding("POD-018", "shop", "web", medium), api, finding("POD-018", "shop", "db", medium))
		j2 := jobOf(t, ctx, db, second)
		f2 := j2.FinishMs
		wantList(t, "open", listAll(t, ctx, db, store.FindingFilter{}),
			"c1 POD-018 api", "c1 POD-018 db", "c1 POD-018 web", "c2 POD-001 web")
		wantList(t, "resolved", listAll(t, ctx, db, store.FindingFilter{Status: fleetscanv1.FindingStatus_FINDING_STATUS_RESOLVED}),
			"c1 POD-001 web")
		if got := counts(j2.Findings); got != "c0 h1 m2 l0 i0 s0" {
			t.Fatalf("second job's counts %s", got)
		}
		open := listViews(t, ctx, db, store.FindingFilter{ClusterID: "c1"}, 10)
		for _, v := range open {
			want := f1
			if v.Record.Resource.Name == "db" {
				want = f2
			}
			if v.Record.FirstSeenMs != want || v.LastSeenMs != f2 || v.ScanID != second.ID {
				t.Fatalf("%s: first seen %d, last %d in %s; want %d, %d in %s", v.Record.Resource.Name, v.Record.FirstSeenMs, v.LastSeenMs, v.ScanID, want, f2, second.ID)
			}
		}
		if v := viewNamed(t, open, "POD-018", "api"); v.Record.Message != "worse" || v.Record.Severity != high {
			t.Fatalf("api's details were not rewritten: %v", v.Record)
		}
		// A resolved finding was last seen by the job before the one that
		// resolved it (its time and scan), not by the resolving job.
		resolved := listViews(t, ctx, db, store.FindingFilter{ClusterID: "c1", Status: fleetscanv1.FindingStatus_FINDING_STATUS_RESOLVED}, 10)
		r := viewNamed(t, resolved, "POD-001", "web")
		if r.Record.ResolvedMs != f2 || r.Record.LastSeenMs != f1 || r.LastSeenMs != f1 || r.ScanID != first.ID || r.Record.FirstSeenMs != f1 {
			t.Fatalf("resolved web: first %d, last %d (view %d) in %s, resolved %d; want %d, %d in %s, %d",
				r.Record.FirstSeenMs, r.Record.LastSeenMs, r.LastSeenMs, r.ScanID, r.Record.ResolvedMs, f1, f1, first.ID, f2)
		}

		// web comes back: a new open interval, the old one in its history.
		third := runJob(t, ctx, db, "c1", nil, web, finding("POD-018", "shop", "web", medium), api, finding("POD-018", "shop", "db", medium))
		f3 := jobOf(t, ctx, db, third).FinishMs
		wantList(t, "resolved after web came back", listAll(t, ctx, db, store.FindingFilter{Status: fleetscanv1.FindingStatus_FINDING_STATUS_RESOLVED}))
		v := viewNamed(t, listViews(t, ctx, db, store.FindingFilter{ClusterID: "c1", CheckID: "POD-001"}, 10), "POD-001", "web")
		if v.Record.FirstSeenMs != f3 || v.Record.ResolvedMs != 0 || v.Record.LastSeenMs != 0 || v.Record.LastScanId != nil || v.LastSeenMs != f3 || v.ScanID != third.ID {
			t.Fatalf("reopened web: %v, last seen %d in %s", v.Record, v.LastSeenMs, v.ScanID)
		}
		want := []*storagev1.Interval{{FirstSeenMs: f1, LastSeenMs: f1, ResolvedMs: f2}}
		if len(v.Record.History) != 1 {
			t.Fatalf("reopened web's history %v, want %v", v.Record.History, want)
		}
		wantProto(t, "reopened web's history", v.Record.History[0], want[0])
	}},
	{"findings/a job resolves only what its scan covered and could assess", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "c1")
		all := []*workerv1.Finding{
			finding("POD-001", "shop", "web", critical),
			finding("IMG-003", "shop", "web", medium),
			finding("POD-018", "shop", "api", medium),
			finding("POD-018", "infra", "dns", low),
		}
		runJob(t, ctx, db, "c1", nil, all...)

		// Only POD-018 checked, and only in shop: api fixed; the rest
		// carried, and the job's counts still describe the whole cluster.
		s := runJob(t, ctx, db, "c1", &fleetscanv1.ScanSpec{IncludeChecks: []string{"POD-018"}, Namespaces: []string{"shop"}})
		wantList(t, "open after a POD-018 scan of shop", listAll(t, ctx, db, store.FindingFilter{}),
			"c1 POD-001 web", "c1 IMG-003 web", "c1 POD-018 dns")
		if got := counts(jobOf(t, ctx, db, s).Findings); got != "c1 h0 m1 l1 i0 s0" {
			t.Fatalf("partial job's counts %s, want the carried ones", got)
		}
		// Every check but POD-001 excluded: web's POD-001 stays.
		runJob(t, ctx, db, "c1", &fleetscanv1.ScanSpec{ExcludeChecks: []string{"POD-001"}}, all[1])
		wantList(t, "open after a scan without POD-001", listAll(t, ctx, db, store.FindingFilter{}),
			"c1 POD-001 web", "c1 IMG-003 web")

		// IMG-003 not assessable this time: kept.
		scan := startJob(t, ctx, db, "c1", nil)
		done := stageFindings(t, ctx, db, scan.Jobs[0].ID, all[0])
		done.NotAssessable = []*fleetscanv1.CheckNotAssessable{{CheckId: "IMG-003", Reason: "no allow-list"}}
		must(t, "CompleteJob", db.CompleteJob(ctx, scan.Jobs[0].ID, done))
		wantList(t, "open after IMG-003 was not assessable", listAll(t, ctx, db, store.FindingFilter{}),
			"c1 POD-001 web", "c1 IMG-003 web")

		// A worker that could not read everything resolves nothing.
		scan = startJob(t, ctx, db, "c1", nil)
		done = stageFindings(t, ctx, db, scan.Jobs[0].ID)
		done.Problems = []string{"list pods: forbidden"}
		must(t, "CompleteJob", db.CompleteJob(ctx, scan.Jobs[0].ID, done))
		wantList(t, "open after an incomplete job", listAll(t, ctx, db, store.FindingFilter{}),
			"c1 POD-001 web", "c1 IMG-003 web")
		j := jobOf(t, ctx, db, scan)
		if got := counts(j.Findings); got != "c1 h0 m1 l0 i0 s0" || !slices.Equal(j.Problems, done.Problems) {
			t.Fatalf("incomplete job's counts %s, problems %q", got, j.Problems)
		}
		latest, err := db.LatestJobs(ctx, func(*storagev1.ClusterRecord) bool { return true })
		must(t, "LatestJobs", err)
		if len(latest) != 1 || latest[0].Job == nil || counts(latest[0].Job.Findings) != "c1 h0 m1 l0 i0 s0" {
			t.Fatalf("latest: %v", latest)
		}
		// The full scan after it resolves them.
		runJob(t, ctx, db, "c1", nil)
		wantList(t, "open after a full scan found nothing", listAll(t, ctx, db, store.FindingFilter{}))
	}},
	{"findings/exceptions and in-cluster suppressions suppress", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "c1", "c2")
		annotated := finding("POD-002", "shop", "web", high)
		annotated.SuppressionReason = "annotation: accepted"
		// An operator's exception of POD-001 on c1, and one deleted.
		e, err := db.CreateException(ctx, &fleetscanv1.Exception{ClusterId: "c1", CheckId: "POD-001", Reason: "accepted", Author: "op",
			CreateTime: ts(time.Now()), ExpireTime: ts(time.Now().Add(24 * time.Hour))})
		must(t, "CreateException", err)
		gone, err := db.CreateException(ctx, &fleetscanv1.Exception{CheckId: "POD-018", Reason: "r", Author: "op",
			CreateTime: ts(time.Now()), ExpireTime: ts(time.Now().Add(24 * time.Hour))})
		must(t, "CreateException", err)
		_, err = db.DeleteException(ctx, gone.Id, func(*fleetscanv1.Exception) bool { return true })
		must(t, "DeleteException", err)
		s := runJob(t, ctx, db, "c1", nil, finding("POD-001", "shop", "web", critical), annotated, finding("POD-018", "shop", "web", medium))
		runJob(t, ctx, db, "c2", nil, finding("POD-001", "shop", "web", critical))

		if got := counts(jobOf(t, ctx, db, s).Findings); got != "c0 h0 m1 l0 i0 s2" {
			t.Fatalf("counts with exceptions %s", got)
		}
		if cc := jobOf(t, ctx, db, s).CheckCounts; len(cc) != 1 || cc["POD-018"] != 1 {
			t.Fatalf("check counts with exceptions %v: suppressed findings are not counted", cc)
		}
		wantList(t, "open", listAll(t, ctx, db, store.FindingFilter{}), "c1 POD-018 web", "c2 POD-001 web")
		suppressed := listViews(t, ctx, db, store.FindingFilter{Status: fleetscanv1.FindingStatus_FINDING_STATUS_SUPPRESSED}, 10)
		if len(suppressed) != 2 {
			t.Fatalf("suppressed: %d, want 2", len(suppressed))
		}
		byException := viewNamed(t, suppressed, "POD-001", "web")
		if byException.ClusterID != "c1" || byException.ExceptionID != e.Id || byException.Record.SuppressionReason == "" {
			t.Fatalf("POD-001 on c1: exception %q, reason %q; want %s", byException.ExceptionID, byException.Record.SuppressionReason, e.Id)
		}
		if a := viewNamed(t, suppressed, "POD-002", "web"); a.ExceptionID != "" || a.Record.SuppressionReason != annotated.SuppressionReason {
			t.Fatalf("annotated: exception %q, reason %q", a.ExceptionID, a.Record.SuppressionReason)
		}
		// The record keeps what the worker saw: the exception applies as
		// of the read, so ending it shows the finding again, with no rewrite.
		_, err = db.DeleteException(ctx, e.Id, func(*fleetscanv1.Exception) bool { return true })
		must(t, "DeleteException", err)
		wantList(t, "open once the exception ended", listAll(t, ctx, db, store.FindingFilter{}), "c1 POD-001 web", "c1 POD-018 web", "c2 POD-001 web")
	}},
	{"findings/which exceptions apply depends on the reader", func(t *testing.T, ctx context.Context, db Backend) {
		must(t, "CreateCluster", db.CreateCluster(ctx, &storagev1.ClusterRecord{Id: "c1", Tenant: "acme",
			NamespaceGrants: []*fleetscanv1.NamespaceGrant{{Tenant: "globex", Namespaces: []string{"shop"}}}}, nil, nil))
		in := func(d time.Duration) *timestamppb.Timestamp { return ts(time.Now().Add(d)) }
		// acme's on its own cluster: for acme and the operators.
		own, err := db.CreateException(ctx, &fleetscanv1.Exception{Tenant: "acme", OwnerTenant: "acme", CheckId: "POD-001",
			Reason: "r", Author: "alice", CreateTime: in(0), ExpireTime: in(time.Hour)})
		must(t, "CreateException", err)
		// globex's on the namespace granted to it: for globex alone.
		granted, err := db.CreateException(ctx, &fleetscanv1.Exception{OwnerTenant: "globex", Namespace: "shop", CheckId: "POD-018",
			Reason: "r", Author: "bob", CreateTime: in(0), ExpireTime: in(time.Hour)})
		must(t, "CreateException", err)
		s := runJob(t, ctx, db, "c1", nil, finding("POD-001", "shop", "web", high), finding("POD-018", "shop", "api", high))
		// A job's counts are the operators'.
		if got := counts(jobOf(t, ctx, db, s).Findings); got != "c0 h1 m0 l0 i0 s1" {
			t.Fatalf("job's counts %s", got)
		}
		suppressed := func(reader string) []string {
			var out []string
			for _, v := range listViews(t, ctx, db, store.FindingFilter{Status: fleetscanv1.FindingStatus_FINDING_STATUS_SUPPRESSED, Reader: reader}, 10) {
				out = append(out, v.Record.CheckId+" "+v.ExceptionID)
			}
			return out
		}
		wantList(t, "suppressed for the operators", suppressed(""), "POD-001 "+own.Id)
		wantList(t, "suppressed for acme", suppressed("acme"), "POD-001 "+own.Id)
		wantList(t, "suppressed for globex", suppressed("globex"), "POD-018 "+granted.Id)
		fpr := fingerprintOf("c1", finding("POD-018", "shop", "api", high))
		for reader, want := range map[string]string{"": "", "acme": "", "globex": granted.Id} {
			v, _, _, err := db.GetFinding(ctx, "c1", fpr, 10, reader)
			must(t, "GetFinding", err)
			if v.ExceptionID != want || (want != "") != (v.Record.SuppressionReason != "") {
				t.Fatalf("GetFinding for %q: exception %q, reason %q; want %q", reader, v.ExceptionID, v.Record.SuppressionReason, want)
			}
		}
		// Once the grant is gone, globex's exception covers nothing.
		_, err = db.UpdateCluster(ctx, "c1", func(c *storagev1.ClusterRecord) error { c.NamespaceGrants = nil; return nil })
		must(t, "UpdateCluster", err)
		wantList(t, "suppressed for globex without the grant", suppressed("globex"))
	}},
	{"findings/ListFindings filters, scopes and pages", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "c1", "c2")
		createClusters(t, ctx, db, "globex", "c3")
		infra := finding("NET-001", "infra", "dns", low)
		infra.Category, infra.ResponsibleParty = "network", fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_PLATFORM
		node := finding("NODE-001", "", "n1", critical)
		node.Resource.Kind, node.Resource.ApiVersion = "Node", "v1"
		runJob(t, ctx, db, "c1", nil, finding("POD-001", "shop", "web", critical), finding("POD-001", "shop", "api", high), infra, node)
		first := jobOf(t, ctx, db, runJob(t, ctx, db, "c2", nil, finding("POD-001", "shop", "web", medium))).FinishMs
		last := jobOf(t, ctx, db, runJob(t, ctx, db, "c3", nil, finding("POD-001", "shop", "web", high), finding("POD-018", "shop", "db", low))).FinishMs

		all := []string{"c1 POD-001 web", "c1 POD-001 api", "c1 NET-001 dns", "c1 NODE-001 n1", "c2 POD-001 web", "c3 POD-001 web", "c3 POD-018 db"}
		wantList(t, "all", listAll(t, ctx, db, store.FindingFilter{}), all...)
		// Pages of every size list the same, in one order, without repeats.
		whole := listViews(t, ctx, db, store.FindingFilter{}, 100)
		for limit := 1; limit <= 8; limit++ {
			paged := listViews(t, ctx, db, store.FindingFilter{}, limit)
			if len(paged) != len(whole) {
				t.Fatalf("pages of %d list %d, want %d", limit, len(paged), len(whole))
			}
			for i := range paged {
				if paged[i].ClusterID != whole[i].ClusterID || paged[i].Fingerprint != whole[i].Fingerprint {
					t.Fatalf("pages of %d: #%d is %s %x, want %s %x", limit, i, paged[i].ClusterID, paged[i].Fingerprint, whole[i].ClusterID, whole[i].Fingerprint)
				}
			}
		}
		// In cluster order, then fingerprint order within a cluster.
		for i := 1; i < len(whole); i++ {
			a, b := whole[i-1], whole[i]
			if a.ClusterID == b.ClusterID && string(a.Fingerprint[:]) >= string(b.Fingerprint[:]) {
				t.Fatalf("%s: %x listed before %x", a.ClusterID, a.Fingerprint, b.Fingerprint)
			}
			if a.ClusterID > b.ClusterID {
				t.Fatalf("cluster %s listed before %s (clusters created in id order)", a.ClusterID, b.ClusterID)
			}
		}
		// A key to go on from comes only when another finding matches: a
		// page of exactly all has none (bbolt looks one past the limit).
		page, next, err := db.ListFindings(ctx, store.FindingFilter{}, nil, len(all))
		must(t, "ListFindings", err)
		if len(page) != len(all) || next != nil {
			t.Fatalf("a page of exactly all: %d findings, next %x", len(page), next)
		}
		page, next, err = db.ListFindings(ctx, store.FindingFilter{}, nil, len(all)-1)
		must(t, "ListFindings", err)
		if len(page) != len(all)-1 || next == nil {
			t.Fatalf("a page of all but one: %d findings, next %x", len(page), next)
		}
		page, next, err = db.ListFindings(ctx, store.FindingFilter{}, next, 10)
		must(t, "ListFindings", err)
		if len(page) != 1 || next != nil || page[0].Fingerprint != whole[len(whole)-1].Fingerprint {
			t.Fatalf("the last page: %d findings, next %x", len(page), next)
		}

		for _, tc := range []struct {
			what string
			f    store.FindingFilter
			want []string
		}{
			{"cluster", store.FindingFilter{ClusterID: "c3"}, all[5:]},
			{"severity", store.FindingFilter{MinSeverity: high}, []string{"c1 POD-001 web", "c1 POD-001 api", "c1 NODE-001 n1", "c3 POD-001 web"}},
			{"check", store.FindingFilter{CheckID: "POD-001"}, []string{"c1 POD-001 web", "c1 POD-001 api", "c2 POD-001 web", "c3 POD-001 web"}},
			{"namespace", store.FindingFilter{Namespace: "infra"}, []string{"c1 NET-001 dns"}},
			{"category", store.FindingFilter{Category: "network"}, []string{"c1 NET-001 dns"}},
			{"party", store.FindingFilter{Party: fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_PLATFORM}, []string{"c1 NET-001 dns"}},
			{"first seen after", store.FindingFilter{FirstSeenAfterMs: first}, all[4:]},
			{"first seen before", store.FindingFilter{FirstSeenBeforeMs: first}, all[:4]},
			{"first seen in", store.FindingFilter{FirstSeenAfterMs: first, FirstSeenBeforeMs: last}, all[4:5]},
			{"several", store.FindingFilter{ClusterID: "c1", CheckID: "POD-001", MinSeverity: critical, Namespace: "shop"}, all[:1]},
			{"tenant's clusters", store.FindingFilter{Visible: func(c *storagev1.ClusterRecord) (bool, []string) { return c.Tenant == "acme", nil }}, all[:5]},
			// A grant of namespaces excludes cluster-scoped objects.
			{"granted namespaces", store.FindingFilter{Visible: func(c *storagev1.ClusterRecord) (bool, []string) {
				return c.Id == "c1", []string{"shop", "infra"}
			}}, all[:3]},
			{"nothing", store.FindingFilter{Status: fleetscanv1.FindingStatus_FINDING_STATUS_SUPPRESSED}, nil},
		} {
			wantList(t, tc.what, listAll(t, ctx, db, tc.f), tc.want...)
		}

		// A cluster that is not there, or not the reader's, is an error.
		for _, f := range []store.FindingFilter{
			{ClusterID: "nope"},
			{ClusterID: "c3", Visible: func(c *storagev1.ClusterRecord) (bool, []string) { return c.Tenant == "acme", nil }},
		} {
			_, _, err = db.ListFindings(ctx, f, nil, 10)
			wantErr(t, "ListFindings of "+f.ClusterID, err, store.ErrNotFound)
			if want := fmt.Sprintf("cluster %q: not found", f.ClusterID); err.Error() != want {
				t.Fatalf("ListFindings' error %q, want %q", err, want)
			}
		}
		// A key from a page of one cluster's list resumes the same list.
		page, next, err = db.ListFindings(ctx, store.FindingFilter{ClusterID: "c1"}, nil, 2)
		must(t, "ListFindings", err)
		rest, _, err := db.ListFindings(ctx, store.FindingFilter{ClusterID: "c1"}, next, 10)
		must(t, "ListFindings", err)
		if len(page) != 2 || len(rest) != 2 {
			t.Fatalf("c1 in pages: %d then %d, want 2 and 2", len(page), len(rest))
		}
	}},
	{"findings/GetFinding lists the scans that saw a finding, newest first", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "c1", "c2")
		web := finding("POD-001", "shop", "web", high)
		other := finding("POD-018", "shop", "api", low)
		s1 := runJob(t, ctx, db, "c1", nil, web, other)
		s2 := runJob(t, ctx, db, "c1", nil, web, other)
		runJob(t, ctx, db, "c2", nil, web) // another cluster's scans do not count
		s3 := runJob(t, ctx, db, "c1", nil, other)
		s4 := runJob(t, ctx, db, "c1", nil, web, other)
		fpr := fingerprintOf("c1", web)

		v, sightings, total, err := db.GetFinding(ctx, "c1", fpr, 10, "")
		must(t, "GetFinding", err)
		if v.ClusterID != "c1" || v.Fingerprint != fpr || v.Record.CheckId != "POD-001" || v.ScanID != s4.ID || v.LastSeenMs != jobOf(t, ctx, db, s4).FinishMs {
			t.Fatalf("GetFinding's view: %s %x %v, last %d in %s", v.ClusterID, v.Fingerprint, v.Record, v.LastSeenMs, v.ScanID)
		}
		var got []ulid.ULID
		for _, s := range sightings {
			got = append(got, s.ScanID)
		}
		if want := []ulid.ULID{s4.ID, s2.ID, s1.ID}; !slices.Equal(got, want) || total != 3 {
			t.Fatalf("sightings %v of %d, want %v of 3", got, total, want)
		}
		if sightings[0].FinishMs != jobOf(t, ctx, db, s4).FinishMs || sightings[2].FinishMs != jobOf(t, ctx, db, s1).FinishMs {
			t.Fatalf("sightings' times %v", sightings)
		}
		_, sightings, total, err = db.GetFinding(ctx, "c1", fpr, 2, "")
		must(t, "GetFinding", err)
		if len(sightings) != 2 || total != 3 || sightings[1].ScanID != s2.ID {
			t.Fatalf("sightings limited to 2: %v of %d", sightings, total)
		}
		_, sightings, total, err = db.GetFinding(ctx, "c1", fingerprintOf("c1", other), 10, "")
		must(t, "GetFinding", err)
		if len(sightings) != 4 || total != 4 || sightings[1].ScanID != s3.ID {
			t.Fatalf("sightings of a finding every scan saw: %v of %d", sightings, total)
		}

		_, _, _, err = db.GetFinding(ctx, "nope", fpr, 10, "")
		wantErr(t, "GetFinding of a missing cluster", err, store.ErrNotFound)
		_, _, _, err = db.GetFinding(ctx, "c1", fingerprintOf("c1", finding("X", "a", "b", low)), 10, "")
		wantErr(t, "GetFinding of a missing finding", err, store.ErrNotFound)
		// bbolt says neither the cluster nor the fingerprint, and says the
		// same of a missing cluster.
		if err.Error() != "finding: not found" {
			t.Fatalf("GetFinding's error %q", err)
		}
	}},
	{"findings/DiffScans compares one cluster's jobs in two scans", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "c1", "c2")
		a, b, c := finding("POD-001", "shop", "a", high), finding("POD-001", "shop", "b", high), finding("POD-001", "shop", "c", high)
		base := runJob(t, ctx, db, "c1", nil, a, b)
		head := runJob(t, ctx, db, "c1", nil, b, c)

		d, err := db.DiffScans(ctx, base.ID, head.ID, "", nil)
		must(t, "DiffScans", err)
		if d.ClusterID != "c1" || d.BaseJob != base.Jobs[0].ID || d.HeadJob != head.Jobs[0].ID || d.UnchangedCount != 1 ||
			len(d.New) != 1 || d.New[0].Record.Resource.Name != "c" || len(d.Resolved) != 1 || d.Resolved[0].Record.Resource.Name != "a" {
			t.Fatalf("diff: %+v", d)
		}
		if d.Resolved[0].Record.ResolvedMs == 0 || d.New[0].ClusterID != "c1" {
			t.Fatalf("diff's views: resolved %v, new of %q", d.Resolved[0].Record, d.New[0].ClusterID)
		}
		// Backwards: what the head added is what the base lacks.
		d, err = db.DiffScans(ctx, head.ID, base.ID, "c1", nil)
		must(t, "DiffScans backwards", err)
		if len(d.New) != 1 || d.New[0].Record.Resource.Name != "a" || len(d.Resolved) != 1 || d.Resolved[0].Record.Resource.Name != "c" || d.UnchangedCount != 1 {
			t.Fatalf("backwards diff: %+v", d)
		}

		// Two scans of both clusters: which one must be said.
		both1, err := db.CreateScan(ctx, &fleetscanv1.ScanTarget{AllClusters: true}, nil, []string{"c1", "c2"})
		must(t, "CreateScan", err)
		both2, err := db.CreateScan(ctx, &fleetscanv1.ScanTarget{AllClusters: true}, nil, []string{"c1", "c2"})
		must(t, "CreateScan", err)
		_, err = db.DiffScans(ctx, both1.ID, both2.ID, "", nil)
		wantErr(t, "DiffScans of two clusters", err, store.ErrAmbiguous)
		// both2 joined both1's jobs, which have not run.
		_, err = db.DiffScans(ctx, base.ID, both1.ID, "", nil)
		wantErr(t, "DiffScans with a job not succeeded", err, store.ErrConflict)
		_, err = db.DiffScans(ctx, base.ID, both1.ID, "c2", nil)
		wantErr(t, "DiffScans of a cluster a scan lacks", err, store.ErrNotFound)
		_, err = db.DiffScans(ctx, base.ID, ulid.Make(), "", nil)
		wantErr(t, "DiffScans of a missing scan", err, store.ErrNotFound)
		// Out of the reader's scope: as if the scans did not exist.
		_, err = db.DiffScans(ctx, base.ID, head.ID, "", func(c *storagev1.ClusterRecord) bool { return c.Id == "c2" })
		wantErr(t, "DiffScans out of scope", err, store.ErrNotFound)
	}},
}

// manyFindings are n findings of one check on Deployments named prefix-i.
func manyFindings(prefix string, n int, sev fleetscanv1.Severity) []*workerv1.Finding {
	out := make([]*workerv1.Finding, n)
	for i := range out {
		out[i] = finding("POD-001", "shop", fmt.Sprintf("%s-%04d", prefix, i), sev)
	}
	return out
}

var largeFindingCases = []contractCase{
	// Large enough that the PostgreSQL store writes the lifecycles by COPY
	// rather than by statements (pgstore's copyThreshold).
	{"findings/a large job opens, rewrites and resolves as a small one", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "c1")
		kept, changed, gone := manyFindings("kept", 400, high), manyFindings("changed", 300, high), manyFindings("gone", 300, high)
		first := slices.Concat(kept, changed, gone)
		runJob(t, ctx, db, "c1", nil, first...)
		if got := len(listViews(t, ctx, db, store.FindingFilter{}, 1000)); got != 1000 {
			t.Fatalf("open after the first job: %d, want 1000", got)
		}
		var second []*workerv1.Finding
		second = append(second, kept...)
		for _, f := range changed {
			c := clone(f)
			c.Severity, c.Message = low, "less"
			second = append(second, c)
		}
		second = append(second, manyFindings("new", 500, medium)...)
		s := runJob(t, ctx, db, "c1", nil, second...)
		if got := counts(jobOf(t, ctx, db, s).Findings); got != "c0 h400 m500 l300 i0 s0" {
			t.Fatalf("second job's counts %s", got)
		}
		open := listViews(t, ctx, db, store.FindingFilter{}, 1000)
		resolved := listViews(t, ctx, db, store.FindingFilter{Status: fleetscanv1.FindingStatus_FINDING_STATUS_RESOLVED}, 1000)
		if len(open) != 1200 || len(resolved) != 300 {
			t.Fatalf("after the second job: %d open, %d resolved; want 1200, 300", len(open), len(resolved))
		}
		for _, v := range resolved {
			if v.Record.Resource.Name[:4] != "gone" {
				t.Fatalf("resolved %s", v.Record.Resource.Name)
			}
		}
		if v := viewNamed(t, open, "POD-001", "changed-0042"); v.Record.Severity != low || v.Record.Message != "less" {
			t.Fatalf("changed-0042: %v", v.Record)
		}
		// Compared to the first: 500 new, 300 resolved, the rest unchanged
		// (a change of details keeps the lifecycle).
		d, err := db.DiffScans(ctx, s.ID, s.ID, "c1", nil)
		must(t, "DiffScans", err)
		if d.UnchangedCount != 1200 {
			t.Fatalf("a scan against itself: %d unchanged, want 1200", d.UnchangedCount)
		}
	}},
}

var findingEnvCases = []envCase{
	{"outbox/added deliveries wake the dispatcher, once per commit that wrote some", func(t *testing.T, ctx context.Context, db Backend, e *env) {
		ops, _ := twoNotifiers(t, ctx, db)
		wakes := func() int {
			_, n := e.outbox.seen()
			return n
		}
		_, err := db.AddDeliveries(ctx, "", clonedOutgoing([]store.Outgoing{delivery(ops, t0, pendingState, t0), delivery(ops, t0+1, pendingState, t0+1)}))
		must(t, "AddDeliveries", err)
		if n := wakes(); n != 1 {
			t.Fatalf("OnOutbox heard %d wake-ups after a commit of two deliveries, want 1", n)
		}
		_, err = db.AddDeliveries(ctx, "expiry/x/ops", nil)
		must(t, "AddDeliveries of a once key alone", err)
		_, err = db.AddDeliveries(ctx, "expiry/x/ops", clonedOutgoing([]store.Outgoing{delivery(ops, t0+2, pendingState, t0+2)}))
		must(t, "AddDeliveries under a once key written before", err)
		if n := wakes(); n != 1 {
			t.Fatalf("OnOutbox heard %d wake-ups, want still 1: nothing was added since", n)
		}
	}},
	{"findings/CompleteJob tells the outbox the previous job and the findings it opened", func(t *testing.T, ctx context.Context, db Backend, e *env) {
		createClusters(t, ctx, db, "acme", "c1")
		web, api := finding("POD-001", "shop", "web", high), finding("POD-001", "shop", "api", high)
		annotated := finding("POD-002", "shop", "web", high)
		annotated.SuppressionReason = "accepted"
		excepted := finding("POD-003", "shop", "web", high)
		_, err := db.CreateException(ctx, &fleetscanv1.Exception{CheckId: "POD-003", Reason: "r", Author: "op",
			CreateTime: ts(e.clock.Now()), ExpireTime: ts(e.clock.Now().Add(24 * time.Hour))})
		must(t, "CreateException", err)
		// No notifier: the hook is not asked.
		s0 := runJob(t, ctx, db, "c1", nil, web)
		_, err = db.CreateNotifier(ctx, &storagev1.NotifierRecord{Name: "ops", Kind: fleetscanv1.NotifierKind_NOTIFIER_KIND_WEBHOOK, Url: "https://ops.example/hook"})
		must(t, "CreateNotifier", err)
		e.clock.Advance(time.Minute)
		s1 := runJob(t, ctx, db, "c1", nil, api, annotated, excepted) // web resolved
		e.clock.Advance(time.Minute)
		s2 := runJob(t, ctx, db, "c1", nil, web, api, annotated, excepted) // web reopened
		e.clock.Advance(time.Minute)
		runJob(t, ctx, db, "c1", nil, web, api, annotated, excepted) // nothing new

		events, woke := e.outbox.seen()
		if len(events) != 3 || woke != 3 {
			t.Fatalf("outbox: %d events, %d wake-ups; want 3 and 3", len(events), woke)
		}
		newNames := func(ev store.JobEnded) []string {
			var out []string
			for _, f := range ev.New {
				out = append(out, f.CheckId+" "+f.Resource.Name)
			}
			return out
		}
		for i, want := range []struct {
			job, previous ulid.ULID
			new           []string
		}{
			{s1.Jobs[0].ID, s0.Jobs[0].ID, []string{"POD-001 api"}},
			{s2.Jobs[0].ID, s1.Jobs[0].ID, []string{"POD-001 web"}},
			{ulid.ULID{}, s2.Jobs[0].ID, nil},
		} {
			ev := events[i]
			if ev.Job.State != fleetscanv1.JobState_JOB_STATE_SUCCEEDED || ev.Cluster.Id != "c1" || ev.Job.FinishMs != e.clock.Now().UnixMilli()-int64(2-i)*60_000 {
				t.Fatalf("event %d: job %v of %q", i, ev.Job, ev.Cluster.Id)
			}
			if want.job != (ulid.ULID{}) && ev.JobID != want.job {
				t.Fatalf("event %d of job %s, want %s", i, ev.JobID, want.job)
			}
			// The event's cluster is as the job left it: its latest.
			if ulid.ULID(ev.Cluster.LastJobId) != ev.JobID {
				t.Fatalf("event %d: cluster's latest job %x, want %s", i, ev.Cluster.LastJobId, ev.JobID)
			}
			prev := jobOf(t, ctx, db, &store.Scan{Jobs: []store.Job{{ID: want.previous}}})
			if ev.Previous == nil {
				t.Fatalf("event %d without its previous job", i)
			}
			wantProto(t, fmt.Sprintf("event %d's previous job", i), ev.Previous, prev)
			wantList(t, fmt.Sprintf("event %d's new findings", i), newNames(ev), want.new...)
		}
	}},
}
