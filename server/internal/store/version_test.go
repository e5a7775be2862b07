package store

import (
	"context"
	"errors"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
)

// TestClustersVersion: the writes that change what LatestJobs returns
// advance ClustersVersion once each; reads and a job's progress do not.
// The metrics' posture cache relies on it.
func TestClustersVersion(t *testing.T) {
	db, _, _ := openTest(t)
	ctx := context.Background()
	all := func(*storagev1.ClusterRecord) bool { return true }
	var scan *Scan
	steps := []struct {
		name    string
		changes bool
		do      func() error
	}{
		{"register a cluster", true, func() error {
			return db.CreateCluster(ctx, &storagev1.ClusterRecord{Id: "c1", Tenant: "acme"}, nil, nil)
		}},
		{"read the latest jobs", false, func() error { _, err := db.LatestJobs(ctx, all); return err }},
		{"start a scan", false, func() error {
			var err error
			scan, err = db.CreateScan(ctx, &fleetscanv1.ScanTarget{ClusterIds: []string{"c1"}}, nil, []string{"c1"})
			return err
		}},
		{"dispatch its job", false, func() error { _, err := db.DispatchPending(ctx, "c1", 0); return err }},
		{"stage a batch", false, func() error {
			return db.StageBatch(ctx, scan.Jobs[0].ID, &workerv1.FindingBatch{Seq: 1, Findings: []*workerv1.Finding{finding("POD-001", "shop", "web", fleetscanv1.Severity_SEVERITY_HIGH)}})
		}},
		{"complete the job", true, func() error {
			return db.CompleteJob(ctx, scan.Jobs[0].ID, Completion{Batches: 1, Findings: 1, ObjectsScanned: 3})
		}},
		{"record a worker", true, func() error { return db.RecordWorker(ctx, "c1", "v1", "v1.31", time.Now()) }},
		{"change a cluster's tenant", true, func() error {
			_, err := db.UpdateCluster(ctx, "c1", func(c *storagev1.ClusterRecord) error { c.Tenant = "globex"; return nil })
			return err
		}},
		{"a change that fails", false, func() error {
			_, err := db.UpdateCluster(ctx, "c1", func(c *storagev1.ClusterRecord) error { return ErrConflict })
			if !errors.Is(err, ErrConflict) {
				return err
			}
			return nil
		}},
	}
	for _, s := range steps {
		before := db.ClustersVersion()
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := db.ClustersVersion() - before; got != map[bool]uint64{false: 0, true: 1}[s.changes] {
			t.Errorf("%s: ClustersVersion advanced by %d, want %v", s.name, got, s.changes)
		}
	}
	latest, err := db.LatestJobs(ctx, all)
	if err != nil || len(latest) != 1 || latest[0].Job.GetFindings().GetHigh() != 1 || latest[0].Cluster.Tenant != "globex" {
		t.Fatalf("latest jobs after the steps: %v, %v", latest, err)
	}
}

// TestUnversionedWriteRefused: a write to the clusters bucket in a
// transaction that ClustersVersion does not follow fails instead of going
// unseen.
func TestUnversionedWriteRefused(t *testing.T) {
	db, _, _ := openTest(t)
	err := db.db.Update(func(tx *bolt.Tx) error {
		return (&txn{tx: tx}).bucket(bucketClusters).Put([]byte("c1"), []byte{})
	})
	if !errors.Is(err, errUnversioned) {
		t.Errorf("write outside writeTxn: %v, want errUnversioned", err)
	}
}
