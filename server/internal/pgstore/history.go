package pgstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/oklog/ulid/v2"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// GetFinding returns one finding of a cluster with the scans of the
// cluster that ran while it was open, newest first, at most limit of them,
// and how many there are in all. reader is the reading tenant, "" for an
// operator: which exceptions apply.
func (db *DB) GetFinding(ctx context.Context, clusterID string, fingerprint [16]byte, limit int, reader string) (store.FindingView, []store.Sighting, int, error) {
	var view store.FindingView
	var sightings []store.Sighting
	total := 0
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		cluster, err := scanCluster(tx.QueryRow(ctx, `SELECT `+clusterColumns+` FROM clusters c WHERE c.id = $1`, clusterID))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("finding: %w", store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("finding: cluster %q: %w", clusterID, err)
		}
		sf, err := scanFinding(tx.QueryRow(ctx, `SELECT `+findingSelect+` FROM findings f WHERE f.cluster_seq = $1 AND f.fingerprint = $2`,
			int64(cluster.Seq), fingerprint[:]))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("finding: %w", store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("finding %x: %w", fingerprint, err)
		}
		rec, err := sf.record()
		if err != nil {
			return err
		}
		all, err := exceptionsTx(ctx, tx)
		if err != nil {
			return err
		}
		exception := store.ActiveExceptions(all, db.nowMs()).ForReader(reader).Apply(cluster, rec)
		view = store.NewFindingView(cluster.Seq, fingerprint, rec, cluster)
		view.ExceptionID = exception
		intervals := append(slices.Clone(rec.History), &storagev1.Interval{FirstSeenMs: rec.FirstSeenMs, LastSeenMs: view.LastSeenMs, ResolvedMs: rec.ResolvedMs})
		// Only the summaries within the finding's intervals are read; the
		// exact rule (store.OpenAt) is applied to them in Go.
		from := rec.FirstSeenMs
		for _, iv := range rec.History {
			from = min(from, iv.FirstSeenMs)
		}
		rows, err := tx.Query(ctx, `SELECT s.finish_at, j.scan_id FROM summaries s JOIN jobs j ON j.id = s.job_id
			WHERE s.cluster_seq = $1 AND s.finish_at >= $2 ORDER BY s.finish_at DESC, s.job_id DESC`, int64(cluster.Seq), time.UnixMilli(from))
		if err != nil {
			return fmt.Errorf("sightings of finding %x: %w", fingerprint, err)
		}
		defer rows.Close()
		for rows.Next() {
			var finish time.Time
			var scanID pgtype.UUID
			if err := rows.Scan(&finish, &scanID); err != nil {
				return fmt.Errorf("sightings of finding %x: %w", fingerprint, err)
			}
			if !store.OpenAt(intervals, finish.UnixMilli()) {
				continue
			}
			total++
			if len(sightings) < limit {
				sightings = append(sightings, store.Sighting{ScanID: ulid.ULID(scanID.Bytes), FinishMs: finish.UnixMilli()})
			}
		}
		return rows.Err()
	})
	if err != nil {
		return store.FindingView{}, nil, 0, err
	}
	return view, sightings, total, nil
}

