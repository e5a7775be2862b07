package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/server"
	"github.com/fleetscan/fleetscan/worker"
)

var rawCaps = []string{"resume", "heartbeat", "credential", "receipt"}

// assigned connects a raw worker holding held and returns its stream,
// its Welcome, and the job of the first Assign (or of held, resumed).
func assigned(t *testing.T, ts *testServer, cred string, held ...string) (workerv1.WorkerService_ConnectClient, *workerv1.Welcome, string) {
	t.Helper()
	stream, welcome, err := ts.connectHello(context.Background(), cred, &workerv1.Hello{ClusterId: "acme-dev", Capabilities: rawCaps, HeldJobs: held})
	if err != nil {
		t.Fatal(err)
	}
	if len(held) > 0 {
		if len(welcome.Resume) != 1 {
			t.Fatalf("held %v, resumed %v", held, welcome.Resume)
		}
		return stream, welcome, welcome.Resume[0].JobId
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if a := m.GetAssign(); a != nil {
			return stream, welcome, a.JobId
		}
	}
}

// batchOf is a batch of n findings whose messages are size bytes.
func batchOf(job string, seq int64, n, size int) *workerv1.ConnectRequest {
	b := &workerv1.FindingBatch{JobId: job, Seq: seq}
	for i := range n {
		b.Findings = append(b.Findings, &workerv1.Finding{
			CheckId: "POD-001", Severity: fleetscanv1.Severity_SEVERITY_HIGH, Category: "pod-security",
			Resource: &fleetscanv1.ResourceRef{ApiVersion: "v1", Kind: "Pod", Namespace: "shop", Name: fmt.Sprintf("p%d", i)},
			Message:  strings.Repeat("m", size),
		})
	}
	return &workerv1.ConnectRequest{Msg: &workerv1.ConnectRequest_Batch{Batch: b}}
}

// endsWith sends msg and returns the status the server ends the stream
// with.
func endsWith(t *testing.T, stream workerv1.WorkerService_ConnectClient, msg *workerv1.ConnectRequest) error {
	t.Helper()
	_ = stream.Send(msg) // an io.EOF here says the stream ended: Recv tells how
	for {
		if _, err := stream.Recv(); err != nil {
			return err
		}
	}
}

func jobOf(t *testing.T, ts *testServer, scanID string) *fleetscanv1.Job {
	t.Helper()
	resp, err := ts.client(ts.operatorToken()).ScanService.GetScan(context.Background(), &fleetscanv1.GetScanRequest{ScanId: scanID})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Scan.Jobs) != 1 {
		t.Fatalf("scan has %d jobs", len(resp.Scan.Jobs))
	}
	return resp.Scan.Jobs[0]
}

// waitJobState waits until the scan's job is in state.
func waitJobState(t *testing.T, ts *testServer, scanID string, state fleetscanv1.JobState) *fleetscanv1.Job {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j := jobOf(t, ts, scanID)
		if j.State == state {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job is %v %q, want %v", j.State, j.Error, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startScan(t *testing.T, ts *testServer) string {
	t.Helper()
	resp, err := ts.client(ts.operatorToken()).ScanService.StartScan(context.Background(), &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{ClusterIds: []string{"acme-dev"}}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Scan.Id
}

// TestMessageTooLargeTwiceFailsTheJob: a worker that sends a message over
// the server's limit (an old worker that does not split batches by size)
// is cut off; when it sends the same again after reconnecting, the job
// fails with the reason, visible on the scan, and the worker's next
// connection drops the job instead of sending it a third time. Before,
// the worker reconnected for ever and the scan never ended.
func TestMessageTooLargeTwiceFailsTheJob(t *testing.T) {
	const limit = 64 << 10
	ts := &testServer{t: t, dataDir: t.TempDir(), cfg: func(c *server.Config) { c.MaxMessageBytes = limit }}
	ts.start()
	t.Cleanup(ts.shutdown)
	op := ts.client(ts.operatorToken())
	cred := workerCredential(t, ts, "acme-dev", register(t, op, "acme-dev", "acme", nil))
	scanID := startScan(t, ts)

	stream, welcome, job := assigned(t, ts, cred)
	if welcome.MaxMessageBytes != limit {
		t.Errorf("Welcome.max_message_bytes = %d, want the server's limit %d", welcome.MaxMessageBytes, limit)
	}
	// A batch that is stored is progress; the next, too large, is refused.
	if err := stream.Send(batchOf(job, 1, 3, 100)); err != nil {
		t.Fatal(err)
	}
	big := batchOf(job, 2, 30, 3000) // 90 KB
	if err := endsWith(t, stream, big); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("first message too large: %v, want RESOURCE_EXHAUSTED", err)
	}
	if j := jobOf(t, ts, scanID); j.State == fleetscanv1.JobState_JOB_STATE_FAILED {
		t.Fatalf("failed at the first refusal: %v", j)
	}

	stream, _, _ = assigned(t, ts, cred, job)
	if err := endsWith(t, stream, big); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("second message too large: %v, want RESOURCE_EXHAUSTED", err)
	}
	// gRPC ends the stream as it refuses the message; the server's
	// handler then records the refusal.
	j := waitJobState(t, ts, scanID, fleetscanv1.JobState_JOB_STATE_FAILED)
	if !strings.Contains(j.Error, "refused twice") || !strings.Contains(j.Error, "max-message-size") {
		t.Fatalf("after the same refusal twice the job failed with %q, want it to say why", j.Error)
	}
	_, welcome, err := ts.connectHello(context.Background(), cred, &workerv1.Hello{ClusterId: "acme-dev", Capabilities: rawCaps, HeldJobs: []string{job}})
	if err != nil || len(welcome.Resume) != 0 {
		t.Errorf("third connection resumes %v (%v), want the failed job dropped", welcome.GetResume(), err)
	}
	waitScan(t, op, scanID)
}

