package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/server/internal/auth"
	"github.com/fleetscan/fleetscan/server/internal/store"
	"github.com/fleetscan/fleetscan/worker/catalog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cluster is the cluster every test's worker credential was issued for.
const cluster = "c1"

// guard bounds how long a test waits for anything: it catches a hang, it
// is never what a test asserts.
const guard = 30 * time.Second

// env is one Ingest over fakes.
type env struct {
	t       *testing.T
	ctx     context.Context // done after guard: only against hangs
	store   *fakeStore
	sched   *fakeScheduler
	metrics *fakeMetrics
	in      *Ingest
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), guard)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, store: newFakeStore(), sched: newFakeScheduler(), metrics: &fakeMetrics{}}
	e.in = New(e.store, e.sched, slog.New(slog.DiscardHandler), "test")
	e.in.Metrics = e.metrics
	e.store.slotHeld = func() bool { return e.sched.held() > 0 }
	// Registered first, so it runs after every session has ended.
	t.Cleanup(func() {
		if n := e.sched.held(); n != 0 {
			t.Errorf("%d scheduler slots still held after every session ended", n)
		}
		for _, v := range e.store.violationList() {
			t.Error(v)
		}
	})
	return e
}

// worker is the test's end of one session.
type worker struct {
	t      *testing.T
	ctx    context.Context
	stream *fakeStream
	ended  chan struct{}
	err    error // what Serve returned, once ended is closed
}

// serve starts a session of caller in a goroutine.
func (e *env) serve(caller Caller) *worker {
	ctx, cancel := context.WithCancel(e.ctx)
	w := &worker{t: e.t, ctx: e.ctx, stream: newFakeStream(ctx), ended: make(chan struct{})}
	go func() {
		err := e.in.Serve(ctx, caller, w.stream)
		cancel() // gRPC ends the stream when its handler returns
		w.err = err
		close(w.ended)
	}()
	e.t.Cleanup(func() {
		cancel()
		<-w.ended
	})
	return w
}

// connect starts a session of the cluster's worker, says hello and
// returns the Welcome.
func (e *env) connect(hello *workerv1.ConnectRequest) (*worker, *workerv1.Welcome) {
	e.t.Helper()
	w := e.serve(Caller{ClusterID: cluster})
	w.send(hello)
	msg := w.next()
	if msg.GetWelcome() == nil {
		e.t.Fatalf("first message from the server: got %v, want a Welcome", msg)
	}
	return w, msg.GetWelcome()
}

// send is the worker sending msg.
func (w *worker) send(msg *workerv1.ConnectRequest) {
	w.t.Helper()
	w.put(recvResult{msg: msg})
}

// fail makes the worker's next Recv fail with err, as gRPC does for a
// message over the server's limit.
func (w *worker) fail(err error) {
	w.t.Helper()
	w.put(recvResult{err: err})
}

func (w *worker) put(r recvResult) {
	w.t.Helper()
	select {
	case w.stream.in <- r:
	case <-w.ctx.Done():
		w.t.Fatal("the session does not read what the worker sends")
	}
}

// next returns the next message the server sent.
func (w *worker) next() *workerv1.ConnectResponse {
	w.t.Helper()
	select {
	case msg := <-w.stream.out:
		return msg
	case <-w.ended:
		select {
		case msg := <-w.stream.out:
			return msg
		default:
		}
		w.t.Fatalf("the session ended (%v) while the worker waited for a message", w.err)
	case <-w.ctx.Done():
		w.t.Fatal("no message from the server (test guard expired)")
	}
	return nil
}

// wait returns what Serve returned.
func (w *worker) wait() error {
	w.t.Helper()
	select {
	case <-w.ended:
		return w.err
	case <-w.ctx.Done():
		w.t.Fatal("the session did not end (test guard expired)")
		return nil
	}
}

// rest returns what the server sent and the worker has not read; only
// once the session has ended.
func (w *worker) rest() []*workerv1.ConnectResponse {
	w.t.Helper()
	w.wait()
	var out []*workerv1.ConnectResponse
	for {
		select {
		case msg := <-w.stream.out:
			out = append(out, msg)
		default:
			return out
		}
	}
}

// await waits for a signal from a fake.
func (e *env) await(ch <-chan struct{}, what string) {
	e.t.Helper()
	select {
	case <-ch:
	case <-e.ctx.Done():
		e.t.Fatalf("test guard expired waiting for %s", what)
	}
}

// Worker messages.

func helloMsg(caps ...string) *workerv1.ConnectRequest {
	return &workerv1.ConnectRequest{Msg: &workerv1.ConnectRequest_Hello{Hello: &workerv1.Hello{
		ClusterId: cluster, WorkerVersion: "0.3.0", KubernetesVersion: "v1.33.1", Capabilities: caps,
	}}}
}

func helloHolding(held []string, caps ...string) *workerv1.ConnectRequest {
	msg := helloMsg(caps...)
	msg.GetHello().HeldJobs = held
	return msg
}

func finding(checkID, message string) *workerv1.Finding {
	return &workerv1.Finding{
		CheckId: checkID, Severity: fleetscanv1.Severity_SEVERITY_HIGH, Category: "pod-security", Message: message,
		Resource: &fleetscanv1.ResourceRef{ApiVersion: "v1", Kind: "Pod", Namespace: "prod", Name: "web"},
	}
}

func findings(n int) []*workerv1.Finding {
	out := make([]*workerv1.Finding, n)
	for i := range out {
		out[i] = finding("POD-001", fmt.Sprintf("finding %d", i))
	}
	return out
}

