package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/oklog/ulid/v2"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// The queue after dispatch and the ends of a job: requeue, resume,
// recover, fail, cancel and reap. Each locks the jobs it changes, in id
// order, before it reads them (see scans.go).

// lockJobsTx reads the jobs of ids with their rows locked, in id order,
// keyed by id; a missing one is absent from the map.
func lockJobsTx(ctx context.Context, tx pgx.Tx, ids []ulid.ULID) (map[ulid.ULID]store.Job, error) {
	jobs, err := queryJobs(ctx, tx, "lock jobs", `SELECT `+jobColumns+` FROM jobs j WHERE j.id = ANY($1) ORDER BY j.id FOR UPDATE OF j`, jobUUIDs(ids))
	if err != nil {
		return nil, err
	}
	out := make(map[ulid.ULID]store.Job, len(jobs))
	for _, j := range jobs {
		out[j.ID] = j
	}
	return out, nil
}

// RequeueJobs puts jobs that were dispatched to a worker that went away
// back in the queue. What they staged is kept: a worker that still holds
// the job when it reconnects resumes it (ResumeJob); otherwise it is sent
// again and runs from the start. A job already sent maxAttempts times
// fails instead, so that a job that kills its stream is not retried
// forever. Jobs that already ended are left alone. An id with no job is
// store.ErrNotFound, and nothing is requeued.
func (db *DB) RequeueJobs(ctx context.Context, maxAttempts int, ids ...ulid.ULID) error {
	notified := false
	err := db.retryTx(ctx, func(tx pgx.Tx) error {
		notified = false
		locked, err := lockJobsTx(ctx, tx, ids)
		if err != nil {
			return err
		}
		// A job another replica holds now was taken over there, when its
		// worker reconnected: it is not this replica's to give back.
		rows, err := tx.Query(ctx, `SELECT id FROM jobs WHERE id = ANY($1) AND owner <> $2`, jobUUIDs(ids), db.replica)
		if err != nil {
			return fmt.Errorf("requeue jobs: %w", err)
		}
		taken, err := pgx.CollectRows(rows, pgx.RowTo[pgtype.UUID])
		if err != nil {
			return fmt.Errorf("requeue jobs: %w", err)
		}
		for _, id := range ids {
			j, ok := locked[id]
			if !ok {
				return fmt.Errorf("job %s: %w", id, store.ErrNotFound)
			}
			if slices.Contains(taken, pgtype.UUID{Bytes: id, Valid: true}) {
				continue
			}
			n, err := db.requeueJobTx(ctx, tx, j, maxAttempts)
			if err != nil {
				return err
			}
			notified = notified || n
		}
		return nil
	})
	db.committed(err, notified)
	return err
}

// committed wakes the outbox's dispatcher after a transaction that wrote
// deliveries committed.
func (db *DB) committed(err error, notified bool) {
	if err == nil && notified && db.onOutbox != nil {
		db.onOutbox()
	}
}

// requeueJobTx requeues a locked job that was dispatched or running, or
// fails it after maxAttempts; it reports whether it wrote deliveries.
func (db *DB) requeueJobTx(ctx context.Context, tx pgx.Tx, j store.Job, maxAttempts int) (bool, error) {
	switch j.Record.State {
	case fleetscanv1.JobState_JOB_STATE_DISPATCHED, fleetscanv1.JobState_JOB_STATE_RUNNING:
	default:
		return false, nil
	}
	if maxAttempts > 0 && int(j.Record.Attempts) >= maxAttempts {
		return db.endJobTx(ctx, tx, j, fleetscanv1.JobState_JOB_STATE_FAILED,
			fmt.Sprintf("given up after %d attempts: the worker's connection ended each time", j.Record.Attempts))
	}
	j.Record.State = fleetscanv1.JobState_JOB_STATE_PENDING
	return false, putJobTx(ctx, tx, j)
}

