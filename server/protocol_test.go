package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server"
	"github.com/fleetscan/fleetscan/worker"
)

// cutConn breaks the connection under it once budget bytes have crossed
// it either way: a network that drops connections at arbitrary points,
// in the middle of a frame as often as not.
type cutConn struct {
	net.Conn
	left   atomic.Int64
	cut    atomic.Bool
	cutOff *atomic.Int64 // counts cuts
}

func (c *cutConn) spend(n int) error {
	if c.left.Add(-int64(n)) < 0 {
		if c.cut.CompareAndSwap(false, true) {
			c.Conn.Close()
			c.cutOff.Add(1)
		}
		return errors.New("cut by the test")
	}
	return nil
}

func (c *cutConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err == nil {
		err = c.spend(n)
	}
	return n, err
}

func (c *cutConn) Write(p []byte) (int, error) {
	if err := c.spend(len(p)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// cuttingDialer dials the test server and gives each connection a budget
// drawn by budget(); it counts the cuts.
func (ts *testServer) cuttingDialer(budget func() int64, cuts *atomic.Int64) grpc.DialOption {
	return grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		ts.mu.Lock()
		lis := ts.lis
		ts.mu.Unlock()
		conn, err := lis.DialContext(ctx)
		if err != nil {
			return nil, err
		}
		c := &cutConn{Conn: conn, cutOff: cuts}
		c.left.Store(budget())
		return c, nil
	})
}

func (ts *testServer) startWorkerWith(clusterID, token, snapshot string, adjust func(*worker.Config)) (stop func() error) {
	ts.t.Helper()
	cfg := worker.Config{
		Server: "passthrough:///bufnet", Token: token, ClusterID: clusterID, Plaintext: true,
		Source:     worker.SnapshotSource(snapshot, nil),
		BatchSize:  3,
		MinBackoff: 5 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	adjust(&cfg)
	w, err := worker.New(cfg)
	if err != nil {
		ts.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	ts.t.Cleanup(func() { stop() })
	return stop
}

func scanClusters(t *testing.T, ts *testServer, ids ...string) *fleetscanv1.Scan {
	t.Helper()
	op := ts.client(ts.operatorToken())
	resp, err := op.ScanService.StartScan(context.Background(), &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{ClusterIds: ids}})
	if err != nil {
		t.Fatal(err)
	}
	return waitScan(t, op, resp.Scan.Id)
}

// TestConnectionsCutAtRandom runs scans over connections that break at
// random points, again and again: every scan must end with exactly the
// findings of the check engine, none lost, none twice. A worker that
// resumes goes on from its last acked batch, so its job is sent once; an
// old worker without the capability runs the job again each time.
func TestConnectionsCutAtRandom(t *testing.T) {
	for _, tc := range []struct {
		name   string
		caps   []string // nil: the worker's own
		rounds int
		// Bytes a connection carries before it is cut: from min to min+span.
		// An old worker needs room for a whole job on one connection.
		min, span int64
	}{
		{"resuming worker", nil, 12, 4 << 10, 28 << 10},
		{"old worker", []string{}, 6, 16 << 10, 96 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, 0))
			var rngMu sync.Mutex
			budget := func() int64 {
				rngMu.Lock()
				defer rngMu.Unlock()
				return tc.min + rng.Int64N(tc.span)
			}
			ts := &testServer{t: t, dataDir: t.TempDir(), cfg: func(c *server.Config) { c.MaxAttempts = 1000 }}
			ts.start()
			t.Cleanup(ts.shutdown)
			op := ts.client(ts.operatorToken())
			token := register(t, op, "globex-prod", "globex", nil)
			if tc.caps != nil {
				// An old worker knows no join tokens: give it a worker credential.
				token = workerCredential(t, ts, "globex-prod", token)
			}
			var cuts atomic.Int64
			ts.startWorkerWith("globex-prod", token, filepath.Join(demoClusters, "globex-prod"), func(c *worker.Config) {
				c.DialOptions = []grpc.DialOption{ts.cuttingDialer(budget, &cuts)}
				c.Capabilities = tc.caps
			})
			want := expectedFindings(t, "globex-prod", filepath.Join(demoClusters, "globex-prod"))
			resumedOnce := 0
			for round := range tc.rounds {
				before := cuts.Load()
				scan := scanClusters(t, ts, "globex-prod")
				if scan.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
					t.Fatalf("round %d: scan %v: %v", round, scan.State, scan.Jobs)
				}
				got := storedFindings(t, op, &fleetscanv1.ListFindingsRequest{ClusterId: "globex-prod", PageSize: 1000})
				if d := diffLines(got, want); d != "" {
					t.Fatalf("round %d, after %d cuts: stored findings differ from the engine's:\n%s", round, cuts.Load()-before, d)
				}
				job := scan.Jobs[0]
				if int64(len(want)) != history(job.Findings) {
					t.Errorf("round %d: job counts %d findings, want %d", round, history(job.Findings), len(want))
				}
				if tc.caps == nil && cuts.Load() > before && job.Attempts == 1 {
					resumedOnce++
				}
			}
			t.Logf("%d rounds, %d connections cut, %d jobs finished over a cut with one attempt", tc.rounds, cuts.Load(), resumedOnce)
			if cuts.Load() == 0 {
				t.Errorf("no cut in %d rounds: the test did not exercise reconnects", tc.rounds)
			}
			if tc.caps == nil && resumedOnce == 0 {
				t.Errorf("no job went on after a cut without being sent again: resume does not work")
			}
		})
	}
}