func batchMsg(jobID string, seq int64, fs ...*workerv1.Finding) *workerv1.ConnectRequest {
	return &workerv1.ConnectRequest{Msg: &workerv1.ConnectRequest_Batch{Batch: &workerv1.FindingBatch{JobId: jobID, Seq: seq, Findings: fs}}}
}

func doneMsg(jobID string, batches, findings, objects int64) *workerv1.ConnectRequest {
	return &workerv1.ConnectRequest{Msg: &workerv1.ConnectRequest_JobDone{JobDone: &workerv1.JobDone{
		JobId: jobID, Batches: batches, Findings: findings, ObjectsScanned: objects,
	}}}
}

func failedMsg(jobID, reason string) *workerv1.ConnectRequest {
	return &workerv1.ConnectRequest{Msg: &workerv1.ConnectRequest_JobDone{JobDone: &workerv1.JobDone{JobId: jobID, Error: reason}}}
}

func progressMsg(jobID string, objects int64) *workerv1.ConnectRequest {
	return &workerv1.ConnectRequest{Msg: &workerv1.ConnectRequest_Progress{Progress: &workerv1.Progress{JobId: jobID, ObjectsScanned: objects}}}
}

func heartbeatMsg() *workerv1.ConnectRequest {
	return &workerv1.ConnectRequest{Msg: &workerv1.ConnectRequest_Progress{Progress: &workerv1.Progress{}}}
}

// Server messages.

func assignMsg(id ulid.ULID, spec *fleetscanv1.ScanSpec) *workerv1.ConnectResponse {
	if spec == nil {
		spec = &fleetscanv1.ScanSpec{}
	}
	return &workerv1.ConnectResponse{Msg: &workerv1.ConnectResponse_Assign{Assign: &workerv1.Assign{JobId: id.String(), Spec: spec}}}
}

func ackMsg(jobID string, seq int64) *workerv1.ConnectResponse {
	return &workerv1.ConnectResponse{Msg: &workerv1.ConnectResponse_Ack{Ack: &workerv1.Ack{JobId: jobID, Seq: seq}}}
}

func doneAckMsg(id ulid.ULID) *workerv1.ConnectResponse {
	return &workerv1.ConnectResponse{Msg: &workerv1.ConnectResponse_Ack{Ack: &workerv1.Ack{JobId: id.String(), JobDone: true}}}
}

func cancelMsg(id ulid.ULID) *workerv1.ConnectResponse {
	return &workerv1.ConnectResponse{Msg: &workerv1.ConnectResponse_Cancel{Cancel: &workerv1.Cancel{JobId: id.String()}}}
}

func wantMsg(t *testing.T, got, want *workerv1.ConnectResponse) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Fatalf("server sent %v, want %v", got, want)
	}
}

// acks returns the batch acks among msgs.
func acks(msgs []*workerv1.ConnectResponse) []*workerv1.Ack {
	var out []*workerv1.Ack
	for _, m := range msgs {
		if a := m.GetAck(); a != nil && !a.JobDone {
			out = append(out, a)
		}
	}
	return out
}

func count(ids []ulid.ULID, id ulid.ULID) int {
	n := 0
	for _, x := range ids {
		if x == id {
			n++
		}
	}
	return n
}

func TestServeRefusesBadHello(t *testing.T) {
	otherCluster := helloMsg()
	otherCluster.GetHello().ClusterId = "c2"
	longVersion := helloMsg()
	longVersion.GetHello().WorkerVersion = strings.Repeat("9", maxVersionLength+1)
	held := make([]string, maxHeldJobs+1)
	for i := range held {
		held[i] = ulid.Make().String()
	}
	tests := []struct {
		name   string
		caller Caller
		first  *workerv1.ConnectRequest
		want   error
	}{
		{"first message a batch", Caller{ClusterID: cluster}, batchMsg(ulid.Make().String(), 1, finding("POD-001", "m")), ErrProtocol},
		{"first message a heartbeat", Caller{ClusterID: cluster}, heartbeatMsg(), ErrProtocol},
		{"hello for another cluster", Caller{ClusterID: cluster}, otherCluster, ErrWrongCluster},
		{"worker version too long", Caller{ClusterID: cluster}, longVersion, ErrProtocol},
		{"too many held jobs", Caller{ClusterID: cluster}, helloHolding(held, CapResume), ErrProtocol},
		{"join token from a worker that cannot take a credential", Caller{ClusterID: cluster, JoinTokenHash: []byte("join")}, helloMsg(CapResume, CapHeartbeat), ErrJoinToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.store.addPending(nil)
			w := e.serve(tt.caller)
			w.send(tt.first)
			if err := w.wait(); !errors.Is(err, tt.want) {
				t.Fatalf("Serve = %v, want %v", err, tt.want)
			}
			if msgs := w.rest(); len(msgs) != 0 {
				t.Errorf("the refused worker was sent %v", msgs)
			}
			// A refused Hello must not replace the cluster's session, nor
			// touch its jobs or its worker record.
			if n := e.sched.attachCalls(); n != 0 {
				t.Errorf("Attach called %d times", n)
			}
			if n := e.store.dispatchCalls(); n != 0 {
				t.Errorf("DispatchPending called %d times", n)
			}
			if r := e.store.recordedWorkers(); len(r) != 0 {
				t.Errorf("worker recorded: %v", r)
			}
		})
	}
}

