package store

import (
	"errors"
	"fmt"

	"github.com/oklog/ulid/v2"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/worker/catalog"
)

// The rules of findings that both stores follow, exported for the
// PostgreSQL store (server/internal/pgstore) so that there is one copy of
// each: how a lifecycle changes when a job sees a finding, what a scan
// covers, which exceptions apply, how a fingerprint set is encoded.

// Exceptions are the exceptions in force at one moment.
type Exceptions = exceptions

// ActiveExceptions keeps the exceptions of all that apply at nowMs.
func ActiveExceptions(all []*fleetscanv1.Exception, nowMs int64) Exceptions {
	var out exceptions
	for _, e := range all {
		if ExceptionState(e, nowMs) == fleetscanv1.ExceptionState_EXCEPTION_STATE_ACTIVE {
			out = append(out, e)
		}
	}
	return out
}

// ForReader keeps those that apply for reader (see forReader).
func (es exceptions) ForReader(reader string) Exceptions { return es.forReader(reader) }

// Match returns the first exception covering a finding of check on r in
// cluster c, or nil.
func (es exceptions) Match(c *storagev1.ClusterRecord, check string, r *fleetscanv1.ResourceRef) *fleetscanv1.Exception {
	return es.match(c, check, r)
}

// Apply marks rec suppressed by the first exception that covers it and
// returns the exception's id (see apply).
func (es exceptions) Apply(c *storagev1.ClusterRecord, rec *storagev1.FindingRecord) string {
	return es.apply(c, rec)
}

// FindingFingerprint is a finding's fingerprint in a cluster: the
// lifecycle it belongs to.
func FindingFingerprint(clusterID string, f *workerv1.Finding) [catalog.FingerprintSize]byte {
	return catalog.Fingerprint(clusterID, f.CheckId, resourceOf(f.Resource))
}

// ApplyFinding changes rec, the stored lifecycle of a finding (a fresh
// record when isNew), as a job that saw f at now does, and reports
// whether the record changed (a finding seen again unchanged is not
// written) and, for a lifecycle it reopens, when it had been resolved.
func ApplyFinding(rec *storagev1.FindingRecord, isNew bool, f *workerv1.Finding, now int64) (changed bool, reopened int64) {
	if isNew {
		rec.FirstSeenMs = now
	} else if rec.ResolvedMs != 0 {
		reopened = rec.ResolvedMs
		rec.History = append(rec.History, &storagev1.Interval{FirstSeenMs: rec.FirstSeenMs, LastSeenMs: rec.LastSeenMs, ResolvedMs: rec.ResolvedMs})
		rec.FirstSeenMs, rec.LastSeenMs, rec.ResolvedMs, rec.LastScanId = now, 0, 0, nil
	} else if sameDetails(rec, f) {
		return false, 0
	}
	rec.CheckId, rec.Severity, rec.Category, rec.ResponsibleParty = f.CheckId, f.Severity, f.Category, f.ResponsibleParty
	rec.Resource, rec.Message, rec.SuppressionReason, rec.Location = f.Resource, f.Message, f.SuppressionReason, f.Location
	return true, reopened
}

// SpecCovers reports whether a scan with spec could have seen rec's
// finding: a job resolves only the open findings its scan covered.
func SpecCovers(spec *fleetscanv1.ScanSpec, rec *storagev1.FindingRecord) bool {
	return specCovers(spec, rec)
}

// AddCount adds n to c's count of sev.
func AddCount(c *fleetscanv1.SeverityCounts, sev fleetscanv1.Severity, n int64) { addCount(c, sev, n) }

// Matches reports whether rec, with the exceptions already applied,
// passes f's filters (all but the cluster and the reader's scope).
func (f FindingFilter) Matches(rec *storagev1.FindingRecord) bool { return f.matches(rec) }

// NewFindingView is the view of the lifecycle rec of the cluster with
// seq clusterSeq.
func NewFindingView(clusterSeq uint64, fingerprint [catalog.FingerprintSize]byte, rec *storagev1.FindingRecord, cluster *storagev1.ClusterRecord) FindingView {
	return viewOf(append(u64(clusterSeq), fingerprint[:]...), rec, cluster)
}

// FindingKey is the key ListFindings resumes after: the cluster's seq
// and the fingerprint, as the bbolt store's keys are.
func FindingKey(clusterSeq uint64, fingerprint [catalog.FingerprintSize]byte) []byte {
	return append(u64(clusterSeq), fingerprint[:]...)
}

