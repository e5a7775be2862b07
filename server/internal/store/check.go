package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"google.golang.org/protobuf/proto"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
)

// Problem is one thing Check found wrong.
type Problem struct {
	Bucket string
	Key    []byte // nil for the file or a whole bucket
	What   string
}

func (p Problem) String() string {
	if p.Key == nil {
		return fmt.Sprintf("%s: %s", p.Bucket, p.What)
	}
	return fmt.Sprintf("%s %x: %s", p.Bucket, p.Key, p.What)
}

// CheckStats counts what Check read.
type CheckStats struct {
	Records  int
	Buckets  int
	Bytes    int64
	Problems int
}

// Check reads the whole database at path, read-only, and reports every
// problem it finds: bbolt's own consistency check (pages reachable once,
// keys in order), every record's checksum and decoding, and the cross
// references between buckets that the store relies on (every index entry
// names a record that is there; every fingerprint of a cluster's latest
// job has its finding record). It needs the file to itself: stop the
// server first, or check a backup. The error is for a file it cannot
// check at all.
func Check(ctx context.Context, path string, report func(Problem)) (CheckStats, error) {
	var st CheckStats
	fi, err := os.Stat(path)
	if err != nil {
		return st, err
	}
	st.Bytes = fi.Size()
	if !fi.Mode().IsRegular() {
		return st, fmt.Errorf("%s: not a regular file", path)
	}
	if fi.Size() == 0 {
		return st, fmt.Errorf("%s: the file is empty (0 bytes): %w", path, ErrDataLoss)
	}
	db, err := openBolt(path, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return st, fmt.Errorf("%s: in use by another process: stop the server first, or check a backup", path)
		}
		return st, fmt.Errorf("%s: %w", path, err)
	}
	defer db.Close()
	if err := checkSize(db); err != nil {
		return st, err
	}
	c := &checker{report: func(p Problem) { st.Problems++; report(p) }}
	err = db.View(func(tx *bolt.Tx) (err error) {
		old := debug.SetPanicOnFault(true)
		defer func() {
			debug.SetPanicOnFault(old)
			if r := recover(); r != nil {
				c.problem("(structure)", nil, "reading the file failed: %v", r)
				err = nil
			}
		}()
		for err := range tx.Check() {
			c.problem("(structure)", nil, "%v", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		c.tx = &txn{tx: tx}
		return c.run(ctx, &st)
	})
	return st, err
}

type checker struct {
	tx     *txn
	report func(Problem)
	codec  *codec

	clusters map[string]*storagev1.ClusterRecord
	seqs     map[uint64]string
	jobs     map[ulid.ULID]*storagev1.JobRecord
	// open: the finding keys of unresolved lifecycles; resolved: of
	// resolved ones, with their time.
	open     map[string]bool
	resolved map[string]int64
	latest   map[uint64]ulid.ULID // cluster seq → job of its newest summary
}

func (c *checker) problem(bucket string, key []byte, format string, args ...any) {
	c.report(Problem{Bucket: bucket, Key: bytes.Clone(key), What: fmt.Sprintf(format, args...)})
}

// each calls fn with every verified record of the bucket; damaged ones are
// reported and skipped.
// addedEmpty are the buckets added without a new schema version: a
// server creates them empty when it opens a database that lacks them, so
// a database that no server of theirs opened yet lacks nothing.
var addedEmpty = map[string]bool{
	string(bucketNotifiers): true, string(bucketDeliveries): true, string(bucketDeliveriesDue): true, string(bucketNotifyOnce): true,
}

func (c *checker) each(name []byte, st *CheckStats, fn func(k, v []byte)) {
	b := c.tx.tx.Bucket(name)
	if b == nil && addedEmpty[string(name)] {
		return // a database the server has not opened since they came
	}
	if b == nil {
		c.problem(string(name), nil, "bucket missing")
		return
	}
	st.Buckets++
	var last []byte
	cur := b.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		st.Records++
		if last != nil && bytes.Compare(k, last) <= 0 {
			c.problem(string(name), k, "key out of order after %x", last)
		}
		last = k
		if v == nil {
			c.problem(string(name), k, "a nested bucket where a record belongs")
			continue
		}
		body, d := unseal(name, k, v)
		if d != nil {
			c.problem(string(name), k, "%s", d.Reason)
			continue
		}
		fn(k, body)
	}
}

func (c *checker) decode(name []byte, k, v []byte, m proto.Message) bool {
	if err := proto.Unmarshal(v, m); err != nil {
		c.problem(string(name), k, "undecodable %T: %v", m, err)
		return false
	}
	return true
}

func jobKey(k []byte) (ulid.ULID, bool) {
	var id ulid.ULID
	if len(k) < len(id) {
		return id, false
	}
	copy(id[:], k)
	return id, true
}

