package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/server/internal/auth"
	"github.com/fleetscan/fleetscan/server/internal/store"
	"github.com/fleetscan/fleetscan/worker/catalog"
)

// Errors of a session, turned into gRPC codes at the edge.
var (
	// ErrProtocol: the worker broke the protocol.
	ErrProtocol = errors.New("protocol violation")
	// ErrWrongCluster: the Hello names a cluster the credential is not for.
	ErrWrongCluster = errors.New("wrong cluster")
	// ErrSilent: a worker that promised heartbeats stopped sending them.
	ErrSilent = errors.New("worker silent")
	// ErrJoinToken: a join token that cannot be exchanged, or a worker
	// credential revoked meanwhile.
	ErrJoinToken = errors.New("credential refused")
	// ErrRefused: a batch the server will not store (a finding over the
	// field limits). The stream ends; the same refusal again fails the job.
	ErrRefused = errors.New("batch refused")
	// ErrMessageTooLarge: a message over the server's receive limit.
	ErrMessageTooLarge = errors.New("message too large")
)

// Settings negotiated in Welcome, and limits of a session.
const (
	// JobsInFlight is how many jobs a worker has at once: it runs them one
	// at a time, and the next is sent when one ends, so a worker that
	// reconnects to a long queue is not flooded.
	JobsInFlight = 1
	// MaxBatchesPerJob bounds what one job may stage (with MaxBatchSize,
	// 100 million findings).
	MaxBatchesPerJob = 100_000
	maxVersionLength = 128
	MaxBatchSize     = 1000
	// MaxInflightBatches caps a worker's unacked batches: the memory one
	// stream may hold in flight.
	MaxInflightBatches = 16
	helloTimeout       = 10 * time.Second
	// DefaultMaxMessageBytes is the server's receive limit when not
	// configured: the largest message a worker (or an API client) may
	// send, announced to workers in Welcome.max_message_bytes.
	DefaultMaxMessageBytes = 8 << 20
)

// Store is what a session needs of the store.
type Store interface {
	RecordWorker(ctx context.Context, id, workerVersion, kubeVersion string, at time.Time) error
	DispatchPending(ctx context.Context, clusterID string, limit int) ([]store.Assignment, error)
	RequeueJobs(ctx context.Context, maxAttempts int, ids ...ulid.ULID) error
	GetJob(ctx context.Context, id ulid.ULID) (*store.Job, error)
	StageBatch(ctx context.Context, jobID ulid.ULID, batch *workerv1.FindingBatch) error
	PlanBatch(ctx context.Context, jobID ulid.ULID, plan *store.JobPlan, batch *workerv1.FindingBatch) error
	CompleteJob(ctx context.Context, jobID ulid.ULID, done store.Completion) error
	FailJob(ctx context.Context, id ulid.ULID, reason string) error
	ResumeJob(ctx context.Context, clusterID string, id ulid.ULID) (int64, bool, error)
	ExchangeJoinToken(ctx context.Context, joinHash []byte, clusterID string, workerHash []byte, worker *storagev1.TokenRecord) error
	ConfirmCredential(ctx context.Context, workerHash []byte) error
	LookupToken(ctx context.Context, hash []byte) (*storagev1.TokenRecord, error)
}

// Scheduler is what a session needs of the scheduler.
type Scheduler interface {
	Attach(ctx context.Context, clusterID string) (context.Context, <-chan struct{}, func(), error)
	Wake(clusterID string)
	// WakeEverywhere wakes the cluster's session wherever it is: with
	// replicas, on any of them.
	WakeEverywhere(ctx context.Context, clusterID string)
	// Acquire and Release a fleet-wide slot for one job.
	Acquire(clusterID string) bool
	Take()
	Release()
}

// Metrics is what a session counts; a nil *metrics.Metrics is fine.
type Metrics interface {
	FindingsStaged(n int)
	JobEnded(state string, d time.Duration)
	// JobCompleted: a JobDone was committed and acknowledged d after it
	// was taken from the stream.
	JobCompleted(d time.Duration)
}

// Stream is the server side of WorkerService.Connect.
type Stream interface {
	Send(*workerv1.ConnectResponse) error
	Recv() (*workerv1.ConnectRequest, error)
}