func history(c *fleetscanv1.SeverityCounts) int64 {
	return c.GetCritical() + c.GetHigh() + c.GetMedium() + c.GetLow() + c.GetInfo() + c.GetSuppressed()
}

// TestJobResumesAfterOneCut cuts the first connection in the middle of a
// job: the job goes on from the last acked batch on the next connection,
// is sent to the worker once, and stores exactly the engine's findings.
func TestJobResumesAfterOneCut(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	token := register(t, op, "globex-prod", "globex", nil)
	var cuts, dials atomic.Int64
	ts.startWorkerWith("globex-prod", token, filepath.Join(demoClusters, "globex-prod"), func(c *worker.Config) {
		c.DialOptions = []grpc.DialOption{ts.cuttingDialer(func() int64 {
			if dials.Add(1) == 1 {
				return 12 << 10 // a few batches in
			}
			return 1 << 40
		}, &cuts)}
	})
	waitConnected(t, op, "globex-prod")
	scan := scanClusters(t, ts, "globex-prod")
	if scan.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
		t.Fatalf("scan %v: %v", scan.State, scan.Jobs)
	}
	if cuts.Load() != 1 {
		t.Fatalf("%d cuts, want 1", cuts.Load())
	}
	if a := scan.Jobs[0].Attempts; a != 1 {
		t.Errorf("job sent %d times; a resumed job is sent once", a)
	}
	want := expectedFindings(t, "globex-prod", filepath.Join(demoClusters, "globex-prod"))
	if d := diffLines(storedFindings(t, op, &fleetscanv1.ListFindingsRequest{ClusterId: "globex-prod", PageSize: 1000}), want); d != "" {
		t.Fatalf("stored findings differ:\n%s", d)
	}
}

// TestSecondScanJoinsPendingJob: a cluster has at most one job for a spec
// at a time; a second scan asking for the same joins it, and both end
// with its result. A different spec queues a job of its own.
func TestSecondScanJoinsPendingJob(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	token := register(t, op, "acme-dev", "acme", nil)
	start := func(spec *fleetscanv1.ScanSpec) *fleetscanv1.Scan {
		resp, err := op.ScanService.StartScan(context.Background(), &fleetscanv1.StartScanRequest{
			Target: &fleetscanv1.ScanTarget{ClusterIds: []string{"acme-dev"}}, Spec: spec})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Scan
	}
	first, second := start(nil), start(&fleetscanv1.ScanSpec{})
	other := start(&fleetscanv1.ScanSpec{ExcludeChecks: []string{"POD-020"}})
	if first.Jobs[0].Id != second.Jobs[0].Id {
		t.Errorf("second scan has job %s, want the first scan's %s", second.Jobs[0].Id, first.Jobs[0].Id)
	}
	if other.Jobs[0].Id == first.Jobs[0].Id {
		t.Errorf("a scan with another spec joined the first scan's job")
	}
	ts.startWorker("acme-dev", token, filepath.Join(demoClusters, "acme-dev"))
	for _, s := range []*fleetscanv1.Scan{first, second, other} {
		got := waitScan(t, op, s.Id)
		if got.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED || got.Jobs[0].Attempts != 1 {
			t.Errorf("scan %s: %v, job %v", s.Id, got.State, got.Jobs[0])
		}
	}
}

