package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// Scan is a scan with its jobs.
type Scan struct {
	ID     ulid.ULID
	Record *storagev1.ScanRecord
	Jobs   []Job
}

// Job is one cluster's part of a scan.
type Job struct {
	ID     ulid.ULID
	Record *storagev1.JobRecord
}

// Assignment is a job ready to be sent to its worker.
type Assignment struct {
	JobID ulid.ULID
	Spec  *fleetscanv1.ScanSpec
}

// CreateScan stores a scan with one PENDING job per cluster, in cluster id
// order. Every cluster must exist.
func (s *DB) CreateScan(_ context.Context, target *fleetscanv1.ScanTarget, spec *fleetscanv1.ScanSpec, clusterIDs []string) (*Scan, error) {
	clusterIDs = slices.Clone(clusterIDs)
	slices.Sort(clusterIDs)
	clusterIDs = slices.Compact(clusterIDs)
	scan := &Scan{ID: s.NewID(), Record: &storagev1.ScanRecord{Target: target, Spec: spec, CreateMs: s.nowMs()}}
	for _, cid := range clusterIDs {
		scan.Jobs = append(scan.Jobs, Job{ID: s.NewID(), Record: &storagev1.JobRecord{
			ScanId: scan.ID[:], ClusterId: cid, State: fleetscanv1.JobState_JOB_STATE_PENDING, CreateMs: scan.Record.CreateMs,
		}})
		scan.Record.JobIds = append(scan.Record.JobIds, scan.Jobs[len(scan.Jobs)-1].ID[:])
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		clusters, jobs, pending := tx.Bucket(bucketClusters), tx.Bucket(bucketJobs), tx.Bucket(bucketPending)
		for _, j := range scan.Jobs {
			if clusters.Get([]byte(j.Record.ClusterId)) == nil {
				return fmt.Errorf("cluster %q: %w", j.Record.ClusterId, ErrNotFound)
			}
			if err := putProto(jobs, j.ID[:], j.Record); err != nil {
				return err
			}
			if err := pending.Put(pendingKey(j.Record.ClusterId, j.ID), nil); err != nil {
				return err
			}
		}
		return putProto(tx.Bucket(bucketScans), scan.ID[:], scan.Record)
	})
	if err != nil {
		return nil, err
	}
	return scan, nil
}

func pendingKey(clusterID string, jobID ulid.ULID) []byte {
	k := make([]byte, 0, len(clusterID)+1+len(jobID))
	k = append(k, clusterID...)
	k = append(k, 0)
	return append(k, jobID[:]...)
}

// GetScan returns a scan and its jobs.
func (s *DB) GetScan(_ context.Context, id ulid.ULID) (*Scan, error) {
	var scan *Scan
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		scan, err = getScanTx(tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", id, err)
	}
	return scan, nil
}

func getScanTx(tx *bolt.Tx, id ulid.ULID) (*Scan, error) {
	rec := &storagev1.ScanRecord{}
	if err := getProto(tx.Bucket(bucketScans), id[:], rec); err != nil {
		return nil, err
	}
	scan := &Scan{ID: id, Record: rec}
	jobs := tx.Bucket(bucketJobs)
	for _, jid := range rec.JobIds {
		j := Job{Record: &storagev1.JobRecord{}}
		copy(j.ID[:], jid)
		if err := getProto(jobs, jid, j.Record); err != nil {
			return nil, fmt.Errorf("job %s: %w", j.ID, err)
		}
		scan.Jobs = append(scan.Jobs, j)
	}
	return scan, nil
}

// ListScans returns up to limit scans older than `before` (all when zero),
// newest first, and whether more follow.
func (s *DB) ListScans(_ context.Context, before ulid.ULID, limit int) ([]*Scan, bool, error) {
	var out []*Scan
	more := false
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketScans).Cursor()
		var k []byte
		if before == (ulid.ULID{}) {
			k, _ = c.Last()
		} else {
			k, _ = c.Seek(before[:])
			if k == nil {
				k, _ = c.Last()
			}
			for k != nil && bytes.Compare(k, before[:]) >= 0 {
				k, _ = c.Prev()
			}
		}
		for ; k != nil; k, _ = c.Prev() {
			if len(out) == limit {
				more = true
				return nil
			}
			var id ulid.ULID
			copy(id[:], k)
			scan, err := getScanTx(tx, id)
			if err != nil {
				return err
			}
			out = append(out, scan)
		}
		return nil
	})
	return out, more, err
}

// GetJob returns a job.
func (s *DB) GetJob(_ context.Context, id ulid.ULID) (*Job, error) {
	j := &Job{ID: id, Record: &storagev1.JobRecord{}}
	err := s.db.View(func(tx *bolt.Tx) error { return getProto(tx.Bucket(bucketJobs), id[:], j.Record) })
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", id, err)
	}
	return j, nil
}

