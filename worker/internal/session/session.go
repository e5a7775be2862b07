package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/worker/catalog"
	"github.com/fleetscan/fleetscan/worker/checks"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// Protocol capabilities the worker announces in Hello.
const (
	// CapResume: held jobs resume after a reconnect (Hello.held_jobs,
	// Welcome.resume, Ack.job_done).
	CapResume = "resume"
	// CapHeartbeat: the worker sends a message every heartbeat interval.
	CapHeartbeat = "heartbeat"
	// CapCredential: the worker takes its own credential in exchange for
	// its single-use join token (Welcome.worker_token).
	CapCredential = "credential"
	// CapReceipt: the worker answers a Welcome that carries a credential at
	// once, after keeping it; the server spends the join token on that.
	CapReceipt = "receipt"
)

// Source is where a job's objects come from.
type Source interface {
	// Collect reads the cluster's objects, reduced to what the checks of
	// sel read.
	Collect(ctx context.Context, sel policy.Selection) (*checks.Inventory, error)
	KubernetesVersion(ctx context.Context) (string, error)
}

// Producer produces the findings of one job: it puts each in out as it
// is found, in order, and returns what it read. Out.Emit blocks while the
// server is behind (back-pressure) and fails once the job is stopped.
// The default producer collects the cluster from the Source and runs the
// checks of the job's spec; simulators and load tests plug in their own,
// so that everything else (batching, acks, resume) is the real protocol.
type Producer func(ctx context.Context, job *workerv1.Assign, out *Output) (Result, error)

// Result is what a Producer reports at the end of a job.
type Result struct {
	ObjectsScanned int64
	// NotAssessable are the checks the job could not evaluate.
	NotAssessable []*fleetscanv1.CheckNotAssessable
	// Problems are what the job could not read (checks.Inventory.Problems):
	// it ran on the rest and is incomplete.
	Problems []string
	// Unchecked are the documents no check reads
	// (checks.Inventory.Unchecked), bounded by catalog.CapUnchecked.
	Unchecked []string
}

// Message sizes. A batch is closed before its encoded findings pass
// min(Config.BatchBytes, the server's limit less batchOverhead), so no
// message the worker sends is ever over the server's limit.
const (
	// DefaultBatchBytes bounds a batch when the configuration does not:
	// large enough that the per-message cost does not matter, small enough
	// that a full window of batches is a few MiB of memory.
	DefaultBatchBytes = 1 << 20
	// DefaultMaxMessageBytes is what the worker assumes a server accepts
	// when its Welcome does not say (a server older than
	// Welcome.max_message_bytes): gRPC's default receive limit.
	DefaultMaxMessageBytes = 4 << 20
	// batchOverhead is what a batch's message adds to its findings: the
	// ConnectRequest and FindingBatch envelopes, the job id, the seq.
	batchOverhead = 64
)

// ErrFindingTooLarge: one finding is larger than a message may be; the
// job fails with it rather than send a message the server must refuse.
var ErrFindingTooLarge = errors.New("finding too large")

// Output receives what a job produces and batches it for the stream.
type Output struct {
	r    *Runner
	j    *job
	done *workerv1.JobDone
	// size caps the findings of a batch, maxBytes their encoded size.
	size, maxBytes int
	// batch is the batch being filled, bytes its findings' encoded size.
	batch []*workerv1.Finding
	bytes int
}

// Progress reports the objects the job has read so far.
func (o *Output) Progress(objectsScanned int64) {
	o.r.mu.Lock()
	o.j.progress = &workerv1.Progress{JobId: o.j.assign.JobId, ObjectsScanned: objectsScanned}
	o.r.mu.Unlock()
	signal(o.r.changed)
}

