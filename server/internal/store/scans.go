package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

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

// CreateScan stores a scan with one job per cluster, in cluster id order.
// Every cluster must exist. Where a cluster already has a job that has not
// ended and was asked for with the same spec, the scan joins it instead of
// queueing a second one: both scans show its result.
func (s *DB) CreateScan(_ context.Context, target *fleetscanv1.ScanTarget, spec *fleetscanv1.ScanSpec, clusterIDs []string) (*Scan, error) {
	clusterIDs = slices.Clone(clusterIDs)
	slices.Sort(clusterIDs)
	clusterIDs = slices.Compact(clusterIDs)
	var scan *Scan
	err := s.update(func(tx *txn) error {
		scan = &Scan{ID: s.NewID(), Record: &storagev1.ScanRecord{Target: target, Spec: spec, CreateMs: s.nowMs()}}
		clusters, jobs, pending, active := tx.bucket(bucketClusters), tx.bucket(bucketJobs), tx.bucket(bucketPending), tx.bucket(bucketActive)
		for _, cid := range clusterIDs {
			if clusters.Get([]byte(cid)) == nil {
				return fmt.Errorf("cluster %q: %w", cid, ErrNotFound)
			}
			j, err := joinableTx(tx, cid, spec)
			if err != nil {
				return err
			}
			if j != nil {
				j.Record.JoinedScanIds = append(j.Record.JoinedScanIds, scan.ID[:])
			} else {
				j = &Job{ID: s.NewID(), Record: &storagev1.JobRecord{
					ScanId: scan.ID[:], ClusterId: cid, State: fleetscanv1.JobState_JOB_STATE_PENDING, CreateMs: scan.Record.CreateMs,
				}}
				if err := pending.Put(pendingKey(cid, j.ID), nil); err != nil {
					return err
				}
				if err := active.Put(pendingKey(cid, j.ID), nil); err != nil {
					return err
				}
			}
			if err := putProto(jobs, j.ID[:], j.Record); err != nil {
				return err
			}
			scan.Jobs = append(scan.Jobs, *j)
			scan.Record.JobIds = append(scan.Record.JobIds, j.ID[:])
		}
		return putProto(tx.bucket(bucketScans), scan.ID[:], scan.Record)
	})
	if err != nil {
		return nil, err
	}
	return scan, nil
}

// joinableTx returns the cluster's job that has not ended and runs spec,
// if there is one.
func joinableTx(tx *txn, clusterID string, spec *fleetscanv1.ScanSpec) (*Job, error) {
	prefix := append([]byte(clusterID), 0)
	c := tx.bucket(bucketActive).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		j := &Job{Record: &storagev1.JobRecord{}}
		copy(j.ID[:], k[len(prefix):])
		if err := getRef(tx.bucket(bucketJobs), j.ID[:], j.Record, "the active index"); err != nil {
			return nil, fmt.Errorf("active job %s: %w", j.ID, err)
		}
		if IsFinal(j.Record.State) {
			continue
		}
		owner := &storagev1.ScanRecord{}
		if err := getRef(tx.bucket(bucketScans), j.Record.ScanId, owner, "a job"); err != nil {
			return nil, fmt.Errorf("scan of job %s: %w", j.ID, err)
		}
		if slices.Contains(bytesList(owner.CancelledJobIds), string(j.ID[:])) {
			continue // its scan let go of it: it ends with the scans that keep it
		}
		if proto.Equal(owner.Spec, spec) || (isEmptySpec(owner.Spec) && isEmptySpec(spec)) {
			return j, nil
		}
	}
	return nil, nil
}

func isEmptySpec(spec *fleetscanv1.ScanSpec) bool {
	return spec == nil || proto.Size(spec) == 0
}