// DispatchPending moves up to limit (all when limit ≤ 0) of the cluster's
// pending jobs, oldest first, to DISPATCHED and returns them for sending.
func (s *DB) DispatchPending(_ context.Context, clusterID string, limit int) ([]Assignment, error) {
	var out []Assignment
	err := s.db.Update(func(tx *bolt.Tx) error {
		out = out[:0]
		pending, jobs, scans := tx.Bucket(bucketPending), tx.Bucket(bucketJobs), tx.Bucket(bucketScans)
		prefix := append([]byte(clusterID), 0)
		var keys [][]byte
		c := pending.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && (limit <= 0 || len(keys) < limit); k, _ = c.Next() {
			keys = append(keys, slices.Clone(k))
		}
		for _, k := range keys {
			var jobID ulid.ULID
			copy(jobID[:], k[len(prefix):])
			job := &storagev1.JobRecord{}
			if err := getProto(jobs, jobID[:], job); err != nil {
				return fmt.Errorf("job %s: %w", jobID, err)
			}
			scan := &storagev1.ScanRecord{}
			if err := getProto(scans, job.ScanId, scan); err != nil {
				return fmt.Errorf("scan of job %s: %w", jobID, err)
			}
			job.State = fleetscanv1.JobState_JOB_STATE_DISPATCHED
			job.StartMs = s.nowMs()
			if err := putProto(jobs, jobID[:], job); err != nil {
				return err
			}
			if err := pending.Delete(k); err != nil {
				return err
			}
			out = append(out, Assignment{JobID: jobID, Spec: scan.Spec})
		}
		return nil
	})
	return out, err
}

// RequeueJobs puts jobs that were dispatched to a worker that went away
// back in the queue, dropping what they had staged: the worker runs them
// again from the start when it reconnects. Jobs that already ended are left
// alone.
func (s *DB) RequeueJobs(_ context.Context, ids ...ulid.ULID) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, id := range ids {
			if err := requeueJobTx(tx, id); err != nil {
				return err
			}
		}
		return nil
	})
}

func requeueJobTx(tx *bolt.Tx, id ulid.ULID) error {
	jobs := tx.Bucket(bucketJobs)
	job := &storagev1.JobRecord{}
	if err := getProto(jobs, id[:], job); err != nil {
		return fmt.Errorf("job %s: %w", id, err)
	}
	switch job.State {
	case fleetscanv1.JobState_JOB_STATE_DISPATCHED, fleetscanv1.JobState_JOB_STATE_RUNNING:
	default:
		return nil
	}
	if err := dropStagingTx(tx, id); err != nil {
		return err
	}
	job.State = fleetscanv1.JobState_JOB_STATE_PENDING
	job.StartMs, job.StagedBatches = 0, 0
	if err := putProto(jobs, id[:], job); err != nil {
		return err
	}
	return tx.Bucket(bucketPending).Put(pendingKey(job.ClusterId, id), nil)
}

// RecoverJobs requeues every job left DISPATCHED or RUNNING, as after a
// crash or restart of the server, and returns how many it requeued.
func (s *DB) RecoverJobs(_ context.Context) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		var ids []ulid.ULID
		err := tx.Bucket(bucketJobs).ForEach(func(k, v []byte) error {
			job := &storagev1.JobRecord{}
			if err := protoUnmarshal(v, job); err != nil {
				return err
			}
			if job.State == fleetscanv1.JobState_JOB_STATE_DISPATCHED || job.State == fleetscanv1.JobState_JOB_STATE_RUNNING {
				var id ulid.ULID
				copy(id[:], k)
				ids = append(ids, id)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := requeueJobTx(tx, id); err != nil {
				return err
			}
		}
		n = len(ids)
		return nil
	})
	return n, err
}

// FailJob ends a job as FAILED with a reason and drops its staged batches.
func (s *DB) FailJob(_ context.Context, id ulid.ULID, reason string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		jobs := tx.Bucket(bucketJobs)
		job := &storagev1.JobRecord{}
		if err := getProto(jobs, id[:], job); err != nil {
			return fmt.Errorf("job %s: %w", id, err)
		}
		if isFinal(job.State) {
			return nil
		}
		if err := dropStagingTx(tx, id); err != nil {
			return err
		}
		if err := tx.Bucket(bucketPending).Delete(pendingKey(job.ClusterId, id)); err != nil {
			return err
		}
		job.State = fleetscanv1.JobState_JOB_STATE_FAILED
		job.Error = reason
		job.FinishMs = s.nowMs()
		job.StagedBatches = 0
		return putProto(jobs, id[:], job)
	})
}

func isFinal(st fleetscanv1.JobState) bool {
	return st == fleetscanv1.JobState_JOB_STATE_SUCCEEDED || st == fleetscanv1.JobState_JOB_STATE_FAILED
}