// ResumeJob takes back a job that the cluster's worker still holds after a
// reconnect, and returns the last batch of the unbroken run 1..n it has
// staged: the worker goes on from there. ok is false when the job is not
// the cluster's or has ended; the worker then drops it. A resumed job
// keeps its attempt count and its start time, so its timeout still holds.
func (db *DB) ResumeJob(ctx context.Context, clusterID string, id ulid.ULID) (acked int64, ok bool, err error) {
	err = db.retryTx(ctx, func(tx pgx.Tx) error {
		acked, ok = 0, false
		j, err := lockJobTx(ctx, tx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		job := j.Record
		if job.ClusterId != clusterID || store.IsFinal(job.State) {
			return nil
		}
		if job.State == fleetscanv1.JobState_JOB_STATE_PENDING && job.StartMs == 0 {
			return nil // never dispatched: the worker cannot hold it
		}
		rows, err := tx.Query(ctx, `SELECT seq FROM staged_batches WHERE job_id = $1 ORDER BY seq`, idUUID(id))
		if err != nil {
			return fmt.Errorf("job %s: staging: %w", id, err)
		}
		seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("job %s: staging: %w", id, err)
		}
		for _, seq := range seqs {
			if seq != acked+1 {
				break
			}
			acked++
		}
		job.State = fleetscanv1.JobState_JOB_STATE_DISPATCHED
		if job.StagedBatches > 0 {
			job.State = fleetscanv1.JobState_JOB_STATE_RUNNING
		}
		ok = true
		if err := putJobTx(ctx, tx, j); err != nil {
			return err
		}
		// This replica's session holds it now, wherever it ran before.
		if _, err := tx.Exec(ctx, `UPDATE jobs SET owner = $2 WHERE id = $1`, idUUID(id), db.replica); err != nil {
			return fmt.Errorf("job %s: %w", id, err)
		}
		return nil
	})
	return acked, ok, err
}

// RecoverJobs requeues every job left DISPATCHED or RUNNING, as after a
// crash or restart of the server (or fails it after maxAttempts), and
// returns how many it handled. With replicas, that is every replica's
// jobs: it is for a restart of the whole fleet of servers, as with bbolt's
// one server.
func (db *DB) RecoverJobs(ctx context.Context, maxAttempts int) (int, error) {
	clusters, err := db.requeueHeld(ctx, maxAttempts, nil)
	return len(clusters), err
}

// RecoverOrphans requeues the dispatched and running jobs whose replica
// is gone (or fails them after maxAttempts), as a server alone requeues
// its own at start, and returns their clusters (one per job), whose
// sessions the caller must wake: they are already attached, wherever
// their workers reconnected. It is for the one
// replica that leads, every so often: a replica is gone when none of the
// database's sessions carries its id, at this look and at the one before
// (a replica between two connections is not taken for dead). A job whose
// worker reconnected to a live replica before was taken over there, and
// is not touched.
func (db *DB) RecoverOrphans(ctx context.Context, maxAttempts int) ([]string, error) {
	gone, err := db.ownersGone(ctx)
	if err != nil {
		return nil, fmt.Errorf("recover orphaned jobs: %w", err)
	}
	db.orphanMu.Lock()
	var dead []string
	for _, o := range gone {
		if db.suspects[o] {
			dead = append(dead, o)
		}
	}
	db.suspects = map[string]bool{}
	for _, o := range gone {
		db.suspects[o] = true
	}
	db.orphanMu.Unlock()
	return db.requeueOwnedBy(ctx, maxAttempts, dead)
}

