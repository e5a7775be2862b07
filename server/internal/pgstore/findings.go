package pgstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
	"github.com/fleetscan/fleetscan/worker/catalog"
)

// Findings: a job's staged batches become lifecycles (one per cluster and
// fingerprint), the job's fingerprint set and its summary in the one
// transaction of CompleteJob. A lifecycle's check, severity, category,
// party, namespace, times, last scan and whether the worker suppressed it
// are columns, for filters; the rest of its record (resource, message,
// suppression reason, earlier intervals) is detail.

type fp = [catalog.FingerprintSize]byte

// findingColumns are the columns of a lifecycle, in the order of
// findingRow's values and of the COPY into findings_in.
var findingColumns = []string{"cluster_seq", "fingerprint", "check_id", "severity", "category", "party", "namespace",
	"first_seen_at", "last_seen_at", "resolved_at", "last_scan_id", "suppressed", "detail"}

// findingSelect reads a lifecycle as scanFinding wants it.
const findingSelect = `f.cluster_seq, f.fingerprint, f.check_id, f.severity, f.category, f.party, f.namespace,
	f.first_seen_at, f.last_seen_at, f.resolved_at, f.last_scan_id, f.detail`

// findingRow is rec's values for findingColumns.
func findingRow(seq uint64, key fp, rec *storagev1.FindingRecord) ([]any, error) {
	scanID, err := bytesUUID(rec.LastScanId)
	if err != nil {
		return nil, fmt.Errorf("finding %x: last scan: %w", key, err)
	}
	detail, err := findingDetail(rec)
	if err != nil {
		return nil, fmt.Errorf("finding %x: %w", key, err)
	}
	return []any{int64(seq), key[:], rec.CheckId, int16(rec.Severity), rec.Category, int16(rec.ResponsibleParty),
		rec.GetResource().GetNamespace(), msTime(rec.FirstSeenMs), msTime(rec.LastSeenMs), msTime(rec.ResolvedMs),
		scanID, rec.SuppressionReason != "", detail}, nil
}

// findingDetail is rec without the fields that have columns. It clears
// them on rec itself and puts them back, rather than cloning: a job's
// 100,000 records are encoded in a row.
func findingDetail(rec *storagev1.FindingRecord) ([]byte, error) {
	check, sev, cat, party := rec.CheckId, rec.Severity, rec.Category, rec.ResponsibleParty
	first, last, resolved, scan := rec.FirstSeenMs, rec.LastSeenMs, rec.ResolvedMs, rec.LastScanId
	rec.CheckId, rec.Severity, rec.Category, rec.ResponsibleParty = "", 0, "", 0
	rec.FirstSeenMs, rec.LastSeenMs, rec.ResolvedMs, rec.LastScanId = 0, 0, 0, nil
	var ns string
	if rec.Resource != nil {
		ns, rec.Resource.Namespace = rec.Resource.Namespace, ""
	}
	detail, err := proto.MarshalOptions{Deterministic: true}.Marshal(rec)
	rec.CheckId, rec.Severity, rec.Category, rec.ResponsibleParty = check, sev, cat, party
	rec.FirstSeenMs, rec.LastSeenMs, rec.ResolvedMs, rec.LastScanId = first, last, resolved, scan
	if rec.Resource != nil {
		rec.Resource.Namespace = ns
	}
	return detail, err
}

// storedFinding is a row of findingSelect, its record decoded on demand.
type storedFinding struct {
	seq                   int64
	key                   fp
	check, category, ns   string
	severity, party       int16
	first, last, resolved pgtype.Timestamptz
	scanID                pgtype.UUID
	detail                []byte
	// rec, once decode ran.
	rec *storagev1.FindingRecord
}

// decode decodes the record into rec.
func (f *storedFinding) decode() error {
	rec, err := f.record()
	f.rec = rec
	return err
}

