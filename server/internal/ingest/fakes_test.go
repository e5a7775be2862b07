package ingest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// fakeStore keeps the jobs of one fleet in memory, with the state rules of
// the real store that a session relies on (a job that ended refuses
// batches and completion with store.ErrConflict; FailJob of an ended job
// is a no-op), and records every call a session makes.
type fakeStore struct {
	mu sync.Mutex

	queue []store.Assignment // pending jobs, oldest first
	jobs  map[ulid.ULID]*fakeJob
	// tokens are the worker credentials, by string(hash).
	tokens map[string]*storagev1.TokenRecord

	// stageErrs are returned by the next StageBatch calls, one each.
	stageErrs []error
	// completeErr, failErr and exchangeErr, when set, are returned by
	// every CompleteJob, FailJob and ExchangeJoinToken.
	completeErr, failErr, exchangeErr error
	// planUntilHurried, when set, makes PlanBatch wait until the plan is
	// hurried (or the session ends), as a plan queued for a CPU slot
	// behind many others would.
	planUntilHurried bool
	// slotHeld, when set, reports whether the session holds a scheduler
	// slot; DispatchPending without one is recorded as a violation.
	slotHeld func() bool

	dispatches int
	staged     []stagedBatch
	planned    []plannedBatch
	completed  []completedJob
	failed     []failedJob
	requeued   []requeue
	confirmed  [][]byte
	exchanged  []exchange
	recorded   []recordedWorker
	violations []string
}

type fakeJob struct {
	state  fleetscanv1.JobState
	staged int64 // batches staged
}

// plannedBatch is a PlanBatch call: the batch seq added to which plan.
type plannedBatch struct {
	job  ulid.ULID
	plan *store.JobPlan
	seq  int64
}

type stagedBatch struct {
	job   ulid.ULID
	batch *workerv1.FindingBatch
}

type completedJob struct {
	job  ulid.ULID
	done store.Completion
}

type failedJob struct {
	job    ulid.ULID
	reason string
	err    error
}

type requeue struct {
	maxAttempts int
	ids         []ulid.ULID
}

type exchange struct {
	joinHash, workerHash []byte
	clusterID            string
	record               *storagev1.TokenRecord
}

type recordedWorker struct {
	id, workerVersion, kubeVersion string
}

func newFakeStore() *fakeStore {
	return &fakeStore{jobs: map[ulid.ULID]*fakeJob{}, tokens: map[string]*storagev1.TokenRecord{}}
}

// addPending queues a new job and returns its id.
func (f *fakeStore) addPending(spec *fleetscanv1.ScanSpec) ulid.ULID {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := ulid.Make()
	f.jobs[id] = &fakeJob{state: fleetscanv1.JobState_JOB_STATE_PENDING}
	f.queue = append(f.queue, store.Assignment{JobID: id, Spec: spec})
	return id
}

// addRunning adds a job that a worker runs and has staged batches of.
func (f *fakeStore) addRunning(staged int64) ulid.ULID {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := ulid.Make()
	f.jobs[id] = &fakeJob{state: fleetscanv1.JobState_JOB_STATE_RUNNING, staged: staged}
	return id
}

// setState changes a job's state as the API or the reaper would.
func (f *fakeStore) setState(id ulid.ULID, st fleetscanv1.JobState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobs[id].state = st
	f.queue = slices.DeleteFunc(f.queue, func(a store.Assignment) bool { return a.JobID == id })
}

func (f *fakeStore) state(id ulid.ULID) fleetscanv1.JobState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.jobs[id].state
}

func (f *fakeStore) RecordWorker(_ context.Context, id, workerVersion, kubeVersion string, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recorded = append(f.recorded, recordedWorker{id, workerVersion, kubeVersion})
	return nil
}

func (f *fakeStore) DispatchPending(_ context.Context, _ string, limit int) ([]store.Assignment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dispatches++
	if f.slotHeld != nil && !f.slotHeld() {
		f.violations = append(f.violations, "DispatchPending called without a scheduler slot")
	}
	n := len(f.queue)
	if limit > 0 {
		n = min(n, limit)
	}
	out := slices.Clone(f.queue[:n])
	f.queue = f.queue[n:]
	for _, a := range out {
		f.jobs[a.JobID].state = fleetscanv1.JobState_JOB_STATE_DISPATCHED
	}
	return out, nil
}