// TestRefusedBatchTwiceFailsTheJob: a batch the server will not store (a
// finding over the field limits) ends the stream the first time; sent
// again, it fails the job and the worker is told to stop it on the same
// stream, which goes on.
func TestRefusedBatchTwiceFailsTheJob(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	cred := workerCredential(t, ts, "acme-dev", register(t, op, "acme-dev", "acme", nil))
	scanID := startScan(t, ts)

	stream, _, job := assigned(t, ts, cred)
	bad := batchOf(job, 1, 2, 5000) // messages over catalog.MaxMessageBytes
	if err := endsWith(t, stream, bad); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "message of 5000 bytes") {
		t.Fatalf("first invalid batch: %v, want INVALID_ARGUMENT naming the field", err)
	}
	stream, _, _ = assigned(t, ts, cred, job)
	if err := stream.Send(bad); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("stream ended (%v) instead of cancelling the job", err)
		}
		if c := m.GetCancel(); c != nil {
			if c.JobId != job {
				t.Fatalf("cancel of %s, want %s", c.JobId, job)
			}
			break
		}
	}
	j := jobOf(t, ts, scanID)
	if j.State != fleetscanv1.JobState_JOB_STATE_FAILED || !strings.Contains(j.Error, "refused twice") || !strings.Contains(j.Error, "message of 5000 bytes") {
		t.Fatalf("job %v %q, want FAILED saying why", j.State, j.Error)
	}
}

// TestWorkerKeepsUnderTheServersLimit: a real worker whose findings are
// large fills batches up to the limit the server announces, not past it,
// and the scan completes with every finding.
func TestWorkerKeepsUnderTheServersLimit(t *testing.T) {
	const n = 300
	ts := &testServer{t: t, dataDir: t.TempDir(), cfg: func(c *server.Config) { c.MaxMessageBytes = server.MinMessageBytes }}
	ts.start()
	t.Cleanup(ts.shutdown)
	op := ts.client(ts.operatorToken())
	token := register(t, op, "acme-dev", "acme", nil)
	produce := func(ctx context.Context, job *workerv1.Assign, out *worker.Output) (worker.Result, error) {
		for i := range n {
			err := out.Emit(&workerv1.Finding{
				CheckId: "POD-001", Severity: fleetscanv1.Severity_SEVERITY_HIGH, Category: "pod-security",
				Resource: &fleetscanv1.ResourceRef{ApiVersion: "v1", Kind: "Pod", Namespace: "shop", Name: fmt.Sprintf("p%d", i)},
				Message:  strings.Repeat("m", 4000),
			})
			if err != nil {
				return worker.Result{}, err
			}
		}
		return worker.Result{ObjectsScanned: n}, nil
	}
	ts.startWorkerWith("acme-dev", token, "", func(c *worker.Config) {
		c.Source, c.Producer, c.BatchSize = nil, produce, 1000
		c.DialOptions = []grpc.DialOption{ts.dial()}
	})
	waitConnected(t, op, "acme-dev")
	sc := scanClusters(t, ts, "acme-dev")
	if sc.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED || sc.Jobs[0].Findings.GetHigh() != n {
		t.Fatalf("scan %v, job %v", sc.State, sc.Jobs[0])
	}
}