func scanFinding(row pgx.Row) (*storedFinding, error) {
	var (
		f   storedFinding
		key []byte
	)
	err := row.Scan(&f.seq, &key, &f.check, &f.severity, &f.category, &f.party, &f.ns, &f.first, &f.last, &f.resolved, &f.scanID, &f.detail)
	if err != nil {
		return nil, err
	}
	if len(key) != len(f.key) {
		return nil, fmt.Errorf("finding of cluster seq %d: fingerprint of %d bytes", f.seq, len(key))
	}
	copy(f.key[:], key)
	return &f, nil
}

// record decodes the lifecycle.
func (f *storedFinding) record() (*storagev1.FindingRecord, error) {
	rec := &storagev1.FindingRecord{}
	if err := proto.Unmarshal(f.detail, rec); err != nil {
		return nil, fmt.Errorf("finding %x: %w", f.key, err)
	}
	rec.CheckId, rec.Severity, rec.Category, rec.ResponsibleParty = f.check, fleetscanv1.Severity(f.severity), f.category, fleetscanv1.ResponsibleParty(f.party)
	rec.FirstSeenMs, rec.LastSeenMs, rec.ResolvedMs, rec.LastScanId = timeMs(f.first), timeMs(f.last), timeMs(f.resolved), uuidBytes(f.scanID)
	if f.ns != "" {
		if rec.Resource == nil {
			rec.Resource = &fleetscanv1.ResourceRef{}
		}
		rec.Resource.Namespace = f.ns
	}
	return rec, nil
}

// PlanBatch keeps store.DB's signature for ingest, and plans nothing: the
// bbolt store plans a job's writes as its batches arrive so that its one
// writer's commit is short, but PostgreSQL's writers do not wait for one
// another, so CompleteJob plans from the stored batches in its
// transaction. A completion's plan is therefore never used, which
// store.Completion allows (a plan that does not cover the batches is set
// aside).
func (db *DB) PlanBatch(context.Context, ulid.ULID, *store.JobPlan, *workerv1.FindingBatch) error {
	return nil
}

// CompleteJob makes a job's staged findings visible, in one transaction:
// it opens the lifecycle of every finding seen for the first time (or
// again after it was resolved), rewrites those whose details changed,
// resolves the open findings of the cluster that the job did not see
// (within what the scan covered and could assess), records the job's
// fingerprint set and summary, names it the cluster's latest, drops its
// staged batches, marks it SUCCEEDED and writes the outbox's deliveries
// for it. A finding seen again unchanged is not written. It returns
// store.ErrIncomplete, and changes nothing, when batches or findings are
// missing; completing a job that already succeeded is a no-op.
func (db *DB) CompleteJob(ctx context.Context, jobID ulid.ULID, done store.Completion) error {
	var notified bool
	// Run again if PostgreSQL breaks a deadlock with it: the transaction
	// plans from scratch, and a job that succeeded meanwhile is a no-op.
	err := retryTxOn(ctx, db.ingest, func(tx pgx.Tx) error {
		var err error
		notified, err = db.completeJobTx(ctx, tx, jobID, done)
		return err
	})
	db.committed(err, notified)
	return err
}

