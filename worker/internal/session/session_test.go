package session

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/worker/checks"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// podsSource is a cluster of n privileged pods: many findings.
type podsSource struct{ n int }

func (s podsSource) Collect(context.Context, policy.Selection) (*checks.Inventory, error) {
	inv := &checks.Inventory{}
	yes := true
	for i := range s.n {
		inv.Pods = append(inv.Pods, corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: "ns"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "c", Image: "nginx:latest", SecurityContext: &corev1.SecurityContext{Privileged: &yes},
			}}},
		})
	}
	return inv, nil
}

func (podsSource) KubernetesVersion(context.Context) (string, error) { return "v1.37.2", nil }

// fakeServer hands each stream to the test, which plays the server.
type fakeServer struct {
	workerv1.UnimplementedWorkerServiceServer
	streams chan grpc.BidiStreamingServer[workerv1.ConnectRequest, workerv1.ConnectResponse]
	ended   chan error // the test ends the current stream by sending here
}

func (f *fakeServer) Connect(stream grpc.BidiStreamingServer[workerv1.ConnectRequest, workerv1.ConnectResponse]) error {
	select {
	case f.streams <- stream:
	case <-stream.Context().Done():
		return nil
	}
	select {
	case err := <-f.ended:
		return err
	case <-stream.Context().Done():
		return nil
	}
}

type harness struct {
	t      *testing.T
	fake   *fakeServer
	runner *Runner
	cancel context.CancelFunc // stops the runner's jobs
	served chan error
}

