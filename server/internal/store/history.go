package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/oklog/ulid/v2"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// ErrAmbiguous: a request that needs one cluster matches several.
var ErrAmbiguous = errors.New("ambiguous")

// Sighting is a scan of a cluster during which a finding was open.
type Sighting struct {
	ScanID   ulid.ULID
	FinishMs int64
}

// GetFinding returns one finding of a cluster with the scans of the
// cluster that ran while it was open, newest first, at most limit of them,
// and how many there are in all.
// reader is the reading tenant, "" for an operator: which exceptions apply.
func (s *DB) GetFinding(_ context.Context, clusterID string, fingerprint [fpSize]byte, limit int, reader string) (FindingView, []Sighting, int, error) {
	var view FindingView
	var sightings []Sighting
	total := 0
	err := s.view(func(tx *txn) error {
		cluster := &storagev1.ClusterRecord{}
		if err := getProto(tx.bucket(bucketClusters), []byte(clusterID), cluster); err != nil {
			return fmt.Errorf("finding: %w", err)
		}
		key := append(u64(cluster.Seq), fingerprint[:]...)
		rec := &storagev1.FindingRecord{}
		if err := s.codec.getFinding(tx.bucket(bucketFindings), key, rec); err != nil {
			return fmt.Errorf("finding: %w", err)
		}
		active, err := activeExceptionsTx(tx, s.nowMs())
		if err != nil {
			return err
		}
		exception := active.forReader(reader).apply(cluster, rec)
		view = viewOf(key, rec, cluster)
		view.ExceptionID = exception
		intervals := append(slices.Clone(rec.History), &storagev1.Interval{FirstSeenMs: rec.FirstSeenMs, LastSeenMs: view.LastSeenMs, ResolvedMs: rec.ResolvedMs})
		jobs := tx.bucket(bucketJobs)
		c := tx.bucket(bucketSummaries).Cursor()
		prefix := u64(cluster.Seq)
		// Newest first: walk the cluster's summaries backwards.
		k, _ := c.Seek(u64(cluster.Seq + 1))
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
			finish := int64(binaryUint64(k[8:16]))
			if !openAt(intervals, finish) {
				continue
			}
			total++
			if len(sightings) >= limit {
				continue
			}
			job := &storagev1.JobRecord{}
			if err := getRef(jobs, k[16:], job, "a summary"); err != nil {
				return fmt.Errorf("job of summary %x: %w", k, err)
			}
			var scanID ulid.ULID
			copy(scanID[:], job.ScanId)
			sightings = append(sightings, Sighting{ScanID: scanID, FinishMs: finish})
		}
		return nil
	})
	return view, sightings, total, err
}

// openAt reports whether a scan that ended at t saw the finding: t falls
// in one of its open intervals (from first seen up to, not including, the
// scan that resolved it).
func openAt(intervals []*storagev1.Interval, t int64) bool {
	for _, iv := range intervals {
		if t >= iv.FirstSeenMs && (iv.ResolvedMs == 0 || t < iv.ResolvedMs) {
			return true
		}
	}
	return false
}

// Diff is what changed for one cluster between two of its jobs.
type Diff struct {
	ClusterID        string
	New, Resolved    []FindingView
	UnchangedCount   int
	BaseJob, HeadJob ulid.ULID
}