// scopedScanTx reads a scan with only the jobs of the clusters keep
// selects (all when nil); store.ErrNotFound when none is left.
func scopedScanTx(ctx context.Context, tx pgx.Tx, id ulid.ULID, keep func(*storagev1.ClusterRecord) bool) (*store.Scan, error) {
	scan, err := getScanTx(ctx, tx, id)
	if err != nil || keep == nil {
		return scan, err
	}
	// The scan's clusters in one query: a fleet scan has a thousand.
	rows, err := tx.Query(ctx, `SELECT `+clusterColumns+` FROM clusters c
		WHERE c.id IN (SELECT cluster_id FROM scan_jobs WHERE scan_id = $1)`, idUUID(id))
	if err != nil {
		return nil, fmt.Errorf("clusters of scan %s: %w", id, err)
	}
	kept := map[string]bool{}
	for rows.Next() {
		c, err := scanCluster(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("clusters of scan %s: %w", id, err)
		}
		kept[c.Id] = keep(c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clusters of scan %s: %w", id, err)
	}
	var jobs []store.Job
	for _, j := range scan.Jobs {
		if kept[j.Record.ClusterId] {
			jobs = append(jobs, j)
		}
	}
	if len(jobs) == 0 {
		return nil, store.ErrNotFound
	}
	scan.Jobs = jobs
	return scan, nil
}

// DiffScans compares the jobs of one cluster in two scans. An empty
// clusterID means the one cluster both scans cover; store.ErrAmbiguous
// when there are several. keep, if not nil, is the reader's scope: jobs of
// other clusters are not there for it, and a scan with none of its
// clusters is not found.
func (db *DB) DiffScans(ctx context.Context, baseScan, headScan ulid.ULID, clusterID string, keep func(*storagev1.ClusterRecord) bool) (*store.Diff, error) {
	d := &store.Diff{}
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		// A fleet scan has a thousand jobs, and a diff needs one cluster's
		// two: when the cluster is named, the reader may see it and both
		// scans hold a job of it that they did not let go of, read those
		// alone. Anything else takes the whole scans, whose errors say
		// exactly what is missing.
		if clusterID != "" {
			bj, hj, ok, err := diffJobsTx(ctx, tx, baseScan, headScan, clusterID, keep)
			if err != nil {
				return err
			}
			if ok {
				d.ClusterID = clusterID
				return diffJobsOfTx(ctx, tx, d, bj, hj)
			}
		}
		base, err := scopedScanTx(ctx, tx, baseScan, keep)
		if err != nil {
			return fmt.Errorf("scan %s: %w", baseScan, err)
		}
		head, err := scopedScanTx(ctx, tx, headScan, keep)
		if err != nil {
			return fmt.Errorf("scan %s: %w", headScan, err)
		}
		if clusterID == "" {
			var common []string
			for _, j := range base.Jobs {
				if slices.ContainsFunc(head.Jobs, func(h store.Job) bool { return h.Record.ClusterId == j.Record.ClusterId }) {
					common = append(common, j.Record.ClusterId)
				}
			}
			if len(common) != 1 {
				return fmt.Errorf("%w: the scans share %d clusters; name one", store.ErrAmbiguous, len(common))
			}
			clusterID = common[0]
		}
		d.ClusterID = clusterID
		jobOf := func(scan *store.Scan) (store.Job, error) {
			for _, j := range scan.Jobs {
				if j.Record.ClusterId == clusterID {
					if j.Record.State != fleetscanv1.JobState_JOB_STATE_SUCCEEDED {
						return j, fmt.Errorf("scan %s of cluster %q is %s: %w", scan.ID, clusterID, j.Record.State, store.ErrConflict)
					}
					return j, nil
				}
			}
			return store.Job{}, fmt.Errorf("scan %s of cluster %q: %w", scan.ID, clusterID, store.ErrNotFound)
		}
		bj, err := jobOf(base)
		if err != nil {
			return err
		}
		hj, err := jobOf(head)
		if err != nil {
			return err
		}
		return diffJobsOfTx(ctx, tx, d, bj, hj)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// diffJobsTx reads the jobs of one cluster in two scans, when the reader
// may see the cluster and both scans hold a succeeded job of it that they
// did not let go of; ok is false otherwise.
func diffJobsTx(ctx context.Context, tx pgx.Tx, baseScan, headScan ulid.ULID, clusterID string, keep func(*storagev1.ClusterRecord) bool) (base, head store.Job, ok bool, err error) {
	if keep != nil {
		c, err := scanCluster(tx.QueryRow(ctx, `SELECT `+clusterColumns+` FROM clusters c WHERE c.id = $1`, clusterID))
		if errors.Is(err, pgx.ErrNoRows) {
			return base, head, false, nil
		}
		if err != nil {
			return base, head, false, fmt.Errorf("cluster %q: %w", clusterID, err)
		}
		if !keep(c) {
			return base, head, false, nil
		}
	}
	jobs := make([]store.Job, 0, 2)
	for _, scan := range []ulid.ULID{baseScan, headScan} {
		var cancelled bool
		j, err := scanJob(cancelledRow{tx.QueryRow(ctx, `SELECT sj.cancelled, `+jobColumns+` FROM scan_jobs sj JOIN jobs j ON j.id = sj.job_id
			WHERE sj.scan_id = $1 AND sj.cluster_id = $2`, idUUID(scan), clusterID), &cancelled})
		if errors.Is(err, pgx.ErrNoRows) {
			return base, head, false, nil
		}
		if err != nil {
			return base, head, false, fmt.Errorf("scan %s of cluster %q: %w", scan, clusterID, err)
		}
		if cancelled || j.Record.State != fleetscanv1.JobState_JOB_STATE_SUCCEEDED {
			return base, head, false, nil
		}
		jobs = append(jobs, j)
	}
	return jobs[0], jobs[1], true, nil
}

// diffJobsOfTx fills d with the difference between two succeeded jobs of
// d's cluster.
func diffJobsOfTx(ctx context.Context, tx pgx.Tx, d *store.Diff, bj, hj store.Job) error {
	d.BaseJob, d.HeadJob = bj.ID, hj.ID
	bset, _, err := getSetTx(ctx, tx, bj.ID, false)
	if err != nil {
		return err
	}
	hset, _, err := getSetTx(ctx, tx, hj.ID, false)
	if err != nil {
		return err
	}
	added, removed := store.DiffSorted(bset, hset)
	d.UnchangedCount = len(hset) - len(added)
	cluster, err := scanCluster(tx.QueryRow(ctx, `SELECT `+clusterColumns+` FROM clusters c WHERE c.id = $1`, d.ClusterID))
	if err != nil {
		return fmt.Errorf("cluster %q: %w", d.ClusterID, err)
	}
	if d.New, err = findingViewsTx(ctx, tx, cluster, added); err != nil {
		return err
	}
	d.Resolved, err = findingViewsTx(ctx, tx, cluster, removed)
	return err
}

// findingViewsTx reads the lifecycles of a cluster's fingerprints, in
// their order; each must be there.
func findingViewsTx(ctx context.Context, tx pgx.Tx, cluster *storagev1.ClusterRecord, fps []fp) ([]store.FindingView, error) {
	if len(fps) == 0 {
		return nil, nil
	}
	keys := make([][]byte, len(fps))
	for i := range fps {
		keys[i] = fps[i][:]
	}
	rows, err := tx.Query(ctx, `SELECT `+findingSelect+` FROM findings f WHERE f.cluster_seq = $1 AND f.fingerprint = ANY($2)`, int64(cluster.Seq), keys)
	if err != nil {
		return nil, fmt.Errorf("findings of %q: %w", cluster.Id, err)
	}
	found, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*storedFinding, error) { return scanFinding(row) })
	if err != nil {
		return nil, fmt.Errorf("findings of %q: %w", cluster.Id, err)
	}
	byKey := make(map[fp]*storedFinding, len(found))
	for _, f := range found {
		byKey[f.key] = f
	}
	out := make([]store.FindingView, 0, len(fps))
	for _, key := range fps {
		sf := byKey[key]
		if sf == nil {
			return nil, fmt.Errorf("finding %x: %w", key, store.ErrNotFound)
		}
		rec, err := sf.record()
		if err != nil {
			return nil, err
		}
		out = append(out, store.NewFindingView(cluster.Seq, key, rec, cluster))
	}
	return out, nil
}