func newHarness(t *testing.T, findingsPods int) *harness {
	t.Helper()
	return newHarnessConfig(t, Config{ClusterID: "c1", Source: podsSource{findingsPods}, BatchSize: 5, MaxInflight: 4, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

func newHarnessConfig(t *testing.T, cfg Config) *harness {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	fake := &fakeServer{streams: make(chan grpc.BidiStreamingServer[workerv1.ConnectRequest, workerv1.ConnectResponse]), ended: make(chan error)}
	srv := grpc.NewServer()
	workerv1.RegisterWorkerServiceServer(srv, fake)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r := NewRunner(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, fake: fake, runner: r, cancel: cancel, served: make(chan error, 16)}
	go r.Start(ctx)
	t.Cleanup(cancel)
	// Serve streams one after the other, as Worker.Run does.
	go func() {
		for ctx.Err() == nil {
			h.served <- r.Serve(context.Background(), conn, Events{})
		}
	}()
	return h
}

// accept takes the next stream and answers its Hello.
func (h *harness) accept(w *workerv1.Welcome) (grpc.BidiStreamingServer[workerv1.ConnectRequest, workerv1.ConnectResponse], *workerv1.Hello) {
	h.t.Helper()
	var stream grpc.BidiStreamingServer[workerv1.ConnectRequest, workerv1.ConnectResponse]
	select {
	case stream = <-h.fake.streams:
	case <-time.After(10 * time.Second):
		h.t.Fatal("the worker did not connect")
	}
	msg, err := stream.Recv()
	if err != nil || msg.GetHello() == nil {
		h.t.Fatalf("first message: %v %v", msg, err)
	}
	if err := stream.Send(&workerv1.ConnectResponse{Msg: &workerv1.ConnectResponse_Welcome{Welcome: w}}); err != nil {
		h.t.Fatal(err)
	}
	return stream, msg.GetHello()
}

// next returns the next batch or JobDone, skipping progress and heartbeats.
func next(t *testing.T, stream grpc.BidiStreamingServer[workerv1.ConnectRequest, workerv1.ConnectResponse]) *workerv1.ConnectRequest {
	t.Helper()
	for {
		msg, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if msg.GetProgress() == nil {
			return msg
		}
	}
}

func ack(t *testing.T, stream grpc.BidiStreamingServer[workerv1.ConnectRequest, workerv1.ConnectResponse], a *workerv1.Ack) {
	t.Helper()
	if err := stream.Send(&workerv1.ConnectResponse{Msg: &workerv1.ConnectResponse_Ack{Ack: a}}); err != nil {
		t.Fatal(err)
	}
}

var resumeCaps = []string{CapResume, CapHeartbeat, CapCredential, CapReceipt}

// TestResumeSendsOnlyUnackedBatches: after a stream breaks, the worker
// names the job it holds; told that batches up to 2 are stored, it sends
// batch 3 on, never 1 or 2 again, and forgets the job only once JobDone
// is acked.
func TestResumeSendsOnlyUnackedBatches(t *testing.T) {
	h := newHarness(t, 10)
	s1, hello := h.accept(&workerv1.Welcome{Capabilities: resumeCaps, MaxBatchSize: 2})
	if !slices.Equal(hello.Capabilities, resumeCaps) || len(hello.HeldJobs) != 0 {
		t.Fatalf("first hello: %v", hello)
	}
	if err := s1.Send(&workerv1.ConnectResponse{Msg: &workerv1.ConnectResponse_Assign{Assign: &workerv1.Assign{JobId: "job1"}}}); err != nil {
		t.Fatal(err)
	}
	for seq := int64(1); seq <= 3; seq++ {
		b := next(t, s1).GetBatch()
		if b.GetSeq() != seq || len(b.Findings) != 2 {
			t.Fatalf("batch %d: %v", seq, b)
		}
		if seq <= 2 {
			ack(t, s1, &workerv1.Ack{JobId: "job1", Seq: seq})
		}
	}
	h.fake.ended <- fmt.Errorf("connection lost")

	s2, hello := h.accept(&workerv1.Welcome{Capabilities: resumeCaps, MaxBatchSize: 2, Resume: []*workerv1.Resume{{JobId: "job1", AckedSeq: 2}}})
	if !slices.Equal(hello.HeldJobs, []string{"job1"}) {
		t.Fatalf("hello after the cut holds %v, want job1", hello.HeldJobs)
	}
	want := int64(3)
	var done *workerv1.JobDone
	findings := 2 * 2
	for done == nil {
		msg := next(t, s2)
		if b := msg.GetBatch(); b != nil {
			if b.Seq != want {
				t.Fatalf("after resume got batch %d, want %d", b.Seq, want)
			}
			findings += len(b.Findings)
			ack(t, s2, &workerv1.Ack{JobId: "job1", Seq: b.Seq})
			want++
			continue
		}
		done = msg.GetJobDone()
	}
	if done.Batches != want-1 || int(done.Findings) != findings || done.Error != "" {
		t.Fatalf("JobDone %v after %d batches and %d findings", done, want-1, findings)
	}
	if held := h.runner.Held(); !slices.Equal(held, []string{"job1"}) {
		t.Errorf("before the JobDone ack the worker holds %v", held)
	}
	ack(t, s2, &workerv1.Ack{JobId: "job1", JobDone: true})
	waitHeld(t, h.runner, 0)
	h.fake.ended <- nil
}

// TestUnresumedJobIsDropped: a job the server does not list in Welcome is
// dropped, and an old server (no capabilities) gets nothing of it.
func TestUnresumedJobIsDropped(t *testing.T) {
	h := newHarness(t, 200)
	s1, _ := h.accept(&workerv1.Welcome{Capabilities: resumeCaps})
	if err := s1.Send(&workerv1.ConnectResponse{Msg: &workerv1.ConnectResponse_Assign{Assign: &workerv1.Assign{JobId: "job1"}}}); err != nil {
		t.Fatal(err)
	}
	next(t, s1) // a batch: the job runs; the window (4) stops it soon
	h.fake.ended <- fmt.Errorf("connection lost")
	s2, hello := h.accept(&workerv1.Welcome{})
	if !slices.Equal(hello.HeldJobs, []string{"job1"}) {
		t.Fatalf("held %v", hello.HeldJobs)
	}
	waitHeld(t, h.runner, 0)
	done := make(chan *workerv1.ConnectRequest, 1)
	go func() {
		msg, _ := s2.Recv()
		done <- msg
	}()
	select {
	case msg := <-done:
		if msg.GetBatch() != nil || msg.GetJobDone() != nil {
			t.Errorf("the dropped job sent %v", msg)
		}
	case <-time.After(300 * time.Millisecond):
	}
	h.fake.ended <- nil
}

// TestDrainWaitsForFinishedJobs: when the worker stops, a job that has
// finished stays until the server has it all; Drain reports when it has.
func TestDrainWaitsForFinishedJobs(t *testing.T) {
	h := newHarness(t, 3)
	s1, _ := h.accept(&workerv1.Welcome{Capabilities: resumeCaps})
	if err := s1.Send(&workerv1.ConnectResponse{Msg: &workerv1.ConnectResponse_Assign{Assign: &workerv1.Assign{JobId: "job1"}}}); err != nil {
		t.Fatal(err)
	}
	// Every batch but the last is acked as it comes (the window is 4).
	var last int64
	for {
		msg := next(t, s1)
		if b := msg.GetBatch(); b != nil {
			if last > 0 {
				ack(t, s1, &workerv1.Ack{JobId: "job1", Seq: last})
			}
			last = b.Seq
			continue
		}
		if msg.GetJobDone() == nil {
			t.Fatalf("unexpected %v", msg)
		}
		break
	}
	h.cancel() // the worker is told to stop
	drained := make(chan bool, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		drained <- h.runner.Drain(ctx)
	}()
	select {
	case <-drained:
		t.Fatal("Drain returned before the server acked the finished job")
	case <-time.After(100 * time.Millisecond):
	}
	ack(t, s1, &workerv1.Ack{JobId: "job1", Seq: last})
	ack(t, s1, &workerv1.Ack{JobId: "job1", JobDone: true})
	if !<-drained {
		t.Fatal("Drain gave up although the server acked everything")
	}
	h.fake.ended <- nil
}

func waitHeld(t *testing.T, r *Runner, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(r.Held()) != n {
		if time.Now().After(deadline) {
			t.Fatalf("runner holds %v, want %d jobs", r.Held(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestProducerReplacesCollectAndChecks: a worker with a Producer and no
// Source runs the Producer's findings through the same protocol: batches
// of the negotiated size in order, then a JobDone that counts them and
// carries what the Producer reported.
func TestProducerReplacesCollectAndChecks(t *testing.T) {
	const n = 12
	var gotJob string
	produce := func(ctx context.Context, job *workerv1.Assign, out *Output) (Result, error) {
		gotJob = job.JobId
		out.Progress(7)
		for i := range n {
			if err := out.Emit(&workerv1.Finding{CheckId: "ORG-001", Message: fmt.Sprint(i)}); err != nil {
				return Result{}, err
			}
		}
		return Result{ObjectsScanned: 7, NotAssessable: []*fleetscanv1.CheckNotAssessable{{CheckId: "ORG-002", Reason: "synthetic"}}}, nil
	}
	h := newHarnessConfig(t, Config{ClusterID: "c1", Producer: produce, BatchSize: 5, MaxInflight: 4, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	s, hello := h.accept(&workerv1.Welcome{Capabilities: resumeCaps})
	if hello.KubernetesVersion != "" {
		t.Errorf("hello without a Source has Kubernetes version %q", hello.KubernetesVersion)
	}
	if err := s.Send(&workerv1.ConnectResponse{Msg: &workerv1.ConnectResponse_Assign{Assign: &workerv1.Assign{JobId: "job1"}}}); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	var messages []string
	var done *workerv1.JobDone
	for done == nil {
		msg := next(t, s)
		if b := msg.GetBatch(); b != nil {
			if int(b.Seq) != len(sizes)+1 {
				t.Fatalf("batch %d after %d batches", b.Seq, len(sizes))
			}
			sizes = append(sizes, len(b.Findings))
			for _, f := range b.Findings {
				messages = append(messages, f.Message)
			}
			ack(t, s, &workerv1.Ack{JobId: "job1", Seq: b.Seq})
			continue
		}
		done = msg.GetJobDone()
	}
	if gotJob != "job1" {
		t.Errorf("the producer got job %q", gotJob)
	}
	if !slices.Equal(sizes, []int{5, 5, 2}) {
		t.Errorf("batch sizes %v, want [5 5 2]", sizes)
	}
	for i, m := range messages {
		if m != fmt.Sprint(i) {
			t.Fatalf("finding %d is %q: out of order", i, m)
		}
	}
	if done.Batches != 3 || done.Findings != n || done.ObjectsScanned != 7 || len(done.NotAssessable) != 1 || done.Error != "" {
		t.Errorf("JobDone %v", done)
	}
	ack(t, s, &workerv1.Ack{JobId: "job1", JobDone: true})
	waitHeld(t, h.runner, 0)
	h.fake.ended <- nil
}