// DiffScans compares the jobs of one cluster in two scans. An empty
// clusterID means the one cluster both scans cover; ErrAmbiguous when
// there are several.
//
// keep, if not nil, is the reader's scope: jobs of other clusters are not
// there for it, and a scan with none of its clusters is not found, as if
// it did not exist.
func (s *DB) DiffScans(_ context.Context, baseScan, headScan ulid.ULID, clusterID string, keep func(*storagev1.ClusterRecord) bool) (*Diff, error) {
	d := &Diff{}
	err := s.view(func(tx *txn) error {
		base, err := scopedScanTx(tx, baseScan, keep)
		if err != nil {
			return fmt.Errorf("scan %s: %w", baseScan, err)
		}
		head, err := scopedScanTx(tx, headScan, keep)
		if err != nil {
			return fmt.Errorf("scan %s: %w", headScan, err)
		}
		if clusterID == "" {
			var common []string
			for _, j := range base.Jobs {
				if slices.ContainsFunc(head.Jobs, func(h Job) bool { return h.Record.ClusterId == j.Record.ClusterId }) {
					common = append(common, j.Record.ClusterId)
				}
			}
			if len(common) != 1 {
				return fmt.Errorf("%w: the scans share %d clusters; name one", ErrAmbiguous, len(common))
			}
			clusterID = common[0]
		}
		d.ClusterID = clusterID
		jobOf := func(scan *Scan) (Job, error) {
			for _, j := range scan.Jobs {
				if j.Record.ClusterId == clusterID {
					if j.Record.State != fleetscanv1.JobState_JOB_STATE_SUCCEEDED {
						return j, fmt.Errorf("scan %s of cluster %q is %s: %w", scan.ID, clusterID, j.Record.State, ErrConflict)
					}
					return j, nil
				}
			}
			return Job{}, fmt.Errorf("scan %s of cluster %q: %w", scan.ID, clusterID, ErrNotFound)
		}
		bj, err := jobOf(base)
		if err != nil {
			return err
		}
		hj, err := jobOf(head)
		if err != nil {
			return err
		}
		d.BaseJob, d.HeadJob = bj.ID, hj.ID
		bset, _, err := getSetTx(tx, bj.ID)
		if err != nil {
			return err
		}
		hset, _, err := getSetTx(tx, hj.ID)
		if err != nil {
			return err
		}
		added, removed := diffSorted(bset, hset)
		d.UnchangedCount = len(hset) - len(added)
		cluster := &storagev1.ClusterRecord{}
		if err := getProto(tx.bucket(bucketClusters), []byte(clusterID), cluster); err != nil {
			return fmt.Errorf("cluster %q: %w", clusterID, err)
		}
		findings := tx.bucket(bucketFindings)
		views := func(fps []fp) ([]FindingView, error) {
			var out []FindingView
			for _, f := range fps {
				key := append(u64(cluster.Seq), f[:]...)
				rec := &storagev1.FindingRecord{}
				if err := s.codec.getFinding(findings, key, rec); err != nil {
					return nil, fmt.Errorf("finding %x: %w", f, err)
				}
				out = append(out, viewOf(key, rec, cluster))
			}
			return out, nil
		}
		if d.New, err = views(added); err != nil {
			return err
		}
		d.Resolved, err = views(removed)
		return err
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// ClusterHistory is a cluster with its job summaries over a period.
type ClusterHistory struct {
	Cluster *storagev1.ClusterRecord
	// Before is the latest summary before the period, if any: the state the
	// period starts from.
	Before *Summary
	// Summaries in the period, oldest first.
	Summaries []Summary
}

// Histories returns, for every cluster that keep accepts, its summaries
// since sinceMs. Each cluster is one cursor seek and a short range scan.
func (s *DB) Histories(_ context.Context, keep func(*storagev1.ClusterRecord) bool, sinceMs int64) ([]ClusterHistory, error) {
	var out []ClusterHistory
	err := s.view(func(tx *txn) error {
		c := tx.bucket(bucketSummaries).Cursor()
		return tx.bucket(bucketClusters).ForEach(func(_, v []byte) error {
			rec := &storagev1.ClusterRecord{}
			if err := protoUnmarshal(v, rec); err != nil {
				return err
			}
			if !keep(rec) {
				return nil
			}
			h := ClusterHistory{Cluster: rec}
			prefix := u64(rec.Seq)
			start := append(slices.Clone(prefix), u64(uint64(sinceMs))...)
			k, v := c.Seek(start)
			for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				sum, err := decodeSummary(k, v)
				if err != nil {
					return err
				}
				h.Summaries = append(h.Summaries, sum)
			}
			// The state before the period: the summary just before start.
			if k, v = summaryBefore(c, prefix, start); k != nil {
				sum, err := decodeSummary(k, v)
				if err != nil {
					return err
				}
				h.Before = &sum
			}
			out = append(out, h)
			return nil
		})
	})
	return out, err
}

// summaryBefore returns the last summary of the cluster whose keys start
// with prefix that sorts before at (prefix and a finish time), or nil.
func summaryBefore(c *cursor, prefix, at []byte) (k, v []byte) {
	if k, _ = c.Seek(at); k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, prefix) || bytes.Compare(k, at) >= 0 {
		return nil, nil
	}
	return k, v
}

// SummariesBefore returns, for every cluster that keep accepts and that
// had a job end before atMs, the summary of the latest such job: the
// clusters' state at that time. Each cluster is one cursor seek, whatever
// the length of its history.
func (s *DB) SummariesBefore(_ context.Context, keep func(*storagev1.ClusterRecord) bool, atMs int64) (map[string]Summary, error) {
	out := map[string]Summary{}
	err := s.view(func(tx *txn) error {
		c := tx.bucket(bucketSummaries).Cursor()
		return tx.bucket(bucketClusters).ForEach(func(_, v []byte) error {
			rec := &storagev1.ClusterRecord{}
			if err := protoUnmarshal(v, rec); err != nil {
				return err
			}
			if !keep(rec) {
				return nil
			}
			prefix := u64(rec.Seq)
			at := append(slices.Clone(prefix), u64(uint64(max(atMs, 0)))...)
			k, sv := summaryBefore(c, prefix, at)
			if k == nil {
				return nil
			}
			sum, err := decodeSummary(k, sv)
			if err != nil {
				return fmt.Errorf("summary of cluster %q: %w", rec.Id, err)
			}
			out[rec.Id] = sum
			return nil
		})
	})
	return out, err
}

// Latest is a cluster with its latest succeeded job, if any.
type Latest struct {
	Cluster *storagev1.ClusterRecord
	Job     *storagev1.JobRecord
}

// LatestJobs returns every cluster that keep accepts with its latest
// succeeded job, in cluster id order. What it returns changes only with
// ClustersVersion: a cluster record names its latest job, and a succeeded
// job's record is never written again.
func (s *DB) LatestJobs(_ context.Context, keep func(*storagev1.ClusterRecord) bool) ([]Latest, error) {
	var out []Latest
	err := s.view(func(tx *txn) error {
		jobs := tx.bucket(bucketJobs)
		return tx.bucket(bucketClusters).ForEach(func(_, v []byte) error {
			rec := &storagev1.ClusterRecord{}
			if err := protoUnmarshal(v, rec); err != nil {
				return err
			}
			if !keep(rec) {
				return nil
			}
			l := Latest{Cluster: rec}
			if len(rec.LastJobId) > 0 {
				l.Job = &storagev1.JobRecord{}
				if err := getRef(jobs, rec.LastJobId, l.Job, "a cluster"); err != nil {
					return fmt.Errorf("latest job of %q: %w", rec.Id, err)
				}
			}
			out = append(out, l)
			return nil
		})
	})
	return out, err
}

// ClustersVersion changes after every committed write to the clusters
// bucket: a cluster registered or changed, a worker connecting or
// leaving, a job succeeding (which records it as the cluster's latest).
// Two reads of LatestJobs under the same version return the same; a reader
// that caches reads the version first.
func (s *DB) ClustersVersion() uint64 { return s.clustersVersion.Load() }

// Compact applies the retention: it drops the fingerprint sets of jobs that
// ended before cutoffMs and the lifecycles of findings resolved before it,
// keeping every job summary, so trends still cover all history. The
// oldest set still kept is rewritten in full first, since later sets may be
// deltas from the dropped ones. It returns how many sets and lifecycles it
// dropped.
func (s *DB) Compact(ctx context.Context, cutoffMs int64) (int, error) {
	sets, err := s.compactSets(ctx, cutoffMs)
	if err != nil {
		return sets, err
	}
	lifecycles, err := s.compactResolved(ctx, cutoffMs)
	return sets + lifecycles, err
}

// compactResolved deletes lifecycles resolved before cutoffMs, a bounded
// number per transaction so that ingest is never blocked for long.
func (s *DB) compactResolved(ctx context.Context, cutoffMs int64) (int, error) {
	const perTx = 10000
	dropped := 0
	cutoff := u64(uint64(cutoffMs))
	for {
		n := 0
		err := s.update(func(tx *txn) error {
			index, findings := tx.bucket(bucketResolved), tx.bucket(bucketFindings)
			var keys [][]byte
			c := index.Cursor()
			for k, _ := c.First(); k != nil && bytes.Compare(k, cutoff) < 0 && len(keys) < perTx; k, _ = c.Next() {
				keys = append(keys, slices.Clone(k))
			}
			for _, k := range keys {
				if err := index.Delete(k); err != nil {
					return err
				}
				if err := findings.Delete(k[8:]); err != nil {
					return err
				}
			}
			n = len(keys)
			return nil
		})
		dropped += n
		if err != nil || n < perTx || ctx.Err() != nil {
			return dropped, err
		}
	}
}

func (s *DB) compactSets(_ context.Context, cutoffMs int64) (int, error) {
	dropped := 0
	err := s.update(func(tx *txn) error {
		sets := tx.bucket(bucketJobFingerprints)
		var seqs []uint64
		err := tx.bucket(bucketClusters).ForEach(func(_, v []byte) error {
			rec := &storagev1.ClusterRecord{}
			if err := protoUnmarshal(v, rec); err != nil {
				return err
			}
			seqs = append(seqs, rec.Seq)
			return nil
		})
		if err != nil {
			return err
		}
		c := tx.bucket(bucketSummaries).Cursor()
		for _, seq := range seqs {
			prefix := u64(seq)
			cutoff := append(slices.Clone(prefix), u64(uint64(cutoffMs))...)
			var old [][]byte
			for k, _ := c.Seek(prefix); k != nil && bytes.Compare(k, cutoff) < 0; k, _ = c.Next() {
				if sets.Get(k[16:]) != nil {
					old = append(old, slices.Clone(k[16:]))
				}
			}
			if len(old) == 0 {
				continue
			}
			if k, _ := c.Seek(cutoff); k != nil && bytes.HasPrefix(k, prefix) {
				var keepID ulid.ULID
				copy(keepID[:], k[16:])
				if v := sets.Get(keepID[:]); v != nil && v[0] == setDelta {
					full, _, err := getSetTx(tx, keepID)
					if err != nil {
						return err
					}
					if err := sets.Put(keepID[:], encodeSet(full, ulid.ULID{}, nil, 0)); err != nil {
						return err
					}
				}
			}
			for _, id := range old {
				if err := sets.Delete(id); err != nil {
					return err
				}
				dropped++
			}
		}
		return nil
	})
	return dropped, err
}

// scopedScanTx reads a scan with only the jobs of the clusters keep
// selects; ErrNotFound when none is left.
func scopedScanTx(tx *txn, id ulid.ULID, keep func(*storagev1.ClusterRecord) bool) (*Scan, error) {
	scan, err := getScanTx(tx, id)
	if err != nil || keep == nil {
		return scan, err
	}
	var jobs []Job
	for _, j := range scan.Jobs {
		c := &storagev1.ClusterRecord{}
		if err := getRef(tx.bucket(bucketClusters), []byte(j.Record.ClusterId), c, "a job"); err != nil {
			return nil, err
		}
		if keep(c) {
			jobs = append(jobs, j)
		}
	}
	if len(jobs) == 0 {
		return nil, ErrNotFound
	}
	scan.Jobs = jobs
	return scan, nil
}