// TestCancelOfJoinedScan: cancelling one of two scans that share a job
// leaves the job running for the other; cancelling both stops it.
func TestCancelOfJoinedScan(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	token := register(t, op, "acme-dev", "acme", nil)
	start := func() string {
		resp, err := op.ScanService.StartScan(context.Background(), &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{ClusterIds: []string{"acme-dev"}}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Scan.Id
	}
	a, b := start(), start()
	resp, err := op.ScanService.CancelScan(context.Background(), &fleetscanv1.CancelScanRequest{ScanId: b})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Scan.State != fleetscanv1.ScanState_SCAN_STATE_CANCELLED {
		t.Errorf("cancelled scan shows %v", resp.Scan.State)
	}
	ts.startWorker("acme-dev", token, filepath.Join(demoClusters, "acme-dev"))
	if got := waitScan(t, op, a); got.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
		t.Errorf("the scan that kept the shared job: %v", got.State)
	}
	if got := waitScan(t, op, b); got.State != fleetscanv1.ScanState_SCAN_STATE_CANCELLED {
		t.Errorf("the scan that cancelled: %v, want it to stay CANCELLED", got.State)
	}

	// The other way round: the scan that created the job cancels; the
	// findings are attributed to the scan that kept it.
	e, f := start(), start()
	if _, err := op.ScanService.CancelScan(context.Background(), &fleetscanv1.CancelScanRequest{ScanId: e}); err != nil {
		t.Fatal(err)
	}
	if got := waitScan(t, op, f); got.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
		t.Fatalf("the joining scan that kept the job: %v", got.State)
	}
	for _, finding := range allFindings(t, op, &fleetscanv1.ListFindingsRequest{ClusterId: "acme-dev", PageSize: 5}) {
		if finding.LastScanId != f {
			t.Fatalf("finding last seen by %s, want %s (the scan that kept the job; %s cancelled it)", finding.LastScanId, f, e)
		}
	}
	if _, err := op.FindingService.DiffScans(context.Background(), &fleetscanv1.DiffScansRequest{BaseScanId: f, HeadScanId: f}); err != nil {
		t.Errorf("diff of the scan that kept the job: %v", err)
	}

	c, d := start(), start()
	for _, id := range []string{c, d} {
		if _, err := op.ScanService.CancelScan(context.Background(), &fleetscanv1.CancelScanRequest{ScanId: id}); err != nil {
			t.Fatal(err)
		}
	}
	got := waitScan(t, op, c)
	if got.State != fleetscanv1.ScanState_SCAN_STATE_CANCELLED || got.Jobs[0].State != fleetscanv1.JobState_JOB_STATE_CANCELLED {
		t.Errorf("both scans cancelled, the job is %v", got.Jobs[0].State)
	}
}