func TestServeWelcome(t *testing.T) {
	tests := []struct {
		name            string
		caps            []string
		maxMessageBytes int
		wantCaps        []string
		wantMaxBytes    int32
	}{
		{"defaults", nil, 0, nil, DefaultMaxMessageBytes},
		{"capabilities the server knows, once each", []string{CapResume, "teleport", CapResume, CapHeartbeat}, 0, []string{CapResume, CapHeartbeat}, DefaultMaxMessageBytes},
		{"a receive limit over int32 is announced as the int32 maximum", nil, 1 << 40, nil, math.MaxInt32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.maxMessageBytes != 0 {
				e.in.MaxMessageBytes = tt.maxMessageBytes
			}
			e.in.Heartbeat = 7 * time.Second
			_, welcome := e.connect(helloMsg(tt.caps...))
			if !slices.Equal(welcome.Capabilities, tt.wantCaps) {
				t.Errorf("capabilities %q, want %q", welcome.Capabilities, tt.wantCaps)
			}
			if welcome.MaxMessageBytes != tt.wantMaxBytes {
				t.Errorf("max_message_bytes %d, want %d", welcome.MaxMessageBytes, tt.wantMaxBytes)
			}
			if welcome.MaxBatchSize != MaxBatchSize || welcome.MaxInflightBatches != MaxInflightBatches {
				t.Errorf("max_batch_size %d, max_inflight_batches %d; want %d, %d", welcome.MaxBatchSize, welcome.MaxInflightBatches, MaxBatchSize, MaxInflightBatches)
			}
			if d := welcome.HeartbeatInterval.AsDuration(); d != 7*time.Second {
				t.Errorf("heartbeat_interval %v, want 7s", d)
			}
			if welcome.WorkerToken != "" {
				t.Errorf("worker_token %q sent to a worker that connected with its own credential", welcome.WorkerToken)
			}
		})
	}
}

func TestServeRunsJob(t *testing.T) {
	tests := []struct {
		name        string
		caps        []string
		wantConfirm bool
	}{
		{"worker that resumes jobs gets its JobDone confirmed", []string{CapResume}, true},
		{"older worker gets no confirmation", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			spec := &fleetscanv1.ScanSpec{Namespaces: []string{"prod"}, ExcludeChecks: []string{"IMG-003"}}
			job := e.store.addPending(spec)
			queued := e.store.addPending(nil)

			w, _ := e.connect(helloMsg(tt.caps...))
			// One job at a time: the queued one waits for the first to end.
			wantMsg(t, w.next(), assignMsg(job, spec))
			w.send(progressMsg(job.String(), 42))
			batch := batchMsg(job.String(), 1, finding("POD-001", "runs as root"), finding("POD-002", "no memory limit"))
			w.send(batch)
			wantMsg(t, w.next(), ackMsg(job.String(), 1))
			if n, ok := e.in.ObjectsScanned(job); !ok || n != 42 {
				t.Errorf("ObjectsScanned = %d, %v; want 42, true", n, ok)
			}
			w.send(doneMsg(job.String(), 1, 2, 42))
			if tt.wantConfirm {
				wantMsg(t, w.next(), doneAckMsg(job))
			}
			wantMsg(t, w.next(), assignMsg(queued, nil))
			w.stream.closeSend()
			if err := w.wait(); err != nil {
				t.Fatalf("Serve = %v after the worker closed its stream, want nil", err)
			}

			staged := e.store.stagedBatches()
			if len(staged) != 1 || staged[0].job != job || !proto.Equal(staged[0].batch, batch.GetBatch()) {
				t.Errorf("staged %v, want the worker's batch for job %s", staged, job)
			}
			completed := e.store.completedJobs()
			if len(completed) != 1 || completed[0].job != job {
				t.Fatalf("CompleteJob calls %v, want one for job %s", completed, job)
			}
			if d := completed[0].done; d.Batches != 1 || d.Findings != 2 || d.ObjectsScanned != 42 {
				t.Errorf("completion %+v, want 1 batch, 2 findings, 42 objects", d)
			}
			// The batch was planned as it was stored, into the plan the
			// JobDone hands over: the completion only commits.
			planned := e.store.plannedBatches()
			if len(planned) != 1 || planned[0].job != job || planned[0].seq != 1 || planned[0].plan == nil || completed[0].done.Plan != planned[0].plan {
				t.Errorf("PlanBatch calls %+v and the completion's plan %p, want batch 1 of job %s planned into the plan completed", planned, completed[0].done.Plan, job)
			}
			if f := e.store.failedJobs(); len(f) != 0 {
				t.Errorf("FailJob calls %v, want none", f)
			}
			if st := e.store.state(job); st != fleetscanv1.JobState_JOB_STATE_SUCCEEDED {
				t.Errorf("job state %v, want SUCCEEDED", st)
			}
			// The job the worker had not finished goes back in the queue.
			if r := e.store.requeues(); len(r) != 1 || !slices.Equal(r[0].ids, []ulid.ULID{queued}) || r[0].maxAttempts != e.in.MaxAttempts {
				t.Errorf("RequeueJobs calls %v, want one of job %s with max attempts %d", r, queued, e.in.MaxAttempts)
			}
			if _, ok := e.in.ObjectsScanned(job); ok {
				t.Error("progress of the ended job still reported")
			}
			if n, ended := e.metrics.snapshot(); n != 2 || !slices.Equal(ended, []string{"succeeded"}) {
				t.Errorf("metrics: %d findings staged, jobs ended %q; want 2, [succeeded]", n, ended)
			}
		})
	}
}