// keptClustersTx reads every cluster that keep accepts, in id order
// (bytes, as bbolt's keys).
func keptClustersTx(ctx context.Context, q querier, keep func(*storagev1.ClusterRecord) bool) ([]*storagev1.ClusterRecord, error) {
	rows, err := q.Query(ctx, `SELECT `+clusterColumns+` FROM clusters c ORDER BY c.id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("clusters: %w", err)
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*storagev1.ClusterRecord, error) { return scanCluster(row) })
	if err != nil {
		return nil, fmt.Errorf("clusters: %w", err)
	}
	out := all[:0]
	for _, c := range all {
		if keep(c) {
			out = append(out, c)
		}
	}
	return out, nil
}

func seqsOf(clusters []*storagev1.ClusterRecord) []int64 {
	out := make([]int64, len(clusters))
	for i, c := range clusters {
		out[i] = int64(c.Seq)
	}
	return out
}

const summaryColumns = `s.cluster_seq, s.finish_at, s.job_id, s.critical, s.high, s.medium, s.low, s.info, s.suppressed, s.objects`

// scanSummary reads a row of summaryColumns.
func scanSummary(row pgx.Row) (int64, store.Summary, error) {
	var (
		seq    int64
		finish time.Time
		job    pgtype.UUID
		c      fleetscanv1.SeverityCounts
		s      store.Summary
	)
	if err := row.Scan(&seq, &finish, &job, &c.Critical, &c.High, &c.Medium, &c.Low, &c.Info, &c.Suppressed, &s.Objects); err != nil {
		return 0, s, err
	}
	s.JobID, s.FinishMs, s.Counts = ulid.ULID(job.Bytes), finish.UnixMilli(), &c
	return seq, s, nil
}

// summariesBeforeTx returns, of each cluster seq, the summary of its
// latest job that ended strictly before at (+infinity when at is).
func summariesBeforeTx(ctx context.Context, q querier, seqs []int64, at pgtype.Timestamptz) (map[int64]store.Summary, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT ON (s.cluster_seq) `+summaryColumns+` FROM summaries s
		WHERE s.cluster_seq = ANY($1) AND s.finish_at < $2 ORDER BY s.cluster_seq, s.finish_at DESC, s.job_id DESC`, seqs, at)
	if err != nil {
		return nil, fmt.Errorf("summaries: %w", err)
	}
	defer rows.Close()
	out := map[int64]store.Summary{}
	for rows.Next() {
		seq, s, err := scanSummary(rows)
		if err != nil {
			return nil, fmt.Errorf("summaries: %w", err)
		}
		out[seq] = s
	}
	return out, rows.Err()
}