func bytesList(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
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
	err := s.view(func(tx *txn) error {
		var err error
		scan, err = getScanTx(tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", id, err)
	}
	return scan, nil
}

func getScanTx(tx *txn, id ulid.ULID) (*Scan, error) {
	rec := &storagev1.ScanRecord{}
	if err := getProto(tx.bucket(bucketScans), id[:], rec); err != nil {
		return nil, err
	}
	scan := &Scan{ID: id, Record: rec}
	jobs := tx.bucket(bucketJobs)
	cancelled := bytesList(rec.CancelledJobIds)
	for _, jid := range rec.JobIds {
		j := Job{Record: &storagev1.JobRecord{}}
		copy(j.ID[:], jid)
		if err := getRef(jobs, jid, j.Record, "a scan"); err != nil {
			return nil, fmt.Errorf("job %s: %w", j.ID, err)
		}
		if slices.Contains(cancelled, string(jid)) && j.Record.State != fleetscanv1.JobState_JOB_STATE_CANCELLED {
			// Cancelled for this scan while another that shares it kept it.
			j.Record.State, j.Record.Error = fleetscanv1.JobState_JOB_STATE_CANCELLED, "cancelled; the job went on for another scan that shares it"
			j.Record.Findings, j.Record.FinishMs = nil, rec.CancelMs
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
	err := s.view(func(tx *txn) error {
		c := tx.bucket(bucketScans).Cursor()
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
	err := s.view(func(tx *txn) error { return getProto(tx.bucket(bucketJobs), id[:], j.Record) })
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", id, err)
	}
	return j, nil
}

// DispatchPending moves up to limit (all when limit ≤ 0) of the cluster's
// pending jobs, oldest first, to DISPATCHED and returns them for sending.
func (s *DB) DispatchPending(_ context.Context, clusterID string, limit int) ([]Assignment, error) {
	var out []Assignment
	err := s.update(func(tx *txn) error {
		out = out[:0]
		pending, jobs, scans := tx.bucket(bucketPending), tx.bucket(bucketJobs), tx.bucket(bucketScans)
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
			if err := getRef(jobs, jobID[:], job, "the pending index"); err != nil {
				return fmt.Errorf("job %s: %w", jobID, err)
			}
			scan := &storagev1.ScanRecord{}
			if err := getRef(scans, job.ScanId, scan, "a job"); err != nil {
				return fmt.Errorf("scan of job %s: %w", jobID, err)
			}
			// A fresh run: what an earlier attempt staged is not its.
			if err := dropStagingTx(tx, jobID); err != nil {
				return err
			}
			job.State = fleetscanv1.JobState_JOB_STATE_DISPATCHED
			job.StartMs = s.nowMs()
			job.StagedBatches, job.StagedFindings = 0, 0
			job.Attempts++
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
// back in the queue. What they staged is kept: a worker that still holds
// the job when it reconnects resumes it (ResumeJob); otherwise it is sent
// again and runs from the start. A job already sent maxAttempts times
// fails instead, so that a job that kills its stream is not retried
// forever. Jobs that already ended are left alone.
func (s *DB) RequeueJobs(_ context.Context, maxAttempts int, ids ...ulid.ULID) error {
	return s.update(func(tx *txn) error {
		for _, id := range ids {
			if err := s.requeueJobTx(tx, id, maxAttempts); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *DB) requeueJobTx(tx *txn, id ulid.ULID, maxAttempts int) error {
	jobs := tx.bucket(bucketJobs)
	job := &storagev1.JobRecord{}
	if err := getProto(jobs, id[:], job); err != nil {
		return fmt.Errorf("job %s: %w", id, err)
	}
	switch job.State {
	case fleetscanv1.JobState_JOB_STATE_DISPATCHED, fleetscanv1.JobState_JOB_STATE_RUNNING:
	default:
		return nil
	}
	if maxAttempts > 0 && int(job.Attempts) >= maxAttempts {
		return s.endJobTx(tx, id, job, fleetscanv1.JobState_JOB_STATE_FAILED, fmt.Sprintf("given up after %d attempts: the worker's connection ended each time", job.Attempts))
	}
	job.State = fleetscanv1.JobState_JOB_STATE_PENDING
	if err := putProto(jobs, id[:], job); err != nil {
		return err
	}
	return tx.bucket(bucketPending).Put(pendingKey(job.ClusterId, id), nil)
}

// ResumeJob takes back a job that the cluster's worker still holds after a
// reconnect, and returns the last batch of the unbroken run 1..n it has
// staged: the worker goes on from there. ok is false when the job is not
// the cluster's or has ended; the worker then drops it. A resumed job
// keeps its attempt count and its start time, so its timeout still holds.
func (s *DB) ResumeJob(_ context.Context, clusterID string, id ulid.ULID) (acked int64, ok bool, err error) {
	err = s.update(func(tx *txn) error {
		jobs := tx.bucket(bucketJobs)
		job := &storagev1.JobRecord{}
		if err := getProto(jobs, id[:], job); err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			return fmt.Errorf("job %s: %w", id, err)
		}
		if job.ClusterId != clusterID || IsFinal(job.State) {
			return nil
		}
		if job.State == fleetscanv1.JobState_JOB_STATE_PENDING {
			if job.StartMs == 0 {
				return nil // never dispatched: the worker cannot hold it
			}
			if err := tx.bucket(bucketPending).Delete(pendingKey(job.ClusterId, id)); err != nil {
				return err
			}
		}
		c := tx.bucket(bucketStaging).Cursor()
		for k, _ := c.Seek(id[:]); k != nil && bytes.HasPrefix(k, id[:]); k, _ = c.Next() {
			if binary.BigEndian.Uint64(k[len(id):]) != uint64(acked+1) {
				break
			}
			acked++
		}
		job.State = fleetscanv1.JobState_JOB_STATE_DISPATCHED
		if job.StagedBatches > 0 {
			job.State = fleetscanv1.JobState_JOB_STATE_RUNNING
		}
		ok = true
		return putProto(jobs, id[:], job)
	})
	return acked, ok, err
}

// RecoverJobs requeues every job left DISPATCHED or RUNNING, as after a
// crash or restart of the server (or fails it after maxAttempts), and
// returns how many it handled.
func (s *DB) RecoverJobs(_ context.Context, maxAttempts int) (int, error) {
	n := 0
	err := s.update(func(tx *txn) error {
		var ids []ulid.ULID
		err := tx.bucket(bucketJobs).ForEach(func(k, v []byte) error {
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
			if err := s.requeueJobTx(tx, id, maxAttempts); err != nil {
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
	return s.update(func(tx *txn) error {
		jobs := tx.bucket(bucketJobs)
		job := &storagev1.JobRecord{}
		if err := getProto(jobs, id[:], job); err != nil {
			return fmt.Errorf("job %s: %w", id, err)
		}
		if IsFinal(job.State) {
			return nil
		}
		return s.endJobTx(tx, id, job, fleetscanv1.JobState_JOB_STATE_FAILED, reason)
	})
}

// IsFinal reports whether a job in state st has ended.
func IsFinal(st fleetscanv1.JobState) bool {
	switch st {
	case fleetscanv1.JobState_JOB_STATE_SUCCEEDED, fleetscanv1.JobState_JOB_STATE_FAILED, fleetscanv1.JobState_JOB_STATE_CANCELLED,
		fleetscanv1.JobState_JOB_STATE_TIMED_OUT, fleetscanv1.JobState_JOB_STATE_EXPIRED:
		return true
	}
	return false
}

// endJobTx ends a job that has not ended in state with a reason, dropping
// its staged batches and its place in the queue.
func (s *DB) endJobTx(tx *txn, id ulid.ULID, job *storagev1.JobRecord, state fleetscanv1.JobState, reason string) error {
	if err := dropStagingTx(tx, id); err != nil {
		return err
	}
	if err := tx.bucket(bucketPending).Delete(pendingKey(job.ClusterId, id)); err != nil {
		return err
	}
	if err := tx.bucket(bucketActive).Delete(pendingKey(job.ClusterId, id)); err != nil {
		return err
	}
	job.State, job.Error, job.FinishMs, job.StagedBatches, job.StagedFindings = state, reason, s.nowMs(), 0, 0
	if err := putProto(tx.bucket(bucketJobs), id[:], job); err != nil {
		return err
	}
	notified, err := s.outboxJobTx(tx, func() (JobEnded, error) {
		cluster := &storagev1.ClusterRecord{}
		if err := getRef(tx.bucket(bucketClusters), []byte(job.ClusterId), cluster, "a job"); err != nil {
			return JobEnded{}, fmt.Errorf("cluster %q: %w", job.ClusterId, err)
		}
		return JobEnded{Cluster: cluster, JobID: id, Job: job}, nil
	})
	if notified && s.onOutbox != nil {
		tx.tx.OnCommit(s.onOutbox)
	}
	return err
}

// CancelScan ends every job of a scan that has not ended as CANCELLED and
// returns the scan with the clusters whose jobs it cancelled. A job that
// another scan shares and has not cancelled goes on for that scan, and
// shows as cancelled in this one only.
func (s *DB) CancelScan(_ context.Context, id ulid.ULID) (*Scan, []string, error) {
	var scan *Scan
	var clusters []string
	err := s.update(func(tx *txn) error {
		var err error
		if scan, err = getScanTx(tx, id); err != nil {
			return fmt.Errorf("scan %s: %w", id, err)
		}
		for _, j := range scan.Jobs {
			if IsFinal(j.Record.State) {
				continue
			}
			shared, err := heldByOthersTx(tx, j, id)
			if err != nil {
				return err
			}
			if shared {
				scan.Record.CancelledJobIds = append(scan.Record.CancelledJobIds, j.ID[:])
				scan.Record.CancelMs = s.nowMs()
				continue
			}
			if err := s.endJobTx(tx, j.ID, j.Record, fleetscanv1.JobState_JOB_STATE_CANCELLED, "cancelled"); err != nil {
				return err
			}
			clusters = append(clusters, j.Record.ClusterId)
		}
		if err := putProto(tx.bucket(bucketScans), id[:], scan.Record); err != nil {
			return err
		}
		scan, err = getScanTx(tx, id)
		return err
	})
	return scan, clusters, err
}

// heldByOthersTx reports whether a scan other than except still wants the
// job: it owns or joined it and has not cancelled it.
func heldByOthersTx(tx *txn, j Job, except ulid.ULID) (bool, error) {
	for _, sid := range append([][]byte{j.Record.ScanId}, j.Record.JoinedScanIds...) {
		if bytes.Equal(sid, except[:]) {
			continue
		}
		rec := &storagev1.ScanRecord{}
		if err := getProto(tx.bucket(bucketScans), sid, rec); err != nil {
			return false, fmt.Errorf("scan of job %s: %w", j.ID, err)
		}
		if !slices.Contains(bytesList(rec.CancelledJobIds), string(j.ID[:])) {
			return true, nil
		}
	}
	return false, nil
}

// Reap ends the jobs that waited or ran too long: PENDING ones created
// more than expiry ago become EXPIRED; DISPATCHED or RUNNING ones started
// more than timeout ago, and PENDING ones requeued from such a start,
// become TIMED_OUT. It returns the clusters of the
// jobs it ended. It reads every job record: fine for tens of thousands of
// jobs, an index of active jobs when fleets outgrow that.
func (s *DB) Reap(_ context.Context, timeout, expiry time.Duration) ([]string, error) {
	var clusters []string
	err := s.update(func(tx *txn) error {
		now := s.nowMs()
		type end struct {
			id     ulid.ULID
			job    *storagev1.JobRecord
			state  fleetscanv1.JobState
			reason string
		}
		var ends []end
		err := tx.bucket(bucketJobs).ForEach(func(k, v []byte) error {
			job := &storagev1.JobRecord{}
			if err := protoUnmarshal(v, job); err != nil {
				return err
			}
			var id ulid.ULID
			copy(id[:], k)
			switch job.State {
			case fleetscanv1.JobState_JOB_STATE_PENDING:
				if job.StartMs != 0 && timeout > 0 && now-job.StartMs > timeout.Milliseconds() {
					// Requeued when its worker went away, which has not come back.
					ends = append(ends, end{id, job, fleetscanv1.JobState_JOB_STATE_TIMED_OUT, fmt.Sprintf("not done within the job timeout of %v: the worker went away mid-job and has not come back", timeout)})
				} else if expiry > 0 && now-job.CreateMs > expiry.Milliseconds() {
					ends = append(ends, end{id, job, fleetscanv1.JobState_JOB_STATE_EXPIRED, fmt.Sprintf("the cluster's worker did not connect within %v", expiry)})
				}
			case fleetscanv1.JobState_JOB_STATE_DISPATCHED, fleetscanv1.JobState_JOB_STATE_RUNNING:
				if timeout > 0 && job.StartMs != 0 && now-job.StartMs > timeout.Milliseconds() {
					ends = append(ends, end{id, job, fleetscanv1.JobState_JOB_STATE_TIMED_OUT, fmt.Sprintf("not done within the job timeout of %v", timeout)})
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range ends {
			if err := s.endJobTx(tx, e.id, e.job, e.state, e.reason); err != nil {
				return err
			}
			clusters = append(clusters, e.job.ClusterId)
		}
		return nil
	})
	return clusters, err
}