// TestServeHurriesPlanAtJobDone: a JobDone that arrives while the
// session still plans the job's last batch hurries that plan: the
// completion does not wait in line behind the plans of jobs still
// streaming.
func TestServeHurriesPlanAtJobDone(t *testing.T) {
	e := newEnv(t)
	e.store.planUntilHurried = true
	job := e.store.addPending(nil)
	w, _ := e.connect(helloMsg(CapResume))
	wantMsg(t, w.next(), assignMsg(job, nil))
	w.send(batchMsg(job.String(), 1, finding("POD-001", "m")))
	// Acked once stored; the session then plans it, until hurried.
	wantMsg(t, w.next(), ackMsg(job.String(), 1))
	w.send(doneMsg(job.String(), 1, 1, 5))
	wantMsg(t, w.next(), doneAckMsg(job))
	if st := e.store.state(job); st != fleetscanv1.JobState_JOB_STATE_SUCCEEDED {
		t.Errorf("job state %v, want SUCCEEDED", st)
	}
	if p := e.store.plannedBatches(); len(p) != 1 || p[0].seq != 1 {
		t.Errorf("planned %+v, want batch 1", p)
	}
	w.stream.closeSend()
	if err := w.wait(); err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
}

func TestServeJobDone(t *testing.T) {
	tests := []struct {
		name        string
		completeErr error
		done        *workerv1.ConnectRequest // of job "JOB"
		wantState   fleetscanv1.JobState
		wantReason  string // part of the reason FailJob is given; "" if not called
		wantMetric  string
	}{
		{
			name: "success", done: doneMsg("JOB", 1, 1, 5),
			wantState: fleetscanv1.JobState_JOB_STATE_SUCCEEDED, wantMetric: "succeeded",
		},
		{
			name: "failed on the worker", done: failedMsg("JOB", "list pods: forbidden"),
			wantState: fleetscanv1.JobState_JOB_STATE_FAILED, wantReason: "list pods: forbidden", wantMetric: "failed",
		},
		{
			name: "incomplete on the server", completeErr: fmt.Errorf("job: 0 of 1 batches stored: %w", store.ErrIncomplete), done: doneMsg("JOB", 1, 1, 5),
			wantState: fleetscanv1.JobState_JOB_STATE_FAILED, wantReason: "0 of 1 batches stored", wantMetric: "failed",
		},
		{
			name: "conflicting twice while completed", completeErr: fmt.Errorf("job changed while it was being completed: %w", store.ErrConflict), done: doneMsg("JOB", 1, 1, 5),
			wantState: fleetscanv1.JobState_JOB_STATE_FAILED, wantReason: "incomplete", wantMetric: "failed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			job := e.store.addPending(nil)
			queued := e.store.addPending(nil)
			w, _ := e.connect(helloMsg(CapResume))
			wantMsg(t, w.next(), assignMsg(job, nil))
			w.send(batchMsg(job.String(), 1, finding("POD-001", "m")))
			wantMsg(t, w.next(), ackMsg(job.String(), 1))

			e.store.mu.Lock()
			e.store.completeErr = tt.completeErr
			e.store.mu.Unlock()
			done := proto.Clone(tt.done).(*workerv1.ConnectRequest)
			done.GetJobDone().JobId = job.String()
			w.send(done)
			// Whatever the outcome, the worker may forget the job, and
			// the session goes on with the next one.
			wantMsg(t, w.next(), doneAckMsg(job))
			wantMsg(t, w.next(), assignMsg(queued, nil))

			if st := e.store.state(job); st != tt.wantState {
				t.Errorf("job state %v, want %v", st, tt.wantState)
			}
			failed := e.store.failedJobs()
			switch {
			case tt.wantReason == "" && len(failed) != 0:
				t.Errorf("FailJob calls %v, want none", failed)
			case tt.wantReason != "" && (len(failed) != 1 || failed[0].job != job || !strings.Contains(failed[0].reason, tt.wantReason)):
				t.Errorf("FailJob calls %v, want one for job %s with a reason containing %q", failed, job, tt.wantReason)
			}
			if _, ended := e.metrics.snapshot(); !slices.Equal(ended, []string{tt.wantMetric}) {
				t.Errorf("jobs ended %q, want [%s]", ended, tt.wantMetric)
			}
			// Every outcome is a completion the worker waited for.
			if n := e.metrics.completed(); n != 1 {
				t.Errorf("%d completions timed, want 1", n)
			}
			w.stream.closeSend()
			if err := w.wait(); err != nil {
				t.Fatalf("Serve = %v, want nil", err)
			}
			if n := count(e.store.requeuedIDs(), job); n != 0 {
				t.Errorf("the ended job was requeued")
			}
		})
	}
}

func TestServeStageBatchErrors(t *testing.T) {
	errDisk := errors.New("input/output error")
	tests := []struct {
		name     string
		stageErr error
		want     []error // what the session's error wraps
		notWant  error
	}{
		{
			name:     "out of order is a protocol violation",
			stageErr: fmt.Errorf("job: batch 3 arrived after 1 stored batches: %w", store.ErrOutOfOrder),
			want:     []error{ErrProtocol, store.ErrOutOfOrder},
		},
		{
			name:     "a store failure is not the worker's fault",
			stageErr: errDisk,
			want:     []error{errDisk},
			notWant:  ErrProtocol,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			job := e.store.addPending(nil)
			e.store.stageErrs = []error{tt.stageErr}
			w, _ := e.connect(helloMsg(CapResume))
			wantMsg(t, w.next(), assignMsg(job, nil))
			w.send(batchMsg(job.String(), 3, finding("POD-001", "m")))
			err := w.wait()
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Errorf("Serve = %v, want an error wrapping %v", err, want)
				}
			}
			if tt.notWant != nil && errors.Is(err, tt.notWant) {
				t.Errorf("Serve = %v, want no %v", err, tt.notWant)
			}
			if a := acks(w.rest()); len(a) != 0 {
				t.Errorf("the batch that was not stored was acked: %v", a)
			}
			if f := e.store.failedJobs(); len(f) != 0 {
				t.Errorf("FailJob calls %v, want none: the worker sends the job again", f)
			}
			if n := count(e.store.requeuedIDs(), job); n != 1 {
				t.Errorf("job requeued %d times, want once", n)
			}
		})
	}
}