// Ingest serves worker sessions.
type Ingest struct {
	store         Store
	scheduler     Scheduler
	log           *slog.Logger
	serverVersion string

	// MaxAttempts is how many times a job is sent before a lost connection
	// fails it instead of requeueing it.
	MaxAttempts int
	// Metrics, if set, counts what sessions do.
	Metrics Metrics
	// NoSpaceRetryDelay is how long a worker whose findings could not be
	// stored for lack of disk space is told to stay away.
	NoSpaceRetryDelay time.Duration
	// Heartbeat is how often workers send something when idle; a stream
	// silent for three of them is ended as dead. Default 10s.
	Heartbeat time.Duration
	// MaxMessageBytes is the gRPC server's receive limit, announced to
	// workers so that they keep under it. Default DefaultMaxMessageBytes.
	MaxMessageBytes int

	// refusals holds, per job (ulid.ULID), the reason its last message was
	// refused (a string), until a batch of the job is stored: the same
	// reason twice in a row fails the job instead of looping.
	refusals sync.Map

	// progress holds what running jobs reported: job id → objects read.
	progress sync.Map

	// closing ends every session when the server shuts down.
	closing context.Context
	close   context.CancelFunc
}

// New returns an Ingest.
func New(s Store, sched Scheduler, log *slog.Logger, serverVersion string) *Ingest {
	in := &Ingest{store: s, scheduler: sched, log: log, serverVersion: serverVersion, MaxAttempts: 3, Heartbeat: 10 * time.Second, MaxMessageBytes: DefaultMaxMessageBytes, NoSpaceRetryDelay: 30 * time.Second}
	in.closing, in.close = context.WithCancel(context.Background())
	return in
}

// Close ends every session, requeueing their jobs, so that the gRPC server
// can stop gracefully: workers reconnect to the next server.
func (in *Ingest) Close() { in.close() }

// Capabilities are the optional protocol features this server supports.
var Capabilities = []string{CapResume, CapHeartbeat, CapCredential, CapReceipt}

const (
	// CapResume: the worker resumes held jobs after a reconnect.
	CapResume = "resume"
	// CapHeartbeat: the worker sends a message at least every heartbeat
	// interval, so the server may end a stream that falls silent.
	CapHeartbeat = "heartbeat"
	// CapCredential: the worker takes a credential of its own
	// (Welcome.worker_token) in exchange for its single-use join token.
	CapCredential = "credential"
	// CapReceipt: the worker keeps the credential of its Welcome before it
	// sends anything, and then sends a message at once (its receipt). Only
	// for such a worker is the join token spent on the receipt; for an
	// older one it is spent when the Welcome is sent, as before, so that a
	// stolen copy is not usable for a whole heartbeat interval.
	CapReceipt = "receipt"
)

// maxHeldJobs bounds Hello.held_jobs.
const maxHeldJobs = 64

// Caller is who opened a stream.
type Caller struct {
	// ClusterID is the cluster the credential was issued for.
	ClusterID string
	// JoinTokenHash is set when the credential is the cluster's single-use
	// join token, to be exchanged for a worker credential.
	JoinTokenHash []byte
	// TokenHash is the hash of a worker token, checked again once the
	// session is attached: a rotation between the caller's authentication
	// and its attachment would otherwise leave it connected.
	TokenHash []byte
}

