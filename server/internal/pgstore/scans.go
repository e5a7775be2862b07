package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// Scans and jobs. A scan's target and spec are its detail; its jobs are
// the rows of scan_jobs, which also say which scans joined a job and which
// let go of one they share. A job's state, times, attempts and staging
// counts are columns (the queue and the reaper query them), the rest of
// its record is detail.
//
// Several replicas share the queue, so every read-modify-write of a job
// locks its row (FOR UPDATE) in the transaction that writes it, and a
// transaction that locks several jobs locks them in id order, in one
// statement: two such transactions never wait on each other in a circle.
// Locks are taken in the order scans, then jobs; CreateScan also takes an
// advisory lock per cluster first, so that two scans of one cluster
// created at once agree on which job they share.

const (
	jobPending    = int16(fleetscanv1.JobState_JOB_STATE_PENDING)
	jobDispatched = int16(fleetscanv1.JobState_JOB_STATE_DISPATCHED)
	jobRunning    = int16(fleetscanv1.JobState_JOB_STATE_RUNNING)
	// jobEnded is the first state of a job that ended (SUCCEEDED); the
	// states after it are the other ends.
	jobEnded = int16(fleetscanv1.JobState_JOB_STATE_SUCCEEDED)
)

// createScanLock is the first key of the advisory locks CreateScan takes,
// one per cluster (the second key is the hash of the cluster id). The
// two-key form is a key space apart from migrate's one-key lock.
const createScanLock = 0x66736373 // "fscs"

// jobColumns reads a job (table alias j) with the scans that joined it,
// in id order: the order they joined in, as the ids are time-ordered.
const jobColumns = `j.id, j.scan_id, j.cluster_id, j.state, j.create_at, j.start_at, j.finish_at,
	j.attempts, j.staged_batches, j.staged_findings, j.detail,
	ARRAY(SELECT sj.scan_id FROM scan_jobs sj WHERE sj.job_id = j.id AND sj.scan_id <> j.scan_id ORDER BY sj.scan_id)`

// scanJob reads a row of jobColumns.
func scanJob(row pgx.Row) (store.Job, error) {
	var (
		id, scanID                    pgtype.UUID
		clusterID                     string
		state                         int16
		createAt, startAt, finishAt   pgtype.Timestamptz
		attempts                      int32
		stagedBatches, stagedFindings int64
		detail                        []byte
		joined                        []pgtype.UUID
	)
	err := row.Scan(&id, &scanID, &clusterID, &state, &createAt, &startAt, &finishAt,
		&attempts, &stagedBatches, &stagedFindings, &detail, &joined)
	if err != nil {
		return store.Job{}, err
	}
	j := store.Job{ID: ulid.ULID(id.Bytes), Record: &storagev1.JobRecord{}}
	if err := proto.Unmarshal(detail, j.Record); err != nil {
		return store.Job{}, fmt.Errorf("job %s: %w", j.ID, err)
	}
	r := j.Record
	r.ScanId, r.ClusterId, r.State = uuidBytes(scanID), clusterID, fleetscanv1.JobState(state)
	r.CreateMs, r.StartMs, r.FinishMs = timeMs(createAt), timeMs(startAt), timeMs(finishAt)
	r.Attempts, r.StagedBatches, r.StagedFindings = attempts, stagedBatches, stagedFindings
	r.JoinedScanIds = nil
	for _, s := range joined {
		r.JoinedScanIds = append(r.JoinedScanIds, uuidBytes(s))
	}
	return j, nil
}

// jobDetail is what of a job record has no column.
func jobDetail(id ulid.ULID, r *storagev1.JobRecord) ([]byte, error) {
	rest := proto.CloneOf(r)
	rest.ScanId, rest.ClusterId, rest.State = nil, "", 0
	rest.CreateMs, rest.StartMs, rest.FinishMs = 0, 0, 0
	rest.Attempts, rest.StagedBatches, rest.StagedFindings, rest.JoinedScanIds = 0, 0, 0, nil
	return marshalDetail("job "+id.String(), rest)
}

// scanDetail is what of a scan record has no column: its target and spec.
func scanDetail(id ulid.ULID, r *storagev1.ScanRecord) ([]byte, error) {
	return marshalDetail("scan "+id.String(), &storagev1.ScanRecord{Target: r.Target, Spec: r.Spec})
}