func TestServeNoSpace(t *testing.T) {
	noSpace := fmt.Errorf("job: %w", store.ErrNoSpace)
	tests := []struct {
		name        string
		stageErr    error
		completeErr error
		failErr     error
		wantFailed  bool // else requeued
	}{
		{name: "staging a batch", stageErr: noSpace, wantFailed: true},
		{name: "completing the job", completeErr: noSpace, wantFailed: true},
		{name: "failing the job fails too", stageErr: noSpace, failErr: noSpace, wantFailed: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.in.NoSpaceRetryDelay = 90 * time.Second
			job := e.store.addPending(nil)
			e.store.stageErrs = []error{tt.stageErr}
			e.store.completeErr = tt.completeErr
			e.store.failErr = tt.failErr
			w, _ := e.connect(helloMsg(CapResume))
			wantMsg(t, w.next(), assignMsg(job, nil))
			w.send(batchMsg(job.String(), 1, finding("POD-001", "m")))
			if tt.stageErr == nil {
				wantMsg(t, w.next(), ackMsg(job.String(), 1))
				w.send(doneMsg(job.String(), 1, 1, 5))
			}
			err := w.wait()
			if !errors.Is(err, store.ErrNoSpace) {
				t.Fatalf("Serve = %v, want an error wrapping store.ErrNoSpace", err)
			}
			// The API finds the delay as toStatus does, with errors.As.
			var ra interface{ RetryAfter() time.Duration }
			if !errors.As(err, &ra) || ra.RetryAfter() != 90*time.Second {
				t.Errorf("Serve = %v: want a RetryAfter() of the configured 1m30s", err)
			}
			if tt.stageErr != nil {
				if a := acks(w.rest()); len(a) != 0 {
					t.Errorf("the batch that was not stored was acked: %v", a)
				}
			}
			failed := e.store.failedJobs()
			if len(failed) != 1 || failed[0].job != job || !strings.Contains(failed[0].reason, "disk is full") {
				t.Fatalf("FailJob calls %v, want one for job %s saying the disk is full", failed, job)
			}
			requeued := count(e.store.requeuedIDs(), job)
			_, ended := e.metrics.snapshot()
			if tt.wantFailed {
				if requeued != 0 || !slices.Equal(ended, []string{"failed"}) {
					t.Errorf("job requeued %d times, jobs ended %q; want a failed job, not requeued", requeued, ended)
				}
			} else if requeued != 1 || len(ended) != 0 {
				t.Errorf("job requeued %d times, jobs ended %q; want the job requeued, since it could not be failed", requeued, ended)
			}
		})
	}
}

func TestServeRefusedTwice(t *testing.T) {
	longMessage := finding("POD-001", strings.Repeat("x", catalog.MaxMessageBytes+1))
	longCheckID := finding(strings.Repeat("X", catalog.MaxFieldBytes+1), "m")
	sendBatch := func(f *workerv1.Finding) func(*worker, ulid.ULID) {
		return func(w *worker, job ulid.ULID) { w.send(batchMsg(job.String(), 1, f)) }
	}
	tooLarge := func(w *worker, _ ulid.ULID) {
		w.fail(status.Error(codes.ResourceExhausted, "grpc: received message larger than max (9000000 vs. 8388608)"))
	}
	tests := []struct {
		name          string
		first, second func(*worker, ulid.ULID)
		firstErr      error
		wantReason    string // part of the failed job's reason; "" when the job must not fail
		secondErr     error  // how the second session ends; nil when it goes on
	}{
		{
			name:  "the same finding over the limits twice",
			first: sendBatch(longMessage), second: sendBatch(longMessage),
			firstErr: ErrRefused, wantReason: fmt.Sprintf("message of %d bytes", catalog.MaxMessageBytes+1),
		},
		{
			name:  "two different refusals",
			first: sendBatch(longMessage), second: sendBatch(longCheckID),
			firstErr: ErrRefused, secondErr: ErrRefused,
		},
		{
			name:  "a message over the server's receive limit twice",
			first: tooLarge, second: tooLarge,
			firstErr: ErrMessageTooLarge, wantReason: "message too large", secondErr: ErrMessageTooLarge,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			job := e.store.addPending(nil)
			queued := e.store.addPending(nil)

			w1, _ := e.connect(helloMsg(CapResume))
			wantMsg(t, w1.next(), assignMsg(job, nil))
			tt.first(w1, job)
			if err := w1.wait(); !errors.Is(err, tt.firstErr) {
				t.Fatalf("first session: Serve = %v, want %v", err, tt.firstErr)
			}
			if f := e.store.failedJobs(); len(f) != 0 {
				t.Fatalf("a first refusal failed the job: %v", f)
			}
			if n := count(e.store.requeuedIDs(), job); n != 1 {
				t.Fatalf("after a first refusal the job was requeued %d times, want once", n)
			}

			// The worker reconnects, resumes the job and sends again.
			w2, welcome := e.connect(helloHolding([]string{job.String()}, CapResume))
			if r := welcome.Resume; len(r) != 1 || r[0].JobId != job.String() {
				t.Fatalf("Welcome resumes %v, want job %s", r, job)
			}
			tt.second(w2, job)
			if tt.secondErr == nil {
				// The worker is told to stop the job, and the session
				// goes on with the next one.
				wantMsg(t, w2.next(), cancelMsg(job))
				wantMsg(t, w2.next(), assignMsg(queued, nil))
				w2.stream.closeSend()
				if err := w2.wait(); err != nil {
					t.Fatalf("second session: Serve = %v, want nil", err)
				}
			} else if err := w2.wait(); !errors.Is(err, tt.secondErr) {
				t.Fatalf("second session: Serve = %v, want %v", err, tt.secondErr)
			}

			failed := e.store.failedJobs()
			requeued := count(e.store.requeuedIDs(), job)
			if tt.wantReason == "" {
				if len(failed) != 0 || requeued != 2 {
					t.Errorf("FailJob calls %v, job requeued %d times; want no failure, requeued again", failed, requeued)
				}
				return
			}
			if len(failed) != 1 || failed[0].job != job || !strings.Contains(failed[0].reason, tt.wantReason) {
				t.Fatalf("FailJob calls %v, want one for job %s with a reason containing %q", failed, job, tt.wantReason)
			}
			if st := e.store.state(job); st != fleetscanv1.JobState_JOB_STATE_FAILED {
				t.Errorf("job state %v, want FAILED", st)
			}
			if requeued != 1 {
				t.Errorf("the failed job was requeued again")
			}
		})
	}
}