// Histories returns, for every cluster that keep accepts, its summaries
// since sinceMs, oldest first, and the latest before it. Two queries in
// all, whatever the number of clusters.
func (db *DB) Histories(ctx context.Context, keep func(*storagev1.ClusterRecord) bool, sinceMs int64) ([]store.ClusterHistory, error) {
	var out []store.ClusterHistory
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		clusters, err := keptClustersTx(ctx, tx, keep)
		if err != nil {
			return err
		}
		seqs := seqsOf(clusters)
		// bbolt compares the time as an unsigned key: a negative since
		// sorts after every summary, so the period holds none of them.
		since := pgtype.Timestamptz{Time: time.UnixMilli(sinceMs), Valid: true}
		if sinceMs < 0 {
			since = pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
		}
		before, err := summariesBeforeTx(ctx, tx, seqs, since)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+summaryColumns+` FROM summaries s
			WHERE s.cluster_seq = ANY($1) AND s.finish_at >= $2 ORDER BY s.cluster_seq, s.finish_at, s.job_id`, seqs, since)
		if err != nil {
			return fmt.Errorf("summaries: %w", err)
		}
		defer rows.Close()
		in := map[int64][]store.Summary{}
		for rows.Next() {
			seq, s, err := scanSummary(rows)
			if err != nil {
				return fmt.Errorf("summaries: %w", err)
			}
			in[seq] = append(in[seq], s)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("summaries: %w", err)
		}
		for _, c := range clusters {
			h := store.ClusterHistory{Cluster: c, Summaries: in[int64(c.Seq)]}
			if s, ok := before[int64(c.Seq)]; ok {
				h.Before = &s
			}
			out = append(out, h)
		}
		return nil
	})
	return out, err
}

