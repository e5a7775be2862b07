package store

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/worker/catalog"
)

// planJob is one job of a scenario of TestPlannedAheadSameAsAtJobDone.
type planJob struct {
	findings []*workerv1.Finding
	// planned are the seqs of the staged batches (of two findings each)
	// given to PlanBatch, in order; nil is all of them.
	planned []int64
	// between runs after the batches are staged and planned, before the
	// JobDone.
	between func(t *testing.T, db *DB, clusterID string)
}

// TestPlannedAheadSameAsAtJobDone: a job completed with the plan made
// batch by batch as its batches were staged leaves the store exactly as
// one planned at its JobDone: the same records (first-seen times are the
// completion's), counts, fingerprint sets, whatever changed between the
// plan and the JobDone, and when the plan does not cover the batches.
func TestPlannedAheadSameAsAtJobDone(t *testing.T) {
	a := finding("POD-001", "prod", "api", fleetscanv1.Severity_SEVERITY_HIGH)
	b := finding("POD-002", "prod", "web", fleetscanv1.Severity_SEVERITY_MEDIUM)
	c := finding("POD-003", "dev", "db", fleetscanv1.Severity_SEVERITY_LOW)
	d := finding("POD-004", "dev", "cache", fleetscanv1.Severity_SEVERITY_CRITICAL)
	changed := func(f *workerv1.Finding) *workerv1.Finding {
		g := proto.Clone(f).(*workerv1.Finding)
		g.Message += " (changed)"
		return g
	}
	tests := []struct {
		name string
		jobs []planJob
	}{
		{"new findings, one listed twice across batches", []planJob{
			{findings: []*workerv1.Finding{a, b, changed(a), c, d}},
		}},
		{"rescans: unchanged, changed, resolved, reopened", []planJob{
			{findings: []*workerv1.Finding{a, b, c, d}},
			{findings: []*workerv1.Finding{a, changed(b), d}},
			{findings: []*workerv1.Finding{a, changed(b), c, d}},
		}},
		{"a record changed between the plan and the JobDone", []planJob{
			{findings: []*workerv1.Finding{a, b, c}},
			{findings: []*workerv1.Finding{a, b, c}, between: resolveFinding(a)},
		}},
		{"an exception created between the plan and the JobDone", []planJob{
			{findings: []*workerv1.Finding{a, b, c}},
			{findings: []*workerv1.Finding{a, b, c}, between: except("POD-002")},
		}},
		{"batches planned out of turn: set aside", []planJob{
			{findings: []*workerv1.Finding{a, b, c}},
			{findings: []*workerv1.Finding{a, c, d}, planned: []int64{2, 1}},
		}},
		{"a batch not planned: set aside", []planJob{
			{findings: []*workerv1.Finding{a, b, c, d}, planned: []int64{1}},
			{findings: []*workerv1.Finding{b, c, d}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ahead, _ := runPlanJobs(t, tt.jobs, true)
			atDone, _ := runPlanJobs(t, tt.jobs, false)
			if len(ahead) != len(atDone) {
				t.Fatalf("%d lines planned ahead, %d planned at JobDone", len(ahead), len(atDone))
			}
			for i := range ahead {
				if ahead[i] != atDone[i] {
					t.Errorf("planned ahead:\n  %s\nplanned at JobDone:\n  %s", ahead[i], atDone[i])
				}
			}
		})
	}
}

// runPlanJobs runs the jobs on a new store, one after the other on one
// cluster, with plans made ahead or not, and returns what they left.
func runPlanJobs(t *testing.T, jobs []planJob, ahead bool) ([]string, *DB) {
	t.Helper()
	ctx := context.Background()
	db, clk, _ := openTest(t)
	register(t, db, "c")
	var ids []ulid.ULID
	for _, j := range jobs {
		clk.t = clk.t.Add(time.Hour)
		scan, err := db.CreateScan(ctx, &fleetscanv1.ScanTarget{ClusterIds: []string{"c"}}, nil, []string{"c"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.DispatchPending(ctx, "c", 0); err != nil {
			t.Fatal(err)
		}
		jobID := scan.Jobs[0].ID
		ids = append(ids, jobID)
		var batches []*workerv1.FindingBatch
		for i := 0; i < len(j.findings); i += 2 {
			batch := &workerv1.FindingBatch{JobId: jobID.String(), Seq: int64(len(batches) + 1), Findings: j.findings[i:min(i+2, len(j.findings))]}
			if err := db.StageBatch(ctx, jobID, batch); err != nil {
				t.Fatal(err)
			}
			batches = append(batches, batch)
		}
		done := Completion{Batches: int64(len(batches)), Findings: int64(len(j.findings))}
		if ahead {
			done.Plan = &JobPlan{}
			planned := j.planned
			if planned == nil {
				for _, b := range batches {
					planned = append(planned, b.Seq)
				}
			}
			for _, seq := range planned {
				if err := db.PlanBatch(ctx, jobID, done.Plan, batches[seq-1]); err != nil {
					t.Fatal(err)
				}
			}
		}
		// The completion's time is not the plan's.
		clk.t = clk.t.Add(10 * time.Minute)
		if j.between != nil {
			j.between(t, db, "c")
		}
		if err := db.CompleteJob(ctx, jobID, done); err != nil {
			t.Fatal(err)
		}
	}
	return storeLines(t, db, "c", ids), db
}

// storeLines describes what the jobs left of cluster clusterID, without
// the ids that differ from one store to the next.
func storeLines(t *testing.T, db *DB, clusterID string, jobs []ulid.ULID) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	for _, st := range []fleetscanv1.FindingStatus{fleetscanv1.FindingStatus_FINDING_STATUS_OPEN, fleetscanv1.FindingStatus_FINDING_STATUS_RESOLVED, fleetscanv1.FindingStatus_FINDING_STATUS_SUPPRESSED} {
		views, _, err := db.ListFindings(ctx, FindingFilter{ClusterID: clusterID, Status: st}, nil, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range views {
			rec := proto.Clone(v.Record).(*storagev1.FindingRecord)
			rec.LastScanId = nil
			rec.SuppressionReason = strings.ReplaceAll(rec.SuppressionReason, v.ExceptionID, "(id)")
			out = append(out, fmt.Sprintf("%v %x last seen %d, excepted %t: %v", st, v.Fingerprint, v.LastSeenMs, v.ExceptionID != "", rec))
		}
	}
	for i, id := range jobs {
		j, err := db.GetJob(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var set []fp
		if err := db.view(func(tx *txn) error {
			var err error
			set, _, err = getSetTx(tx, id)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("job %d: %v finished %d, counts %v, by check %v, fingerprints %x", i, j.Record.State, j.Record.FinishMs, j.Record.Findings, j.Record.CheckCounts, set))
	}
	return out
}

// resolveFinding marks f's open record resolved, as a job of the cluster
// that did not see it would have.
func resolveFinding(f *workerv1.Finding) func(t *testing.T, db *DB, clusterID string) {
	return func(t *testing.T, db *DB, clusterID string) {
		t.Helper()
		now := db.nowMs()
		err := db.update(func(tx *txn) error {
			cluster := &storagev1.ClusterRecord{}
			if err := getProto(tx.bucket(bucketClusters), []byte(clusterID), cluster); err != nil {
				return err
			}
			fpr := catalog.Fingerprint(clusterID, f.CheckId, resourceOf(f.Resource))
			key := append(u64(cluster.Seq), fpr[:]...)
			rec := &storagev1.FindingRecord{}
			if err := db.codec.getFinding(tx.bucket(bucketFindings), key, rec); err != nil {
				return err
			}
			rec.ResolvedMs, rec.LastSeenMs = now, cluster.LastJobMs
			if err := db.codec.putFinding(tx.bucket(bucketFindings), key, rec); err != nil {
				return err
			}
			return tx.bucket(bucketResolved).Put(resolvedKey(now, key), nil)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// except creates an exception of check in the cluster.
func except(check string) func(t *testing.T, db *DB, clusterID string) {
	return func(t *testing.T, db *DB, clusterID string) {
		t.Helper()
		if _, err := db.CreateException(context.Background(), &fleetscanv1.Exception{ClusterId: clusterID, CheckId: check, Reason: "accepted", Tenant: "acme"}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCommitsBeforePlans: a commit waiting for a CPU slot gets it before
// the plans that waited longer, so that a JobDone does not queue behind
// the plans of every job that finished before it; a plan promoted while it
// waits (its job's JobDone came) queues with the commits; plans go by
// job, the oldest job's first.
func TestCommitsBeforePlans(t *testing.T) {
	slots := newCPUSlots(1)
	ctx := context.Background()
	if err := slots.acquire(ctx, prioPlan, 0, nil); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	promote := make(chan struct{})
	older := slots.ticket() // of a job that began streaming before the others
	for i, w := range []struct {
		name    string
		prio    int
		ticket  uint64
		promote chan struct{}
	}{
		{"plan 1", prioPlan, 0, nil}, {"plan 2", prioPlan, 0, promote}, {"commit 1", prioCommit, 0, nil},
		{"plan of an older job", prioPlan, older, nil}, {"commit 2", prioCommit, 0, nil},
	} {
		if w.name == "commit 2" {
			close(promote)
			for slots.queued(prioCommit) != 2 {
				runtime.Gosched()
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := slots.acquire(ctx, w.prio, w.ticket, w.promote); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, w.name)
			mu.Unlock()
			slots.release()
		}()
		// Queued one after the other: each waits before the next comes.
		for slots.queued(prioPlan)+slots.queued(prioCommit) != i+1 {
			runtime.Gosched()
		}
	}
	slots.release()
	wg.Wait()
	if want := []string{"commit 1", "plan 2", "commit 2", "plan of an older job", "plan 1"}; !slices.Equal(order, want) {
		t.Errorf("served %q, want %q", order, want)
	}
}