// Emit adds a finding; a full batch goes to the outbox, waiting while the
// outbox is full. A batch is full at its count or before the finding that
// would take it past its size in bytes.
func (o *Output) Emit(f *workerv1.Finding) error {
	n := findingBytes(f)
	if n > o.maxBytes {
		r := f.GetResource()
		return fmt.Errorf("%w: the finding of %s on %s %s/%s is %d bytes encoded; a message to the server carries at most %d",
			ErrFindingTooLarge, f.CheckId, r.GetKind(), r.GetNamespace(), r.GetName(), n, o.maxBytes)
	}
	if len(o.batch) > 0 && o.bytes+n > o.maxBytes {
		if err := o.flush(); err != nil {
			return err
		}
	}
	o.done.Findings++
	o.batch = append(o.batch, f)
	o.bytes += n
	if len(o.batch) >= o.size {
		return o.flush()
	}
	return nil
}

// findingBytes is what f adds to an encoded FindingBatch.
func findingBytes(f *workerv1.Finding) int {
	return protowire.SizeTag(3) + protowire.SizeBytes(proto.Size(f))
}

func (o *Output) flush() error {
	if len(o.batch) == 0 {
		return nil
	}
	o.done.Batches++
	b := &workerv1.FindingBatch{JobId: o.j.assign.JobId, Seq: o.done.Batches, Findings: o.batch}
	o.batch, o.bytes = make([]*workerv1.Finding, 0, min(o.size, 64)), 0
	return o.r.put(o.j, b)
}

// Config configures a Runner.
type Config struct {
	ClusterID     string
	WorkerVersion string
	// Source is read by the default Producer, and asked for the Kubernetes
	// version sent in Hello; it may be nil when Producer is set.
	Source Source
	// Producer produces each job's findings; nil runs the checks on what
	// Source collects.
	Producer Producer
	// BatchSize caps findings per batch; the server's Welcome may lower it.
	BatchSize int
	// BatchBytes caps a batch's encoded findings (default
	// DefaultBatchBytes); the server's Welcome.max_message_bytes may
	// lower it.
	BatchBytes int
	// MaxInflight caps batches sent and not yet acked; the server's Welcome
	// may lower it. It is also what a job may produce while the worker is
	// disconnected before it waits.
	MaxInflight int
	// Policies are custom checks of this worker, run in every job next to
	// those that come with the job.
	Policies []*fleetscanv1.CustomCheck
	// TrustedRegistries is this worker's registry allow-list, used when a
	// job brings none.
	TrustedRegistries []string
	// DeniedRegistries is this worker's registry deny-list, added to the
	// job's.
	DeniedRegistries []string
	// Capabilities overrides what the worker announces in Hello (tests
	// play an old worker with an empty, non-nil slice).
	Capabilities []string
	// OnCredential receives the worker's own credential when the server
	// exchanges the join token for it; it must keep it for the next
	// connections.
	OnCredential func(token string)
	Log          *slog.Logger
}

// ErrNoWelcome: the server did not answer Hello.
var ErrNoWelcome = errors.New("no Welcome from the server")

// Runner runs the jobs the server assigns and keeps what they produce
// until the server has stored it. It outlives streams: a job goes on while
// the worker reconnects, and its unacked batches are sent again on the
// next stream, so a broken connection costs neither the work done nor a
// finding.
type Runner struct {
	cfg Config

	mu sync.Mutex
	// held are the jobs assigned and not yet confirmed done, in the order
	// they came; the first not started is the next to run.
	held []*job
	// batchSize, batchBytes and window are the settings of the current
	// stream.
	batchSize, batchBytes, window int
	stopped                       bool
	// changed wakes the stream's sender; room wakes a job waiting for acks;
	// queued wakes the job loop.
	changed, room, queued chan struct{}
}

type job struct {
	assign *workerv1.Assign
	ctx    context.Context
	cancel context.CancelFunc

	started bool
	// outbox holds the batches not yet acked, by ascending seq; sent is the
	// last seq sent on the current stream.
	outbox   []*workerv1.FindingBatch
	sent     int64
	progress *workerv1.Progress // to send, when not nil
	// done is set when the run ended; doneSent once sent on this stream.
	done     *workerv1.JobDone
	doneSent bool
}