// Serve runs one worker session until the stream ends or ctx is done.
func (in *Ingest) Serve(ctx context.Context, caller Caller, stream Stream) error {
	clusterID := caller.ClusterID
	streamCtx := ctx
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	defer context.AfterFunc(in.closing, stop)()
	hello, err := recvHello(ctx, stream)
	if err != nil {
		return err
	}
	if hello.ClusterId != clusterID {
		return fmt.Errorf("%w: hello for cluster %q with a token of cluster %q", ErrWrongCluster, hello.ClusterId, clusterID)
	}
	if len(hello.WorkerVersion) > maxVersionLength || len(hello.KubernetesVersion) > maxVersionLength {
		return fmt.Errorf("%w: versions longer than %d characters", ErrProtocol, maxVersionLength)
	}
	if len(hello.HeldJobs) > maxHeldJobs || len(hello.Capabilities) > maxHeldJobs {
		return fmt.Errorf("%w: more than %d held jobs or capabilities", ErrProtocol, maxHeldJobs)
	}
	var caps []string
	for _, c := range hello.Capabilities {
		if slices.Contains(Capabilities, c) && !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	log := in.log.With("cluster", clusterID, "worker_version", hello.WorkerVersion)
	if caller.JoinTokenHash != nil && !slices.Contains(caps, CapCredential) {
		return fmt.Errorf("%w: this worker cannot take a credential in exchange for its single-use join token; upgrade it", ErrJoinToken)
	}
	// An older session of this cluster ends, and requeues its jobs, before
	// this one looks at them.
	sessCtx, wake, detach, err := in.scheduler.Attach(ctx, clusterID)
	if err != nil {
		return err
	}
	defer detach()
	if caller.TokenHash != nil {
		rec, err := in.store.LookupToken(ctx, caller.TokenHash)
		if errors.Is(err, store.ErrNotFound) || (err == nil && rec.RevokeMs != 0) {
			return fmt.Errorf("%w: the worker's credential was revoked", ErrJoinToken)
		}
		if err != nil {
			return err
		}
		// A connection made with a credential still pending proves the
		// worker kept it, though its first stream broke before it could
		// say so: the join token is spent now.
		if len(rec.PendingJoinHash) > 0 {
			if err := in.store.ConfirmCredential(ctx, caller.TokenHash); err != nil {
				return err
			}
		}
	}
	if err := in.store.RecordWorker(ctx, clusterID, hello.WorkerVersion, hello.KubernetesVersion, time.Now()); err != nil {
		return err
	}
	s := &session{in: in, clusterID: clusterID, log: log, out: make(chan *workerv1.ConnectResponse, 64), inflight: map[ulid.ULID]bool{}, dropped: map[ulid.ULID]bool{}, assigned: map[ulid.ULID]time.Time{}, plans: map[ulid.ULID]*store.JobPlan{},
		confirmDone: slices.Contains(caps, CapResume), heartbeats: slices.Contains(caps, CapHeartbeat)}
	defer s.cleanup(ctx)

	// The single-use join token is exchanged as late as possible, and spent
	// only once the worker shows that it holds the credential (its first
	// message on this stream, or a later connection made with it): a
	// Welcome lost on the way leaves the join token usable.
	var credential string
	if caller.JoinTokenHash != nil {
		secret, hash := auth.NewToken(auth.PrefixWorker)
		rec := &storagev1.TokenRecord{Name: "worker of " + clusterID, Role: string(auth.RoleWorker), ClusterId: clusterID}
		if err := in.store.ExchangeJoinToken(ctx, caller.JoinTokenHash, clusterID, hash, rec); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("%w: it was used already, or expired; get a new one with 'fleetscan cluster rotate-token %s'", ErrJoinToken, clusterID)
			}
			return err
		}
		credential = secret
		if slices.Contains(caps, CapReceipt) {
			s.unconfirmed = hash
		} else if err := in.store.ConfirmCredential(ctx, hash); err != nil {
			return err
		}
		// The session is attached: a rotation from now on ends it.
		log.Info("join token exchanged for a worker credential")
	}

	welcome := &workerv1.Welcome{
		ServerVersion: in.serverVersion, MaxBatchSize: MaxBatchSize, HeartbeatInterval: durationpb.New(in.Heartbeat),
		Capabilities: caps, MaxInflightBatches: MaxInflightBatches, WorkerToken: credential,
		MaxMessageBytes: int32(min(in.MaxMessageBytes, math.MaxInt32)),
	}
	if s.confirmDone {
		if welcome.Resume, err = s.resume(ctx, hello.HeldJobs); err != nil {
			return err
		}
	}
	if err := stream.Send(&workerv1.ConnectResponse{Msg: &workerv1.ConnectResponse_Welcome{Welcome: welcome}}); err != nil {
		return err
	}
	log.Info("worker connected", "kubernetes_version", hello.KubernetesVersion, "capabilities", caps, "jobs_resumed", len(welcome.Resume))

	sessCtx, cancel := context.WithCancelCause(sessCtx)
	defer cancel(nil)
	inbound := make(chan received)
	var sender sync.WaitGroup
	sender.Add(1)
	go func() { defer sender.Done(); cancel(s.send(sessCtx, stream)) }()
	// The receiver is not waited for: a blocked Recv returns only once this
	// handler has returned. It touches nothing but the inbound channel and,
	// to hurry them, the plans.
	recvDone := make(chan error, 1)
	go func() {
		err := s.recv(sessCtx, stream, inbound)
		recvDone <- err
		cancel(err)
	}()
	err = s.loop(sessCtx, wake, inbound)
	cancel(err)
	sender.Wait()
	if streamCtx.Err() != nil {
		// gRPC ended the stream. When it refused a message as too large,
		// it did so before Recv returned the reason, which the loop may
		// not have seen: the stream is over, so Recv has returned or
		// returns now.
		if rerr := <-recvDone; errors.Is(rerr, ErrMessageTooLarge) {
			err = rerr
		}
	}
	if errors.Is(err, ErrMessageTooLarge) {
		// gRPC refused the message before it was read: it was the next
		// one the worker sent, a batch of the job it sends first.
		// The stream is over: a failed job leaves the session here, and
		// the worker learns of it when it resumes.
		if id, ok := s.oldestJob(); ok {
			if failed, ferr := s.refuse(ctx, id, err); failed {
				s.finish(id)
			} else if !errors.Is(ferr, ErrMessageTooLarge) {
				log.Error("refuse a message too large", "job", id, "err", ferr)
			}
		}
	}
	if errors.Is(err, errStreamClosed) {
		log.Info("worker disconnected")
		return nil
	}
	log.Info("worker disconnected", "reason", err)
	return err
}