func TestServeRejectsMalformedMessages(t *testing.T) {
	const assigned = "ASSIGNED" // replaced by the assigned job's id
	tests := []struct {
		name    string
		msg     *workerv1.ConnectRequest
		wantErr error // nil: the batch is stored and acked
	}{
		{"batch over the maximum size", batchMsg(assigned, 1, findings(MaxBatchSize+1)...), ErrProtocol},
		{"batch of the maximum size", batchMsg(assigned, 1, findings(MaxBatchSize)...), nil},
		{"seq 0", batchMsg(assigned, 0, finding("POD-001", "m")), ErrProtocol},
		{"negative seq", batchMsg(assigned, -1, finding("POD-001", "m")), ErrProtocol},
		{"seq past the maximum", batchMsg(assigned, MaxBatchesPerJob+1, finding("POD-001", "m")), ErrProtocol},
		{"seq at the maximum", batchMsg(assigned, MaxBatchesPerJob, finding("POD-001", "m")), nil},
		{"batch of a job not assigned to this stream", batchMsg(ulid.Make().String(), 1, finding("POD-001", "m")), ErrProtocol},
		{"batch with a malformed job id", batchMsg("not-a-job", 1, finding("POD-001", "m")), ErrProtocol},
		{"JobDone of a job not assigned to this stream", doneMsg(ulid.Make().String(), 0, 0, 0), ErrProtocol},
		{"second Hello", helloMsg(), ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			job := e.store.addPending(nil)
			w, _ := e.connect(helloMsg(CapResume))
			wantMsg(t, w.next(), assignMsg(job, nil))
			msg := proto.Clone(tt.msg).(*workerv1.ConnectRequest)
			if b := msg.GetBatch(); b != nil && b.JobId == assigned {
				b.JobId = job.String()
			}
			w.send(msg)
			if tt.wantErr == nil {
				wantMsg(t, w.next(), ackMsg(job.String(), msg.GetBatch().Seq))
				if s := e.store.stagedBatches(); len(s) != 1 {
					t.Errorf("%d batches staged, want 1", len(s))
				}
				return
			}
			if err := w.wait(); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Serve = %v, want %v", err, tt.wantErr)
			}
			if a := acks(w.rest()); len(a) != 0 {
				t.Errorf("acked %v", a)
			}
			if s := e.store.stagedBatches(); len(s) != 0 {
				t.Errorf("%d batches staged, want none", len(s))
			}
			if n := count(e.store.requeuedIDs(), job); n != 1 {
				t.Errorf("the session's job was requeued %d times, want once", n)
			}
		})
	}
}