// marshalDetail marshals a detail column, never NULL: an empty record
// marshals to no bytes, which pgx would send as NULL.
func marshalDetail(what string, m proto.Message) ([]byte, error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// putJobTx writes a job's row from its record. Its scan, cluster and
// create time never change.
func putJobTx(ctx context.Context, tx pgx.Tx, j store.Job) error {
	detail, err := jobDetail(j.ID, j.Record)
	if err != nil {
		return err
	}
	r := j.Record
	// A job that waits or ended is held by no replica.
	_, err = tx.Exec(ctx, `UPDATE jobs SET state = $2, start_at = $3, finish_at = $4, attempts = $5,
		staged_batches = $6, staged_findings = $7, detail = $8,
		owner = CASE WHEN $2::smallint IN (2, 3) THEN owner END WHERE id = $1`,
		idUUID(j.ID), int16(r.State), msTime(r.StartMs), msTime(r.FinishMs), r.Attempts, r.StagedBatches, r.StagedFindings, detail)
	if err != nil {
		return fmt.Errorf("job %s: %w", j.ID, err)
	}
	return nil
}

// lockJobTx reads a job with its row locked: store.ErrNotFound when there
// is none.
func lockJobTx(ctx context.Context, tx pgx.Tx, id ulid.ULID) (store.Job, error) {
	j, err := scanJob(tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs j WHERE j.id = $1 FOR UPDATE OF j`, idUUID(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Job{}, fmt.Errorf("job %s: %w", id, err)
	}
	return j, nil
}

// queryJobs reads the jobs of a query of jobColumns, in its order.
func queryJobs(ctx context.Context, tx pgx.Tx, what, query string, args ...any) ([]store.Job, error) {
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []store.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// jobUUIDs are ids as a uuid[] parameter.
func jobUUIDs(ids []ulid.ULID) []pgtype.UUID {
	out := make([]pgtype.UUID, len(ids))
	for i, id := range ids {
		out[i] = idUUID(id)
	}
	return out
}

// Deadlocks and serialization failures: the transaction is run again.
const (
	serializationFailure = "40001"
	deadlockDetected     = "40P01"
)

// retryTx runs fn in a transaction as inTx does, and again (a few times)
// when PostgreSQL aborts it to break a deadlock or a serialization
// conflict: another replica's transaction won, and fn's reads are stale.
// fn must start from scratch each time it is called.
func (db *DB) retryTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return retryTxOn(ctx, db.pool, fn)
}

// retryTxOn is retryTx on the pool given.
func retryTxOn(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, pool, fn)
		var pgErr *pgconn.PgError
		if attempt < 5 && errors.As(err, &pgErr) && (pgErr.Code == serializationFailure || pgErr.Code == deadlockDetected) {
			continue
		}
		return err
	}
}

// CreateScan stores a scan with one job per cluster, in cluster id order.
// Every cluster must exist. Where a cluster already has a job that has not
// ended and was asked for with the same spec, the scan joins it instead of
// queueing a second one: both scans show its result.
func (db *DB) CreateScan(ctx context.Context, target *fleetscanv1.ScanTarget, spec *fleetscanv1.ScanSpec, clusterIDs []string) (*store.Scan, error) {
	clusterIDs = slices.Clone(clusterIDs)
	slices.Sort(clusterIDs)
	clusterIDs = slices.Compact(clusterIDs)
	var scan *store.Scan
	err := db.retryTx(ctx, func(tx pgx.Tx) error {
		scan = &store.Scan{ID: db.NewID(), Record: &storagev1.ScanRecord{Target: target, Spec: spec, CreateMs: db.nowMs()}}
		if err := lockClustersForScanTx(ctx, tx, clusterIDs); err != nil {
			return err
		}
		joinable, err := joinableTx(ctx, tx, clusterIDs, spec)
		if err != nil {
			return err
		}
		detail, err := scanDetail(scan.ID, scan.Record)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO scans (id, create_at, detail) VALUES ($1, $2, $3)`,
			idUUID(scan.ID), msTime(scan.Record.CreateMs), detail); err != nil {
			return fmt.Errorf("scan %s: %w", scan.ID, err)
		}
		b := &pgx.Batch{}
		for _, cid := range clusterIDs {
			j, ok := joinable[cid]
			if ok {
				j.Record.JoinedScanIds = append(j.Record.JoinedScanIds, scan.ID[:])
			} else {
				j = store.Job{ID: db.NewID(), Record: &storagev1.JobRecord{
					ScanId: scan.ID[:], ClusterId: cid, State: fleetscanv1.JobState_JOB_STATE_PENDING, CreateMs: scan.Record.CreateMs,
				}}
				detail, err := jobDetail(j.ID, j.Record)
				if err != nil {
					return err
				}
				b.Queue(`INSERT INTO jobs (id, scan_id, cluster_id, state, create_at, detail) VALUES ($1, $2, $3, $4, $5, $6)`,
					idUUID(j.ID), idUUID(scan.ID), cid, jobPending, msTime(j.Record.CreateMs), detail)
			}
			b.Queue(`INSERT INTO scan_jobs (scan_id, job_id, cluster_id) VALUES ($1, $2, $3)`, idUUID(scan.ID), idUUID(j.ID), cid)
			scan.Jobs = append(scan.Jobs, j)
			scan.Record.JobIds = append(scan.Record.JobIds, j.ID[:])
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("scan %s: jobs: %w", scan.ID, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return scan, nil
}

// lockClustersForScanTx checks that every cluster exists (the first
// missing one, in id order, is store.ErrNotFound) and takes CreateScan's
// advisory lock of each, in id order: of two scans of a cluster created
// at once, the second sees the first's job and joins it.
func lockClustersForScanTx(ctx context.Context, tx pgx.Tx, clusterIDs []string) error {
	if len(clusterIDs) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, cid := range clusterIDs {
		b.Queue(`SELECT pg_advisory_xact_lock($1, hashtext($2))`, createScanLock, cid)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("lock clusters: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT id FROM clusters WHERE id = ANY($1)`, clusterIDs)
	if err != nil {
		return fmt.Errorf("clusters: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("clusters: %w", err)
	}
	for _, cid := range clusterIDs {
		if !slices.Contains(found, cid) {
			return fmt.Errorf("cluster %q: %w", cid, store.ErrNotFound)
		}
	}
	return nil
}

// joinableTx returns, by cluster, the job that has not ended, runs spec
// and whose scan has not let go of it, if there is one: the oldest, as
// bbolt's walk of the active index finds it. The jobs it looks at stay
// locked, so none of them ends before the scan that joins it commits.
func joinableTx(ctx context.Context, tx pgx.Tx, clusterIDs []string, spec *fleetscanv1.ScanSpec) (map[string]store.Job, error) {
	out := map[string]store.Job{}
	if len(clusterIDs) == 0 {
		return out, nil
	}
	active, err := queryJobs(ctx, tx, "active jobs", `SELECT `+jobColumns+` FROM jobs j
		WHERE j.cluster_id = ANY($1) AND j.state < $2 ORDER BY j.id FOR UPDATE OF j`, clusterIDs, jobEnded)
	if err != nil || len(active) == 0 {
		return out, err
	}
	ids := make([]ulid.ULID, len(active))
	for i, j := range active {
		ids[i] = j.ID
	}
	// Read after the locks: a scan that let go of its job did so holding
	// the job's lock.
	rows, err := tx.Query(ctx, `SELECT sj.job_id, sj.cancelled, s.detail FROM jobs j
		JOIN scan_jobs sj ON sj.scan_id = j.scan_id AND sj.job_id = j.id
		JOIN scans s ON s.id = j.scan_id WHERE j.id = ANY($1)`, jobUUIDs(ids))
	if err != nil {
		return nil, fmt.Errorf("scans of active jobs: %w", err)
	}
	defer rows.Close()
	owners := map[ulid.ULID]*storagev1.ScanRecord{}
	for rows.Next() {
		var (
			jobID     pgtype.UUID
			cancelled bool
			detail    []byte
		)
		if err := rows.Scan(&jobID, &cancelled, &detail); err != nil {
			return nil, fmt.Errorf("scans of active jobs: %w", err)
		}
		if cancelled {
			continue // its scan let go of it: it ends with the scans that keep it
		}
		owner := &storagev1.ScanRecord{}
		if err := proto.Unmarshal(detail, owner); err != nil {
			return nil, fmt.Errorf("scan of job %s: %w", ulid.ULID(jobID.Bytes), err)
		}
		owners[ulid.ULID(jobID.Bytes)] = owner
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scans of active jobs: %w", err)
	}
	for _, j := range active {
		owner, ok := owners[j.ID]
		if _, found := out[j.Record.ClusterId]; found || !ok {
			continue
		}
		if proto.Equal(owner.Spec, spec) || (isEmptySpec(owner.Spec) && isEmptySpec(spec)) {
			out[j.Record.ClusterId] = j
		}
	}
	return out, nil
}

func isEmptySpec(spec *fleetscanv1.ScanSpec) bool {
	return spec == nil || proto.Size(spec) == 0
}

// GetScan returns a scan and its jobs.
func (db *DB) GetScan(ctx context.Context, id ulid.ULID) (*store.Scan, error) {
	var scan *store.Scan
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		scan, err = getScanTx(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", id, err)
	}
	return scan, nil
}

// readTx runs fn in a read-only transaction that sees one snapshot: a scan
// and its jobs as of one moment.
func (db *DB) readTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// getScanTx reads a scan and its jobs, in cluster id order. A shared job
// the scan let go of, and that has not ended as cancelled, shows as
// cancelled at the scan's cancel time, as in the bbolt store.
func getScanTx(ctx context.Context, tx pgx.Tx, id ulid.ULID) (*store.Scan, error) {
	var (
		createAt, cancelAt pgtype.Timestamptz
		detail             []byte
	)
	err := tx.QueryRow(ctx, `SELECT create_at, cancel_at, detail FROM scans WHERE id = $1`, idUUID(id)).Scan(&createAt, &cancelAt, &detail)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	rec := &storagev1.ScanRecord{}
	if err := proto.Unmarshal(detail, rec); err != nil {
		return nil, err
	}
	rec.CreateMs, rec.CancelMs = timeMs(createAt), timeMs(cancelAt)
	scan := &store.Scan{ID: id, Record: rec}
	rows, err := tx.Query(ctx, `SELECT sj.cancelled, `+jobColumns+` FROM scan_jobs sj JOIN jobs j ON j.id = sj.job_id
		WHERE sj.scan_id = $1 ORDER BY sj.cluster_id COLLATE "C"`, idUUID(id))
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var cancelled bool
		j, err := scanJob(cancelledRow{rows, &cancelled})
		if err != nil {
			return nil, fmt.Errorf("jobs: %w", err)
		}
		rec.JobIds = append(rec.JobIds, j.ID[:])
		if cancelled {
			rec.CancelledJobIds = append(rec.CancelledJobIds, j.ID[:])
			if j.Record.State != fleetscanv1.JobState_JOB_STATE_CANCELLED {
				// Cancelled for this scan while another that shares it kept it.
				j.Record.State, j.Record.Error = fleetscanv1.JobState_JOB_STATE_CANCELLED, "cancelled; the job went on for another scan that shares it"
				j.Record.Findings, j.Record.FinishMs = nil, rec.CancelMs
			}
		}
		scan.Jobs = append(scan.Jobs, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	return scan, nil
}

// cancelledRow reads a leading scan_jobs.cancelled column into cancelled
// and the rest as jobColumns.
type cancelledRow struct {
	pgx.Row
	cancelled *bool
}

func (r cancelledRow) Scan(dest ...any) error {
	return r.Row.Scan(append([]any{r.cancelled}, dest...)...)
}

// ListScans returns up to limit scans older than `before` (all when zero),
// newest first, and whether more follow. As in the bbolt store, a limit of
// 0 returns none and reports whether any follow.
func (db *DB) ListScans(ctx context.Context, before ulid.ULID, limit int) ([]*store.Scan, bool, error) {
	var (
		out  []*store.Scan
		more bool
	)
	var lim pgtype.Int8
	if limit >= 0 {
		lim = pgtype.Int8{Int64: int64(limit) + 1, Valid: true}
	}
	var bound pgtype.UUID
	if before != (ulid.ULID{}) {
		bound = idUUID(before)
	}
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id FROM scans WHERE $1::uuid IS NULL OR id < $1 ORDER BY id DESC LIMIT $2`, bound, lim)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[pgtype.UUID])
		if err != nil {
			return err
		}
		for _, id := range ids {
			if len(out) == limit {
				more = true
				break
			}
			scan, err := getScanTx(ctx, tx, ulid.ULID(id.Bytes))
			if err != nil {
				return fmt.Errorf("scan %s: %w", ulid.ULID(id.Bytes), err)
			}
			out = append(out, scan)
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("list scans: %w", err)
	}
	return out, more, nil
}

// GetJob returns a job.
func (db *DB) GetJob(ctx context.Context, id ulid.ULID) (*store.Job, error) {
	j, err := scanJob(db.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs j WHERE j.id = $1`, idUUID(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", id, err)
	}
	return &j, nil
}

// DispatchPending moves up to limit (all when limit ≤ 0) of the cluster's
// pending jobs, oldest first, to DISPATCHED and returns them for sending.
// It claims them: a job another replica is claiming or changing (its row
// locked) is skipped, left for that replica or the next call, so no job
// goes to two callers.
func (db *DB) DispatchPending(ctx context.Context, clusterID string, limit int) ([]store.Assignment, error) {
	var lim pgtype.Int8
	if limit > 0 {
		lim = pgtype.Int8{Int64: int64(limit), Valid: true}
	}
	var out []store.Assignment
	err := db.retryTx(ctx, func(tx pgx.Tx) error {
		out = out[:0]
		rows, err := tx.Query(ctx, `SELECT id FROM jobs WHERE cluster_id = $1 AND state = $2
			ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED`, clusterID, jobPending, lim)
		if err != nil {
			return fmt.Errorf("pending jobs of %q: %w", clusterID, err)
		}
		claimed, err := pgx.CollectRows(rows, pgx.RowTo[pgtype.UUID])
		if err != nil {
			return fmt.Errorf("pending jobs of %q: %w", clusterID, err)
		}
		if len(claimed) == 0 {
			return nil
		}
		// A fresh run: what an earlier attempt staged is not its.
		if _, err := tx.Exec(ctx, `DELETE FROM staged_batches WHERE job_id = ANY($1)`, claimed); err != nil {
			return fmt.Errorf("pending jobs of %q: staging: %w", clusterID, err)
		}
		rows, err = tx.Query(ctx, `UPDATE jobs j SET state = $2, start_at = $3, staged_batches = 0, staged_findings = 0, attempts = attempts + 1, owner = $4
			FROM scans s WHERE j.id = ANY($1) AND s.id = j.scan_id RETURNING j.id, s.detail`,
			claimed, jobDispatched, msTime(db.nowMs()), db.replica)
		if err != nil {
			return fmt.Errorf("dispatch jobs of %q: %w", clusterID, err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id     pgtype.UUID
				detail []byte
			)
			if err := rows.Scan(&id, &detail); err != nil {
				return fmt.Errorf("dispatch jobs of %q: %w", clusterID, err)
			}
			scan := &storagev1.ScanRecord{}
			if err := proto.Unmarshal(detail, scan); err != nil {
				return fmt.Errorf("scan of job %s: %w", ulid.ULID(id.Bytes), err)
			}
			out = append(out, store.Assignment{JobID: ulid.ULID(id.Bytes), Spec: scan.Spec})
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("dispatch jobs of %q: %w", clusterID, err)
		}
		// Oldest first, as claimed: UPDATE … RETURNING has no order.
		slices.SortFunc(out, func(a, b store.Assignment) int { return a.JobID.Compare(b.JobID) })
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// StageBatch durably stores one batch of a running job; the caller acks it
// once this returns, after the commit. Storing the same (job, seq) again
// replaces it, so a batch the worker re-sends is stored once.
func (db *DB) StageBatch(ctx context.Context, jobID ulid.ULID, batch *workerv1.FindingBatch) error {
	if batch.Seq < 1 {
		return fmt.Errorf("batch seq %d: %w", batch.Seq, store.ErrConflict)
	}
	value, err := proto.Marshal(batch)
	if err != nil {
		return fmt.Errorf("job %s: batch %d: %w", jobID, batch.Seq, err)
	}
	return retryTxOn(ctx, db.ingest, func(tx pgx.Tx) error {
		j, err := lockJobTx(ctx, tx, jobID)
		if err != nil {
			return err
		}
		job := j.Record
		switch job.State {
		case fleetscanv1.JobState_JOB_STATE_DISPATCHED, fleetscanv1.JobState_JOB_STATE_RUNNING:
		default:
			return fmt.Errorf("job %s is %s: %w", jobID, job.State, store.ErrConflict)
		}
		if batch.Seq > job.StagedBatches+1 {
			// Batches arrive in order on one stream, and a resumed worker
			// goes on after the last of the unbroken run: a gap is the
			// worker's error, refused now rather than found at JobDone.
			return fmt.Errorf("job %s: batch %d arrived after %d stored batches: %w", jobID, batch.Seq, job.StagedBatches, store.ErrOutOfOrder)
		}
		// xmax is 0 on a row this statement inserted, and set on one it
		// updated: only a new batch counts.
		var inserted bool
		err = tx.QueryRow(ctx, `INSERT INTO staged_batches (job_id, seq, findings, batch) VALUES ($1, $2, $3, $4)
			ON CONFLICT (job_id, seq) DO UPDATE SET findings = EXCLUDED.findings, batch = EXCLUDED.batch
			RETURNING xmax = 0`, idUUID(jobID), batch.Seq, len(batch.Findings), value).Scan(&inserted)
		if err != nil {
			return fmt.Errorf("job %s: batch %d: %w", jobID, batch.Seq, err)
		}
		if inserted {
			job.StagedBatches++
			job.StagedFindings += int64(len(batch.Findings))
		}
		job.State = fleetscanv1.JobState_JOB_STATE_RUNNING
		_, err = tx.Exec(ctx, `UPDATE jobs SET state = $2, staged_batches = $3, staged_findings = $4 WHERE id = $1`,
			idUUID(jobID), jobRunning, job.StagedBatches, job.StagedFindings)
		if err != nil {
			return fmt.Errorf("job %s: %w", jobID, err)
		}
		return nil
	})
}
