package pgstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// stagedJob creates a scan of c1 with spec, dispatches its job and stages
// n findings in one batch.
func stagedJob(t *testing.T, ctx context.Context, db *DB, spec *fleetscanv1.ScanSpec, n int) (ulid.ULID, store.Completion) {
	t.Helper()
	scan, err := db.CreateScan(ctx, &fleetscanv1.ScanTarget{ClusterIds: []string{"c1"}}, spec, []string{"c1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.DispatchPending(ctx, "c1", 0); err != nil {
		t.Fatal(err)
	}
	id := scan.Jobs[len(scan.Jobs)-1].ID
	batch := &workerv1.FindingBatch{Seq: 1}
	for i := range n {
		batch.Findings = append(batch.Findings, &workerv1.Finding{CheckId: "POD-001", Severity: fleetscanv1.Severity_SEVERITY_HIGH,
			Resource: &fleetscanv1.ResourceRef{Kind: "Deployment", Namespace: "shop", Name: fmt.Sprint("d", i)}})
	}
	if err := db.StageBatch(ctx, id, batch); err != nil {
		t.Fatal(err)
	}
	return id, store.Completion{Batches: 1, Findings: int64(n)}
}

// TestCompactDuringCompletion: Compact dropping the set that a job
// completing at that moment takes as its delta's base neither fails nor
// leaves the delta without its base. CompleteJob reads the base FOR KEY
// SHARE and Compact locks job_fingerprints before it reads what to drop,
// so Compact waits for the completion and then rewrites the new delta in
// full: without the table lock, Compact's delete waits for the row lock
// and then fails the delta's foreign key.
func TestCompactDuringCompletion(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	db, err := Open(ctx, newDatabase(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CreateCluster(ctx, &storagev1.ClusterRecord{Id: "c1", Tenant: "acme"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	first, done := stagedJob(t, ctx, db, nil, 50)
	if err := db.CompleteJob(ctx, first, done); err != nil {
		t.Fatal(err)
	}
	j, err := db.GetJob(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	cutoff := j.Record.FinishMs + 1
	time.Sleep(5 * time.Millisecond) // the second ends after the cutoff
	second, done := stagedJob(t, ctx, db, nil, 51)
	var compactErr error
	var dropped int
	compacted := make(chan struct{})
	db.afterBaseRead = func() {
		go func() {
			defer close(compacted)
			// The first set, the base being written from; the second
			// is kept, and must then be rewritten in full.
			dropped, compactErr = db.Compact(ctx, cutoff)
		}()
		// Long enough for Compact to reach its lock (or, without it, its
		// delete of the base).
		time.Sleep(200 * time.Millisecond)
	}
	if err := db.CompleteJob(ctx, second, done); err != nil {
		t.Fatalf("CompleteJob with Compact at work: %v", err)
	}
	<-compacted
	if compactErr != nil {
		t.Fatalf("Compact during a completion: %v", compactErr)
	}
	if dropped != 1 {
		t.Fatalf("Compact dropped %d, want the first set", dropped)
	}
	set, _, err := getSetTx(ctx, db.pool, second, false)
	if err != nil || len(set) != 51 {
		t.Fatalf("the second job's set after Compact: %d fingerprints, %v; want 51", len(set), err)
	}
}

// TestCompletionsOfOneClusterTakeTurns: two jobs of one cluster (scans
// with different specs do not share a job) completed at once both
// succeed, one after the other: the second resolves what the first
// opened and it did not see, and its set is a delta from the first's.
func TestCompletionsOfOneClusterTakeTurns(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	db, err := Open(ctx, newDatabase(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CreateCluster(ctx, &storagev1.ClusterRecord{Id: "c1", Tenant: "acme"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	for round := range 10 {
		a, doneA := stagedJob(t, ctx, db, nil, 300)
		b, doneB := stagedJob(t, ctx, db, &fleetscanv1.ScanSpec{Namespaces: []string{"shop"}}, 200)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, job := range []struct {
			id   ulid.ULID
			done store.Completion
		}{{a, doneA}, {b, doneB}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = db.CompleteJob(ctx, job.id, job.done)
			}()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: %v, %v", round, errs[0], errs[1])
		}
		c, err := db.GetCluster(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		// Whichever committed last is the cluster's latest, and the
		// cluster's open findings are what it saw.
		want := 300
		if ulid.ULID(c.LastJobId) == b {
			want = 200
		}
		open, _, err := db.ListFindings(ctx, store.FindingFilter{}, nil, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(open) != want {
			t.Fatalf("round %d: %d open after the latest job %x, want %d", round, len(open), c.LastJobId, want)
		}
		set, _, err := getSetTx(ctx, db.pool, ulid.ULID(c.LastJobId), false)
		if err != nil || len(set) != want {
			t.Fatalf("round %d: latest set of %d (%v), want %d", round, len(set), err, want)
		}
	}
}