// OpenAt reports whether a scan that ended at t saw a finding with these
// open intervals.
func OpenAt(intervals []*storagev1.Interval, t int64) bool { return openAt(intervals, t) }

// Fingerprint sets, as the bbolt store encodes them (fpset.go).

// SetDelta reports whether an encoded set is a delta, and from which
// job's set.
func SetDelta(v []byte) (base ulid.ULID, ok bool) {
	if len(v) < 17 || v[0] != setDelta {
		return base, false
	}
	copy(base[:], v[1:17])
	return base, true
}

// EncodeSet encodes sorted fingerprints, as a delta from base (the set of
// job baseID, at delta depth baseDepth) when that is smaller; base nil
// for none.
func EncodeSet(fps [][catalog.FingerprintSize]byte, baseID ulid.ULID, base [][catalog.FingerprintSize]byte, baseDepth int) []byte {
	return encodeSet(fps, baseID, base, baseDepth)
}

// DecodeSet decodes a set, reading the set of a delta's base with
// getBase, and returns it sorted with its delta depth. getBase returns
// ErrNotFound for a set that is not stored.
func DecodeSet(v []byte, getBase func(ulid.ULID) ([][catalog.FingerprintSize]byte, int, error)) ([][catalog.FingerprintSize]byte, int, error) {
	if len(v) == 0 {
		return nil, 0, errors.New("empty fingerprint set")
	}
	switch v[0] {
	case setFull:
		return unpack(v[1:]), 0, nil
	case setDelta:
		baseID, added, removed, depth, err := splitDelta(v)
		if err != nil {
			return nil, 0, err
		}
		base, _, err := getBase(baseID)
		if err != nil {
			return nil, 0, fmt.Errorf("base %s of a delta set: %w", baseID, err)
		}
		return applyDelta(base, added, removed), depth, nil
	}
	return nil, 0, fmt.Errorf("unknown fingerprint set form %d", v[0])
}

// DiffSorted returns what b has and a lacks, and what a has and b lacks.
func DiffSorted(a, b [][catalog.FingerprintSize]byte) (added, removed [][catalog.FingerprintSize]byte) {
	return diffSorted(a, b)
}

// CheckCompletable says whether a JobDone can complete a job in state
// with staged batches stored: it is running with every batch stored
// (ErrConflict, ErrIncomplete otherwise), or already succeeded, a re-sent
// JobDone and a no-op.
func CheckCompletable(jobID ulid.ULID, state fleetscanv1.JobState, staged int64, done Completion) error {
	return checkCompletable(jobID, &storagev1.JobRecord{State: state, StagedBatches: staged}, done)
}

// JobTally counts a job's findings as its record and summary keep them:
// by severity (suppressed ones apart), by check and by responsible party.
type JobTally struct {
	Counts  *fleetscanv1.SeverityCounts
	Checks  map[string]int64
	Parties map[int32]*fleetscanv1.SeverityCounts
}

// NewJobTally returns an empty tally.
func NewJobTally() *JobTally {
	return &JobTally{Counts: &fleetscanv1.SeverityCounts{}, Checks: map[string]int64{}, Parties: map[int32]*fleetscanv1.SeverityCounts{}}
}

// Add counts one finding; a suppressed one (by its own reason or an
// exception) counts only as suppressed.
func (t *JobTally) Add(check string, sev fleetscanv1.Severity, suppressed bool, party fleetscanv1.ResponsibleParty) {
	if suppressed {
		t.Counts.Suppressed++
		return
	}
	addCount(t.Counts, sev, 1)
	t.Checks[check]++
	if t.Parties[int32(party)] == nil {
		t.Parties[int32(party)] = &fleetscanv1.SeverityCounts{}
	}
	addCount(t.Parties[int32(party)], sev, 1)
}

// Succeed ends the job as SUCCEEDED at nowMs with the tally and what its
// worker reported, its staged batches gone.
func (t *JobTally) Succeed(job *storagev1.JobRecord, nowMs int64, done Completion) {
	job.State = fleetscanv1.JobState_JOB_STATE_SUCCEEDED
	job.FinishMs = nowMs
	job.Findings = t.Counts
	job.CheckCounts = t.Checks
	job.PartyCounts = t.Parties
	job.ObjectsScanned = done.ObjectsScanned
	job.NotAssessable = done.NotAssessable
	job.Problems = done.Problems
	job.Unchecked = done.Unchecked
	job.StagedBatches, job.StagedFindings = 0, 0
}