// ownersGone returns the owners of held jobs that no session of the
// database names.
func (db *DB) ownersGone(ctx context.Context) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT DISTINCT owner FROM jobs WHERE state IN ($1, $2) AND owner IS NOT NULL
		AND owner NOT IN (`+liveReplicas+`)`, jobDispatched, jobRunning)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// requeueOwnedBy requeues the held jobs of the owners, and those of none,
// and returns their clusters. Jobs another transaction holds are left to
// the next look.
func (db *DB) requeueOwnedBy(ctx context.Context, maxAttempts int, owners []string) ([]string, error) {
	if owners == nil {
		owners = []string{}
	}
	return db.requeueHeld(ctx, maxAttempts, owners)
}

// requeueHeld requeues (or fails, after maxAttempts) dispatched and
// running jobs in one transaction, and returns their clusters, one per
// job: every such job when owners is nil (waiting for the ones other
// transactions hold), else those of the owners and of none (skipping the
// ones held).
func (db *DB) requeueHeld(ctx context.Context, maxAttempts int, owners []string) ([]string, error) {
	var clusters []string
	notified := false
	what, query, args := "recover jobs", `SELECT `+jobColumns+` FROM jobs j WHERE j.state IN ($1, $2) ORDER BY j.id FOR UPDATE OF j`, []any{jobDispatched, jobRunning}
	if owners != nil {
		what, query = "recover orphaned jobs", `SELECT `+jobColumns+` FROM jobs j WHERE j.state IN ($1, $2) AND (j.owner IS NULL OR j.owner = ANY($3))
			ORDER BY j.id FOR UPDATE OF j SKIP LOCKED`
		args = append(args, owners)
	}
	err := db.retryTx(ctx, func(tx pgx.Tx) error {
		clusters, notified = nil, false
		jobs, err := queryJobs(ctx, tx, what, query, args...)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			w, err := db.requeueJobTx(ctx, tx, j, maxAttempts)
			if err != nil {
				return err
			}
			notified = notified || w
			clusters = append(clusters, j.Record.ClusterId)
		}
		return nil
	})
	db.committed(err, notified)
	if err != nil {
		return nil, err
	}
	return clusters, nil
}

// FailJob ends a job as FAILED with a reason and drops its staged batches.
func (db *DB) FailJob(ctx context.Context, id ulid.ULID, reason string) error {
	notified := false
	err := db.retryTx(ctx, func(tx pgx.Tx) error {
		notified = false
		j, err := lockJobTx(ctx, tx, id)
		if err != nil {
			return err
		}
		if store.IsFinal(j.Record.State) {
			return nil
		}
		notified, err = db.endJobTx(ctx, tx, j, fleetscanv1.JobState_JOB_STATE_FAILED, reason)
		return err
	})
	db.committed(err, notified)
	return err
}

// endJobTx ends a locked job that has not ended in state with a reason,
// dropping its staged batches (and so its place in the queue and the
// active index), and writes the outbox's deliveries of its end in the same
// transaction. It reports whether it wrote any.
func (db *DB) endJobTx(ctx context.Context, tx pgx.Tx, j store.Job, state fleetscanv1.JobState, reason string) (bool, error) {
	if _, err := tx.Exec(ctx, `DELETE FROM staged_batches WHERE job_id = $1`, idUUID(j.ID)); err != nil {
		return false, fmt.Errorf("job %s: staging: %w", j.ID, err)
	}
	job := j.Record
	job.State, job.Error, job.FinishMs, job.StagedBatches, job.StagedFindings = state, reason, db.nowMs(), 0, 0
	if err := putJobTx(ctx, tx, j); err != nil {
		return false, err
	}
	return db.outboxJobTx(ctx, tx, j)
}

// outboxJobTx asks the outbox hook for the deliveries of a job's end and
// writes them, when any notifier exists, as the bbolt store's does. It
// reports whether it wrote any.
func (db *DB) outboxJobTx(ctx context.Context, tx pgx.Tx, j store.Job) (bool, error) {
	return db.outboxTx(ctx, tx, j.ID, j.Record.ClusterId, func(cluster *storagev1.ClusterRecord) (store.JobEnded, error) {
		return store.JobEnded{Cluster: cluster, JobID: j.ID, Job: j.Record}, nil
	})
}

// outboxTx is outboxJobTx for an event that carries more than the job
// (a success's previous job and new findings): ev makes it, given the
// job's cluster, and is called only while a notifier exists.
func (db *DB) outboxTx(ctx context.Context, tx pgx.Tx, jobID ulid.ULID, clusterID string, ev func(*storagev1.ClusterRecord) (store.JobEnded, error)) (bool, error) {
	if db.outbox == nil {
		return false, nil
	}
	// In id order, as bbolt's bucket gives them to the hook.
	rows, err := tx.Query(ctx, `SELECT `+notifierColumns+` FROM notifiers ORDER BY id`)
	if err != nil {
		return false, fmt.Errorf("job %s: notifiers: %w", jobID, err)
	}
	notifiers, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*storagev1.NotifierRecord, error) { return scanNotifier(row) })
	if err != nil {
		return false, fmt.Errorf("job %s: notifiers: %w", jobID, err)
	}
	if len(notifiers) == 0 {
		return false, nil
	}
	cluster, err := scanCluster(tx.QueryRow(ctx, `SELECT `+clusterColumns+` FROM clusters c WHERE c.id = $1`, clusterID))
	if err != nil {
		return false, fmt.Errorf("job %s: cluster %q: %w", jobID, clusterID, err)
	}
	e, err := ev(cluster)
	if err != nil {
		return false, err
	}
	out := db.outbox(e, notifiers)
	if err := putDeliveriesTx(ctx, tx, out); err != nil {
		return false, fmt.Errorf("job %s: %w", jobID, err)
	}
	return len(out) > 0, nil
}

// CancelScan ends every job of a scan that has not ended as CANCELLED and
// returns the scan with the clusters whose jobs it cancelled. A job that
// another scan shares and has not cancelled goes on for that scan, and
// shows as cancelled in this one only.
func (db *DB) CancelScan(ctx context.Context, id ulid.ULID) (*store.Scan, []string, error) {
	var (
		scan     *store.Scan
		clusters []string
		notified bool
	)
	err := db.retryTx(ctx, func(tx pgx.Tx) error {
		clusters, notified = nil, false
		// The scan's row first (two cancels of one scan take turns), then
		// its jobs, in id order. NO KEY UPDATE, as the UPDATE of cancel_at
		// would take: a foreign key's check of the scan (a job's success
		// naming it the cluster's last scan, while holding the job this
		// waits for) takes KEY SHARE, which FOR UPDATE would block, and
		// the two would deadlock.
		var exists bool
		err := tx.QueryRow(ctx, `SELECT true FROM scans WHERE id = $1 FOR NO KEY UPDATE`, idUUID(id)).Scan(&exists)
		if errors.Is(err, pgx.ErrNoRows) {
			err = store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("scan %s: %w", id, err)
		}
		locked, err := queryJobs(ctx, tx, "scan "+id.String(), `SELECT `+jobColumns+` FROM jobs j
			WHERE j.id IN (SELECT job_id FROM scan_jobs WHERE scan_id = $1) ORDER BY j.id FOR UPDATE OF j`, idUUID(id))
		if err != nil {
			return err
		}
		byID := make(map[ulid.ULID]store.Job, len(locked))
		for _, j := range locked {
			byID[j.ID] = j
		}
		// Read with the jobs locked: what the scans sharing them let go
		// of is written under the same locks.
		if scan, err = getScanTx(ctx, tx, id); err != nil {
			return fmt.Errorf("scan %s: %w", id, err)
		}
		cancelAt := db.nowMs()
		for _, shown := range scan.Jobs {
			j := byID[shown.ID]
			if j.Record == nil || store.IsFinal(j.Record.State) {
				continue
			}
			var shared bool
			err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM scan_jobs WHERE job_id = $1 AND scan_id <> $2 AND NOT cancelled)`,
				idUUID(j.ID), idUUID(id)).Scan(&shared)
			if err != nil {
				return fmt.Errorf("scans of job %s: %w", j.ID, err)
			}
			if shared {
				if _, err := tx.Exec(ctx, `UPDATE scan_jobs SET cancelled = true WHERE scan_id = $1 AND job_id = $2`, idUUID(id), idUUID(j.ID)); err != nil {
					return fmt.Errorf("scan %s: job %s: %w", id, j.ID, err)
				}
				if _, err := tx.Exec(ctx, `UPDATE scans SET cancel_at = $2 WHERE id = $1`, idUUID(id), msTime(cancelAt)); err != nil {
					return fmt.Errorf("scan %s: %w", id, err)
				}
				continue
			}
			w, err := db.endJobTx(ctx, tx, j, fleetscanv1.JobState_JOB_STATE_CANCELLED, "cancelled")
			if err != nil {
				return err
			}
			notified = notified || w
			clusters = append(clusters, j.Record.ClusterId)
		}
		scan, err = getScanTx(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("scan %s: %w", id, err)
		}
		return nil
	})
	db.committed(err, notified)
	if err != nil {
		return nil, nil, err
	}
	return scan, clusters, nil
}