// completeJobTx is CompleteJob's transaction; it reports whether it wrote
// deliveries to the outbox.
func (db *DB) completeJobTx(ctx context.Context, tx pgx.Tx, jobID ulid.ULID, done store.Completion) (bool, error) {
	now := db.nowMs()
	// The job's row lock makes a second JobDone of the job wait for the
	// first and then find it succeeded.
	j, err := lockJobTx(ctx, tx, jobID)
	if err != nil {
		return false, err
	}
	job := j.Record
	if err := store.CheckCompletable(jobID, job.State, job.StagedBatches, done); err != nil || job.State == fleetscanv1.JobState_JOB_STATE_SUCCEEDED {
		return false, err
	}
	scanID := ulid.ULID(job.ScanId)
	var scanDetail []byte
	if err := tx.QueryRow(ctx, `SELECT detail FROM scans WHERE id = $1`, idUUID(scanID)).Scan(&scanDetail); err != nil {
		return false, fmt.Errorf("scan %s of job %s: %w", scanID, jobID, err)
	}
	scan := &storagev1.ScanRecord{}
	if err := proto.Unmarshal(scanDetail, scan); err != nil {
		return false, fmt.Errorf("scan %s: %w", scanID, err)
	}

	// The job's lock keeps its batches as they are (StageBatch locks the
	// job too), so they are read before the cluster is locked.
	seen, err := stagedFindingsTx(ctx, tx, jobID, job.ClusterId, done)
	if err != nil {
		return false, err
	}
	// The cluster's row lock puts the completions of one cluster's jobs in
	// a line: each reads the lifecycles the one before wrote. NO KEY: jobs
	// and findings that name the cluster may still be inserted meanwhile.
	cluster, err := scanCluster(tx.QueryRow(ctx, `SELECT `+clusterColumns+` FROM clusters c WHERE c.id = $1 FOR NO KEY UPDATE`, job.ClusterId))
	if err != nil {
		return false, fmt.Errorf("cluster %q of job %s: %w", job.ClusterId, jobID, err)
	}
	stored, err := clusterFindingsTx(ctx, tx, cluster.Seq)
	if err != nil {
		return false, err
	}
	// The records compared below, decoded on every core: those the job saw
	// again, and the open ones it did not (to know whether it could have).
	var compared []*storedFinding
	for key, sf := range stored {
		if _, ok := seen.byKey[key]; ok || !sf.resolved.Valid {
			compared = append(compared, sf)
		}
	}
	if err := parallel(len(compared), func(i int) error { return compared[i].decode() }); err != nil {
		return false, err
	}

	// Exceptions count as of this job; the record keeps only what the
	// worker saw, so that an exception's expiry needs no rewrite.
	all, err := exceptionsTx(ctx, tx)
	if err != nil {
		return false, err
	}
	active := store.ActiveExceptions(all, now).ForReader("")
	tally := store.NewJobTally()
	count := func(check string, sev fleetscanv1.Severity, reason string, r *fleetscanv1.ResourceRef, party fleetscanv1.ResponsibleParty) {
		tally.Add(check, sev, reason != "" || active.Match(cluster, check, r) != nil, party)
	}

	// What the job saw: lifecycles to open, and to reopen or rewrite.
	var opened, rewritten []plannedFinding
	var events []*workerv1.Finding // opened, for the outbox
	fps := make([]fp, 0, len(seen.order)+len(stored))
	for _, key := range seen.order {
		f := seen.byKey[key]
		fps = append(fps, key)
		count(f.CheckId, f.Severity, f.SuppressionReason, f.Resource, f.ResponsibleParty)
		rec := &storagev1.FindingRecord{}
		old := stored[key]
		if old != nil {
			rec = old.rec
		}
		changed, reopened := store.ApplyFinding(rec, old == nil, f, now)
		if (old == nil || reopened != 0) && f.SuppressionReason == "" && active.Match(cluster, f.CheckId, f.Resource) == nil {
			events = append(events, f)
		}
		switch {
		case old == nil:
			opened = append(opened, plannedFinding{key, rec})
		case changed:
			rewritten = append(rewritten, plannedFinding{key, rec})
		}
	}
	// What it did not see: resolved if the job could have seen it, else
	// carried over, so that each job's set and counts are the cluster's
	// whole posture.
	unassessed := map[string]bool{}
	for _, na := range done.NotAssessable {
		unassessed[na.CheckId] = true
	}
	incomplete := len(done.Problems) > 0
	var resolve [][]byte
	for key, old := range stored {
		if _, ok := seen.byKey[key]; ok || old.resolved.Valid {
			continue
		}
		rec := old.rec
		if incomplete || !store.SpecCovers(scan.Spec, rec) || unassessed[rec.CheckId] {
			fps = append(fps, key)
			count(rec.CheckId, rec.Severity, rec.SuppressionReason, rec.Resource, rec.ResponsibleParty)
			continue
		}
		resolve = append(resolve, slices.Clone(key[:]))
	}
	slices.SortFunc(fps, func(a, b fp) int { return bytes.Compare(a[:], b[:]) })

	if err := insertFindingsTx(ctx, tx, cluster.Seq, opened); err != nil {
		return false, err
	}
	if err := upsertFindingsTx(ctx, tx, cluster.Seq, rewritten); err != nil {
		return false, err
	}
	if len(resolve) > 0 {
		// A resolved lifecycle was last seen by the cluster's previous job.
		_, err := tx.Exec(ctx, `UPDATE findings SET resolved_at = $3, last_seen_at = $4, last_scan_id = $5
			WHERE cluster_seq = $1 AND fingerprint = ANY($2)`,
			int64(cluster.Seq), resolve, msTime(now), msTime(cluster.LastJobMs), nullUUID(cluster.LastScanId))
		if err != nil {
			return false, fmt.Errorf("resolve findings of %q: %w", cluster.Id, err)
		}
	}

	// The fingerprint set, as a delta from the cluster's previous job's.
	var base []fp
	var baseID ulid.ULID
	depth := 0
	if len(cluster.LastJobId) == len(baseID) {
		copy(baseID[:], cluster.LastJobId)
		// Locked (KEY SHARE) so that Compact, which locks the table before
		// it drops sets, cannot drop the base under the delta written here.
		base, depth, err = getSetTx(ctx, tx, baseID, true)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return false, err
		}
	}
	if db.afterBaseRead != nil {
		db.afterBaseRead()
	}
	encoded := store.EncodeSet(fps, baseID, base, depth)
	var baseCol pgtype.UUID
	if b, ok := store.SetDelta(encoded); ok {
		baseCol = idUUID(b)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO job_fingerprints (job_id, base_job_id, encoded) VALUES ($1, $2, $3)`,
		idUUID(jobID), baseCol, encoded); err != nil {
		return false, fmt.Errorf("fingerprints of job %s: %w", jobID, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO summaries (cluster_seq, finish_at, job_id, critical, high, medium, low, info, suppressed, objects)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		int64(cluster.Seq), msTime(now), idUUID(jobID), tally.Counts.Critical, tally.Counts.High, tally.Counts.Medium, tally.Counts.Low, tally.Counts.Info,
		tally.Counts.Suppressed, done.ObjectsScanned); err != nil {
		return false, fmt.Errorf("summary of job %s: %w", jobID, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM staged_batches WHERE job_id = $1`, idUUID(jobID)); err != nil {
		return false, fmt.Errorf("staged batches of job %s: %w", jobID, err)
	}
	holder, err := holderScanTx(ctx, tx, jobID, scanID)
	if err != nil {
		return false, err
	}
	previousJob := cluster.LastJobId
	cluster.LastJobId, cluster.LastJobMs, cluster.LastScanId = jobID[:], now, holder[:]
	if _, err := tx.Exec(ctx, `UPDATE clusters SET last_job_id = $2, last_job_at = $3, last_scan_id = $4 WHERE id = $1`,
		cluster.Id, idUUID(jobID), msTime(now), idUUID(holder)); err != nil {
		return false, fmt.Errorf("cluster %q: %w", cluster.Id, err)
	}
	tally.Succeed(job, now, done)
	if err := putJobTx(ctx, tx, j); err != nil {
		return false, err
	}
	return db.outboxTx(ctx, tx, jobID, cluster.Id, func(cluster *storagev1.ClusterRecord) (store.JobEnded, error) {
		e := store.JobEnded{Cluster: cluster, JobID: jobID, Job: job, New: events}
		if len(previousJob) == 16 {
			prev, err := scanJob(tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs j WHERE j.id = $1`, idUUID(ulid.ULID(previousJob))))
			if err != nil {
				return e, fmt.Errorf("previous job of %q: %w", cluster.Id, err)
			}
			e.Previous = prev.Record
		}
		return e, nil
	})
}

// nullUUID is a record's 16-byte id as a column, NULL when it is not one.
func nullUUID(b []byte) pgtype.UUID {
	u, _ := bytesUUID(b)
	return u
}

// jobFindings are a job's findings deduplicated by fingerprint (the same
// object may be listed twice in a snapshot; the first is kept), in
// fingerprint order.
type jobFindings struct {
	byKey map[fp]*workerv1.Finding
	order []fp
}

// stagedFindingsTx reads a job's staged batches. Decoding and
// fingerprinting, most of the cost, run on every core, batch by batch.
func stagedFindingsTx(ctx context.Context, tx pgx.Tx, jobID ulid.ULID, clusterID string, done store.Completion) (*jobFindings, error) {
	rows, err := tx.Query(ctx, `SELECT batch FROM staged_batches WHERE job_id = $1 ORDER BY seq`, idUUID(jobID))
	if err != nil {
		return nil, fmt.Errorf("staged batches of job %s: %w", jobID, err)
	}
	raws, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("staged batches of job %s: %w", jobID, err)
	}
	type decoded struct {
		findings []*workerv1.Finding
		keys     []fp
	}
	batches := make([]decoded, len(raws))
	err = parallel(len(raws), func(i int) error {
		batch := &workerv1.FindingBatch{}
		if err := proto.Unmarshal(raws[i], batch); err != nil {
			return fmt.Errorf("staged batch of job %s: %w", jobID, err)
		}
		d := decoded{findings: batch.Findings, keys: make([]fp, len(batch.Findings))}
		for j, f := range batch.Findings {
			d.keys[j] = store.FindingFingerprint(clusterID, f)
		}
		batches[i] = d
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := &jobFindings{byKey: map[fp]*workerv1.Finding{}}
	var received int64
	// In order: of an object listed twice, the first is kept.
	for _, b := range batches {
		for j, f := range b.findings {
			received++
			if _, dup := out.byKey[b.keys[j]]; !dup {
				out.byKey[b.keys[j]] = f
				out.order = append(out.order, b.keys[j])
			}
		}
	}
	if received != done.Findings {
		return nil, fmt.Errorf("job %s: %d of %d findings stored: %w", jobID, received, done.Findings, store.ErrIncomplete)
	}
	slices.SortFunc(out.order, func(a, b fp) int { return bytes.Compare(a[:], b[:]) })
	return out, nil
}

// parallel runs fn(0) … fn(n-1) on GOMAXPROCS goroutines and returns their
// errors, joined. A worker stops at its first error.
func parallel(n int, fn func(i int) error) error {
	workers := min(runtime.GOMAXPROCS(0), n)
	var next atomic.Int64
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for errs[w] == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				errs[w] = fn(i)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// clusterFindingsTx reads every lifecycle of a cluster, records left
// encoded: most are seen again unchanged or stay resolved, and are
// decoded only to compare.
func clusterFindingsTx(ctx context.Context, tx pgx.Tx, seq uint64) (map[fp]*storedFinding, error) {
	rows, err := tx.Query(ctx, `SELECT `+findingSelect+` FROM findings f WHERE f.cluster_seq = $1`, int64(seq))
	if err != nil {
		return nil, fmt.Errorf("findings of cluster seq %d: %w", seq, err)
	}
	defer rows.Close()
	out := map[fp]*storedFinding{}
	for rows.Next() {
		f, err := scanFinding(rows)
		if err != nil {
			return nil, fmt.Errorf("findings of cluster seq %d: %w", seq, err)
		}
		out[f.key] = f
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("findings of cluster seq %d: %w", seq, err)
	}
	return out, nil
}

// plannedFinding is a lifecycle as CompleteJob will write it.
type plannedFinding struct {
	key fp
	rec *storagev1.FindingRecord
}

// copyThreshold: from this many lifecycles on, CompleteJob writes them by
// COPY; below, as statements of one pgx.Batch, which costs less than a
// COPY's set-up (and, for rewrites, its temporary table).
const copyThreshold = 256

// insertFindingsTx writes the lifecycles a job opened. None of them is
// stored (the cluster's row lock keeps other completions out, and only
// completions add lifecycles), so they are copied straight into findings;
// each row is encoded as COPY asks for it, so that encoding on this core
// overlaps PostgreSQL's inserting on another.
func insertFindingsTx(ctx context.Context, tx pgx.Tx, seq uint64, fs []plannedFinding) error {
	if len(fs) < copyThreshold {
		return upsertFindingsTx(ctx, tx, seq, fs)
	}
	i := 0
	rows := pgx.CopyFromFunc(func() ([]any, error) {
		if i == len(fs) {
			return nil, nil
		}
		i++
		return findingRow(seq, fs[i-1].key, fs[i-1].rec)
	})
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"findings"}, findingColumns, rows); err != nil {
		return fmt.Errorf("write findings: copy: %w", err)
	}
	return nil
}

// upsertFindingsTx writes lifecycles, replacing those of the same
// (cluster, fingerprint): many by COPY into a temporary table and one
// INSERT from it, few as statements.
func upsertFindingsTx(ctx context.Context, tx pgx.Tx, seq uint64, fs []plannedFinding) error {
	if len(fs) == 0 {
		return nil
	}
	rows := make([][]any, 0, len(fs))
	for _, f := range fs {
		row, err := findingRow(seq, f.key, f.rec)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	const set = `ON CONFLICT (cluster_seq, fingerprint) DO UPDATE SET check_id = EXCLUDED.check_id, severity = EXCLUDED.severity,
		category = EXCLUDED.category, party = EXCLUDED.party, namespace = EXCLUDED.namespace, first_seen_at = EXCLUDED.first_seen_at,
		last_seen_at = EXCLUDED.last_seen_at, resolved_at = EXCLUDED.resolved_at, last_scan_id = EXCLUDED.last_scan_id,
		suppressed = EXCLUDED.suppressed, detail = EXCLUDED.detail`
	if len(rows) < copyThreshold {
		b := &pgx.Batch{}
		for _, r := range rows {
			b.Queue(`INSERT INTO findings (cluster_seq, fingerprint, check_id, severity, category, party, namespace,
				first_seen_at, last_seen_at, resolved_at, last_scan_id, suppressed, detail)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) `+set, r...)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("write findings: %w", err)
		}
		return nil
	}
	// Kept for the session and emptied at each commit: creating it in
	// every transaction would write the catalog each time.
	if _, err := tx.Exec(ctx, `CREATE TEMPORARY TABLE IF NOT EXISTS findings_in (LIKE findings) ON COMMIT DELETE ROWS`); err != nil {
		return fmt.Errorf("write findings: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"findings_in"}, findingColumns, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("write findings: copy: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO findings SELECT * FROM findings_in `+set); err != nil {
		return fmt.Errorf("write findings: %w", err)
	}
	return nil
}

// exceptionsTx reads the exceptions not deleted.
func exceptionsTx(ctx context.Context, q querier) ([]*fleetscanv1.Exception, error) {
	return queryExceptions(ctx, q, "exceptions", `SELECT `+exceptionColumns+` FROM exceptions WHERE delete_at IS NULL`, nil)
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// holderScanTx returns the scan a finished job's findings are attributed
// to: the scan that created it, unless that scan cancelled it while
// another that joined it kept it (the first of those, in id order).
func holderScanTx(ctx context.Context, tx pgx.Tx, jobID, own ulid.ULID) (ulid.ULID, error) {
	var holder pgtype.UUID
	err := tx.QueryRow(ctx, `SELECT scan_id FROM scan_jobs WHERE job_id = $1 AND NOT cancelled
		ORDER BY scan_id = $2 DESC, scan_id LIMIT 1`, idUUID(jobID), idUUID(own)).Scan(&holder)
	if errors.Is(err, pgx.ErrNoRows) {
		return own, nil
	}
	if err != nil {
		return own, fmt.Errorf("scans of job %s: %w", jobID, err)
	}
	return ulid.ULID(holder.Bytes), nil
}

// getSetTx reads a job's fingerprint set, sorted, and its delta depth;
// lock takes a KEY SHARE lock of the row read first (see CompleteJob).
func getSetTx(ctx context.Context, q querier, jobID ulid.ULID, lock bool) ([]fp, int, error) {
	sql := `SELECT encoded FROM job_fingerprints WHERE job_id = $1`
	if lock {
		sql += ` FOR KEY SHARE`
	}
	var v []byte
	err := q.QueryRow(ctx, sql, idUUID(jobID)).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, fmt.Errorf("fingerprints of job %s: %w", jobID, store.ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("fingerprints of job %s: %w", jobID, err)
	}
	return store.DecodeSet(v, func(base ulid.ULID) ([]fp, int, error) { return getSetTx(ctx, q, base, false) })
}

// findingKey reads a key of ListFindings.
func findingKey(b []byte) (seq int64, key fp, err error) {
	if len(b) != 8+len(key) {
		return 0, key, fmt.Errorf("finding page key of %d bytes, want %d", len(b), 8+len(key))
	}
	copy(key[:], b[8:])
	return int64(binary.BigEndian.Uint64(b[:8])), key, nil
}

// ListFindings returns up to limit findings matching f, in (cluster seq,
// fingerprint) order, starting after the key `after`; next is the key to
// resume after, nil on the last page. Keys are the bbolt store's: the
// cluster's seq and the fingerprint. The filters on columns are the
// query's; the exceptions and the reader's scope are applied in Go, as
// they are rules of the store's (store.Exceptions, f.Visible), so rows are
// read in chunks until the page is full. A limit below 1 lists nothing.
func (db *DB) ListFindings(ctx context.Context, f store.FindingFilter, after []byte, limit int) (out []store.FindingView, next []byte, err error) {
	if limit < 1 {
		return nil, nil, nil
	}
	err = db.readTx(ctx, func(tx pgx.Tx) error {
		clusters := map[int64]*storagev1.ClusterRecord{}
		clusterOf := func(seq int64) (*storagev1.ClusterRecord, error) {
			if c, ok := clusters[seq]; ok {
				return c, nil
			}
			c, err := scanCluster(tx.QueryRow(ctx, `SELECT `+clusterColumns+` FROM clusters c WHERE c.seq = $1`, seq))
			if err != nil {
				return nil, fmt.Errorf("cluster of seq %d: %w", seq, err)
			}
			clusters[seq] = c
			return c, nil
		}
		var where []string
		var args []any
		arg := func(v any) string {
			args = append(args, v)
			return fmt.Sprintf("$%d", len(args))
		}
		// $1 and $2: where the chunk starts.
		args = append(args, int64(-1), []byte{})
		if f.ClusterID != "" {
			// A cluster that is not there, or not the reader's, is an
			// error, alike: "no findings" would tell a pipeline with a
			// mistyped id that all is well.
			c, err := scanCluster(tx.QueryRow(ctx, `SELECT `+clusterColumns+` FROM clusters c WHERE c.id = $1`, f.ClusterID))
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("cluster %q: %w", f.ClusterID, store.ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("cluster %q: %w", f.ClusterID, err)
			}
			if f.Visible != nil {
				if ok, _ := f.Visible(c); !ok {
					return fmt.Errorf("cluster %q: %w", f.ClusterID, store.ErrNotFound)
				}
			}
			clusters[int64(c.Seq)] = c
			where = append(where, "f.cluster_seq = "+arg(int64(c.Seq)))
		}
		if f.Visible != nil && f.ClusterID == "" {
			// The reader's clusters, in SQL: a tenant's page then costs one
			// query of the clusters, not one query per cluster it may not
			// see (bbolt skips those with a seek each).
			all, err := keptClustersTx(ctx, tx, func(c *storagev1.ClusterRecord) bool { ok, _ := f.Visible(c); return ok })
			if err != nil {
				return err
			}
			seqs := seqsOf(all)
			for i, c := range all {
				clusters[seqs[i]] = c
			}
			where = append(where, "f.cluster_seq = ANY("+arg(seqs)+")")
		}
		if f.MinSeverity != 0 {
			where = append(where, "f.severity >= "+arg(int16(f.MinSeverity)))
		}
		if f.CheckID != "" {
			where = append(where, "f.check_id = "+arg(f.CheckID))
		}
		if f.Namespace != "" {
			where = append(where, "f.namespace = "+arg(f.Namespace))
		}
		if f.Category != "" {
			where = append(where, "f.category = "+arg(f.Category))
		}
		if f.Party != 0 {
			where = append(where, "f.party = "+arg(int16(f.Party)))
		}
		if f.FirstSeenAfterMs != 0 {
			where = append(where, "f.first_seen_at >= "+arg(time.UnixMilli(f.FirstSeenAfterMs)))
		}
		if f.FirstSeenBeforeMs != 0 {
			where = append(where, "f.first_seen_at < "+arg(time.UnixMilli(f.FirstSeenBeforeMs)))
		}
		switch f.Status {
		case fleetscanv1.FindingStatus_FINDING_STATUS_RESOLVED:
			where = append(where, "f.resolved_at IS NOT NULL")
		case fleetscanv1.FindingStatus_FINDING_STATUS_SUPPRESSED:
			where = append(where, "f.resolved_at IS NULL")
		default:
			// An exception may still suppress it: that is Go's to say.
			where = append(where, "f.resolved_at IS NULL AND NOT f.suppressed")
		}
		chunk := min(max(limit+1, 64), 1000)
		sql := `SELECT ` + findingSelect + ` FROM findings f WHERE (f.cluster_seq, f.fingerprint) > ($1, $2)`
		for _, w := range where {
			sql += " AND " + w
		}
		sql += " ORDER BY f.cluster_seq, f.fingerprint LIMIT " + arg(chunk)

		all, err := exceptionsTx(ctx, tx)
		if err != nil {
			return err
		}
		active := store.ActiveExceptions(all, db.nowMs()).ForReader(f.Reader)
		if after != nil {
			seq, key, err := findingKey(after)
			if err != nil {
				return err
			}
			args[0], args[1] = seq, key[:]
		}
		var seqs []int64 // of the views in out, for the next key
		for {
			rows, err := tx.Query(ctx, sql, args...)
			if err != nil {
				return fmt.Errorf("list findings: %w", err)
			}
			found, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*storedFinding, error) { return scanFinding(row) })
			if err != nil {
				return fmt.Errorf("list findings: %w", err)
			}
			skipped := false
			for _, sf := range found {
				args[0], args[1] = sf.seq, sf.key[:]
				cluster, err := clusterOf(sf.seq)
				if err != nil {
					return err
				}
				var namespaces []string
				if f.Visible != nil {
					var ok bool
					if ok, namespaces = f.Visible(cluster); !ok {
						// Skip the whole cluster: the next chunk starts
						// after any fingerprint of it.
						args[1] = bytes.Repeat([]byte{0xff}, len(sf.key)+1)
						skipped = true
						break
					}
				}
				rec, err := sf.record()
				if err != nil {
					return err
				}
				exception := active.Apply(cluster, rec)
				if !f.Matches(rec) || (namespaces != nil && !slices.Contains(namespaces, rec.GetResource().GetNamespace())) {
					continue
				}
				if len(out) == limit {
					next = store.FindingKey(uint64(seqs[len(seqs)-1]), out[len(out)-1].Fingerprint)
					return nil
				}
				view := store.NewFindingView(uint64(sf.seq), sf.key, rec, cluster)
				view.ExceptionID = exception
				out = append(out, view)
				seqs = append(seqs, sf.seq)
			}
			if !skipped && len(found) < chunk {
				return nil
			}
		}
	})
	return out, next, err
}