// NewRunner returns a Runner; Start runs its jobs.
func NewRunner(cfg Config) *Runner {
	if cfg.Capabilities == nil {
		cfg.Capabilities = []string{CapResume, CapHeartbeat, CapCredential, CapReceipt}
	}
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = DefaultBatchBytes
	}
	return &Runner{
		cfg: cfg, batchSize: max(cfg.BatchSize, 1), batchBytes: batchBytes(cfg.BatchBytes, 0), window: max(cfg.MaxInflight, 1),
		changed: make(chan struct{}, 1), room: make(chan struct{}, 1), queued: make(chan struct{}, 1),
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Start runs assigned jobs one at a time, in the order they came, until
// ctx ends; then it stops the jobs that have not finished (Drain waits for
// those that have).
func (r *Runner) Start(ctx context.Context) {
	defer context.AfterFunc(ctx, r.stop)()
	for {
		r.mu.Lock()
		var next *job
		for _, j := range r.held {
			if !j.started {
				next = j
				next.started = true
				break
			}
		}
		r.mu.Unlock()
		if next != nil {
			r.run(next)
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-r.queued:
		}
	}
}

// stop cancels the jobs that are still running and drops those not
// started: a worker that stops cannot finish them, and the server sends
// them again. Finished jobs stay until the server confirms them.
func (r *Runner) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	for _, j := range slices.Clone(r.held) {
		if j.done == nil {
			r.forgetLocked(j.assign.JobId)
		}
	}
	signal(r.changed)
}

// Drain waits until the server has confirmed every finished job, or ctx
// ends; it reports whether nothing is left unsent.
func (r *Runner) Drain(ctx context.Context) bool {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if len(r.Held()) == 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// Held returns the ids of the jobs the runner holds.
func (r *Runner) Held() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, len(r.held))
	for i, j := range r.held {
		ids[i] = j.assign.JobId
	}
	return ids
}

func (r *Runner) find(id string) (int, *job) {
	for i, j := range r.held {
		if j.assign.JobId == id {
			return i, j
		}
	}
	return -1, nil
}

// forget drops a job, stopping it if it runs.
func (r *Runner) forgetLocked(id string) {
	if i, j := r.find(id); j != nil {
		j.cancel()
		r.held = slices.Delete(r.held, i, i+1)
	}
}

func (r *Runner) assign(a *workerv1.Assign) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, j := r.find(a.JobId); j != nil || r.stopped {
		return // sent twice, or too late: the server sends it again
	}
	// Jobs belong to the runner, not the stream: they go on when it
	// breaks, and Start's end stops them.
	jctx, cancel := context.WithCancel(context.Background())
	r.held = append(r.held, &job{assign: a, ctx: jctx, cancel: cancel})
	signal(r.queued)
}

// Events are what Serve tells its caller about a stream; nil funcs are
// not called.
type Events struct {
	// Welcomed: the server accepted the worker.
	Welcomed func()
	// Progressed: the server acked a batch or a job, or assigned one. A
	// stream that is welcomed and then ends before anything progresses is
	// a failure to retry more slowly, not a connection that worked.
	Progressed func()
}