func TestServeResume(t *testing.T) {
	tests := []struct {
		name    string
		caps    []string
		held    func(running, cancelled ulid.ULID) []string
		want    func(running ulid.ULID) []*workerv1.Resume
		wantErr error
	}{
		{
			name: "jobs still running are taken back from the last stored batch",
			caps: []string{CapResume},
			held: func(running, cancelled ulid.ULID) []string {
				return []string{running.String(), cancelled.String(), ulid.Make().String()}
			},
			want: func(running ulid.ULID) []*workerv1.Resume {
				return []*workerv1.Resume{{JobId: running.String(), AckedSeq: 2}}
			},
		},
		{
			name: "held jobs of a worker without the capability are ignored",
			held: func(running, _ ulid.ULID) []string { return []string{running.String()} },
			want: func(ulid.ULID) []*workerv1.Resume { return nil },
		},
		{
			name:    "malformed held job id",
			caps:    []string{CapResume},
			held:    func(ulid.ULID, ulid.ULID) []string { return []string{"not-a-job"} },
			wantErr: ErrProtocol,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			running := e.store.addRunning(2)
			cancelled := e.store.addRunning(1)
			e.store.setState(cancelled, fleetscanv1.JobState_JOB_STATE_CANCELLED)
			hello := helloHolding(tt.held(running, cancelled), tt.caps...)
			if tt.wantErr != nil {
				w := e.serve(Caller{ClusterID: cluster})
				w.send(hello)
				if err := w.wait(); !errors.Is(err, tt.wantErr) {
					t.Fatalf("Serve = %v, want %v", err, tt.wantErr)
				}
				if msgs := w.rest(); len(msgs) != 0 {
					t.Errorf("server sent %v", msgs)
				}
				return
			}
			w, welcome := e.connect(hello)
			want := tt.want(running)
			if len(welcome.Resume) != len(want) {
				t.Fatalf("Welcome resumes %v, want %v", welcome.Resume, want)
			}
			for i := range want {
				if !proto.Equal(welcome.Resume[i], want[i]) {
					t.Fatalf("Welcome resumes %v, want %v", welcome.Resume, want)
				}
			}
			// A resumed job holds a slot and belongs to this stream: its
			// next batch is stored.
			if n := e.sched.takeCalls(); n != len(want) {
				t.Errorf("Take called %d times, want %d", n, len(want))
			}
			if len(want) > 0 {
				w.send(batchMsg(running.String(), 3, finding("POD-001", "m")))
				wantMsg(t, w.next(), ackMsg(running.String(), 3))
			}
		})
	}
}

func TestServeDispatchWaitsForSlot(t *testing.T) {
	e := newEnv(t)
	e.sched.setFree(0)
	job := e.store.addPending(nil)
	w, _ := e.connect(helloMsg(CapResume))
	e.await(e.sched.refused, "the session to ask for a slot")
	if n := e.store.dispatchCalls(); n != 0 {
		t.Fatalf("DispatchPending called %d times without a slot", n)
	}
	// A slot is given back elsewhere: the scheduler wakes the session.
	e.sched.setFree(1)
	e.sched.Wake(cluster)
	wantMsg(t, w.next(), assignMsg(job, nil))
}

func TestServeJobEndedOnServer(t *testing.T) {
	e := newEnv(t)
	job := e.store.addPending(nil)
	w, _ := e.connect(helloMsg(CapResume))
	wantMsg(t, w.next(), assignMsg(job, nil))

	// An operator cancels the scan while the worker runs the job.
	e.store.setState(job, fleetscanv1.JobState_JOB_STATE_CANCELLED)
	w.send(batchMsg(job.String(), 1, finding("POD-001", "m")))
	wantMsg(t, w.next(), cancelMsg(job))
	wantMsg(t, w.next(), ackMsg(job.String(), 1))
	// What the worker still sends is acked, not stored, and does not end
	// the stream.
	w.send(batchMsg(job.String(), 2, finding("POD-001", "m")))
	wantMsg(t, w.next(), ackMsg(job.String(), 2))
	w.send(doneMsg(job.String(), 2, 2, 10))
	wantMsg(t, w.next(), doneAckMsg(job))
	w.stream.closeSend()
	if err := w.wait(); err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}

	if s := e.store.stagedBatches(); len(s) != 0 {
		t.Errorf("staged %v for a cancelled job", s)
	}
	if c := e.store.completedJobs(); len(c) != 0 {
		t.Errorf("CompleteJob calls %v for a cancelled job", c)
	}
	if f := e.store.failedJobs(); len(f) != 0 {
		t.Errorf("FailJob calls %v for a cancelled job", f)
	}
	if n := count(e.store.requeuedIDs(), job); n != 0 {
		t.Errorf("the cancelled job was requeued")
	}
	if st := e.store.state(job); st != fleetscanv1.JobState_JOB_STATE_CANCELLED {
		t.Errorf("job state %v, want CANCELLED", st)
	}
}

func TestServeJoinToken(t *testing.T) {
	joinHash := auth.Hash("fsj_join")
	tests := []struct {
		name        string
		caps        []string
		exchangeErr error
		wantErr     error
		// confirmedAtWelcome: the join token is spent when the Welcome is
		// sent, not on the worker's first message.
		confirmedAtWelcome bool
	}{
		{name: "a worker that keeps its credential spends the token on its receipt", caps: []string{CapCredential, CapReceipt}},
		{name: "an older worker spends it with the Welcome", caps: []string{CapCredential}, confirmedAtWelcome: true},
		{name: "a token used already", caps: []string{CapCredential, CapReceipt}, exchangeErr: fmt.Errorf("join token: %w", store.ErrNotFound), wantErr: ErrJoinToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.store.exchangeErr = tt.exchangeErr
			w := e.serve(Caller{ClusterID: cluster, JoinTokenHash: joinHash})
			w.send(helloMsg(tt.caps...))
			if tt.wantErr != nil {
				if err := w.wait(); !errors.Is(err, tt.wantErr) {
					t.Fatalf("Serve = %v, want %v", err, tt.wantErr)
				}
				if msgs := w.rest(); len(msgs) != 0 {
					t.Errorf("server sent %v", msgs)
				}
				return
			}
			welcome := w.next().GetWelcome()
			if welcome == nil || welcome.WorkerToken == "" {
				t.Fatalf("Welcome %v, want one with a worker token", welcome)
			}
			ex := e.store.exchanges()
			if len(ex) != 1 {
				t.Fatalf("ExchangeJoinToken calls %v, want one", ex)
			}
			if string(ex[0].joinHash) != string(joinHash) || ex[0].clusterID != cluster || ex[0].record.GetClusterId() != cluster || ex[0].record.GetRole() != string(auth.RoleWorker) {
				t.Errorf("exchanged %+v, want the caller's join token for a worker of %s", ex[0], cluster)
			}
			workerHash := auth.Hash(welcome.WorkerToken)
			if string(ex[0].workerHash) != string(workerHash) {
				t.Errorf("the credential stored is not the one sent in Welcome")
			}
			confirmed := e.store.confirmedHashes()
			if tt.confirmedAtWelcome != (len(confirmed) == 1) {
				t.Fatalf("ConfirmCredential calls at Welcome: %d, want spent at Welcome %v", len(confirmed), tt.confirmedAtWelcome)
			}
			w.send(heartbeatMsg())
			w.stream.closeSend()
			if err := w.wait(); err != nil {
				t.Fatalf("Serve = %v, want nil", err)
			}
			confirmed = e.store.confirmedHashes()
			if len(confirmed) != 1 || string(confirmed[0]) != string(workerHash) {
				t.Errorf("ConfirmCredential calls %x, want one for the new credential", confirmed)
			}
		})
	}
}

