package pgstore

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/oklog/ulid/v2"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// openReplicas opens n stores on one database, as n server replicas would.
func openReplicas(t *testing.T, n int) []*DB {
	t.Helper()
	ctx := testContext(t)
	dsn := newDatabase(t)
	var dbs []*DB
	for range n {
		db, err := Open(ctx, dsn, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs = append(dbs, db)
	}
	return dbs
}

// TestDispatchClaimsEachJobOnce: replicas dispatching one cluster's queue
// at once never hand the same job to two callers, and together hand out
// every job. (Without the claim's row locks, two transactions that read
// the same pending jobs both dispatch them.)
func TestDispatchClaimsEachJobOnce(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dbs := openReplicas(t, 2)
	if err := dbs[0].CreateCluster(ctx, &storagev1.ClusterRecord{Id: "c1", Tenant: "acme"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	const jobs = 120
	for i := range jobs {
		// Specs differ, so each scan queues a job of its own.
		spec := &fleetscanv1.ScanSpec{Namespaces: []string{fmt.Sprint("ns", i)}}
		if _, err := dbs[i%2].CreateScan(ctx, nil, spec, []string{"c1"}); err != nil {
			t.Fatal(err)
		}
	}

	var (
		mu  sync.Mutex
		got = map[ulid.ULID]int{}
		wg  sync.WaitGroup
	)
	const callers = 3 // per replica
	start := make(chan struct{})
	for _, db := range dbs {
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for {
					as, err := db.DispatchPending(ctx, "c1", 4)
					if err != nil {
						t.Error(err)
						return
					}
					if len(as) == 0 {
						return
					}
					mu.Lock()
					for _, a := range as {
						got[a.JobID]++
					}
					mu.Unlock()
				}
			}()
		}
	}
	close(start)
	wg.Wait()

	for id, n := range got {
		if n != 1 {
			t.Errorf("job %s dispatched %d times", id, n)
		}
		j, err := dbs[0].GetJob(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Record.Attempts != 1 || j.Record.State != fleetscanv1.JobState_JOB_STATE_DISPATCHED {
			t.Errorf("job %s: attempts %d, %v", id, j.Record.Attempts, j.Record.State)
		}
	}
	if len(got) != jobs {
		t.Errorf("dispatched %d jobs, want %d", len(got), jobs)
	}
	var left int
	if err := dbs[0].pool.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE state = $1`, jobPending).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d jobs still pending after every caller saw an empty queue", left)
	}
}

// TestConcurrentScansShareOneJob: scans of one cluster with one spec,
// created at once on several replicas, share one job, as they would one
// after the other. (Without CreateScan's lock per cluster, each sees no
// job to join and queues its own.)
func TestConcurrentScansShareOneJob(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dbs := openReplicas(t, 2)
	for _, id := range []string{"c1", "c2"} {
		if err := dbs[0].CreateCluster(ctx, &storagev1.ClusterRecord{Id: id, Tenant: "acme"}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	spec := &fleetscanv1.ScanSpec{IncludeChecks: []string{"POD-001"}}
	const scans = 8
	var (
		mu   sync.Mutex
		jobs = map[string]map[ulid.ULID]bool{"c1": {}, "c2": {}}
		wg   sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range scans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// Cluster lists in either order: the locks are taken sorted.
			clusters := []string{"c1", "c2"}
			if i%2 == 1 {
				clusters = []string{"c2", "c1"}
			}
			s, err := dbs[i%2].CreateScan(ctx, nil, spec, clusters)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, j := range s.Jobs {
				jobs[j.Record.ClusterId][j.ID] = true
			}
		}()
	}
	close(start)
	wg.Wait()
	for cluster, ids := range jobs {
		if len(ids) != 1 {
			t.Errorf("cluster %s: %d jobs for %d scans of one spec, want 1", cluster, len(ids), scans)
		}
		for id := range ids {
			j, err := dbs[0].GetJob(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if len(j.Record.JoinedScanIds) != scans-1 {
				t.Errorf("cluster %s: job joined by %d scans, want %d", cluster, len(j.Record.JoinedScanIds), scans-1)
			}
		}
	}
}

// TestOutboxFailureKeepsTheJob: the deliveries of a job's end are written
// in the transaction that ends it, so a delivery that cannot be written
// leaves the job as it was, and nothing wakes the dispatcher.
func TestOutboxFailureKeepsTheJob(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	woke := 0
	db, err := Open(ctx, newDatabase(t), Options{
		Outbox: func(e store.JobEnded, ns []*storagev1.NotifierRecord) []store.Outgoing {
			// A notifier id that is not a ULID: the row cannot be made.
			return []store.Outgoing{{ID: ulid.Make(), Record: &storagev1.DeliveryRecord{NotifierId: "not an id", ClusterId: e.Cluster.Id}}}
		},
		OnOutbox: func() { woke++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CreateCluster(ctx, &storagev1.ClusterRecord{Id: "c1", Tenant: "acme"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateNotifier(ctx, &storagev1.NotifierRecord{Name: "ops", Url: "https://ops.example"}); err != nil {
		t.Fatal(err)
	}
	s, err := db.CreateScan(ctx, nil, nil, []string{"c1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.FailJob(ctx, s.Jobs[0].ID, "broken"); err == nil {
		t.Fatal("FailJob succeeded with a delivery that cannot be written")
	}
	j, err := db.GetJob(ctx, s.Jobs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.Record.State != fleetscanv1.JobState_JOB_STATE_PENDING || woke != 0 {
		t.Fatalf("after a failed outbox write: job %v, %d wake-ups", j.Record.State, woke)
	}
}

// TestRetryTx: a transaction PostgreSQL aborts to break a deadlock or a
// serialization conflict runs again, a few times; other errors return at
// once.
func TestRetryTx(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	db, err := Open(ctx, newDatabase(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []struct {
		name      string
		failures  int
		code      string
		wantCalls int
		wantErr   bool
	}{
		{"deadlock, then success", 2, deadlockDetected, 3, false},
		{"serialization failure, then success", 1, serializationFailure, 2, false},
		{"deadlocks every time", 100, deadlockDetected, 5, true},
		{"another error", 100, "23505", 1, true},
	} {
		calls := 0
		err := db.retryTx(ctx, func(tx pgx.Tx) error {
			calls++
			if calls <= c.failures {
				return fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: c.code})
			}
			return nil
		})
		if calls != c.wantCalls || (err != nil) != c.wantErr {
			t.Errorf("%s: %d calls, error %v; want %d calls, error %v", c.name, calls, err, c.wantCalls, c.wantErr)
		}
	}
}

// TestConcurrentCancelsEndSharedJobs: two scans that share every job,
// cancelled at once on two replicas, end every job once between them:
// whichever cancels second sees that the first let go (it reads who holds
// a job under the job's lock), and neither leaves a job running for a
// scan that no longer wants it.
func TestConcurrentCancelsEndSharedJobs(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dbs := openReplicas(t, 2)
	clusters := []string{"c1", "c2", "c3", "c4", "c5"}
	for _, id := range clusters {
		if err := dbs[0].CreateCluster(ctx, &storagev1.ClusterRecord{Id: id, Tenant: "acme"}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 5 {
		spec := &fleetscanv1.ScanSpec{Namespaces: []string{fmt.Sprint("round", round)}}
		a, err := dbs[0].CreateScan(ctx, nil, spec, clusters)
		if err != nil {
			t.Fatal(err)
		}
		b, err := dbs[1].CreateScan(ctx, nil, spec, clusters)
		if err != nil {
			t.Fatal(err)
		}
		var (
			wg    sync.WaitGroup
			ended [2][]string
		)
		for i, s := range []ulid.ULID{a.ID, b.ID} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, cs, err := dbs[i].CancelScan(ctx, s)
				if err != nil {
					t.Error(err)
				}
				ended[i] = cs
			}()
		}
		wg.Wait()
		if n := len(ended[0]) + len(ended[1]); n != len(clusters) {
			t.Errorf("round %d: the cancels ended %q and %q, want each of %d jobs once", round, ended[0], ended[1], len(clusters))
		}
		for _, j := range a.Jobs {
			got, err := dbs[0].GetJob(ctx, j.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Record.State != fleetscanv1.JobState_JOB_STATE_CANCELLED {
				t.Errorf("round %d: job of %s is %v after both its scans let go", round, got.Record.ClusterId, got.Record.State)
			}
		}
	}
}

// TestCancelScanLetsAJobNameItsScan: while CancelScan holds a scan's row
// and waits for one of its jobs, the transaction holding that job (as
// CompleteJob will: the job locked, then the cluster's last job and scan
// set) can still check the foreign key to the scan. Were the scan's row
// locked FOR UPDATE, the key check would wait for CancelScan, which waits
// for it: a deadlock.
func TestCancelScanLetsAJobNameItsScan(t *testing.T) {
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
	s, err := db.CreateScan(ctx, nil, nil, []string{"c1"})
	if err != nil {
		t.Fatal(err)
	}
	job := s.Jobs[0].ID

	tx, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	// Shorter than deadlock_timeout (1 s): the wait fails here, rather
	// than PostgreSQL breaking the deadlock by aborting CancelScan, which
	// would then run again and hide it.
	if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '200ms'`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE`, idUUID(job)); err != nil {
		t.Fatal(err)
	}
	cancelled := make(chan error, 1)
	go func() {
		_, _, err := db.CancelScan(ctx, s.ID)
		cancelled <- err
	}()
	// Until CancelScan waits for the job's lock, holding the scan's row.
	for {
		var waiting bool
		err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FROM jobs j%')`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		select {
		case err := <-cancelled:
			t.Fatalf("CancelScan did not wait for the job's lock: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	_, err = tx.Exec(ctx, `UPDATE clusters SET last_job_id = $1, last_job_at = now(), last_scan_id = $2 WHERE id = 'c1'`,
		idUUID(job), idUUID(s.ID))
	if err != nil {
		t.Fatalf("naming the scan while CancelScan holds it: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-cancelled; err != nil {
		t.Fatal(err)
	}
}