// Serve opens a stream on conn and serves it until it or ctx ends.
func (r *Runner) Serve(ctx context.Context, conn grpc.ClientConnInterface, ev Events) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Read before the stream opens: the server allows a Hello only a few
	// seconds, and a slow API server must not cost the connection.
	var kubeVersion string
	if r.cfg.Source != nil {
		var err error
		if kubeVersion, err = r.cfg.Source.KubernetesVersion(ctx); err != nil {
			r.cfg.Log.Warn("cannot read the Kubernetes version", "err", err)
		}
	}
	stream, err := workerv1.NewWorkerServiceClient(conn).Connect(ctx)
	if err != nil {
		return err
	}
	hello := &workerv1.Hello{
		ClusterId: r.cfg.ClusterID, WorkerVersion: r.cfg.WorkerVersion, KubernetesVersion: kubeVersion,
		Capabilities: r.cfg.Capabilities,
	}
	canResume := slices.Contains(r.cfg.Capabilities, CapResume)
	if canResume {
		hello.HeldJobs = r.Held()
	}
	if err := stream.Send(&workerv1.ConnectRequest{Msg: &workerv1.ConnectRequest_Hello{Hello: hello}}); err != nil {
		return recvErr(stream, err)
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	welcome := first.GetWelcome()
	if welcome == nil {
		return ErrNoWelcome
	}
	if welcome.WorkerToken != "" && r.cfg.OnCredential != nil {
		r.cfg.OnCredential(welcome.WorkerToken)
	}
	resume := canResume && slices.Contains(welcome.Capabilities, CapResume)
	resumed := r.welcome(welcome, resume)
	if ev.Welcomed != nil {
		ev.Welcomed()
	}
	r.cfg.Log.Info("connected to the server", "server_version", welcome.ServerVersion, "batch_size", r.batchSize, "batch_bytes", r.batchBytes,
		"inflight", r.window, "resume", resume, "jobs_resumed", resumed)

	heartbeat := 10 * time.Second
	if d := welcome.GetHeartbeatInterval().AsDuration(); d > 0 {
		heartbeat = d
	}
	var wg sync.WaitGroup
	wg.Add(1)
	// A worker given a credential answers at once: the server spends the
	// join token on this receipt, not before (the credential is kept by
	// now: OnCredential has returned).
	receipt := welcome.WorkerToken != ""
	go func() { defer wg.Done(); cancel(r.send(ctx, stream, resume, heartbeat, receipt)) }()
	err = r.receive(ctx, stream, ev.Progressed)
	cancel(err)
	wg.Wait()
	return err
}

// welcome applies the server's settings and its answer on held jobs: the
// listed ones go on from their acked batch, the others are dropped. It
// returns how many went on.
func (r *Runner) welcome(w *workerv1.Welcome, resume bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batchSize = max(r.cfg.BatchSize, 1)
	if m := int(w.MaxBatchSize); m > 0 && r.batchSize > m {
		r.batchSize = m
	}
	r.batchBytes = batchBytes(r.cfg.BatchBytes, int(w.MaxMessageBytes))
	r.window = max(r.cfg.MaxInflight, 1)
	if m := int(w.MaxInflightBatches); m > 0 && r.window > m {
		r.window = m
	}
	acked := map[string]int64{}
	if resume {
		for _, res := range w.Resume {
			acked[res.JobId] = res.AckedSeq
		}
	}
	for _, j := range slices.Clone(r.held) {
		seq, ok := acked[j.assign.JobId]
		if !ok {
			// The server ended it, or will send it again to run afresh.
			r.cfg.Log.Info("dropping a job the server did not resume", "job", j.assign.JobId)
			r.forgetLocked(j.assign.JobId)
			continue
		}
		r.ackLocked(j, seq)
		j.sent, j.doneSent = seq, false
		if j.progress == nil && j.done == nil && j.started {
			j.progress = &workerv1.Progress{JobId: j.assign.JobId}
		}
	}
	signal(r.room)
	signal(r.changed)
	return len(acked)
}

// batchBytes is the size in bytes a batch's findings may reach: the
// worker's own cap, lowered to what fits in the server's limit.
func batchBytes(own, serverLimit int) int {
	if serverLimit <= 0 {
		serverLimit = DefaultMaxMessageBytes
	}
	return max(min(own, serverLimit-batchOverhead), 1)
}

func (r *Runner) ackLocked(j *job, seq int64) {
	i := 0
	for i < len(j.outbox) && j.outbox[i].Seq <= seq {
		i++
	}
	j.outbox = slices.Delete(j.outbox, 0, i)
}

// recvErr returns the status the server ended the stream with when a Send
// fails, which says more than the Send error (io.EOF).
func recvErr(stream grpc.BidiStreamingClient[workerv1.ConnectRequest, workerv1.ConnectResponse], sendErr error) error {
	if !errors.Is(sendErr, io.EOF) {
		return sendErr
	}
	_, err := stream.Recv()
	return err
}