func TestServeChecksWorkerCredential(t *testing.T) {
	tokenHash := auth.Hash("fsw_worker")
	tests := []struct {
		name        string
		record      *storagev1.TokenRecord // nil: unknown
		wantErr     error
		wantConfirm bool
	}{
		{name: "valid", record: &storagev1.TokenRecord{ClusterId: cluster}},
		{name: "pending: its join token is spent now", record: &storagev1.TokenRecord{ClusterId: cluster, PendingJoinHash: []byte("join")}, wantConfirm: true},
		{name: "revoked meanwhile", record: &storagev1.TokenRecord{ClusterId: cluster, RevokeMs: 1}, wantErr: ErrJoinToken},
		{name: "deleted meanwhile", wantErr: ErrJoinToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.record != nil {
				e.store.tokens[string(tokenHash)] = tt.record
			}
			w := e.serve(Caller{ClusterID: cluster, TokenHash: tokenHash})
			w.send(helloMsg(CapResume))
			if tt.wantErr != nil {
				if err := w.wait(); !errors.Is(err, tt.wantErr) {
					t.Fatalf("Serve = %v, want %v", err, tt.wantErr)
				}
				if msgs := w.rest(); len(msgs) != 0 {
					t.Errorf("server sent %v", msgs)
				}
				return
			}
			if msg := w.next(); msg.GetWelcome() == nil {
				t.Fatalf("server sent %v, want a Welcome", msg)
			}
			confirmed := e.store.confirmedHashes()
			if tt.wantConfirm != (len(confirmed) == 1 && string(confirmed[0]) == string(tokenHash)) {
				t.Errorf("ConfirmCredential calls %x, want the caller's credential confirmed: %v", confirmed, tt.wantConfirm)
			}
		})
	}
}

func TestServeEndsSilentWorker(t *testing.T) {
	e := newEnv(t)
	e.in.Heartbeat = time.Millisecond
	w, _ := e.connect(helloMsg(CapHeartbeat))
	// The worker promised heartbeats and sends nothing.
	if err := w.wait(); !errors.Is(err, ErrSilent) {
		t.Fatalf("Serve = %v, want %v", err, ErrSilent)
	}
}

func TestCloseEndsSessions(t *testing.T) {
	e := newEnv(t)
	job := e.store.addPending(nil)
	w, _ := e.connect(helloMsg(CapResume))
	wantMsg(t, w.next(), assignMsg(job, nil))
	e.in.Close()
	if err := w.wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve = %v, want %v", err, context.Canceled)
	}
	// The worker gets the job again from the next server.
	if n := count(e.store.requeuedIDs(), job); n != 1 {
		t.Errorf("job requeued %d times, want once", n)
	}
}

// TestServeJobEndedJustBeforeDone: a job cancelled on the server after
// its last batch and before the worker's JobDone (success or failure) is
// dropped: completed once at most, never failed, never counted as failed.
func TestServeJobEndedJustBeforeDone(t *testing.T) {
	for _, workerError := range []string{"", "cannot list pods"} {
		t.Run(fmt.Sprintf("worker error %q", workerError), func(t *testing.T) {
			e := newEnv(t)
			job := e.store.addPending(nil)
			w, _ := e.connect(helloMsg(CapResume))
			wantMsg(t, w.next(), assignMsg(job, nil))
			w.send(batchMsg(job.String(), 1, finding("POD-001", "m")))
			wantMsg(t, w.next(), ackMsg(job.String(), 1))

			e.store.setState(job, fleetscanv1.JobState_JOB_STATE_CANCELLED)
			done := doneMsg(job.String(), 1, 1, 10)
			done.GetJobDone().Error = workerError
			w.send(done)
			wantMsg(t, w.next(), cancelMsg(job))
			wantMsg(t, w.next(), doneAckMsg(job))
			w.stream.closeSend()
			if err := w.wait(); err != nil {
				t.Fatalf("Serve = %v, want nil", err)
			}
			if c := e.store.completedJobs(); len(c) > 1 {
				t.Errorf("CompleteJob called %d times for a job that had ended", len(c))
			}
			if f := e.store.failedJobs(); len(f) != 0 {
				t.Errorf("FailJob calls %v for a cancelled job", f)
			}
			if _, ended := e.metrics.snapshot(); len(ended) != 0 {
				t.Errorf("jobs ended %q: a cancelled job was counted", ended)
			}
			if st := e.store.state(job); st != fleetscanv1.JobState_JOB_STATE_CANCELLED {
				t.Errorf("job state %v, want CANCELLED", st)
			}
		})
	}
}
