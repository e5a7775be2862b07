package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/oklog/ulid/v2"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/worker/catalog"
)

// StageBatch durably stores one batch of a running job. Storing the same
// (job, seq) again replaces it, so a batch the worker re-sends is stored
// once. It runs through bbolt's Batch: many job streams write at once.
func (s *DB) StageBatch(_ context.Context, jobID ulid.ULID, batch *workerv1.FindingBatch) error {
	if batch.Seq < 1 {
		return fmt.Errorf("batch seq %d: %w", batch.Seq, ErrConflict)
	}
	value, err := marshal(batch)
	if err != nil {
		return err
	}
	key := stagingKey(jobID, uint64(batch.Seq))
	return s.batch(func(tx *txn) error {
		jobs := tx.bucket(bucketJobs)
		job := &storagev1.JobRecord{}
		if err := getProto(jobs, jobID[:], job); err != nil {
			return fmt.Errorf("job %s: %w", jobID, err)
		}
		switch job.State {
		case fleetscanv1.JobState_JOB_STATE_DISPATCHED, fleetscanv1.JobState_JOB_STATE_RUNNING:
		default:
			return fmt.Errorf("job %s is %s: %w", jobID, job.State, ErrConflict)
		}
		staging := tx.bucket(bucketStaging)
		if batch.Seq > job.StagedBatches+1 {
			// Batches arrive in order on one stream, and a resumed worker
			// goes on after the last of the unbroken run: a gap is the
			// worker's error, refused now rather than found at JobDone.
			return fmt.Errorf("job %s: batch %d arrived after %d stored batches: %w", jobID, batch.Seq, job.StagedBatches, ErrOutOfOrder)
		}
		if staging.Get(key) == nil {
			job.StagedBatches++
			job.StagedFindings += int64(len(batch.Findings))
		}
		job.State = fleetscanv1.JobState_JOB_STATE_RUNNING
		if err := staging.Put(key, value); err != nil {
			return err
		}
		return putProto(jobs, jobID[:], job)
	})
}

func stagingKey(jobID ulid.ULID, seq uint64) []byte {
	return append(slices.Clone(jobID[:]), u64(seq)...)
}