// next returns the next message to send on the stream, or nil.
func (r *Runner) next(resume bool) *workerv1.ConnectRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, j := range r.held {
		if p := j.progress; p != nil {
			j.progress = nil
			return &workerv1.ConnectRequest{Msg: &workerv1.ConnectRequest_Progress{Progress: p}}
		}
		for _, b := range j.outbox {
			if b.Seq > j.sent {
				j.sent = b.Seq
				return &workerv1.ConnectRequest{Msg: &workerv1.ConnectRequest_Batch{Batch: b}}
			}
		}
		if j.done != nil && !j.doneSent && j.sent >= j.done.Batches {
			j.doneSent = true
			msg := &workerv1.ConnectRequest{Msg: &workerv1.ConnectRequest_JobDone{JobDone: j.done}}
			if !resume {
				// An old server confirms nothing: the job is over for us.
				r.forgetLocked(j.assign.JobId)
			}
			return msg
		}
	}
	return nil
}

// send is the only goroutine that sends on the stream. A failed Send
// usually means the server ended the stream: receive reports its status.
func (r *Runner) send(ctx context.Context, stream grpc.BidiStreamingClient[workerv1.ConnectRequest, workerv1.ConnectResponse], resume bool, heartbeat time.Duration, receipt bool) error {
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	if receipt {
		if err := stream.Send(&workerv1.ConnectRequest{Msg: &workerv1.ConnectRequest_Progress{Progress: &workerv1.Progress{}}}); err != nil {
			return err
		}
	}
	for {
		if msg := r.next(resume); msg != nil {
			if err := stream.Send(msg); err != nil {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.changed:
		case <-tick.C:
			// A heartbeat: the server ends streams that stay silent.
			if err := stream.Send(&workerv1.ConnectRequest{Msg: &workerv1.ConnectRequest_Progress{Progress: &workerv1.Progress{}}}); err != nil {
				return err
			}
		}
	}
}

// receive handles the server's messages until the stream ends.
func (r *Runner) receive(ctx context.Context, stream grpc.BidiStreamingClient[workerv1.ConnectRequest, workerv1.ConnectResponse], progressed func()) error {
	if progressed == nil {
		progressed = func() {}
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
				return cause // the sender failed first
			}
			return err
		}
		switch m := msg.Msg.(type) {
		case *workerv1.ConnectResponse_Assign:
			r.assign(m.Assign)
			progressed()
		case *workerv1.ConnectResponse_Ack:
			progressed()
			r.mu.Lock()
			if _, j := r.find(m.Ack.JobId); j != nil {
				if m.Ack.JobDone {
					r.forgetLocked(m.Ack.JobId)
				} else {
					r.ackLocked(j, m.Ack.Seq)
				}
			}
			r.mu.Unlock()
			signal(r.room)
		case *workerv1.ConnectResponse_Cancel:
			r.mu.Lock()
			r.forgetLocked(m.Cancel.JobId)
			r.mu.Unlock()
			signal(r.room)
		}
	}
}

// run produces the findings of one job. What it produces is sent by
// whichever stream is up.
func (r *Runner) run(j *job) {
	start := time.Now()
	log := r.cfg.Log.With("job", j.assign.JobId)
	log.Info("job started")
	done := &workerv1.JobDone{JobId: j.assign.JobId}
	r.mu.Lock()
	size, maxBytes := r.batchSize, r.batchBytes
	r.mu.Unlock()
	out := &Output{r: r, j: j, done: done, size: size, maxBytes: maxBytes, batch: make([]*workerv1.Finding, 0, min(size, 64))}
	produce := r.cfg.Producer
	if produce == nil {
		produce = r.produce
	}
	res, err := produce(j.ctx, j.assign, out)
	if err == nil {
		err = out.flush()
	}
	if j.ctx.Err() != nil {
		log.Info("job stopped: the server cancelled or dropped it")
		return
	}
	if err != nil {
		done.Error = err.Error()
		log.Error("job failed", "err", err)
	} else {
		done.ObjectsScanned, done.NotAssessable, done.Problems = res.ObjectsScanned, res.NotAssessable, res.Problems
		done.Unchecked = res.Unchecked
		if len(done.Problems) > 0 {
			log.Warn("job incomplete: part of the cluster could not be read", "problems", len(done.Problems), "first", done.Problems[0])
		}
		log.Info("job done", "objects", done.ObjectsScanned, "findings", done.Findings, "batches", done.Batches, "duration", time.Since(start).Round(time.Millisecond))
	}
	r.mu.Lock()
	j.done = done
	r.mu.Unlock()
	signal(r.changed)
}