// TestWatchScan streams a scan from PENDING to SUCCEEDED with its
// progress, and ends the stream when the scan ends.
func TestWatchScan(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	tokens := map[string]string{}
	for _, id := range []string{"acme-dev", "globex-prod"} {
		tokens[id] = register(t, op, id, "t", nil)
	}
	resp, err := op.ScanService.StartScan(context.Background(), &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{AllClusters: true}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := op.ScanService.WatchScan(ctx, &fleetscanv1.WatchScanRequest{ScanId: resp.Scan.Id})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if p := first.Scan.Progress; first.Scan.State != fleetscanv1.ScanState_SCAN_STATE_PENDING || p.ClustersTotal != 2 || p.ClustersDone != 0 {
		t.Fatalf("first update: %v %v", first.Scan.State, p)
	}
	for id, tok := range tokens {
		ts.startWorker(id, tok, filepath.Join(demoClusters, id))
	}
	var last *fleetscanv1.Scan
	updates := 1
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if last != nil && m.Scan.Progress.ClustersDone < last.Progress.ClustersDone {
			t.Errorf("clusters done went back from %d to %d", last.Progress.ClustersDone, m.Scan.Progress.ClustersDone)
		}
		last = m.Scan
		updates++
	}
	if last == nil || last.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
		t.Fatalf("last update %v, want SUCCEEDED before the stream ends", last)
	}
	want := int64(len(expectedFindings(t, "acme-dev", filepath.Join(demoClusters, "acme-dev"))) + len(expectedFindings(t, "globex-prod", filepath.Join(demoClusters, "globex-prod"))))
	if p := last.Progress; p.ClustersDone != 2 || p.Findings != want || p.ObjectsScanned == 0 {
		t.Errorf("final progress %v, want 2 clusters and %d findings", p, want)
	}
	t.Logf("%d updates", updates)

	missing, err := op.ScanService.WatchScan(ctx, &fleetscanv1.WatchScanRequest{ScanId: "01ARZ3NDEKTSV4RRFFQ69G5FAV"})
	if err == nil {
		_, err = missing.Recv()
	}
	if status.Code(err) != codes.NotFound {
		t.Errorf("watch of an unknown scan: %v, want NotFound", err)
	}
}

// TestShutdownEndsWatches: a graceful stop does not wait for watched
// scans to end; the watcher gets Unavailable and can watch again.
func TestShutdownEndsWatches(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	register(t, op, "acme-dev", "acme", nil)
	resp, err := op.ScanService.StartScan(context.Background(), &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{AllClusters: true}})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := op.ScanService.WatchScan(context.Background(), &fleetscanv1.WatchScanRequest{ScanId: resp.Scan.Id})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ts.shutdown()
	if d := time.Since(start); d > time.Second {
		t.Errorf("shutdown with a watcher took %v", d)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("watch at shutdown: %v, want Unavailable", err)
	}
}

// TestSilentWorkerIsDisconnected: a worker that promised heartbeats and
// stops sending anything is cut off within three intervals, and shows as
// disconnected.
func TestSilentWorkerIsDisconnected(t *testing.T) {
	ts := &testServer{t: t, dataDir: t.TempDir(), cfg: func(c *server.Config) { c.Heartbeat = 100 * time.Millisecond }}
	ts.start()
	t.Cleanup(ts.shutdown)
	op := ts.client(ts.operatorToken())
	token := register(t, op, "acme-dev", "acme", nil)
	stream, _, err := ts.connectRaw(context.Background(), "acme-dev", token, "heartbeat", "credential")
	if err != nil {
		t.Fatalf("welcome: %v", err)
	}
	// Cut off by the heartbeat rule (DEADLINE_EXCEEDED, saying why), not
	// by gRPC's keepalive 40 s later (UNAVAILABLE): no clock needed.
	for {
		_, err := stream.Recv()
		if err == nil {
			continue
		}
		if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "silent") {
			t.Errorf("silent worker's stream ended with %v, want DEADLINE_EXCEEDED for its silence", err)
		}
		break
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := op.ClusterService.GetCluster(context.Background(), &fleetscanv1.GetClusterRequest{ClusterId: "acme-dev"})
		if err != nil {
			t.Fatal(err)
		}
		if !resp.Cluster.Worker.Connected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("silent worker still shows as connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// workerCredential exchanges a join token for a worker credential, as a
// current worker does on first connect, and returns the credential.
func workerCredential(t *testing.T, ts *testServer, clusterID, join string) string {
	t.Helper()
	cred := filepath.Join(t.TempDir(), "credential")
	_, stop := ts.runWorker(clusterID, join, cred)
	defer stop()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(cred); err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the worker got no credential for its join token")
	return ""
}