// resume takes back the jobs the worker still holds from an earlier
// stream and says from which batch each goes on.
func (s *session) resume(ctx context.Context, held []string) ([]*workerv1.Resume, error) {
	var out []*workerv1.Resume
	for _, raw := range held {
		id, err := ulid.ParseStrict(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: malformed held job id %q", ErrProtocol, raw)
		}
		acked, ok, err := s.in.store.ResumeJob(ctx, s.clusterID, id)
		if err != nil {
			return nil, fmt.Errorf("resume job %s: %w", id, err)
		}
		if !ok || s.holds(id) {
			continue
		}
		s.in.scheduler.Take()
		s.mu.Lock()
		s.inflight[id] = true
		s.assigned[id] = time.Now()
		s.mu.Unlock()
		s.log.Info("job resumed", "job", id, "acked_seq", acked)
		out = append(out, &workerv1.Resume{JobId: raw, AckedSeq: acked})
	}
	return out, nil
}

// cleanup puts the jobs the worker was running back in the queue: it
// resumes them, or runs them again, when it is back.
func (s *session) cleanup(ctx context.Context) {
	ctx, done := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer done()
	ids := s.inflightIDs()
	for _, id := range ids {
		s.finish(id)
	}
	if len(ids) > 0 {
		if err := s.in.store.RequeueJobs(ctx, s.in.MaxAttempts, ids...); err != nil {
			s.log.Error("requeue interrupted jobs", "err", err)
		} else {
			s.log.Info("requeued interrupted jobs", "jobs", len(ids))
			// A newer session of the cluster may already be waiting, here
			// or on another replica: tell it.
			s.in.scheduler.WakeEverywhere(ctx, s.clusterID)
		}
	}
	// Only the time: a newer session may have recorded newer versions.
	if err := s.in.store.RecordWorker(ctx, s.clusterID, "", "", time.Now()); err != nil {
		s.log.Error("record worker", "err", err)
	}
}

// errStreamClosed: the worker closed its side of the stream.
var errStreamClosed = errors.New("stream closed by the worker")