// SummariesBefore returns, for every cluster that keep accepts and that
// had a job end before atMs, the summary of the latest such job.
func (db *DB) SummariesBefore(ctx context.Context, keep func(*storagev1.ClusterRecord) bool, atMs int64) (map[string]store.Summary, error) {
	out := map[string]store.Summary{}
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		clusters, err := keptClustersTx(ctx, tx, keep)
		if err != nil {
			return err
		}
		before, err := summariesBeforeTx(ctx, tx, seqsOf(clusters), msTimeValid(max(atMs, 0)))
		if err != nil {
			return err
		}
		for _, c := range clusters {
			if s, ok := before[int64(c.Seq)]; ok {
				out[c.Id] = s
			}
		}
		return nil
	})
	return out, err
}

// msTimeValid is ms as a column, 0 included.
func msTimeValid(ms int64) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: time.UnixMilli(ms), Valid: true}
}

// LatestJobs returns every cluster that keep accepts with its latest
// succeeded job, in cluster id order.
func (db *DB) LatestJobs(ctx context.Context, keep func(*storagev1.ClusterRecord) bool) ([]store.Latest, error) {
	var out []store.Latest
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		clusters, err := keptClustersTx(ctx, tx, keep)
		if err != nil {
			return err
		}
		var ids []pgtype.UUID
		for _, c := range clusters {
			if len(c.LastJobId) == 16 {
				ids = append(ids, nullUUID(c.LastJobId))
			}
		}
		// By cluster: a cluster's latest job is its own (a foreign key).
		jobs := map[string]*storagev1.JobRecord{}
		if len(ids) > 0 {
			rows, err := tx.Query(ctx, `SELECT `+jobColumns+` FROM jobs j WHERE j.id = ANY($1)`, ids)
			if err != nil {
				return fmt.Errorf("latest jobs: %w", err)
			}
			defer rows.Close()
			for rows.Next() {
				j, err := scanJob(rows)
				if err != nil {
					return fmt.Errorf("latest jobs: %w", err)
				}
				jobs[j.Record.ClusterId] = j.Record
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("latest jobs: %w", err)
			}
		}
		for _, c := range clusters {
			l := store.Latest{Cluster: c}
			if len(c.LastJobId) == 16 {
				if l.Job = jobs[c.Id]; l.Job == nil {
					return fmt.Errorf("latest job %x of %q: missing", c.LastJobId, c.Id)
				}
			}
			out = append(out, l)
		}
		return nil
	})
	return out, err
}

// ClustersVersion changes whenever a clusters row is written and
// committed (a cluster registered or changed, a worker connecting, a job
// succeeding), by any replica: it is a hash of the count and the xmin
// (the writing transaction's id) of every row, which a committed insert,
// update or delete changes and an uncommitted one does not. It costs one
// aggregate over clusters (0.28 ms a call over a thousand, round trip
// included), run at each call: the metrics cache calls it once a
// scrape. It takes no context, as the bbolt store's; the query has 5
// seconds. When the query fails it returns a value no call returned
// before, so that a cache reads again rather than trusting a stale
// version.
func (db *DB) ClustersVersion() uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n, sum int64
	err := db.pool.QueryRow(ctx, `SELECT count(*), COALESCE(sum(xmin::text::bigint), 0)::bigint FROM clusters`).Scan(&n, &sum)
	if err != nil {
		return 1<<63 | versionMisses.Add(1)
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%d", n, sum)
	return h.Sum64() &^ (1 << 63)
}