func dropStagingTx(tx *txn, jobID ulid.ULID) error {
	staging := tx.bucket(bucketStaging)
	var keys [][]byte
	c := staging.Cursor()
	for k, _ := c.Seek(jobID[:]); k != nil && bytes.HasPrefix(k, jobID[:]); k, _ = c.Next() {
		keys = append(keys, slices.Clone(k))
	}
	for _, k := range keys {
		if err := staging.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Completion is what a worker reports at the end of a successful job.
type Completion struct {
	Batches        int64
	Findings       int64
	ObjectsScanned int64
	NotAssessable  []*fleetscanv1.CheckNotAssessable
	// Problems are what the worker could not read: the job is
	// incomplete, and the open findings it did not see are carried over
	// rather than resolved.
	Problems []string
	// Unchecked are the documents no check reads: the job is complete
	// without them.
	Unchecked []string
	// Plan, if set, is the job's completion planned batch by batch as the
	// batches were staged (PlanBatch). It is used when it covers exactly
	// the batches stored; otherwise CompleteJob plans from them.
	Plan *JobPlan
}

// CompleteJob makes a job's staged findings visible, in one transaction:
// it opens the lifecycle of every finding seen for the first time (or again
// after it was resolved), rewrites those whose details changed, resolves
// the open findings of the cluster that the job did not see (within what
// the scan covered), records the job's fingerprint set and summary and
// marks it SUCCEEDED. A finding seen again unchanged is not written at all:
// rescanning an unchanged cluster costs a few bytes per job, not per
// finding. It returns ErrIncomplete, and changes nothing, when batches are
// missing. Completing a job that already succeeded is a no-op, so a JobDone
// the worker re-sends is harmless.
func (s *DB) CompleteJob(ctx context.Context, jobID ulid.ULID, done Completion) error {
	now := s.nowMs()
	if plan := done.Plan.covering(jobID, done); plan != nil {
		// What the plan left to do needs the completion's time: it is
		// done as a commit, ahead of the plans of other jobs.
		if err := s.committing(ctx, func() error { return plan.finish(s.codec, now) }); err != nil {
			return err
		}
		err := s.writePlanned(ctx, jobID, done, plan, now)
		if !errors.Is(err, errPlanStale) {
			return err
		}
	}
	// The work that needs no lock (decoding the batches, fingerprinting,
	// encoding records) is done in a read transaction, which on more than
	// two cores a few jobs run at once; the write transaction then only
	// checks that nothing changed meanwhile and writes.
	var plan *jobPlan
	err := s.completing(ctx, func() error {
		return s.view(func(tx *txn) error {
			var err error
			plan, err = s.codec.planJobTx(tx, jobID, done, now)
			return err
		})
	})
	if err != nil || plan == nil {
		return err
	}
	return s.writePlanned(ctx, jobID, done, plan, now)
}

// errPlanStale: a job's plan does not cover the batches stored.
var errPlanStale = errors.New("the plan does not cover the batches stored")

// writePlanned is CompleteJob's write. It shares a transaction with the
// other completions and batches waiting (DB.batch), so that they commit,
// and wait for the disk, once: one transaction each put every JobDone of a
// fleet scan in a line for bbolt's single writer, each waiting for the
// fsyncs of all before it, and held the CPU slot meanwhile. The group's
// transaction takes a slot as a commit. It does not change the plan: the
// group may run it again.
func (s *DB) writePlanned(ctx context.Context, jobID ulid.ULID, done Completion, plan *jobPlan, now int64) error {
	var notified bool
	err := s.batch(func(tx *txn) error {
		var err error
		notified, err = s.writePlannedTx(tx, jobID, done, plan, now)
		return err
	})
	if err == nil && notified && s.onOutbox != nil {
		s.onOutbox()
	}
	return err
}

// writePlannedTx writes a planned completion and reports whether it wrote
// deliveries to the outbox.
func (s *DB) writePlannedTx(tx *txn, jobID ulid.ULID, done Completion, plan *jobPlan, now int64) (bool, error) {
	jobs := tx.bucket(bucketJobs)
	job := &storagev1.JobRecord{}
	if err := getProto(jobs, jobID[:], job); err != nil {
		return false, fmt.Errorf("job %s: %w", jobID, err)
	}
	if err := checkCompletable(jobID, job, done); err != nil || job.State == fleetscanv1.JobState_JOB_STATE_SUCCEEDED {
		return false, err
	}
	if job.StagedBatches != plan.staged {
		if plan.ahead {
			return false, errPlanStale
		}
		return false, fmt.Errorf("job %s changed while it was being completed: %w", jobID, ErrConflict)
	}
	clusters := tx.bucket(bucketClusters)
	cluster := &storagev1.ClusterRecord{}
	if err := getRef(clusters, []byte(job.ClusterId), cluster, "a job"); err != nil {
		return false, fmt.Errorf("cluster %q: %w", job.ClusterId, err)
	}
	scan := &storagev1.ScanRecord{}
	if err := getRef(tx.bucket(bucketScans), job.ScanId, scan, "a job"); err != nil {
		return false, fmt.Errorf("scan of job %s: %w", jobID, err)
	}
	findings := tx.bucket(bucketFindings)
	// Keys are written in order, so pages can be packed full.
	findings.SetFillPercent(0.95)
	index := tx.bucket(bucketResolved)
	// All reads before the first write: a write moves the cursor's
	// pages.
	stale := make([]bool, len(plan.writes))
	// opened: the lifecycles the job opens, for the outbox.
	opened := make([]bool, len(plan.writes))
	read := ascending(findings)
	for i, w := range plan.writes {
		cur := read(w.key)
		stale[i] = !bytes.Equal(cur, w.old)
		opened[i] = cur == nil || w.reopened != 0
	}
	for i, w := range plan.writes {
		if stale[i] {
			// Written since it was planned: plan it again, here.
			if err := s.codec.upsertFindingTx(tx, findings, w.key, w.finding, now); err != nil {
				return false, err
			}
			continue
		}
		if w.value == nil {
			continue // seen again unchanged: nothing to write
		}
		if w.reopened != 0 {
			if err := index.Delete(resolvedKey(w.reopened, w.key)); err != nil {
				return false, err
			}
		}
		if err := findings.Put(w.key, w.value); err != nil {
			return false, err
		}
	}
	// Exceptions count as of this scan; the record keeps only what the
	// worker saw, so that an exception's expiry needs no rewrite.
	active, err := activeExceptionsTx(tx, now)
	if err != nil {
		return false, err
	}
	active = active.forReader("")
	tally := NewJobTally()
	count := func(rec interface {
		GetCheckId() string
		GetSeverity() fleetscanv1.Severity
		GetSuppressionReason() string
		GetResource() *fleetscanv1.ResourceRef
		GetResponsibleParty() fleetscanv1.ResponsibleParty
	}) {
		suppressed := rec.GetSuppressionReason() != "" || active.match(cluster, rec.GetCheckId(), rec.GetResource()) != nil
		tally.Add(rec.GetCheckId(), rec.GetSeverity(), suppressed, rec.GetResponsibleParty())
	}
	prefix := u64(cluster.Seq)
	fps := make([]fp, 0, len(plan.writes))
	for _, w := range plan.writes {
		count(w.finding)
		fps = append(fps, fp(w.key[len(prefix):]))
	}
	// Open findings the job could not have seen (outside its checks or
	// namespaces, or of a check not assessable this time) are carried
	// over: each job's set and counts are the cluster's whole posture.
	unassessed := map[string]bool{}
	for _, na := range done.NotAssessable {
		unassessed[na.CheckId] = true
	}
	carried, err := s.codec.resolveUnseenTx(tx, findings, prefix, plan.seen, scan.Spec, unassessed, len(done.Problems) > 0, cluster, now)
	if err != nil {
		return false, err
	}
	for _, c := range carried {
		fps = append(fps, c.fp)
		count(c.rec)
	}
	slices.SortFunc(fps, func(a, b fp) int { return bytes.Compare(a[:], b[:]) })

	// The fingerprint set, as a delta from the cluster's previous job.
	var base []fp
	var baseID ulid.ULID
	depth := 0
	if len(cluster.LastJobId) == len(baseID) {
		copy(baseID[:], cluster.LastJobId)
		var err error
		if base, depth, err = getSetTx(tx, baseID); err != nil && !errors.Is(err, ErrNotFound) {
			return false, err
		}
	}
	if err := tx.bucket(bucketJobFingerprints).Put(jobID[:], encodeSet(fps, baseID, base, depth)); err != nil {
		return false, err
	}
	if err := tx.bucket(bucketSummaries).Put(summaryKey(cluster.Seq, now, jobID), encodeSummary(tally.Counts, done.ObjectsScanned)); err != nil {
		return false, err
	}
	if err := dropStagingTx(tx, jobID); err != nil {
		return false, err
	}
	scanID, err := holderScanTx(tx, jobID, job, scan)
	if err != nil {
		return false, err
	}
	previousJob := cluster.LastJobId
	cluster.LastJobId, cluster.LastJobMs, cluster.LastScanId = jobID[:], now, scanID
	if err := putProto(clusters, []byte(cluster.Id), cluster); err != nil {
		return false, err
	}
	if err := tx.bucket(bucketActive).Delete(pendingKey(job.ClusterId, jobID)); err != nil {
		return false, err
	}
	tally.Succeed(job, now, done)
	if err := putProto(jobs, jobID[:], job); err != nil {
		return false, err
	}
	notified, err := s.outboxJobTx(tx, func() (JobEnded, error) {
		e := JobEnded{Cluster: cluster, JobID: jobID, Job: job}
		if len(previousJob) > 0 {
			e.Previous = &storagev1.JobRecord{}
			if err := getRef(jobs, previousJob, e.Previous, "a cluster"); err != nil {
				return e, fmt.Errorf("previous job of %q: %w", cluster.Id, err)
			}
		}
		for i, w := range plan.writes {
			if opened[i] && w.finding.GetSuppressionReason() == "" && active.match(cluster, w.finding.GetCheckId(), w.finding.GetResource()) == nil {
				e.New = append(e.New, w.finding)
			}
		}
		return e, nil
	})
	if err != nil {
		return false, err
	}
	// The strings that the records above, planned or written here, were
	// the first to share.
	return notified, s.codec.shared.storeTx(tx)
}

// completing runs f, a plan of CompleteJob, in one of at most
// GOMAXPROCS-1 CPU slots (one on two cores), shared with the commits, which
// go first (committing). Completing jobs is most of the server's CPU under
// ingest. When as many of them ran as there are cores, every core's run
// queue was long and an API call waited 50–120 ms for its goroutines to
// get a turn, although its handler took a few ms. One core left to the
// rest keeps calls prompt; on two cores it costs the store alone a quarter
// of its ingest rate, and the load harness, whose workers take the other
// core anyway, nothing measurable (docs/benchmarks.md). The plan and the
// write take a slot each rather than one for both, so that on more cores
// plans overlap the write transactions, which bbolt runs one at a time.
func (s *DB) completing(ctx context.Context, f func() error) error {
	return s.slotted(ctx, prioPlan, 0, nil, f)
}

// committing runs f, the CPU work of making a finished job visible, in a
// CPU slot before any plan waiting for one: a JobDone then waits for the
// slice of work in the slot, not for the plans of every job queued.
func (s *DB) committing(ctx context.Context, f func() error) error {
	return s.slotted(ctx, prioCommit, 0, nil, f)
}

func (s *DB) slotted(ctx context.Context, prio int, ticket uint64, promote <-chan struct{}, f func() error) error {
	if err := s.cpu.acquire(ctx, prio, ticket, promote); err != nil {
		return err
	}
	defer s.cpu.release()
	return f()
}

// checkCompletable says whether a JobDone can complete the job: it is
// running with every batch stored, or already succeeded (a re-sent
// JobDone, a no-op).
func checkCompletable(jobID ulid.ULID, job *storagev1.JobRecord, done Completion) error {
	switch job.State {
	case fleetscanv1.JobState_JOB_STATE_SUCCEEDED:
		return nil
	case fleetscanv1.JobState_JOB_STATE_DISPATCHED, fleetscanv1.JobState_JOB_STATE_RUNNING:
	default:
		return fmt.Errorf("job %s is %s: %w", jobID, job.State, ErrConflict)
	}
	if job.StagedBatches != done.Batches {
		return fmt.Errorf("job %s: %d of %d batches stored: %w", jobID, job.StagedBatches, done.Batches, ErrIncomplete)
	}
	return nil
}

// jobPlan is what completing a job will write, prepared in a read
// transaction: at JobDone (planJobTx), or batch by batch ahead of it
// (JobPlan).
type jobPlan struct {
	staged int64
	seen   map[fp]*workerv1.Finding
	// writes are by key, one per finding seen.
	writes []plannedWrite
	// ahead: planned batch by batch; a plan that does not match the
	// batches stored is set aside rather than failing the job.
	ahead bool
}

// plannedWrite is one finding's record as read and as it will be written.
type plannedWrite struct {
	key      []byte
	old      []byte // the value read, nil when new
	value    []byte // the value to write; nil when unchanged
	reopened int64  // the resolve time of a lifecycle it reopens
	finding  *workerv1.Finding
	// same: seen again unchanged, known before the completion's time
	// (JobPlan); value is then computed at JobDone unless same.
	same bool
}

// planJobTx prepares CompleteJob's writes; nil when the job already
// succeeded.
func (c *codec) planJobTx(tx *txn, jobID ulid.ULID, done Completion, now int64) (*jobPlan, error) {
	job := &storagev1.JobRecord{}
	if err := getProto(tx.bucket(bucketJobs), jobID[:], job); err != nil {
		return nil, fmt.Errorf("job %s: %w", jobID, err)
	}
	if err := checkCompletable(jobID, job, done); err != nil || job.State == fleetscanv1.JobState_JOB_STATE_SUCCEEDED {
		return nil, err
	}
	cluster := &storagev1.ClusterRecord{}
	if err := getRef(tx.bucket(bucketClusters), []byte(job.ClusterId), cluster, "a job"); err != nil {
		return nil, fmt.Errorf("cluster %q: %w", job.ClusterId, err)
	}
	// Gather the job's findings, deduplicated by fingerprint: the same
	// object may be listed twice in a snapshot.
	plan := &jobPlan{staged: job.StagedBatches, seen: map[fp]*workerv1.Finding{}}
	var received int64
	cur := tx.bucket(bucketStaging).Cursor()
	for k, v := cur.Seek(jobID[:]); k != nil && bytes.HasPrefix(k, jobID[:]); k, v = cur.Next() {
		batch := &workerv1.FindingBatch{}
		if err := protoUnmarshal(v, batch); err != nil {
			return nil, fmt.Errorf("staged batch of job %s: %w", jobID, err)
		}
		for _, f := range batch.Findings {
			received++
			key := catalog.Fingerprint(job.ClusterId, f.CheckId, resourceOf(f.Resource))
			if _, dup := plan.seen[key]; !dup {
				plan.seen[key] = f
			}
		}
	}
	if received != done.Findings {
		return nil, fmt.Errorf("job %s: %d of %d findings stored: %w", jobID, received, done.Findings, ErrIncomplete)
	}
	prefix := u64(cluster.Seq)
	plan.writes = make([]plannedWrite, 0, len(plan.seen))
	for key, f := range plan.seen {
		plan.writes = append(plan.writes, plannedWrite{key: append(slices.Clone(prefix), key[:]...), finding: f})
	}
	sortWrites(plan.writes)
	read := ascending(tx.bucket(bucketFindings))
	for i := range plan.writes {
		w := &plan.writes[i]
		if v := read(w.key); v != nil {
			w.old = slices.Clone(v)
		}
		var err error
		if w.value, w.reopened, err = c.planUpsert(w.old, w.finding, now); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

func sortWrites(ws []plannedWrite) {
	slices.SortFunc(ws, func(a, b plannedWrite) int { return bytes.Compare(a.key, b.key) })
}

// JobPlan is a job's completion prepared batch by batch as its batches
// are staged (PlanBatch), and handed to CompleteJob in Completion.Plan.
// Planning at JobDone put the decoding, fingerprinting and reading of all
// of a job's findings between the worker's JobDone and its
// acknowledgement, behind the plans of every other job that finished
// first: under a fleet scan, seconds. Planned ahead, a JobDone only
// commits. What a plan cannot know before the completion (its time, the
// exceptions active then, what another job wrote meanwhile) is settled at
// JobDone. The zero value is an empty plan; it is not safe for
// concurrent use.
type JobPlan struct {
	jobID     ulid.ULID
	clusterID string
	prefix    []byte
	batches   int64
	received  int64
	// ticket orders the plan's batches among those of other jobs: the
	// job that began streaming first is planned first.
	ticket uint64
	seen   map[fp]*workerv1.Finding
	writes []plannedWrite
	// broken: a batch came out of turn (a stream resumed on another
	// session plans nothing), or planning one failed.
	broken bool

	hurryInit, hurryOnce sync.Once
	hurry                chan struct{}
}

// Hurry says that the worker has sent the job's JobDone: what remains to
// plan is what the completion waits for, and goes ahead of the plans of
// jobs still streaming, as a commit. Safe to call from any goroutine.
func (p *JobPlan) Hurry() {
	p.Hurried()
	p.hurryOnce.Do(func() { close(p.hurry) })
}

// Hurried is closed once Hurry is called.
func (p *JobPlan) Hurried() <-chan struct{} {
	p.hurryInit.Do(func() { p.hurry = make(chan struct{}) })
	return p.hurry
}

// PlanBatch adds a staged batch of job jobID to its plan. Batches must
// come in order from the first; otherwise, or if planning fails, the plan
// is set aside and CompleteJob plans from the stored batches.
func (s *DB) PlanBatch(ctx context.Context, jobID ulid.ULID, p *JobPlan, batch *workerv1.FindingBatch) error {
	if p.broken {
		return nil
	}
	if p.seen == nil {
		p.jobID, p.seen, p.ticket = jobID, map[fp]*workerv1.Finding{}, s.cpu.ticket()
	}
	if p.jobID != jobID || batch.Seq != p.batches+1 {
		p.setAside()
		return nil
	}
	err := s.slotted(ctx, prioPlan, p.ticket, p.Hurried(), func() error {
		return s.view(func(tx *txn) error { return p.planTx(tx, s.codec, batch) })
	})
	if err != nil {
		p.setAside()
		return fmt.Errorf("plan batch %d of job %s: %w", batch.Seq, jobID, err)
	}
	return nil
}

func (p *JobPlan) setAside() {
	p.broken, p.seen, p.writes = true, nil, nil
}

func (p *JobPlan) planTx(tx *txn, c *codec, batch *workerv1.FindingBatch) error {
	if p.prefix == nil {
		job := &storagev1.JobRecord{}
		if err := getProto(tx.bucket(bucketJobs), p.jobID[:], job); err != nil {
			return fmt.Errorf("job %s: %w", p.jobID, err)
		}
		cluster := &storagev1.ClusterRecord{}
		if err := getRef(tx.bucket(bucketClusters), []byte(job.ClusterId), cluster, "a job"); err != nil {
			return fmt.Errorf("cluster %q: %w", job.ClusterId, err)
		}
		p.clusterID, p.prefix = job.ClusterId, u64(cluster.Seq)
	}
	var fresh []plannedWrite
	for _, f := range batch.Findings {
		key := catalog.Fingerprint(p.clusterID, f.CheckId, resourceOf(f.Resource))
		if _, dup := p.seen[key]; dup {
			continue
		}
		p.seen[key] = f
		fresh = append(fresh, plannedWrite{key: append(slices.Clone(p.prefix), key[:]...), finding: f})
	}
	sortWrites(fresh)
	read := ascending(tx.bucket(bucketFindings))
	for i := range fresh {
		w := &fresh[i]
		v := read(w.key)
		if v == nil {
			continue
		}
		w.old = slices.Clone(v)
		rec := &storagev1.FindingRecord{}
		if err := c.decodeFinding(w.old, rec); err != nil {
			return err
		}
		w.same = rec.ResolvedMs == 0 && sameDetails(rec, w.finding)
	}
	p.writes = append(p.writes, fresh...)
	p.received += int64(len(batch.Findings))
	p.batches++
	return nil
}

// covering returns the plan as CompleteJob's when it covers the batches
// and findings the worker reported, else nil.
func (p *JobPlan) covering(jobID ulid.ULID, done Completion) *jobPlan {
	if p == nil || p.broken || p.seen == nil || p.jobID != jobID || p.batches != done.Batches || p.received != done.Findings {
		return nil
	}
	return &jobPlan{staged: p.batches, seen: p.seen, writes: p.writes, ahead: true}
}

// finish puts the writes in key order and encodes the records that need
// the completion's time.
func (p *jobPlan) finish(c *codec, now int64) error {
	sortWrites(p.writes)
	for i := range p.writes {
		w := &p.writes[i]
		if w.same {
			continue
		}
		var err error
		if w.value, w.reopened, err = c.planUpsert(w.old, w.finding, now); err != nil {
			return err
		}
	}
	return nil
}

// ascending returns a Get for keys asked in ascending order, as a job's
// findings are: the next key is usually a step or two after the last, where
// Get would descend from the root each time. The bucket must not change
// while it is used.
func ascending(b *table) func(key []byte) []byte {
	c := b.Cursor()
	var k, v []byte
	started := false
	return func(key []byte) []byte {
		steps := 0
		for started && k != nil && bytes.Compare(k, key) < 0 {
			if steps++; steps > 4 {
				started = false // far ahead: seek
				break
			}
			k, v = c.Next()
		}
		if !started {
			k, v = c.Seek(key)
			started = true
		}
		if bytes.Equal(k, key) {
			return v
		}
		return nil
	}
}

// planUpsert decides a finding's record given the stored one (nil when
// new): a new lifecycle, a reopened one (returning when it had been
// resolved), new details, or nothing when it is seen again unchanged.
func (c *codec) planUpsert(old []byte, f *workerv1.Finding, now int64) (value []byte, reopened int64, err error) {
	rec := &storagev1.FindingRecord{}
	if old != nil {
		if err := c.decodeFinding(old, rec); err != nil {
			return nil, 0, err
		}
	}
	changed, reopened := ApplyFinding(rec, old == nil, f, now)
	if !changed {
		return nil, 0, nil
	}
	value, err = c.encodeFinding(rec)
	return value, reopened, err
}

// upsertFindingTx plans and writes one finding's record in tx.
func (c *codec) upsertFindingTx(tx *txn, b *table, key []byte, f *workerv1.Finding, now int64) error {
	var old []byte
	if v := b.Get(key); v != nil {
		old = slices.Clone(v)
	}
	value, reopened, err := c.planUpsert(old, f, now)
	if err != nil || value == nil {
		return err
	}
	if reopened != 0 {
		if err := tx.bucket(bucketResolved).Delete(resolvedKey(reopened, key)); err != nil {
			return err
		}
	}
	return b.Put(key, value)
}

func sameDetails(rec *storagev1.FindingRecord, f *workerv1.Finding) bool {
	return rec.Severity == f.Severity && rec.Message == f.Message && rec.SuppressionReason == f.SuppressionReason && rec.Location == f.Location &&
		rec.Category == f.Category && rec.ResponsibleParty == f.ResponsibleParty &&
		rec.GetResource().GetApiVersion() == f.GetResource().GetApiVersion()
}

// carriedFinding is an open finding a job could not have seen.
type carriedFinding struct {
	fp  fp
	rec *storagev1.FindingRecord
}

// resolveUnseenTx marks resolved the open findings of the cluster that the
// job did not see; they were last seen by the cluster's previous job. A
// finding the job could not have seen — outside the scan's checks or
// namespaces, or of a check that was not assessable — stays open and is
// returned as carried.
// With incomplete set (the worker could not read all of the cluster), no
// finding is resolved: one it did not see may be of what it did not read.
func (c *codec) resolveUnseenTx(tx *txn, b *table, prefix []byte, seen map[fp]*workerv1.Finding, spec *fleetscanv1.ScanSpec, unassessed map[string]bool, incomplete bool, cluster *storagev1.ClusterRecord, now int64) ([]carriedFinding, error) {
	type update struct {
		key []byte
		rec *storagev1.FindingRecord
	}
	var updates []update
	var carried []carriedFinding
	cur := b.Cursor()
	for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
		var key fp
		copy(key[:], k[len(prefix):])
		if _, ok := seen[key]; ok {
			continue
		}
		rec := &storagev1.FindingRecord{}
		if err := c.decodeFinding(v, rec); err != nil {
			return nil, err
		}
		if rec.ResolvedMs != 0 {
			continue
		}
		if incomplete || !specCovers(spec, rec) || unassessed[rec.CheckId] {
			carried = append(carried, carriedFinding{fp: key, rec: rec})
			continue
		}
		rec.ResolvedMs = now
		rec.LastSeenMs, rec.LastScanId = cluster.LastJobMs, cluster.LastScanId
		updates = append(updates, update{slices.Clone(k), rec})
	}
	// Written after the cursor is done: bbolt cursors do not survive puts.
	index := tx.bucket(bucketResolved)
	for _, u := range updates {
		if err := c.putFinding(b, u.key, u.rec); err != nil {
			return nil, err
		}
		if err := index.Put(resolvedKey(now, u.key), nil); err != nil {
			return nil, err
		}
	}
	return carried, nil
}

// resolvedKey indexes a resolved lifecycle (cluster seq and fingerprint
// in findingKey) by when it was resolved.
func resolvedKey(resolvedMs int64, findingKey []byte) []byte {
	return append(u64(uint64(resolvedMs)), findingKey...)
}

func specCovers(spec *fleetscanv1.ScanSpec, rec *storagev1.FindingRecord) bool {
	if spec == nil {
		return true
	}
	if len(spec.IncludeChecks) > 0 && !slices.Contains(spec.IncludeChecks, rec.CheckId) {
		return false
	}
	if slices.Contains(spec.ExcludeChecks, rec.CheckId) {
		return false
	}
	if ns := rec.GetResource().GetNamespace(); ns != "" && len(spec.Namespaces) > 0 && !slices.Contains(spec.Namespaces, ns) {
		return false
	}
	return true
}

func resourceOf(r *fleetscanv1.ResourceRef) catalog.Resource {
	return catalog.Resource{APIVersion: r.GetApiVersion(), Kind: r.GetKind(), Namespace: r.GetNamespace(), Name: r.GetName(), SubPath: r.GetSubPath()}
}

func addCount(c *fleetscanv1.SeverityCounts, sev fleetscanv1.Severity, n int64) {
	switch sev {
	case fleetscanv1.Severity_SEVERITY_CRITICAL:
		c.Critical += n
	case fleetscanv1.Severity_SEVERITY_HIGH:
		c.High += n
	case fleetscanv1.Severity_SEVERITY_MEDIUM:
		c.Medium += n
	case fleetscanv1.Severity_SEVERITY_LOW:
		c.Low += n
	default:
		c.Info += n
	}
}

// FindingFilter selects findings; the zero value selects every open one.
type FindingFilter struct {
	ClusterID   string
	MinSeverity fleetscanv1.Severity
	CheckID     string
	// Status is OPEN (the default), RESOLVED or SUPPRESSED.
	Status    fleetscanv1.FindingStatus
	Namespace string
	Category  string
	Party     fleetscanv1.ResponsibleParty
	// FirstSeenAfterMs and FirstSeenBeforeMs bound the first-seen time;
	// zero is no bound.
	FirstSeenAfterMs, FirstSeenBeforeMs int64
	// Visible, if set, is the reader's scope: the store returns nothing
	// else, so a reader cannot page its way out of it.
	Visible Visibility
	// Reader is the reading tenant, "" for an operator: which exceptions
	// apply (see exceptions.forReader).
	Reader string
}

// Visibility says which findings of a cluster a reader may see: none (ok
// false), all (namespaces nil), or those of the listed namespaces, which
// excludes cluster-scoped objects.
type Visibility func(c *storagev1.ClusterRecord) (ok bool, namespaces []string)

// FindingView is a stored finding with what identifies it.
type FindingView struct {
	ClusterID   string
	Fingerprint [catalog.FingerprintSize]byte
	Record      *storagev1.FindingRecord
	// LastSeenMs and ScanID are when and by which scan the finding was last
	// seen: the cluster's latest scan while it is open.
	LastSeenMs int64
	ScanID     ulid.ULID
	// ExceptionID is the exception that suppresses the finding now, if any.
	ExceptionID string

	seq uint64
}

// viewOf completes a record read under key with what the cluster knows.
func viewOf(k []byte, rec *storagev1.FindingRecord, cluster *storagev1.ClusterRecord) FindingView {
	v := FindingView{Record: rec, ClusterID: cluster.GetId(), seq: binaryUint64(k[:8]), LastSeenMs: rec.LastSeenMs}
	copy(v.Fingerprint[:], k[8:])
	copy(v.ScanID[:], rec.LastScanId)
	if rec.ResolvedMs == 0 {
		v.LastSeenMs = cluster.GetLastJobMs()
		copy(v.ScanID[:], cluster.GetLastScanId())
	}
	return v
}

// key is the view's key in the findings bucket.
func (v FindingView) key() []byte { return append(u64(v.seq), v.Fingerprint[:]...) }

func binaryUint64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// ListFindings returns up to limit findings matching f, in (cluster,
// fingerprint) key order, starting after the key `after`; next is the key
// to resume after, nil on the last page.
func (s *DB) ListFindings(_ context.Context, f FindingFilter, after []byte, limit int) (out []FindingView, next []byte, err error) {
	err = s.view(func(tx *txn) error {
		// Only the clusters of the findings on the page are read: a page
		// costs the same with ten clusters or ten thousand.
		clusters := map[uint64]*storagev1.ClusterRecord{}
		clusterOf := func(seq uint64) (*storagev1.ClusterRecord, error) {
			if c, ok := clusters[seq]; ok {
				return c, nil
			}
			rec := &storagev1.ClusterRecord{}
			id := tx.bucket(bucketClusterSeqs).Get(u64(seq))
			if id == nil {
				return nil, getRef(tx.bucket(bucketClusterSeqs), u64(seq), rec, "a finding")
			}
			if err := getRef(tx.bucket(bucketClusters), id, rec, "the cluster seq index"); err != nil {
				return nil, fmt.Errorf("cluster of seq %d: %w", seq, err)
			}
			clusters[seq] = rec
			return rec, nil
		}
		var prefix []byte
		if f.ClusterID != "" {
			rec := &storagev1.ClusterRecord{}
			// A cluster that is not there, or not the reader's, is an
			// error, alike: "no findings" would tell a pipeline with a
			// mistyped id that all is well.
			if err := getProto(tx.bucket(bucketClusters), []byte(f.ClusterID), rec); err != nil {
				if errors.Is(err, ErrNotFound) {
					return fmt.Errorf("cluster %q: %w", f.ClusterID, ErrNotFound)
				}
				return err
			}
			if f.Visible != nil {
				if ok, _ := f.Visible(rec); !ok {
					return fmt.Errorf("cluster %q: %w", f.ClusterID, ErrNotFound)
				}
			}
			clusters[rec.Seq] = rec
			prefix = u64(rec.Seq)
		}
		active, err := activeExceptionsTx(tx, s.nowMs())
		if err != nil {
			return err
		}
		active = active.forReader(f.Reader)
		c := tx.bucket(bucketFindings).Cursor()
		var k, v []byte
		switch {
		case after != nil:
			k, v = c.Seek(after)
			if k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
		case prefix != nil:
			k, v = c.Seek(prefix)
		default:
			k, v = c.First()
		}
		for k != nil && bytes.HasPrefix(k, prefix) {
			seq := binaryUint64(k[:8])
			cluster, err := clusterOf(seq)
			if err != nil {
				return err
			}
			var namespaces []string
			if f.Visible != nil {
				var ok bool
				if ok, namespaces = f.Visible(cluster); !ok {
					k, v = c.Seek(u64(seq + 1)) // skip the whole cluster
					continue
				}
			}
			rec := &storagev1.FindingRecord{}
			if err := s.codec.decodeFinding(v, rec); err != nil {
				return err
			}
			exception := active.apply(cluster, rec)
			if f.matches(rec) && (namespaces == nil || slices.Contains(namespaces, rec.GetResource().GetNamespace())) {
				if len(out) == limit {
					next = slices.Clone(out[len(out)-1].key())
					return nil
				}
				view := viewOf(k, rec, cluster)
				view.ExceptionID = exception
				out = append(out, view)
			}
			k, v = c.Next()
		}
		return nil
	})
	return out, next, err
}

func (f FindingFilter) matches(rec *storagev1.FindingRecord) bool {
	if f.CheckID != "" && rec.CheckId != f.CheckID {
		return false
	}
	if rec.Severity < f.MinSeverity {
		return false
	}
	if (f.Namespace != "" && rec.GetResource().GetNamespace() != f.Namespace) ||
		(f.Category != "" && rec.Category != f.Category) ||
		(f.Party != 0 && rec.ResponsibleParty != f.Party) ||
		(f.FirstSeenAfterMs != 0 && rec.FirstSeenMs < f.FirstSeenAfterMs) ||
		(f.FirstSeenBeforeMs != 0 && rec.FirstSeenMs >= f.FirstSeenBeforeMs) {
		return false
	}
	resolved, suppressed := rec.ResolvedMs != 0, rec.SuppressionReason != ""
	switch f.Status {
	case fleetscanv1.FindingStatus_FINDING_STATUS_SUPPRESSED:
		return !resolved && suppressed
	case fleetscanv1.FindingStatus_FINDING_STATUS_RESOLVED:
		return resolved
	}
	return !resolved && !suppressed
}

// holderScanTx returns the scan a finished job's findings are attributed
// to: the scan that created it, unless that scan cancelled it while
// another that joined it kept it. own is the creating scan's record, which
// the caller has read already: a fleet scan's record lists a thousand job
// ids.
func holderScanTx(tx *txn, jobID ulid.ULID, job *storagev1.JobRecord, own *storagev1.ScanRecord) ([]byte, error) {
	cancelled := func(rec *storagev1.ScanRecord) bool {
		return slices.ContainsFunc(rec.CancelledJobIds, func(id []byte) bool { return bytes.Equal(id, jobID[:]) })
	}
	if !cancelled(own) {
		return job.ScanId, nil
	}
	for _, sid := range job.JoinedScanIds {
		rec := &storagev1.ScanRecord{}
		if err := getRef(tx.bucket(bucketScans), sid, rec, "a job"); err != nil {
			return nil, fmt.Errorf("scan of job %s: %w", jobID, err)
		}
		if !cancelled(rec) {
			return sid, nil
		}
	}
	return job.ScanId, nil
}