func (f *fakeStore) RequeueJobs(_ context.Context, maxAttempts int, ids ...ulid.ULID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requeued = append(f.requeued, requeue{maxAttempts, slices.Clone(ids)})
	for _, id := range ids {
		if j := f.jobs[id]; j != nil && !store.IsFinal(j.state) {
			j.state = fleetscanv1.JobState_JOB_STATE_PENDING
			f.queue = append(f.queue, store.Assignment{JobID: id})
		}
	}
	return nil
}

func (f *fakeStore) GetJob(_ context.Context, id ulid.ULID) (*store.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.jobs[id]
	if j == nil {
		return nil, fmt.Errorf("job %s: %w", id, store.ErrNotFound)
	}
	return &store.Job{ID: id, Record: &storagev1.JobRecord{State: j.state, StagedBatches: j.staged}}, nil
}

func (f *fakeStore) StageBatch(_ context.Context, jobID ulid.ULID, batch *workerv1.FindingBatch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.stageErrs) > 0 {
		err := f.stageErrs[0]
		f.stageErrs = f.stageErrs[1:]
		if err != nil {
			return err
		}
	}
	j := f.jobs[jobID]
	if j == nil {
		return fmt.Errorf("job %s: %w", jobID, store.ErrNotFound)
	}
	if store.IsFinal(j.state) {
		return fmt.Errorf("job %s is %s: %w", jobID, j.state, store.ErrConflict)
	}
	j.state = fleetscanv1.JobState_JOB_STATE_RUNNING
	j.staged = max(j.staged, batch.Seq)
	f.staged = append(f.staged, stagedBatch{jobID, batch})
	return nil
}

func (f *fakeStore) PlanBatch(ctx context.Context, jobID ulid.ULID, plan *store.JobPlan, batch *workerv1.FindingBatch) error {
	f.mu.Lock()
	wait := f.planUntilHurried
	f.mu.Unlock()
	if wait {
		select {
		case <-plan.Hurried():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.planned = append(f.planned, plannedBatch{jobID, plan, batch.Seq})
	return nil
}

func (f *fakeStore) plannedBatches() []plannedBatch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.planned)
}

func (f *fakeStore) CompleteJob(_ context.Context, jobID ulid.ULID, done store.Completion) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.completed = append(f.completed, completedJob{jobID, done})
	if f.completeErr != nil {
		return f.completeErr
	}
	j := f.jobs[jobID]
	if j == nil {
		return fmt.Errorf("job %s: %w", jobID, store.ErrNotFound)
	}
	if j.state == fleetscanv1.JobState_JOB_STATE_SUCCEEDED {
		return nil // a JobDone sent again
	}
	if store.IsFinal(j.state) {
		return fmt.Errorf("job %s is %s: %w", jobID, j.state, store.ErrConflict)
	}
	j.state = fleetscanv1.JobState_JOB_STATE_SUCCEEDED
	return nil
}

func (f *fakeStore) FailJob(_ context.Context, id ulid.ULID, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = append(f.failed, failedJob{id, reason, f.failErr})
	if f.failErr != nil {
		return f.failErr
	}
	j := f.jobs[id]
	if j == nil {
		return fmt.Errorf("job %s: %w", id, store.ErrNotFound)
	}
	if !store.IsFinal(j.state) {
		j.state = fleetscanv1.JobState_JOB_STATE_FAILED
	}
	return nil
}

func (f *fakeStore) ResumeJob(_ context.Context, _ string, id ulid.ULID) (int64, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.jobs[id]
	if j == nil || store.IsFinal(j.state) {
		return 0, false, nil
	}
	f.queue = slices.DeleteFunc(f.queue, func(a store.Assignment) bool { return a.JobID == id })
	j.state = fleetscanv1.JobState_JOB_STATE_RUNNING
	return j.staged, true, nil
}

func (f *fakeStore) ExchangeJoinToken(_ context.Context, joinHash []byte, clusterID string, workerHash []byte, worker *storagev1.TokenRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.exchangeErr != nil {
		return f.exchangeErr
	}
	f.exchanged = append(f.exchanged, exchange{joinHash, workerHash, clusterID, worker})
	return nil
}

func (f *fakeStore) ConfirmCredential(_ context.Context, workerHash []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.confirmed = append(f.confirmed, workerHash)
	return nil
}

func (f *fakeStore) LookupToken(_ context.Context, hash []byte) (*storagev1.TokenRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec := f.tokens[string(hash)]
	if rec == nil {
		return nil, store.ErrNotFound
	}
	return rec, nil
}

// Accessors copy what a test reads.