// put adds a batch to the job's outbox, waiting while the outbox is full:
// that is the back-pressure from the server, and, while disconnected, the
// bound on what the worker holds.
func (r *Runner) put(j *job, b *workerv1.FindingBatch) error {
	for {
		r.mu.Lock()
		if len(j.outbox) < r.window {
			j.outbox = append(j.outbox, b)
			r.mu.Unlock()
			signal(r.changed)
			return nil
		}
		r.mu.Unlock()
		select {
		case <-r.room:
		case <-j.ctx.Done():
			return j.ctx.Err()
		}
	}
}

// produce is the default Producer: it collects the cluster from the
// Source and runs the checks of the job's spec.
func (r *Runner) produce(ctx context.Context, a *workerv1.Assign, out *Output) (Result, error) {
	spec := a.GetSpec()
	sel := policy.Selection{
		Include: spec.GetIncludeChecks(), Exclude: spec.GetExcludeChecks(), Namespaces: spec.GetNamespaces(),
		Custom:            mergePolicies(spec.GetCustomChecks(), r.cfg.Policies),
		TrustedRegistries: spec.GetTrustedRegistries(),
	}
	if len(sel.TrustedRegistries) == 0 {
		sel.TrustedRegistries = r.cfg.TrustedRegistries
	}
	sel.DeniedRegistries = slices.Concat(spec.GetDeniedRegistries(), r.cfg.DeniedRegistries)
	inv, err := r.cfg.Source.Collect(ctx, sel)
	if err != nil {
		return Result{}, err
	}
	res := Result{ObjectsScanned: int64(inv.Len()), Problems: catalog.CapProblems(inv.Problems), Unchecked: catalog.CapUnchecked(inv.Unchecked)}
	out.Progress(res.ObjectsScanned)
	locator := inv.Locator()
	skipped, err := checks.Run(ctx, inv, sel, func(f checks.Finding) error {
		return out.Emit(ToProto(f, locator.Location(f.Resource.Kind, f.Resource.Namespace, f.Resource.Name)))
	})
	if err != nil {
		return Result{}, err
	}
	for _, na := range skipped {
		res.NotAssessable = append(res.NotAssessable, &fleetscanv1.CheckNotAssessable{CheckId: na.CheckID, Reason: na.Reason})
	}
	return res, nil
}

// mergePolicies adds the worker's own custom checks to the job's; where
// both define an id, the job's definition wins.
func mergePolicies(job, local []*fleetscanv1.CustomCheck) []*fleetscanv1.CustomCheck {
	out := slices.Clone(job)
	for _, p := range local {
		if !slices.ContainsFunc(job, func(j *fleetscanv1.CustomCheck) bool { return j.Id == p.Id }) {
			out = append(out, p)
		}
	}
	return out
}

// ToProto converts a finding for the wire; location is where its object
// is defined ("file:line"), or "".
func ToProto(f checks.Finding, location string) *workerv1.Finding {
	if len(location) > catalog.MaxFieldBytes {
		location = "" // a path the server would refuse; the finding matters more
	}
	return &workerv1.Finding{
		CheckId: f.CheckID, Severity: f.Severity, Category: f.Category, ResponsibleParty: f.Party,
		Resource: &fleetscanv1.ResourceRef{
			ApiVersion: f.Resource.APIVersion, Kind: f.Resource.Kind, Namespace: f.Resource.Namespace,
			Name: f.Resource.Name, SubPath: f.Resource.SubPath,
		},
		Message:           f.Message,
		SuppressionReason: f.Suppressed,
		Location:          location,
	}
}