// Reap ends the jobs that waited or ran too long: PENDING ones created
// more than expiry ago become EXPIRED; DISPATCHED or RUNNING ones started
// more than timeout ago, and PENDING ones requeued from such a start,
// become TIMED_OUT. It returns the clusters of the jobs it ended, in job
// id order. It reads only the jobs that may be due (the active index), and
// skips one whose row another transaction holds: that job is being
// changed, and the next Reap looks at it again.
func (db *DB) Reap(ctx context.Context, timeout, expiry time.Duration) ([]string, error) {
	var (
		clusters []string
		notified bool
	)
	err := db.retryTx(ctx, func(tx pgx.Tx) error {
		clusters, notified = nil, false
		now := db.nowMs()
		// Candidates by the same comparisons as below, in SQL so that the
		// jobs that are not due are neither read nor locked.
		var startedBefore, createdBefore pgtype.Timestamptz
		if timeout > 0 {
			startedBefore = pgtype.Timestamptz{Time: time.UnixMilli(now - timeout.Milliseconds()), Valid: true}
		}
		if expiry > 0 {
			createdBefore = pgtype.Timestamptz{Time: time.UnixMilli(now - expiry.Milliseconds()), Valid: true}
		}
		jobs, err := queryJobs(ctx, tx, "reap", `SELECT `+jobColumns+` FROM jobs j
			WHERE j.state < $1 AND (j.start_at < $2 OR (j.state = $3 AND j.create_at < $4))
			ORDER BY j.id FOR UPDATE OF j SKIP LOCKED`, jobEnded, startedBefore, jobPending, createdBefore)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			job := j.Record
			var (
				state  fleetscanv1.JobState
				reason string
			)
			switch job.State {
			case fleetscanv1.JobState_JOB_STATE_PENDING:
				if job.StartMs != 0 && timeout > 0 && now-job.StartMs > timeout.Milliseconds() {
					// Requeued when its worker went away, which has not come back.
					state, reason = fleetscanv1.JobState_JOB_STATE_TIMED_OUT, fmt.Sprintf("not done within the job timeout of %v: the worker went away mid-job and has not come back", timeout)
				} else if expiry > 0 && now-job.CreateMs > expiry.Milliseconds() {
					state, reason = fleetscanv1.JobState_JOB_STATE_EXPIRED, fmt.Sprintf("the cluster's worker did not connect within %v", expiry)
				}
			case fleetscanv1.JobState_JOB_STATE_DISPATCHED, fleetscanv1.JobState_JOB_STATE_RUNNING:
				if timeout > 0 && job.StartMs != 0 && now-job.StartMs > timeout.Milliseconds() {
					state, reason = fleetscanv1.JobState_JOB_STATE_TIMED_OUT, fmt.Sprintf("not done within the job timeout of %v", timeout)
				}
			}
			if state == 0 {
				continue
			}
			w, err := db.endJobTx(ctx, tx, j, state, reason)
			if err != nil {
				return err
			}
			notified = notified || w
			clusters = append(clusters, job.ClusterId)
		}
		return nil
	})
	db.committed(err, notified)
	if err != nil {
		return nil, err
	}
	return clusters, nil
}
