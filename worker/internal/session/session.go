package session

import (
	"context"
	"errors"

	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/worker/checks"
)

// Source is where a job's objects come from.
type Source interface {
	Collect(ctx context.Context) (*checks.Inventory, error)
	KubernetesVersion(ctx context.Context) (string, error)
}

// Config configures a session.
type Config struct {
	ClusterID     string
	WorkerVersion string
	Source        Source
	// BatchSize caps findings per batch; the server's Welcome may lower it.
	BatchSize int
	// MaxInflight caps batches sent and not yet acked.
	MaxInflight int
	// Policies are custom checks of this worker, run in every job next to
	// those that come with the job.
	Policies []*fleetscanv1.CustomCheck
	// TrustedRegistries is this worker's registry allow-list, used when a
	// job brings none.
	TrustedRegistries []string
	Log               *slog.Logger
}

// ErrNoWelcome: the server did not answer Hello.
var ErrNoWelcome = errors.New("no Welcome from the server")

// Run opens a stream on conn and serves jobs until the stream or ctx ends.
// welcomed is called once the server has accepted the worker.
func Run(ctx context.Context, conn grpc.ClientConnInterface, cfg Config, welcomed func()) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Read before the stream opens: the server allows a Hello only a few
	// seconds, and a slow API server must not cost the connection.
	kubeVersion, err := cfg.Source.KubernetesVersion(ctx)
	if err != nil {
		cfg.Log.Warn("cannot read the Kubernetes version", "err", err)
	}
	stream, err := workerv1.NewWorkerServiceClient(conn).Connect(ctx)
	if err != nil {
		return err
	}
	err = stream.Send(&workerv1.ConnectRequest{Msg: &workerv1.ConnectRequest_Hello{Hello: &workerv1.Hello{
		ClusterId: cfg.ClusterID, WorkerVersion: cfg.WorkerVersion, KubernetesVersion: kubeVersion,
	}}})
	if err != nil {
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
	batchSize := cfg.BatchSize
	if m := int(welcome.MaxBatchSize); m > 0 && (batchSize <= 0 || batchSize > m) {
		batchSize = m
	}
	welcomed()
	cfg.Log.Info("connected to the server", "server_version", welcome.ServerVersion, "batch_size", batchSize)

	s := &session{
		cfg: cfg, batchSize: batchSize,
		out:     make(chan *workerv1.ConnectRequest, 16),
		window:  make(chan struct{}, max(cfg.MaxInflight, 1)),
		queued:  make(chan struct{}, 1),
		running: map[string]context.CancelFunc{},
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); cancel(s.send(ctx, stream)) }()
	go func() { defer wg.Done(); cancel(s.runJobs(ctx)) }()
	err = s.receive(ctx, stream)
	cancel(err)
	wg.Wait()
	return err
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

type session struct {
	cfg       Config
	batchSize int
	out       chan *workerv1.ConnectRequest
	// window holds a token per batch awaiting its ack.
	window chan struct{}

	mu sync.Mutex
	// queue holds assigned jobs not started yet. It is unbounded so that
	// receiving never blocks: acks and cancels must always get through.
	queue   []*workerv1.Assign
	queued  chan struct{} // a value when queue may be non-empty
	running map[string]context.CancelFunc
}

// send is the only goroutine that sends on the stream. A failed Send
// usually means the server ended the stream: receive reports its status.
func (s *session) send(ctx context.Context, stream grpc.BidiStreamingClient[workerv1.ConnectRequest, workerv1.ConnectResponse]) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case msg := <-s.out:
			if err := stream.Send(msg); err != nil {
				return err
			}
		}
	}
}

// receive handles the server's messages until the stream ends.
func (s *session) receive(ctx context.Context, stream grpc.BidiStreamingClient[workerv1.ConnectRequest, workerv1.ConnectResponse]) error {
	for {
		msg, err := stream.Recv()
		if err != nil {
			if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
				return cause // the sender or a job failed first
			}
			return err
		}
		switch m := msg.Msg.(type) {
		case *workerv1.ConnectResponse_Assign:
			s.mu.Lock()
			s.queue = append(s.queue, m.Assign)
			s.mu.Unlock()
			select {
			case s.queued <- struct{}{}:
			default:
			}
		case *workerv1.ConnectResponse_Ack:
			select {
			case <-s.window:
			default: // an ack we no longer wait for
			}
		case *workerv1.ConnectResponse_Cancel:
			s.mu.Lock()
			if cancel := s.running[m.Cancel.JobId]; cancel != nil {
				cancel()
			}
			s.mu.Unlock()
		}
	}
}