func recvHello(ctx context.Context, stream Stream) (*workerv1.Hello, error) {
	type result struct {
		msg *workerv1.ConnectRequest
		err error
	}
	ch := make(chan result, 1)
	go func() {
		msg, err := stream.Recv()
		ch <- result{msg, err}
	}()
	timer := time.NewTimer(helloTimeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		if errors.Is(r.err, io.EOF) {
			// A probe, or a worker stopped as it started: the caller went
			// away, which is no server error.
			return nil, fmt.Errorf("the stream ended before its Hello: %w", context.Canceled)
		}
		if r.err != nil {
			return nil, r.err
		}
		hello := r.msg.GetHello()
		if hello == nil {
			return nil, fmt.Errorf("%w: the first message must be Hello", ErrProtocol)
		}
		return hello, nil
	case <-timer.C:
		return nil, fmt.Errorf("%w: no Hello within %v", ErrProtocol, helloTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type session struct {
	in        *Ingest
	clusterID string
	log       *slog.Logger
	out       chan *workerv1.ConnectResponse

	mu       sync.Mutex
	inflight map[ulid.ULID]bool
	// dropped are jobs that ended on the server while the worker ran them.
	dropped map[ulid.ULID]bool
	// assigned is when each job in flight was sent.
	assigned map[ulid.ULID]time.Time
	// plans are the completions of the jobs in flight, planned as their
	// batches are stored, so that a JobDone only commits.
	plans map[ulid.ULID]*store.JobPlan
	// confirmDone: the worker resumes jobs, and forgets one only once its
	// JobDone is acked.
	confirmDone bool
	// heartbeats: the worker sends something every heartbeat interval.
	heartbeats bool
	// unconfirmed is the hash of the credential this session's Welcome
	// carried, until the worker's first message confirms it. Only the
	// loop touches it.
	unconfirmed []byte
}

// plan returns the plan of a job in flight, new if it has none.
func (s *session) plan(id ulid.ULID) *store.JobPlan {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.plans[id]
	if p == nil {
		p = &store.JobPlan{}
		s.plans[id] = p
	}
	return p
}

// hurry says that the worker sent the JobDone of job id (unparsed), if
// the session plans it.
func (s *session) hurry(id string) {
	parsed, err := ulid.ParseStrict(id)
	if err != nil {
		return
	}
	s.mu.Lock()
	p := s.plans[parsed]
	s.mu.Unlock()
	if p != nil {
		p.Hurry()
	}
}

func (s *session) assignedAt(id ulid.ULID) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.assigned[id]
}

// finish forgets a job that left this session and gives its fleet-wide
// slot back; it reports whether the session held the job.
func (s *session) finish(id ulid.ULID) bool {
	s.mu.Lock()
	held := s.inflight[id]
	delete(s.inflight, id)
	delete(s.assigned, id)
	delete(s.plans, id)
	s.mu.Unlock()
	s.in.progress.Delete(id)
	if held {
		s.in.scheduler.Release()
	}
	return held
}

func (s *session) isDropped(id string) bool {
	parsed, err := ulid.ParseStrict(id)
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped[parsed]
}

// send is the only goroutine that sends on the stream.
func (s *session) send(ctx context.Context, stream Stream) error {
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

func (s *session) enqueue(ctx context.Context, msg *workerv1.ConnectResponse) error {
	select {
	case s.out <- msg:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loop handles the worker's messages in order and dispatches jobs when
// the scheduler wakes the session. It is the only goroutine that touches
// the store.
func (s *session) loop(ctx context.Context, wake <-chan struct{}, inbound <-chan received) error {
	// A worker that heartbeats and then goes silent is gone, even when its
	// TCP connection looks alive (a frozen process, a half-open path).
	var silence <-chan time.Time
	limit := 3 * s.in.Heartbeat
	var timer *time.Timer
	if s.heartbeats {
		timer = time.NewTimer(limit)
		defer timer.Stop()
		silence = timer.C
	}
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-silence:
			return fmt.Errorf("%w: nothing from the worker for %v", ErrSilent, limit)
		case <-wake:
			if err := s.dispatch(ctx); err != nil {
				return err
			}
		case r := <-inbound:
			if timer != nil {
				timer.Reset(limit)
			}
			if err := s.handle(ctx, r.msg, r.at); err != nil {
				return err
			}
		}
	}
}

// endJob stores a JobDone and returns the state the job ended in, or ""
// when it had already ended on the server (cancelled, timed out) and was
// dropped.
func (s *session) endJob(ctx context.Context, jobID ulid.ULID, d *workerv1.JobDone, done store.Completion) (string, error) {
	if d.Error != "" {
		// FailJob leaves a job that ended meanwhile (cancelled, timed
		// out) as it is and says nothing: ask first, so that such a job
		// is dropped, not counted as failed.
		if err := s.reconcile(ctx); err != nil {
			return "", err
		}
		if !s.holds(jobID) {
			return "", nil
		}
		s.log.Warn("job failed on the worker", "job", jobID, "err", d.Error)
		return s.orDropped(ctx, jobID, "failed", s.in.store.FailJob(ctx, jobID, d.Error))
	}
	err := s.in.store.CompleteJob(ctx, jobID, done)
	if errors.Is(err, store.ErrNoSpace) {
		s.failForSpace(ctx, jobID, err)
		return "", retryAfter{err, s.in.NoSpaceRetryDelay}
	}
	if errors.Is(err, store.ErrConflict) {
		// The session's view may be behind the store's: a job that ended
		// on the server meanwhile is dropped, not completed again.
		if rerr := s.reconcile(ctx); rerr != nil {
			return "", rerr
		}
		if !s.holds(jobID) {
			return "", nil
		}
		// Not ended on the server: the job changed while it was being
		// completed. Once more; then it fails rather than hangs.
		if err = s.in.store.CompleteJob(ctx, jobID, done); errors.Is(err, store.ErrConflict) {
			err = fmt.Errorf("%w: %w", store.ErrIncomplete, err)
		}
	}
	if errors.Is(err, store.ErrIncomplete) {
		// Nothing to resume from: the job fails visibly rather than shows
		// less than it found.
		s.log.Error("job incomplete", "job", jobID, "err", err)
		return s.orDropped(ctx, jobID, "failed", s.in.store.FailJob(ctx, jobID, err.Error()))
	}
	if err == nil {
		s.log.Info("job succeeded", "job", jobID, "findings", d.Findings, "objects", d.ObjectsScanned)
	}
	return s.orDropped(ctx, jobID, "succeeded", err)
}

// orDropped maps a conflict (the job ended on the server meanwhile) to
// dropping it.
func (s *session) orDropped(ctx context.Context, jobID ulid.ULID, state string, err error) (string, error) {
	if !errors.Is(err, store.ErrConflict) {
		return state, err
	}
	if err := s.reconcile(ctx); err != nil {
		return "", err
	}
	if s.holds(jobID) {
		return "", fmt.Errorf("job %s conflicts but has not ended: %w", jobID, err)
	}
	return "", nil
}

func (s *session) holds(id ulid.ULID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight[id]
}

// reconcile tells the worker to stop the jobs it holds that ended on the
// server meanwhile (cancelled, timed out), and forgets them.
func (s *session) reconcile(ctx context.Context) error {
	for _, id := range s.inflightIDs() {
		job, err := s.in.store.GetJob(ctx, id)
		if err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		if store.IsFinal(job.Record.State) {
			if err := s.drop(ctx, id, job.Record.State); err != nil {
				return err
			}
		}
	}
	return nil
}

// retryAfter is an error after which the worker is told to wait delay
// before it connects again.
type retryAfter struct {
	error
	delay time.Duration
}

func (e retryAfter) Unwrap() error             { return e.error }
func (e retryAfter) RetryAfter() time.Duration { return e.delay }

// failForSpace fails a job whose findings the server could not store for
// lack of disk space, so that it ends now with the reason instead of
// waiting out its timeout as if the worker had gone. Failing it is a small
// write that fits in pages bbolt has free, where a batch did not; when it
// fails too, the job is requeued as the stream ends. The caller ends the
// stream with the error, which tells the worker when to come back.
func (s *session) failForSpace(ctx context.Context, jobID ulid.ULID, err error) {
	reason := fmt.Sprintf("%v; the findings received so far were not kept: free space on the server and scan again", err)
	if ferr := s.in.store.FailJob(ctx, jobID, reason); ferr != nil {
		s.log.Error("could not fail the job either; it is requeued", "job", jobID, "err", ferr)
		return
	}
	s.log.Error("job failed: the server's disk is full", "job", jobID, "err", err)
	if s.in.Metrics != nil {
		s.in.Metrics.JobEnded("failed", 0)
	}
	s.finish(jobID)
}

// drop stops a job that ended on the server: the worker is told to cancel
// it, and what it still sends for it is acknowledged and discarded.
func (s *session) drop(ctx context.Context, id ulid.ULID, state fleetscanv1.JobState) error {
	s.in.refusals.Delete(id) // it ended: a refusal of it counts no more
	s.mu.Lock()
	s.dropped[id] = true
	s.mu.Unlock()
	if !s.finish(id) {
		return nil
	}
	s.log.Info("job ended on the server; telling the worker to stop", "job", id, "state", state)
	return s.enqueue(ctx, &workerv1.ConnectResponse{Msg: &workerv1.ConnectResponse_Cancel{Cancel: &workerv1.Cancel{JobId: id.String()}}})
}

// received is a message from the worker and when the stream gave it.
type received struct {
	msg *workerv1.ConnectRequest
	at  time.Time
}

// recv is the only goroutine that receives from the stream. The inbound
// channel is unbuffered: the next message is read only when the previous
// one is handled, which is the back-pressure on a fast worker. Besides the
// channel it touches only the plans, to hurry them.
func (s *session) recv(ctx context.Context, stream Stream, inbound chan<- received) error {
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return errStreamClosed
		}
		if status.Code(err) == codes.ResourceExhausted {
			return fmt.Errorf("%w: %s (the server's --max-message-size is %d bytes; workers from 0.2 on keep under it)", ErrMessageTooLarge, status.Convert(err).Message(), s.in.MaxMessageBytes)
		}
		if err != nil {
			return err
		}
		if d := msg.GetJobDone(); d != nil {
			// The loop may be planning the job's last batch: the
			// completion waits for that now.
			s.hurry(d.JobId)
		}
		select {
		case inbound <- received{msg, time.Now()}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *session) dispatch(ctx context.Context) error {
	if err := s.reconcile(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	room := JobsInFlight - len(s.inflight)
	s.mu.Unlock()
	if room <= 0 {
		return nil // the next job goes out when one ends
	}
	if !s.in.scheduler.Acquire(s.clusterID) {
		return nil // in line for a fleet-wide slot; woken when it is our turn
	}
	jobs, err := s.in.store.DispatchPending(ctx, s.clusterID, 1)
	if err != nil || len(jobs) == 0 {
		s.in.scheduler.Release()
		if err != nil {
			return fmt.Errorf("dispatch: %w", err)
		}
		return nil
	}
	// All of them are this session's before any is sent: if the stream
	// ends half-way, every dispatched job is requeued.
	s.mu.Lock()
	for _, j := range jobs {
		s.inflight[j.JobID] = true
		s.assigned[j.JobID] = time.Now()
	}
	s.mu.Unlock()
	for _, j := range jobs {
		s.log.Info("job assigned", "job", j.JobID)
		spec := j.Spec
		if spec == nil {
			spec = &fleetscanv1.ScanSpec{}
		}
		if err := s.enqueue(ctx, &workerv1.ConnectResponse{Msg: &workerv1.ConnectResponse_Assign{Assign: &workerv1.Assign{JobId: j.JobID.String(), Spec: spec}}}); err != nil {
			return err
		}
	}
	return nil
}

// handle handles one message, received at the time given.
func (s *session) handle(ctx context.Context, msg *workerv1.ConnectRequest, at time.Time) error {
	if s.unconfirmed != nil {
		// The worker keeps the credential before it sends anything: this
		// message is its receipt, and the join token is spent.
		if err := s.in.store.ConfirmCredential(ctx, s.unconfirmed); err != nil {
			return err
		}
		s.unconfirmed = nil
	}
	switch m := msg.Msg.(type) {
	case *workerv1.ConnectRequest_Batch:
		if s.isDropped(m.Batch.JobId) {
			// Acked so that the worker's window drains; not stored.
			return s.enqueue(ctx, &workerv1.ConnectResponse{Msg: &workerv1.ConnectResponse_Ack{Ack: &workerv1.Ack{JobId: m.Batch.JobId, Seq: m.Batch.Seq}}})
		}
		jobID, err := s.ownJob(m.Batch.JobId)
		if err != nil {
			return err
		}
		if n := len(m.Batch.Findings); n > MaxBatchSize {
			return fmt.Errorf("%w: batch of %d findings, the maximum is %d", ErrProtocol, n, MaxBatchSize)
		}
		if m.Batch.Seq < 1 || m.Batch.Seq > MaxBatchesPerJob {
			return fmt.Errorf("%w: batch sequence number %d outside 1..%d", ErrProtocol, m.Batch.Seq, MaxBatchesPerJob)
		}
		if err := ValidateBatch(m.Batch); err != nil {
			failed, err := s.refuse(ctx, jobID, fmt.Errorf("%w: batch %d: %w", ErrRefused, m.Batch.Seq, err))
			if !failed {
				return err
			}
			// The worker is told to stop the job; the stream goes on.
			if err := s.drop(ctx, jobID, fleetscanv1.JobState_JOB_STATE_FAILED); err != nil {
				return err
			}
			return s.dispatch(ctx)
		}
		err = s.in.store.StageBatch(ctx, jobID, m.Batch)
		if err == nil {
			s.in.refusals.Delete(jobID) // progress: a refusal before counts no more
		}
		if err == nil && s.in.Metrics != nil {
			s.in.Metrics.FindingsStaged(len(m.Batch.Findings))
		}
		if err != nil {
			if errors.Is(err, store.ErrConflict) {
				// The job ended on the server meanwhile: stop it, and ack so
				// that the worker's window does not shrink.
				if err := s.reconcile(ctx); err != nil {
					return err
				}
				return s.enqueue(ctx, &workerv1.ConnectResponse{Msg: &workerv1.ConnectResponse_Ack{Ack: &workerv1.Ack{JobId: m.Batch.JobId, Seq: m.Batch.Seq}}})
			}
			if errors.Is(err, store.ErrOutOfOrder) {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			if errors.Is(err, store.ErrNoSpace) {
				s.failForSpace(ctx, jobID, err)
				return retryAfter{err, s.in.NoSpaceRetryDelay}
			}
			return fmt.Errorf("stage batch %d of job %s: %w", m.Batch.Seq, jobID, err)
		}
		if err := s.enqueue(ctx, &workerv1.ConnectResponse{Msg: &workerv1.ConnectResponse_Ack{Ack: &workerv1.Ack{JobId: m.Batch.JobId, Seq: m.Batch.Seq}}}); err != nil {
			return err
		}
		// Planned after the ack, which waits only for the batch to be
		// durable; the next message is read once it is planned.
		if err := s.in.store.PlanBatch(ctx, jobID, s.plan(jobID), m.Batch); err != nil && ctx.Err() == nil {
			// The plan is set aside: the JobDone plans from the stored
			// batches, and meets the cause again if it lasts.
			s.log.Warn("plan batch", "job", jobID, "err", err)
		}
		return nil
	case *workerv1.ConnectRequest_JobDone:
		if s.isDropped(m.JobDone.JobId) {
			return s.confirm(ctx, m.JobDone.JobId)
		}
		jobID, err := s.ownJob(m.JobDone.JobId)
		if err != nil {
			return err
		}
		d := m.JobDone
		done := store.Completion{Batches: d.Batches, Findings: d.Findings, ObjectsScanned: d.ObjectsScanned, NotAssessable: d.NotAssessable,
			Problems: catalog.CapProblems(d.Problems), Unchecked: catalog.CapList(d.Unchecked, "documents not checked"), Plan: s.plan(jobID)}
		s.in.refusals.Delete(jobID)
		state, err := s.endJob(ctx, jobID, d, done)
		if err != nil {
			return fmt.Errorf("end job %s: %w", jobID, err)
		}
		if err := s.confirm(ctx, m.JobDone.JobId); err != nil {
			return err
		}
		if state == "" {
			return s.dispatch(ctx) // it had ended on the server and was dropped
		}
		if s.in.Metrics != nil {
			s.in.Metrics.JobCompleted(time.Since(at))
			var took time.Duration
			if state == "succeeded" {
				took = time.Since(s.assignedAt(jobID))
			}
			s.in.Metrics.JobEnded(state, took)
		}
		s.finish(jobID)
		return s.dispatch(ctx) // the next job, if one waits
	case *workerv1.ConnectRequest_Progress:
		if m.Progress.JobId == "" {
			return nil // a heartbeat
		}
		if jobID, err := ulid.ParseStrict(m.Progress.JobId); err == nil && s.holds(jobID) {
			s.in.progress.Store(jobID, m.Progress.ObjectsScanned)
		}
		return nil
	case *workerv1.ConnectRequest_Hello:
		return fmt.Errorf("%w: Hello sent twice", ErrProtocol)
	default:
		return nil // a newer worker's message: ignore it
	}
}

// refuse handles a message of job id that the server will not take, for
// reason. The first time, it returns reason, which ends the stream: the
// worker sends the message again when it reconnects, and a fault on the
// way is retried. The same reason again, with no batch of the job stored
// in between, is no fault on the way: the job fails with the reason, and
// refuse reports failed. So no message makes a worker reconnect for ever.
func (s *session) refuse(ctx context.Context, id ulid.ULID, reason error) (failed bool, err error) {
	class := reason.Error()
	if errors.Is(reason, ErrMessageTooLarge) {
		class = ErrMessageTooLarge.Error() // the sizes may differ between tries
	}
	prev, seen := s.in.refusals.Swap(id, class)
	if !seen || prev != class {
		s.log.Warn("message refused; the worker may send it again once", "job", id, "reason", reason)
		return false, reason
	}
	s.in.refusals.Delete(id)
	s.log.Error("job failed: the worker's message was refused twice", "job", id, "reason", reason)
	if err := s.in.store.FailJob(ctx, id, fmt.Sprintf("refused twice with no batch stored in between: %v", reason)); err != nil {
		return false, fmt.Errorf("fail job %s: %w", id, err)
	}
	if s.in.Metrics != nil {
		s.in.Metrics.JobEnded("failed", 0)
	}
	return true, nil
}

// oldestJob returns the job this session was given first of those it
// holds: the worker sends its jobs' batches in the order it got them.
func (s *session) oldestJob() (ulid.ULID, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var oldest ulid.ULID
	var at time.Time
	found := false
	for id, t := range s.assigned {
		if !found || t.Before(at) || (t.Equal(at) && id.Compare(oldest) < 0) {
			oldest, at, found = id, t, true
		}
	}
	return oldest, found
}

// ValidateBatch checks a batch's findings against the limits a worker
// keeps (catalog.MaxMessageBytes, catalog.MaxFieldBytes): the server stores
// what it is given, and one finding must not grow a record, a page of
// ListFindings or a SARIF report without bound.
func ValidateBatch(b *workerv1.FindingBatch) error {
	for i, f := range b.Findings {
		if n := len(f.Message); n > catalog.MaxMessageBytes {
			return fmt.Errorf("finding %d (%s): message of %d bytes, the maximum is %d", i, f.CheckId, n, catalog.MaxMessageBytes)
		}
		r := f.GetResource()
		for _, field := range []struct{ name, v string }{
			{"check_id", f.CheckId}, {"category", f.Category}, {"suppression_reason", f.SuppressionReason}, {"location", f.Location},
			{"resource.api_version", r.GetApiVersion()}, {"resource.kind", r.GetKind()}, {"resource.namespace", r.GetNamespace()},
			{"resource.name", r.GetName()}, {"resource.sub_path", r.GetSubPath()},
		} {
			if len(field.v) > catalog.MaxFieldBytes {
				return fmt.Errorf("finding %d (%s): %s of %d bytes, the maximum is %d", i, f.CheckId, field.name, len(field.v), catalog.MaxFieldBytes)
			}
		}
	}
	return nil
}

// confirm tells a worker that resumes jobs that it may forget this one.
func (s *session) confirm(ctx context.Context, jobID string) error {
	if !s.confirmDone {
		return nil
	}
	return s.enqueue(ctx, &workerv1.ConnectResponse{Msg: &workerv1.ConnectResponse_Ack{Ack: &workerv1.Ack{JobId: jobID, JobDone: true}}})
}

// ObjectsScanned returns what the worker running a job reported it read.
func (in *Ingest) ObjectsScanned(jobID ulid.ULID) (int64, bool) {
	v, ok := in.progress.Load(jobID)
	if !ok {
		return 0, false
	}
	return v.(int64), true
}

// ownJob parses a job id and checks that it was assigned to this session,
// so a worker cannot write into another cluster's job.
func (s *session) ownJob(id string) (ulid.ULID, error) {
	jobID, err := ulid.ParseStrict(id)
	if err != nil {
		return jobID, fmt.Errorf("%w: malformed job id %q", ErrProtocol, id)
	}
	s.mu.Lock()
	ok := s.inflight[jobID]
	s.mu.Unlock()
	if !ok {
		return jobID, fmt.Errorf("%w: job %s is not assigned to this connection", ErrProtocol, jobID)
	}
	return jobID, nil
}

func (s *session) inflightIDs() []ulid.ULID {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]ulid.ULID, 0, len(s.inflight))
	for id := range s.inflight {
		ids = append(ids, id)
	}
	return ids
}