func (c *checker) run(ctx context.Context, st *CheckStats) error {
	meta := c.tx.tx.Bucket(bucketMeta)
	if meta == nil {
		c.problem(string(bucketMeta), nil, "bucket missing: this is not a fleetscan database")
		return nil
	}
	var schema uint64
	c.each(bucketMeta, st, func(k, v []byte) {
		if bytes.Equal(k, schemaKey) && len(v) == 8 {
			schema = binaryUint64(v)
		}
		// Schema 4 reads as it is; Open upgrades it.
		if bytes.Equal(k, schemaKey) && (len(v) != 8 || (binaryUint64(v) != schemaVersion && binaryUint64(v) != 4)) {
			c.problem(string(bucketMeta), k, "schema version %x, this release reads %d", v, schemaVersion)
		}
	})
	var err error
	c.codec, err = readCatalogTx(c.tx)
	if err != nil {
		c.problem(string(bucketCatalog), nil, "the catalog snapshot cannot be read (%v): finding records are decoded with this release's catalog", err)
		c.tx.damage = nil
		c.codec = currentCodec()
	}
	c.each(bucketCatalog, st, func([]byte, []byte) {})
	if c.tx.tx.Bucket(bucketStrings) != nil || schema != 4 {
		c.each(bucketStrings, st, func([]byte, []byte) {})
	}

	c.clusters, c.seqs = map[string]*storagev1.ClusterRecord{}, map[uint64]string{}
	c.each(bucketClusters, st, func(k, v []byte) {
		rec := &storagev1.ClusterRecord{}
		if c.decode(bucketClusters, k, v, rec) {
			c.clusters[string(k)] = rec
		}
	})
	c.each(bucketClusterSeqs, st, func(k, v []byte) {
		if len(k) != 8 {
			c.problem(string(bucketClusterSeqs), k, "key of %d bytes, want 8", len(k))
			return
		}
		seq := binaryUint64(k)
		c.seqs[seq] = string(v)
		if rec, ok := c.clusters[string(v)]; !ok {
			c.problem(string(bucketClusterSeqs), k, "names cluster %q, which has no record", v)
		} else if rec.Seq != seq {
			c.problem(string(bucketClusterSeqs), k, "names cluster %q, whose seq is %d", v, rec.Seq)
		}
	})
	for id, rec := range c.clusters {
		if c.seqs[rec.Seq] != id {
			c.problem(string(bucketClusters), []byte(id), "seq %d is not indexed in %s", rec.Seq, bucketClusterSeqs)
		}
	}
	c.each(bucketTokens, st, func(k, v []byte) { c.decode(bucketTokens, k, v, &storagev1.TokenRecord{}) })
	c.each(bucketScans, st, func(k, v []byte) { c.decode(bucketScans, k, v, &storagev1.ScanRecord{}) })
	c.each(bucketSchedules, st, func(k, v []byte) { c.decode(bucketSchedules, k, v, &fleetscanv1.Schedule{}) })
	c.each(bucketExceptions, st, func(k, v []byte) { c.decode(bucketExceptions, k, v, &fleetscanv1.Exception{}) })
	c.each(bucketAudit, st, func(k, v []byte) { c.decode(bucketAudit, k, v, &storagev1.AuditRecord{}) })
	c.each(bucketNotifiers, st, func(k, v []byte) { c.decode(bucketNotifiers, k, v, &storagev1.NotifierRecord{}) })
	c.each(bucketDeliveries, st, func(k, v []byte) { c.decode(bucketDeliveries, k, v, &storagev1.DeliveryRecord{}) })
	c.each(bucketDeliveriesDue, st, func(k, _ []byte) {
		if len(k) != 24 {
			c.problem(string(bucketDeliveriesDue), k, "key of %d bytes, want 24", len(k))
		}
	})
	c.each(bucketNotifyOnce, st, func(k, v []byte) {
		if len(v) != 8 {
			c.problem(string(bucketNotifyOnce), k, "value of %d bytes, want 8", len(v))
		}
	})
	if err := ctx.Err(); err != nil {
		return err
	}

	c.jobs = map[ulid.ULID]*storagev1.JobRecord{}
	c.each(bucketJobs, st, func(k, v []byte) {
		rec := &storagev1.JobRecord{}
		id, ok := jobKey(k)
		if !ok || len(k) != len(id) {
			c.problem(string(bucketJobs), k, "key of %d bytes, want 16", len(k))
			return
		}
		if c.decode(bucketJobs, k, v, rec) {
			c.jobs[id] = rec
			if _, ok := c.clusters[rec.ClusterId]; !ok {
				c.problem(string(bucketJobs), k, "job of cluster %q, which has no record", rec.ClusterId)
			}
		}
	})
	active := map[ulid.ULID]bool{}
	for _, name := range [][]byte{bucketPending, bucketActive} {
		c.each(name, st, func(k, _ []byte) {
			i := bytes.IndexByte(k, 0)
			if i < 0 || len(k)-i-1 != 16 {
				c.problem(string(name), k, "malformed key")
				return
			}
			var id ulid.ULID
			copy(id[:], k[i+1:])
			job, ok := c.jobs[id]
			switch {
			case !ok:
				c.problem(string(name), k, "indexes job %s, which has no record", id)
			case job.ClusterId != string(k[:i]):
				c.problem(string(name), k, "indexes job %s under cluster %q; the job is of %q", id, k[:i], job.ClusterId)
			case IsFinal(job.State):
				c.problem(string(name), k, "indexes job %s, which has ended (%s)", id, job.State)
			}
			if bytes.Equal(name, bucketActive) {
				active[id] = true
			}
		})
	}
	for id, job := range c.jobs {
		if !IsFinal(job.State) && !active[id] {
			c.problem(string(bucketJobs), id[:], "job is %s but not in the %s index: a new scan would not join it", job.State, bucketActive)
		}
	}
	c.each(bucketStaging, st, func(k, v []byte) {
		id, ok := jobKey(k)
		if !ok || len(k) != 24 {
			c.problem(string(bucketStaging), k, "malformed key")
			return
		}
		if _, ok := c.jobs[id]; !ok {
			c.problem(string(bucketStaging), k, "batch of job %s, which has no record", id)
		}
		c.decode(bucketStaging, k, v, &workerv1.FindingBatch{})
	})
	if err := ctx.Err(); err != nil {
		return err
	}

	c.open, c.resolved = map[string]bool{}, map[string]int64{}
	c.each(bucketFindings, st, func(k, v []byte) {
		if len(k) != 8+fpSize {
			c.problem(string(bucketFindings), k, "key of %d bytes, want %d", len(k), 8+fpSize)
			return
		}
		if _, ok := c.seqs[binaryUint64(k)]; !ok {
			c.problem(string(bucketFindings), k, "finding of cluster seq %d, which has no cluster", binaryUint64(k))
		}
		rec := &storagev1.FindingRecord{}
		if err := c.codec.decodeFinding(v, rec); err != nil {
			c.problem(string(bucketFindings), k, "undecodable finding: %v", err)
			return
		}
		if rec.ResolvedMs != 0 {
			c.resolved[string(k)] = rec.ResolvedMs
		} else {
			c.open[string(k)] = true
		}
	})
	c.each(bucketResolved, st, func(k, _ []byte) {
		if len(k) != 8+8+fpSize {
			c.problem(string(bucketResolved), k, "malformed key")
			return
		}
		ms, ok := c.resolved[string(k[8:])]
		switch {
		case !ok:
			c.problem(string(bucketResolved), k, "indexes finding %x, which is not a resolved record", k[8:])
		case ms != int64(binaryUint64(k)):
			c.problem(string(bucketResolved), k, "indexed as resolved at %d; the record says %d", binaryUint64(k), ms)
		}
	})

	c.latest = map[uint64]ulid.ULID{}
	c.each(bucketSummaries, st, func(k, v []byte) {
		s, err := decodeSummary(k, v)
		if err != nil {
			c.problem(string(bucketSummaries), k, "%v", err)
			return
		}
		seq := binaryUint64(k)
		if _, ok := c.seqs[seq]; !ok {
			c.problem(string(bucketSummaries), k, "summary of cluster seq %d, which has no cluster", seq)
		}
		if _, ok := c.jobs[s.JobID]; !ok {
			c.problem(string(bucketSummaries), k, "summary of job %s, which has no record", s.JobID)
		}
		c.latest[seq] = s.JobID // keys ascend by time within a cluster
	})
	c.each(bucketJobFingerprints, st, func(k, v []byte) {
		id, ok := jobKey(k)
		if !ok || len(k) != 16 {
			c.problem(string(bucketJobFingerprints), k, "malformed key")
			return
		}
		if _, ok := c.jobs[id]; !ok {
			c.problem(string(bucketJobFingerprints), k, "set of job %s, which has no record", id)
		}
		if _, _, err := decodeSetTx(c.tx, v); err != nil {
			c.problem(string(bucketJobFingerprints), k, "%v", err)
		}
		c.tx.damage = nil // reported on its own key
	})
	// The open findings of a cluster include every fingerprint its latest
	// job saw: a record missing here is a finding that listing would leave
	// out without a word.
	for seq, jobID := range c.latest {
		fps, _, err := getSetTx(c.tx, jobID)
		c.tx.damage = nil
		if err != nil {
			continue // retention dropped it, or it was reported above
		}
		missing := 0
		var first []byte
		for _, f := range fps {
			key := append(u64(seq), f[:]...)
			if !c.open[string(key)] {
				if missing == 0 {
					first = key
				}
				missing++
			}
		}
		if missing > 0 {
			c.problem(string(bucketFindings), first, "%d of the %d findings of cluster %q's latest job (%s) have no open record", missing, len(fps), c.seqs[seq], jobID)
		}
	}
	return nil
}