// versionMisses numbers ClustersVersion's failures (the top bit set keeps
// them apart from hashes).
var versionMisses atomic.Uint64

// Compact applies the retention: it drops the fingerprint sets of jobs
// that ended before cutoffMs and the lifecycles of findings resolved
// before it, keeping every job summary. A kept set that is a delta from a
// dropped one is rewritten in full first (the foreign key from a delta to
// its base refuses otherwise). It returns how many sets and lifecycles it
// dropped.
func (db *DB) Compact(ctx context.Context, cutoffMs int64) (int, error) {
	sets, err := db.compactSets(ctx, cutoffMs)
	if err != nil {
		return sets, err
	}
	lifecycles, err := db.compactResolved(ctx, cutoffMs)
	return sets + lifecycles, err
}

func (db *DB) compactSets(ctx context.Context, cutoffMs int64) (int, error) {
	dropped := 0
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		// EXCLUSIVE: reads go on, but no CompleteJob writes a set, nor
		// holds the KEY SHARE lock of the base it is writing a delta from,
		// until the sets to drop are gone: none is dropped under a new
		// delta.
		if _, err := tx.Exec(ctx, `LOCK TABLE job_fingerprints IN EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("compact sets: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT f.job_id FROM job_fingerprints f JOIN summaries s ON s.job_id = f.job_id
			WHERE s.finish_at < $1`, msTimeValid(max(cutoffMs, 0)))
		if err != nil {
			return fmt.Errorf("compact sets: %w", err)
		}
		old, err := pgx.CollectRows(rows, pgx.RowTo[pgtype.UUID])
		if err != nil {
			return fmt.Errorf("compact sets: %w", err)
		}
		if len(old) == 0 {
			return nil
		}
		// The kept deltas from a dropped set: in full first.
		rows, err = tx.Query(ctx, `SELECT job_id FROM job_fingerprints WHERE base_job_id = ANY($1) AND NOT job_id = ANY($1)`, old)
		if err != nil {
			return fmt.Errorf("compact sets: %w", err)
		}
		keep, err := pgx.CollectRows(rows, pgx.RowTo[pgtype.UUID])
		if err != nil {
			return fmt.Errorf("compact sets: %w", err)
		}
		for _, id := range keep {
			full, _, err := getSetTx(ctx, tx, ulid.ULID(id.Bytes), false)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE job_fingerprints SET base_job_id = NULL, encoded = $2 WHERE job_id = $1`,
				id, store.EncodeSet(full, ulid.ULID{}, nil, 0)); err != nil {
				return fmt.Errorf("compact sets: rewrite %s: %w", ulid.ULID(id.Bytes), err)
			}
		}
		tag, err := tx.Exec(ctx, `DELETE FROM job_fingerprints WHERE job_id = ANY($1)`, old)
		if err != nil {
			return fmt.Errorf("compact sets: %w", err)
		}
		dropped = int(tag.RowsAffected())
		return nil
	})
	if err != nil {
		return 0, err
	}
	return dropped, nil
}

// compactResolved deletes lifecycles resolved before cutoffMs, a bounded
// number per transaction, as the bbolt store, so that no transaction holds
// many row locks for long.
func (db *DB) compactResolved(ctx context.Context, cutoffMs int64) (int, error) {
	const perTx = 10000
	dropped := 0
	for {
		tag, err := db.pool.Exec(ctx, `DELETE FROM findings WHERE (cluster_seq, fingerprint) IN (
			SELECT cluster_seq, fingerprint FROM findings WHERE resolved_at < $1 LIMIT $2)`, msTimeValid(max(cutoffMs, 0)), perTx)
		if err != nil {
			return dropped, fmt.Errorf("compact lifecycles: %w", err)
		}
		n := int(tag.RowsAffected())
		dropped += n
		if n < perTx || ctx.Err() != nil {
			return dropped, nil
		}
	}
}