func (f *fakeStore) stagedBatches() []stagedBatch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.staged)
}

func (f *fakeStore) completedJobs() []completedJob {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.completed)
}

func (f *fakeStore) failedJobs() []failedJob {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.failed)
}

// requeuedIDs returns every job id RequeueJobs was called with.
func (f *fakeStore) requeuedIDs() []ulid.ULID {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []ulid.ULID
	for _, r := range f.requeued {
		ids = append(ids, r.ids...)
	}
	return ids
}

func (f *fakeStore) requeues() []requeue {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requeued)
}

func (f *fakeStore) confirmedHashes() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.confirmed)
}

func (f *fakeStore) exchanges() []exchange {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.exchanged)
}

func (f *fakeStore) recordedWorkers() []recordedWorker {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.recorded)
}

func (f *fakeStore) dispatchCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dispatches
}

func (f *fakeStore) violationList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.violations)
}

// fakeScheduler has free fleet-wide slots, and one session per cluster
// like the real one (without the line of waiting clusters).
type fakeScheduler struct {
	mu       sync.Mutex
	free     int // slots Acquire may hand out
	attached int // Attach calls
	acquired int
	taken    int
	released int
	wake     chan struct{} // of the latest session
	// refused is signalled (without blocking) when Acquire refuses.
	refused chan struct{}
}

func newFakeScheduler() *fakeScheduler {
	return &fakeScheduler{free: 1 << 20, refused: make(chan struct{}, 1)}
}

func (f *fakeScheduler) Attach(ctx context.Context, _ string) (context.Context, <-chan struct{}, func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attached++
	sessCtx, cancel := context.WithCancel(ctx)
	wake := make(chan struct{}, 1)
	wake <- struct{}{} // a new session dispatches what is pending
	f.wake = wake
	return sessCtx, wake, cancel, nil
}

func (f *fakeScheduler) WakeEverywhere(_ context.Context, id string) { f.Wake(id) }

func (f *fakeScheduler) Wake(string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.wake == nil {
		return
	}
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fakeScheduler) Acquire(string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.heldLocked() >= f.free {
		select {
		case f.refused <- struct{}{}:
		default:
		}
		return false
	}
	f.acquired++
	return true
}

func (f *fakeScheduler) Take() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.taken++
}

func (f *fakeScheduler) Release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released++
}

func (f *fakeScheduler) setFree(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.free = n
}

// held is how many slots sessions hold: taken and not given back.
func (f *fakeScheduler) held() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.heldLocked()
}

func (f *fakeScheduler) heldLocked() int { return f.acquired + f.taken - f.released }

func (f *fakeScheduler) attachCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attached
}

func (f *fakeScheduler) takeCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.taken
}

// fakeMetrics records what sessions count.
type fakeMetrics struct {
	mu       sync.Mutex
	findings int
	ended    []string
	// completions counts the JobDones committed and acknowledged.
	completions int
}

func (m *fakeMetrics) FindingsStaged(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.findings += n
}

func (m *fakeMetrics) JobEnded(state string, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ended = append(m.ended, state)
}

func (m *fakeMetrics) JobCompleted(time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.completions++
}

func (m *fakeMetrics) completed() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.completions
}

func (m *fakeMetrics) snapshot() (int, []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.findings, slices.Clone(m.ended)
}

// fakeStream is the server's end of one worker stream. The test plays the
// worker: what it puts on in, Recv returns (io.EOF once in is closed);
// what the server sends comes out on out. Like a gRPC stream, both
// return once the stream's context is done.
type fakeStream struct {
	ctx       context.Context
	in        chan recvResult
	out       chan *workerv1.ConnectResponse
	closeOnce sync.Once
}

type recvResult struct {
	msg *workerv1.ConnectRequest
	err error
}

func newFakeStream(ctx context.Context) *fakeStream {
	return &fakeStream{ctx: ctx, in: make(chan recvResult, 16), out: make(chan *workerv1.ConnectResponse, 256)}
}

func (s *fakeStream) Recv() (*workerv1.ConnectRequest, error) {
	select {
	case r, ok := <-s.in:
		if !ok {
			return nil, io.EOF
		}
		return r.msg, r.err
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	}
}

func (s *fakeStream) Send(msg *workerv1.ConnectResponse) error {
	select {
	case s.out <- msg:
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

// closeSend is the worker closing its side of the stream.
func (s *fakeStream) closeSend() { s.closeOnce.Do(func() { close(s.in) }) }