// runJobs runs assigned jobs one at a time, in the order they came.
func (s *session) runJobs(ctx context.Context) error {
	for {
		s.mu.Lock()
		var next *workerv1.Assign
		if len(s.queue) > 0 {
			next, s.queue = s.queue[0], s.queue[1:]
		}
		s.mu.Unlock()
		if next != nil {
			if err := s.runJob(ctx, next); err != nil {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.queued:
		}
	}
}

func (s *session) enqueue(ctx context.Context, msg *workerv1.ConnectRequest) error {
	select {
	case s.out <- msg:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runJob collects, checks and streams the findings of one job. It returns
// an error only when the stream is gone; a failure of the job itself is
// reported to the server in JobDone.
func (s *session) runJob(ctx context.Context, a *workerv1.Assign) error {
	jobCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.running[a.JobId] = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.running, a.JobId)
		s.mu.Unlock()
	}()

	start := time.Now()
	log := s.cfg.Log.With("job", a.JobId)
	log.Info("job started")
	done := &workerv1.JobDone{JobId: a.JobId}
	inv, err := s.cfg.Source.Collect(jobCtx)
	if err == nil {
		done.ObjectsScanned = int64(inv.Len())
		err = s.check(jobCtx, a, inv, done)
	}
	if ctx.Err() != nil {
		return context.Cause(ctx) // the stream is gone: the server requeues the job
	}
	if err != nil {
		done.Error = err.Error()
		log.Error("job failed", "err", err)
	} else {
		log.Info("job done", "objects", done.ObjectsScanned, "findings", done.Findings, "batches", done.Batches, "duration", time.Since(start).Round(time.Millisecond))
	}
	return s.enqueue(ctx, &workerv1.ConnectRequest{Msg: &workerv1.ConnectRequest_JobDone{JobDone: done}})
}

func (s *session) check(ctx context.Context, a *workerv1.Assign, inv *checks.Inventory, done *workerv1.JobDone) error {
	spec := a.GetSpec()
	sel := checks.Selection{
		Include: spec.GetIncludeChecks(), Exclude: spec.GetExcludeChecks(), Namespaces: spec.GetNamespaces(),
		Custom:            mergePolicies(spec.GetCustomChecks(), s.cfg.Policies),
		TrustedRegistries: spec.GetTrustedRegistries(),
	}
	if len(sel.TrustedRegistries) == 0 {
		sel.TrustedRegistries = s.cfg.TrustedRegistries
	}
	batch := make([]*workerv1.Finding, 0, s.batchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		select {
		case s.window <- struct{}{}: // wait for room: back-pressure from the server
		case <-ctx.Done():
			return ctx.Err()
		}
		done.Batches++
		msg := &workerv1.ConnectRequest{Msg: &workerv1.ConnectRequest_Batch{Batch: &workerv1.FindingBatch{
			JobId: a.JobId, Seq: done.Batches, Findings: batch,
		}}}
		batch = make([]*workerv1.Finding, 0, s.batchSize)
		return s.enqueue(ctx, msg)
	}
	skipped, err := checks.Run(ctx, inv, sel, func(f checks.Finding) error {
		done.Findings++
		batch = append(batch, ToProto(f))
		if len(batch) >= s.batchSize {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, na := range skipped {
		done.NotAssessable = append(done.NotAssessable, &fleetscanv1.CheckNotAssessable{CheckId: na.CheckID, Reason: na.Reason})
	}
	return flush()
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

// ToProto converts a finding for the wire.
func ToProto(f checks.Finding) *workerv1.Finding {
	return &workerv1.Finding{
		CheckId: f.CheckID, Severity: f.Severity, Category: f.Category, ResponsibleParty: f.Party,
		Resource: &fleetscanv1.ResourceRef{
			ApiVersion: f.Resource.APIVersion, Kind: f.Resource.Kind, Namespace: f.Resource.Namespace,
			Name: f.Resource.Name, SubPath: f.Resource.SubPath,
		},
		Message:           f.Message,
		SuppressionReason: f.Suppressed,
	}
}
