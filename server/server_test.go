package server_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/fleetscan/fleetscan/client"
	"github.com/fleetscan/fleetscan/internal/pgtest"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server"
	"github.com/fleetscan/fleetscan/worker"
	"github.com/fleetscan/fleetscan/worker/catalog"
	"github.com/fleetscan/fleetscan/worker/checks"
	"github.com/fleetscan/fleetscan/worker/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Wrap(m)) }

// onPostgres: the server's tests run on a PostgreSQL store, a database of
// each test's own, instead of the bbolt file (make test runs them both
// ways: FLEETSCAN_TEST_STORE=postgres).
var onPostgres = os.Getenv("FLEETSCAN_TEST_STORE") == "postgres"

// testServer is a server on an in-process bufconn listener, which can be
// stopped and started again on the same data directory.
type testServer struct {
	t       *testing.T
	dataDir string
	// store is the PostgreSQL database, on onPostgres.
	store string
	// cfg, if set, adjusts the configuration before each start.
	cfg func(*server.Config)
	srv *server.Server

	mu   sync.Mutex
	lis  *bufconn.Listener
	stop context.CancelFunc
	done chan error
}

// rawConn is a gRPC connection to the test server with no client library
// in between, for tests that send what the client never would; it is
// closed with the test.
func (ts *testServer) rawConn() *grpc.ClientConn {
	ts.t.Helper()
	conn, err := grpc.NewClient("passthrough:///bufnet", ts.dial(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(func() { conn.Close() })
	return conn
}

// clock is a clock that tests advance instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	ts := &testServer{t: t, dataDir: t.TempDir()}
	if onPostgres {
		ts.store = pgtest.Shared(t).CreateDatabase(t, "")
	}
	ts.start()
	t.Cleanup(ts.shutdown)
	return ts
}

func (ts *testServer) start() {
	ts.t.Helper()
	lis := bufconn.Listen(1 << 20)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cfg := server.Config{DataDir: ts.dataDir, Store: ts.store, Listener: lis, Plaintext: true, Logger: log, ShutdownTimeout: 2 * time.Second}
	if ts.cfg != nil {
		ts.cfg(&cfg)
	}
	srv, err := server.New(ctx, cfg)
	if err == nil {
		ts.srv = srv
	}
	if err != nil {
		ts.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	ts.mu.Lock()
	ts.lis, ts.stop, ts.done = lis, cancel, done
	ts.mu.Unlock()
}

func (ts *testServer) shutdown() {
	ts.mu.Lock()
	stop, done := ts.stop, ts.done
	ts.stop = nil
	ts.mu.Unlock()
	if stop == nil {
		return
	}
	stop()
	if err := <-done; err != nil {
		ts.t.Errorf("serve: %v", err)
	}
}

// dial reaches whichever listener is current, so clients survive a
// restart.
func (ts *testServer) dial() grpc.DialOption {
	return grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		ts.mu.Lock()
		lis := ts.lis
		ts.mu.Unlock()
		return lis.DialContext(ctx)
	})
}

func (ts *testServer) operatorToken() string {
	b, err := os.ReadFile(filepath.Join(ts.dataDir, server.OperatorTokenFile))
	if err != nil {
		ts.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func (ts *testServer) client(token string) *client.Client {
	ts.t.Helper()
	return ts.clientWith(token)
}

// clientWith is client with more options.
func (ts *testServer) clientWith(token string, more ...client.Option) *client.Client {
	ts.t.Helper()
	opts := append([]client.Option{client.WithPlaintext(), client.WithDialOptions(ts.dial())}, more...)
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	c, err := client.New("passthrough:///bufnet", opts...)
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(func() { c.Close() })
	return c
}

// startWorker runs a worker on a snapshot until the test ends.
func (ts *testServer) startWorker(clusterID, token, snapshot string) (stop func() error) {
	ts.t.Helper()
	return ts.startWorkerOn(clusterID, token, worker.SnapshotSource(snapshot, nil))
}

// startWorkerOn runs a worker reading src until the test ends.
func (ts *testServer) startWorkerOn(clusterID, token string, src worker.Source) (stop func() error) {
	ts.t.Helper()
	w, err := worker.New(worker.Config{
		Server: "passthrough:///bufnet", Token: token, ClusterID: clusterID, Plaintext: true,
		Source:      src,
		BatchSize:   7, // several batches per job
		MinBackoff:  20 * time.Millisecond,
		MaxBackoff:  200 * time.Millisecond,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		DialOptions: []grpc.DialOption{ts.dial()},
	})
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

func register(t *testing.T, c *client.Client, id, tenant string, labels map[string]string) string {
	t.Helper()
	resp, err := c.ClusterService.RegisterCluster(context.Background(), &fleetscanv1.RegisterClusterRequest{ClusterId: id, Tenant: tenant, Labels: labels})
	if err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
	return resp.JoinToken
}

func waitScan(t *testing.T, c *client.Client, id string) *fleetscanv1.Scan {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	scan, err := c.WaitScan(ctx, id, 20*time.Millisecond, nil)
	if err != nil {
		t.Fatalf("wait for scan %s: %v (last state %v)", id, err, scan)
	}
	return scan
}

// scanCluster scans one cluster with spec and waits for the scan to
// succeed.
func scanCluster(t *testing.T, c *client.Client, clusterID string, spec *fleetscanv1.ScanSpec) *fleetscanv1.Scan {
	t.Helper()
	resp, err := c.ScanService.StartScan(context.Background(), &fleetscanv1.StartScanRequest{
		Target: &fleetscanv1.ScanTarget{ClusterIds: []string{clusterID}}, Spec: spec,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := waitScan(t, c, resp.Scan.Id)
	if s.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
		t.Fatalf("scan %v", s)
	}
	return s
}

func allFindings(t *testing.T, c *client.Client, req *fleetscanv1.ListFindingsRequest) []*fleetscanv1.Finding {
	t.Helper()
	var out []*fleetscanv1.Finding
	for f, err := range c.Findings(context.Background(), req) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

func findingLine(clusterID, checkID string, r catalog.Resource) string {
	return strings.TrimSpace(fmt.Sprintf("%s %s %s/%s/%s/%s %s", clusterID, checkID, r.APIVersion, r.Kind, r.Namespace, r.Name, r.SubPath))
}

// expectedFindings runs the check engine directly on a snapshot: the
// findings a fleet scan must store for that cluster, no more, no less.
func expectedFindings(t *testing.T, clusterID, dir string) []string {
	t.Helper()
	inv, err := worker.SnapshotSource(dir, func(p string) { t.Errorf("snapshot problem: %s", p) }).Collect(context.Background(), policy.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	_, err = checks.Run(context.Background(), inv, policy.Selection{}, func(f checks.Finding) error {
		out = append(out, findingLine(clusterID, f.CheckID, f.Resource))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func storedFindings(t *testing.T, c *client.Client, req *fleetscanv1.ListFindingsRequest) []string {
	t.Helper()
	var out []string
	for _, f := range allFindings(t, c, req) {
		r := f.Resource
		out = append(out, findingLine(f.ClusterId, f.CheckId, catalog.Resource{APIVersion: r.ApiVersion, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name, SubPath: r.SubPath}))
	}
	slices.Sort(out)
	return out
}

const demoClusters = "../deploy/demo/clusters"

// TestFleetScanOfDemoClusters scans two demo snapshots through two
// workers and the real server, and checks that exactly the findings of the
// check engine are stored, matching the reviewed golden file.
func TestFleetScanOfDemoClusters(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	clusters := []string{"acme-prod", "globex-prod"}
	for _, id := range clusters {
		token := register(t, op, id, strings.Split(id, "-")[0], nil)
		ts.startWorker(id, token, filepath.Join(demoClusters, id))
	}
	resp, err := op.ScanService.StartScan(context.Background(), &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{AllClusters: true}})
	if err != nil {
		t.Fatal(err)
	}
	scan := waitScan(t, op, resp.Scan.Id)
	if scan.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED || len(scan.Jobs) != 2 {
		t.Fatalf("scan ended %v with %d jobs: %v", scan.State, len(scan.Jobs), scan.Jobs)
	}

	var want []string
	for _, id := range clusters {
		want = append(want, expectedFindings(t, id, filepath.Join(demoClusters, id))...)
	}
	slices.Sort(want)
	got := storedFindings(t, op, &fleetscanv1.ListFindingsRequest{PageSize: 13})
	if !slices.Equal(got, want) {
		t.Errorf("stored findings differ from the engine's:\n%s", diffLines(got, want))
	}
	var total int64
	for _, j := range scan.Jobs {
		c := j.Findings
		total += c.Critical + c.High + c.Medium + c.Low + c.Info
	}
	if total != int64(len(want)) {
		t.Errorf("scan summary counts %d findings, %d stored", total, len(want))
	}
	golden(t, "testdata/fleet_scan.golden", strings.Join(got, "\n")+"\n")

	// Filters narrow the same set.
	for _, f := range allFindings(t, op, &fleetscanv1.ListFindingsRequest{ClusterId: "globex-prod", MinSeverity: fleetscanv1.Severity_SEVERITY_HIGH}) {
		if f.ClusterId != "globex-prod" || f.Severity < fleetscanv1.Severity_SEVERITY_HIGH || f.Title == "" || f.Remediation == "" || len(f.Fingerprint) != 32 {
			t.Errorf("filtered finding out of filter or incomplete: %v", f)
		}
	}

	// A rescan of unchanged clusters resolves nothing and keeps first-seen.
	first := allFindings(t, op, &fleetscanv1.ListFindingsRequest{})
	resp, err = op.ScanService.StartScan(context.Background(), &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{ClusterIds: clusters}})
	if err != nil {
		t.Fatal(err)
	}
	waitScan(t, op, resp.Scan.Id)
	if got := storedFindings(t, op, &fleetscanv1.ListFindingsRequest{}); !slices.Equal(got, want) {
		t.Errorf("findings changed on an unchanged rescan:\n%s", diffLines(got, want))
	}
	if resolved := allFindings(t, op, &fleetscanv1.ListFindingsRequest{Status: fleetscanv1.FindingStatus_FINDING_STATUS_RESOLVED}); len(resolved) != 0 {
		t.Errorf("%d findings resolved by an unchanged rescan", len(resolved))
	}
	second := allFindings(t, op, &fleetscanv1.ListFindingsRequest{})
	for i := range first {
		if !first[i].FirstSeenTime.AsTime().Equal(second[i].FirstSeenTime.AsTime()) || second[i].LastScanId != resp.Scan.Id {
			t.Errorf("%s: first seen %v → %v, last scan %s (want %s)", first[i].Fingerprint, first[i].FirstSeenTime.AsTime(), second[i].FirstSeenTime.AsTime(), second[i].LastScanId, resp.Scan.Id)
			break
		}
	}
}

func diffLines(got, want []string) string {
	var b strings.Builder
	for _, l := range want {
		if !slices.Contains(got, l) {
			fmt.Fprintf(&b, "  missing: %s\n", l)
		}
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			fmt.Fprintf(&b, "  extra:   %s\n", l)
		}
	}
	return b.String()
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s is stale; review the change and run go test -update:\n%s", path, diffLines(strings.Split(got, "\n"), strings.Split(string(want), "\n")))
	}
}

// TestWorkerSurvivesServerRestart stops the server under a connected
// worker, starts it again on the same data, and scans: the worker must
// have reconnected by itself.
func TestWorkerSurvivesServerRestart(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	token := register(t, op, "acme-prod", "acme", nil)
	ts.startWorker("acme-prod", token, filepath.Join(demoClusters, "acme-prod"))
	waitConnected(t, op, "acme-prod")

	start := time.Now()
	ts.shutdown()
	if d := time.Since(start); d > time.Second {
		t.Errorf("shutdown with a connected worker took %v: streams should be ended, not waited for", d)
	}
	ts.start()
	waitConnected(t, op, "acme-prod")
	resp, err := op.ScanService.StartScan(context.Background(), &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{ClusterIds: []string{"acme-prod"}}})
	if err != nil {
		t.Fatal(err)
	}
	if scan := waitScan(t, op, resp.Scan.Id); scan.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
		t.Fatalf("scan after restart: %v", scan)
	}
}

// TestScanWaitsForWorker starts a scan before the worker connects: the job
// waits, then runs when the worker arrives.
func TestScanWaitsForWorker(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	token := register(t, op, "acme-dev", "acme", nil)
	resp, err := op.ScanService.StartScan(context.Background(), &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{AllClusters: true}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Scan.State != fleetscanv1.ScanState_SCAN_STATE_PENDING {
		t.Fatalf("scan without a worker: %v, want PENDING", resp.Scan.State)
	}
	ts.startWorker("acme-dev", token, filepath.Join(demoClusters, "acme-dev"))
	if scan := waitScan(t, op, resp.Scan.Id); scan.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
		t.Fatalf("scan: %v", scan)
	}
}

func waitConnected(t *testing.T, c *client.Client, id string) {
	t.Helper()
	waitWorker(t, c, id, true)
}

func waitDisconnected(t *testing.T, c *client.Client, id string) {
	t.Helper()
	waitWorker(t, c, id, false)
}

// waitWorker waits until the cluster's worker shows connected, or not.
func waitWorker(t *testing.T, c *client.Client, id string, connected bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := c.ClusterService.GetCluster(context.Background(), &fleetscanv1.GetClusterRequest{ClusterId: id})
		if err == nil && resp.Cluster.Worker.GetConnected() == connected {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("worker of %s: connected is not %v after 10 s", id, connected)
}

// TestWorkerBoundToItsCluster: a worker token speaks for one cluster only;
// the worker gives up at once instead of retrying a refused credential.
func TestWorkerBoundToItsCluster(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	token := register(t, op, "acme-prod", "acme", nil)
	register(t, op, "globex-prod", "globex", nil)
	w, err := worker.New(worker.Config{
		Server: "passthrough:///bufnet", Token: token, ClusterID: "globex-prod", Plaintext: true,
		Source: worker.SnapshotSource(filepath.Join(demoClusters, "globex-prod"), nil),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DialOptions: []grpc.DialOption{ts.dial()},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = w.Run(ctx)
	if status.Code(errors.Unwrap(err)) != codes.PermissionDenied || !strings.Contains(err.Error(), "acme-prod") {
		t.Errorf("worker with another cluster's token: got %v, want PermissionDenied naming acme-prod", err)
	}
	resp, err := op.ClusterService.GetCluster(context.Background(), &fleetscanv1.GetClusterRequest{ClusterId: "globex-prod"})
	if err != nil || resp.Cluster.Worker.LastSeenTime != nil {
		t.Errorf("globex-prod shows a worker: %v %v", resp, err)
	}
}

func TestAuthentication(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	workerToken := register(t, op, "acme-prod", "acme", nil)
	ctx := context.Background()
	tests := []struct {
		name  string
		token string
		want  codes.Code
	}{
		{"no token", "", codes.Unauthenticated},
		{"unknown token", "fsa_not-a-real-token", codes.Unauthenticated},
		{"worker token on the operator API", workerToken, codes.PermissionDenied},
		{"operator token", ts.operatorToken(), codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ts.client(tt.token).ClusterService.ListClusters(ctx, &fleetscanv1.ListClustersRequest{})
			if got := status.Code(err); got != tt.want {
				t.Errorf("ListClusters: got %v (%v), want %v", got, err, tt.want)
			}
		})
	}
	t.Run("health is public", func(t *testing.T) {
		conn, err := grpc.NewClient("passthrough:///bufnet", ts.dial(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health: %v %v", resp, err)
		}
	})
}

func TestValidationAndErrors(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	ctx := context.Background()
	register(t, op, "acme-prod", "acme", nil)

	tests := []struct {
		name     string
		call     func() error
		want     codes.Code
		mentions string
	}{
		{"cluster id not a DNS label", func() error {
			_, err := op.ClusterService.RegisterCluster(ctx, &fleetscanv1.RegisterClusterRequest{ClusterId: "Prod_EU", Tenant: "acme"})
			return err
		}, codes.InvalidArgument, "cluster_id"},
		{"tenant not a DNS label", func() error {
			_, err := op.ClusterService.RegisterCluster(ctx, &fleetscanv1.RegisterClusterRequest{ClusterId: "x", Tenant: "Acme Corp"})
			return err
		}, codes.InvalidArgument, "tenant"},
		{"grant to the owner", func() error {
			_, err := op.ClusterService.RegisterCluster(ctx, &fleetscanv1.RegisterClusterRequest{ClusterId: "x", Tenant: "acme",
				NamespaceGrants: []*fleetscanv1.NamespaceGrant{{Tenant: "acme", Namespaces: []string{"shop"}}}})
			return err
		}, codes.InvalidArgument, "namespace_grants"},
		{"update without a mask", func() error {
			_, err := op.ClusterService.UpdateCluster(ctx, &fleetscanv1.UpdateClusterRequest{Cluster: &fleetscanv1.Cluster{Id: "x"}})
			return err
		}, codes.InvalidArgument, "update_mask"},
		{"bad label", func() error {
			_, err := op.ClusterService.RegisterCluster(ctx, &fleetscanv1.RegisterClusterRequest{ClusterId: "x", Tenant: "t", Labels: map[string]string{"a b": "c"}})
			return err
		}, codes.InvalidArgument, "labels"},
		{"duplicate cluster", func() error {
			_, err := op.ClusterService.RegisterCluster(ctx, &fleetscanv1.RegisterClusterRequest{ClusterId: "acme-prod", Tenant: "acme"})
			return err
		}, codes.AlreadyExists, "acme-prod"},
		{"unknown cluster", func() error {
			_, err := op.ClusterService.GetCluster(ctx, &fleetscanv1.GetClusterRequest{ClusterId: "nope"})
			return err
		}, codes.NotFound, "nope"},
		{"scan with two targets", func() error {
			_, err := op.ScanService.StartScan(ctx, &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{AllClusters: true, Tenant: "acme"}})
			return err
		}, codes.InvalidArgument, "exactly one"},
		{"scan with a bad selector", func() error {
			_, err := op.ScanService.StartScan(ctx, &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{LabelSelector: "env in prod"}})
			return err
		}, codes.InvalidArgument, "label_selector"},
		{"scan without target", func() error {
			_, err := op.ScanService.StartScan(ctx, &fleetscanv1.StartScanRequest{})
			return err
		}, codes.InvalidArgument, "target"},
		{"scan of an unknown cluster", func() error {
			_, err := op.ScanService.StartScan(ctx, &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{ClusterIds: []string{"nope"}}})
			return err
		}, codes.NotFound, "nope"},
		{"scan with an unknown check", func() error {
			_, err := op.ScanService.StartScan(ctx, &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{AllClusters: true}, Spec: &fleetscanv1.ScanSpec{IncludeChecks: []string{"POD-999"}}})
			return err
		}, codes.InvalidArgument, "POD-999"},
		{"malformed scan id", func() error {
			_, err := op.ScanService.GetScan(ctx, &fleetscanv1.GetScanRequest{ScanId: "xyz"})
			return err
		}, codes.InvalidArgument, "scan_id"},
		{"findings of an unknown check", func() error {
			_, err := op.FindingService.ListFindings(ctx, &fleetscanv1.ListFindingsRequest{CheckId: "no such check"})
			return err
		}, codes.InvalidArgument, "check_id"},
		{"garbage page token", func() error {
			_, err := op.FindingService.ListFindings(ctx, &fleetscanv1.ListFindingsRequest{PageToken: "!!"})
			return err
		}, codes.InvalidArgument, "page_token"},
		{"negative page size", func() error {
			_, err := op.ClusterService.ListClusters(ctx, &fleetscanv1.ListClustersRequest{PageSize: -1})
			return err
		}, codes.InvalidArgument, "page_size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if got := status.Code(err); got != tt.want || !strings.Contains(err.Error(), tt.mentions) {
				t.Errorf("got %v %q, want %v mentioning %q", got, err, tt.want, tt.mentions)
			}
		})
	}
}

func TestPagination(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	ctx := context.Background()
	var want []string
	for i := range 7 {
		id := fmt.Sprintf("c%02d", i)
		register(t, op, id, "acme", nil)
		want = append(want, id)
	}
	var got []string
	token := ""
	for {
		resp, err := op.ClusterService.ListClusters(ctx, &fleetscanv1.ListClustersRequest{PageSize: 3, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Clusters) > 3 {
			t.Fatalf("page of %d clusters, asked for 3", len(resp.Clusters))
		}
		for _, c := range resp.Clusters {
			got = append(got, c.Id)
		}
		if resp.NextPageToken == "" {
			break
		}
		token = resp.NextPageToken
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged clusters %v, want %v", got, want)
	}

	// A findings page token is bound to its filters.
	token2 := register(t, op, "acme-prod", "acme", nil)
	ts.startWorker("acme-prod", token2, filepath.Join(demoClusters, "acme-prod"))
	resp, err := op.ScanService.StartScan(ctx, &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{ClusterIds: []string{"acme-prod"}}})
	if err != nil {
		t.Fatal(err)
	}
	waitScan(t, op, resp.Scan.Id)
	page, err := op.FindingService.ListFindings(ctx, &fleetscanv1.ListFindingsRequest{PageSize: 2})
	if err != nil || page.NextPageToken == "" {
		t.Fatalf("first page: %v %v", page, err)
	}
	_, err = op.FindingService.ListFindings(ctx, &fleetscanv1.ListFindingsRequest{PageSize: 2, PageToken: page.NextPageToken, CheckId: "POD-001"})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("page token reused with another filter: got %v, want InvalidArgument", err)
	}
}

// TestCustomChecksTravelWithScan: a CEL policy given to StartScan runs on
// the worker and its findings are stored like the built-in ones; a policy
// that does not compile is refused with its position.
func TestCustomChecksTravelWithScan(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	ctx := context.Background()
	token := register(t, op, "globex-prod", "globex", nil)
	ts.startWorker("globex-prod", token, filepath.Join(demoClusters, "globex-prod"))
	policies, err := policy.LoadPolicies("../deploy/examples/policies/team-label.yaml")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := op.ScanService.StartScan(ctx, &fleetscanv1.StartScanRequest{
		Target: &fleetscanv1.ScanTarget{AllClusters: true},
		Spec:   &fleetscanv1.ScanSpec{IncludeChecks: []string{"ORG-TEAM-LABEL"}, CustomChecks: policies},
	})
	if err != nil {
		t.Fatal(err)
	}
	if scan := waitScan(t, op, resp.Scan.Id); scan.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
		t.Fatalf("scan: %v", scan)
	}
	got := allFindings(t, op, &fleetscanv1.ListFindingsRequest{CheckId: "ORG-TEAM-LABEL"})
	inv, err := worker.SnapshotSource(filepath.Join(demoClusters, "globex-prod"), nil).Collect(ctx, policy.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	if _, err := checks.Run(ctx, inv, policy.Selection{Include: []string{"ORG-TEAM-LABEL"}, Custom: policies}, func(checks.Finding) error { want++; return nil }); err != nil {
		t.Fatal(err)
	}
	if want == 0 || len(got) != want {
		t.Errorf("stored %d ORG-TEAM-LABEL findings, the engine finds %d", len(got), want)
	}

	broken := proto.CloneOf(policies[0])
	broken.Expression = "has(object.metadata.labels) &&"
	_, err = op.ScanService.StartScan(ctx, &fleetscanv1.StartScanRequest{
		Target: &fleetscanv1.ScanTarget{AllClusters: true},
		Spec:   &fleetscanv1.ScanSpec{CustomChecks: []*fleetscanv1.CustomCheck{broken}},
	})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "expression:1:") {
		t.Errorf("broken policy: got %v, want InvalidArgument with the error's position", err)
	}
}

const privilegedTmpl = `apiVersion: apps/v1
kind: Deployment
metadata: {name: %s, namespace: shop}
spec:
  selector: {matchLabels: {app: %s}}
  template:
    metadata: {labels: {app: %s}}
    spec:
      containers: [{name: app, image: "app:1.0", securityContext: {privileged: %t}}]
`

func writeShop(t *testing.T, dir string, privileged map[string]bool) {
	t.Helper()
	var b strings.Builder
	for _, name := range []string{"a", "b", "c"} {
		fmt.Fprintf(&b, "---\n"+privilegedTmpl, name, name, name, privileged[name])
	}
	if err := os.WriteFile(filepath.Join(dir, "shop.yaml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHistory scans a cluster three times, fixing two problems and
// introducing one in between, and reads the history back: the diff, a
// finding's sightings, the trend, the comparison and the summary.
func TestHistory(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	ctx := context.Background()
	dir := t.TempDir()
	writeShop(t, dir, map[string]bool{"a": true, "b": true})
	token := register(t, op, "shop", "acme", map[string]string{"env": "prod"})
	register(t, op, "idle", "acme", map[string]string{"env": "dev"})
	ts.startWorker("shop", token, dir)
	scan := func() string {
		t.Helper()
		resp, err := op.ScanService.StartScan(ctx, &fleetscanv1.StartScanRequest{
			Target: &fleetscanv1.ScanTarget{ClusterIds: []string{"shop"}},
			Spec:   &fleetscanv1.ScanSpec{IncludeChecks: []string{"POD-001"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if s := waitScan(t, op, resp.Scan.Id); s.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
			t.Fatalf("scan %v", s)
		}
		return resp.Scan.Id
	}
	s1 := scan()
	writeShop(t, dir, map[string]bool{"c": true})
	s2 := scan()
	s3 := scan()

	names := func(fs []*fleetscanv1.Finding) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Resource.Name)
		}
		slices.Sort(out)
		return out
	}
	d, err := op.FindingService.DiffScans(ctx, &fleetscanv1.DiffScansRequest{BaseScanId: s1, HeadScanId: s2})
	if err != nil {
		t.Fatal(err)
	}
	if d.ClusterId != "shop" || fmt.Sprint(names(d.New)) != "[c]" || fmt.Sprint(names(d.Resolved)) != "[a b]" || d.UnchangedCount != 0 {
		t.Errorf("diff s1→s2: cluster %s new %v resolved %v unchanged %d; want shop [c] [a b] 0", d.ClusterId, names(d.New), names(d.Resolved), d.UnchangedCount)
	}
	d, err = op.FindingService.DiffScans(ctx, &fleetscanv1.DiffScansRequest{BaseScanId: s2, HeadScanId: s3, ClusterId: "shop"})
	if err != nil || len(d.New)+len(d.Resolved) != 0 || d.UnchangedCount != 1 {
		t.Errorf("diff s2→s3 of an unchanged cluster: %v %v", d, err)
	}
	if resolved := d.GetResolved(); resolved != nil && resolved[0].Status != fleetscanv1.FindingStatus_FINDING_STATUS_RESOLVED {
		t.Errorf("resolved finding in status %v", resolved[0].Status)
	}

	open := allFindings(t, op, &fleetscanv1.ListFindingsRequest{ClusterId: "shop"})
	if len(open) != 1 || open[0].Resource.Name != "c" || open[0].LastScanId != s3 {
		t.Fatalf("open findings %v, want c last seen by %s", open, s3)
	}
	got, err := op.FindingService.GetFinding(ctx, &fleetscanv1.GetFindingRequest{ClusterId: "shop", Fingerprint: open[0].Fingerprint})
	if err != nil {
		t.Fatal(err)
	}
	var seenBy []string
	for _, s := range got.Sightings {
		seenBy = append(seenBy, s.ScanId)
	}
	if got.SightingsTotal != 2 || fmt.Sprint(seenBy) != fmt.Sprint([]string{s3, s2}) {
		t.Errorf("sightings of c: %v (total %d), want [%s %s]", seenBy, got.SightingsTotal, s3, s2)
	}
	resolved := allFindings(t, op, &fleetscanv1.ListFindingsRequest{ClusterId: "shop", Status: fleetscanv1.FindingStatus_FINDING_STATUS_RESOLVED})
	if len(resolved) != 2 || resolved[0].LastScanId != s1 || resolved[0].ResolvedTime == nil {
		t.Errorf("resolved: %v, want a and b last seen by %s", resolved, s1)
	}
	if _, err := op.FindingService.GetFinding(ctx, &fleetscanv1.GetFindingRequest{ClusterId: "idle", Fingerprint: open[0].Fingerprint}); status.Code(err) != codes.NotFound {
		t.Errorf("finding looked up in the wrong cluster: %v, want NotFound", err)
	}

	trend, err := op.FindingService.GetTrend(ctx, &fleetscanv1.GetTrendRequest{Scope: &fleetscanv1.Scope{Scope: &fleetscanv1.Scope_ClusterId{ClusterId: "shop"}}})
	if err != nil {
		t.Fatal(err)
	}
	last := trend.Points[len(trend.Points)-1]
	if len(trend.Points) < 30 || last.Counts.Critical != 1 || last.Clusters != 1 || last.GetScore() != 37 {
		t.Errorf("trend: %d points, last %v; want ≥30 and 1 critical on 1 cluster of 3 objects, score 37", len(trend.Points), last)
	}

	cmp, err := op.FindingService.CompareClusters(ctx, &fleetscanv1.CompareClustersRequest{LabelSelector: "env in (prod,dev)"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cmp.Clusters) != 2 || cmp.Clusters[0].ClusterId != "shop" || cmp.Clusters[1].ScanTime != nil ||
		len(cmp.Checks) != 1 || cmp.Checks[0].CheckId != "POD-001" || cmp.Checks[0].Counts[0] != 1 {
		t.Errorf("compare: %v", cmp)
	}
	if _, err := op.FindingService.CompareClusters(ctx, &fleetscanv1.CompareClustersRequest{LabelSelector: "env in prod"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad selector: %v", err)
	}
	sum, err := op.FindingService.GetSummary(ctx, &fleetscanv1.GetSummaryRequest{Scope: &fleetscanv1.Scope{Scope: &fleetscanv1.Scope_Tenant{Tenant: "acme"}}})
	if err != nil || sum.Clusters != 2 || sum.ClustersScanned != 1 || sum.Counts.Critical != 1 || sum.TopChecks[0].CheckId != "POD-001" {
		t.Errorf("summary: %v %v", sum, err)
	}
	if _, err := op.FindingService.GetSummary(ctx, &fleetscanv1.GetSummaryRequest{Scope: &fleetscanv1.Scope{Scope: &fleetscanv1.Scope_Tenant{Tenant: "nobody"}}}); status.Code(err) != codes.NotFound {
		t.Errorf("summary of an unknown tenant: %v", err)
	}
}

// TestScanTargets: a scan covers exactly the clusters its target selects.
func TestScanTargets(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	ctx := context.Background()
	register(t, op, "acme-prod", "acme", map[string]string{"env": "prod", "region": "eu"})
	register(t, op, "acme-dev", "acme", map[string]string{"env": "dev", "region": "eu"})
	register(t, op, "globex-prod", "globex", map[string]string{"env": "prod", "region": "us"})
	for _, tt := range []struct {
		target *fleetscanv1.ScanTarget
		want   []string
	}{
		{&fleetscanv1.ScanTarget{AllClusters: true}, []string{"acme-dev", "acme-prod", "globex-prod"}},
		{&fleetscanv1.ScanTarget{LabelSelector: "env=prod"}, []string{"acme-prod", "globex-prod"}},
		{&fleetscanv1.ScanTarget{LabelSelector: "env=prod,region notin (us)"}, []string{"acme-prod"}},
		{&fleetscanv1.ScanTarget{Tenant: "acme"}, []string{"acme-dev", "acme-prod"}},
		{&fleetscanv1.ScanTarget{ClusterIds: []string{"globex-prod", "acme-dev", "globex-prod"}}, []string{"acme-dev", "globex-prod"}},
	} {
		resp, err := op.ScanService.StartScan(ctx, &fleetscanv1.StartScanRequest{Target: tt.target})
		if err != nil {
			t.Fatalf("%v: %v", tt.target, err)
		}
		var got []string
		for _, j := range resp.Scan.Jobs {
			got = append(got, j.ClusterId)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%v: jobs for %v, want %v", tt.target, got, tt.want)
		}
	}
}

// TestLongQueue: a worker that connects to many queued scans runs them
// all, one job at a time, without its stream wedging.
func TestLongQueue(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	ctx := context.Background()
	token := register(t, op, "acme-prod", "acme", nil)
	var ids []string
	for range 80 {
		resp, err := op.ScanService.StartScan(ctx, &fleetscanv1.StartScanRequest{
			Target: &fleetscanv1.ScanTarget{AllClusters: true}, Spec: &fleetscanv1.ScanSpec{IncludeChecks: []string{"POD-001"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.Scan.Id)
	}
	ts.startWorker("acme-prod", token, filepath.Join(demoClusters, "acme-prod"))
	for _, id := range ids {
		if s := waitScan(t, op, id); s.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
			t.Fatalf("scan %s: %v", id, s.State)
		}
	}
}

// blockingSource stands for a cluster whose collection never finishes: it
// reports when the worker stops it.
type blockingSource struct{ stopped chan struct{} }

func (b *blockingSource) Collect(ctx context.Context, _ policy.Selection) (*checks.Inventory, error) {
	<-ctx.Done()
	close(b.stopped)
	return nil, ctx.Err()
}

func (b *blockingSource) KubernetesVersion(context.Context) (string, error) { return "v1.37.2", nil }

func startBlockingWorker(t *testing.T, ts *testServer, clusterID, token string) *blockingSource {
	t.Helper()
	src := &blockingSource{stopped: make(chan struct{})}
	w, err := worker.New(worker.Config{
		Server: "passthrough:///bufnet", Token: token, ClusterID: clusterID, Plaintext: true, Source: src,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DialOptions: []grpc.DialOption{ts.dial()},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return src
}

func waitStopped(t *testing.T, src *blockingSource) {
	t.Helper()
	// A bound to fail rather than hang, not a budget: CI shares two
	// cores with other packages' tests.
	select {
	case <-src.stopped:
	case <-time.After(2 * time.Minute):
		t.Fatal("the worker was not told to stop the job")
	}
}

// TestCancelScan: cancelling a scan stops the job its worker is running.
func TestCancelScan(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	ctx := context.Background()
	src := startBlockingWorker(t, ts, "slow", register(t, op, "slow", "acme", nil))
	resp, err := op.ScanService.StartScan(ctx, &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{AllClusters: true}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for { // until the worker has the job
		got, err := op.ScanService.GetScan(ctx, &fleetscanv1.GetScanRequest{ScanId: resp.Scan.Id})
		if err != nil {
			t.Fatal(err)
		}
		if st := got.Scan.Jobs[0].State; st == fleetscanv1.JobState_JOB_STATE_DISPATCHED || st == fleetscanv1.JobState_JOB_STATE_RUNNING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job was not dispatched: %v", got.Scan.Jobs[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancelled, err := op.ScanService.CancelScan(ctx, &fleetscanv1.CancelScanRequest{ScanId: resp.Scan.Id})
	if err != nil {
		t.Fatal(err)
	}
	if cancelled.Scan.State != fleetscanv1.ScanState_SCAN_STATE_CANCELLED || cancelled.Scan.Jobs[0].State != fleetscanv1.JobState_JOB_STATE_CANCELLED {
		t.Errorf("after CancelScan: %v", cancelled.Scan)
	}
	waitStopped(t, src)
	if _, err := op.ScanService.CancelScan(ctx, &fleetscanv1.CancelScanRequest{ScanId: "nope"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("cancel of a malformed id: %v", err)
	}
}

// TestJobTimeout: a job that runs past the job timeout ends TIMED_OUT and
// its worker is told to stop; a job nobody picks up expires.
func TestJobTimeout(t *testing.T) {
	ts := &testServer{t: t, dataDir: t.TempDir()}
	ts.cfg = func(c *server.Config) {
		c.JobTimeout, c.JobExpiry, c.Tick = 300*time.Millisecond, 300*time.Millisecond, 50*time.Millisecond
	}
	ts.start()
	t.Cleanup(ts.shutdown)
	op := ts.client(ts.operatorToken())
	ctx := context.Background()
	src := startBlockingWorker(t, ts, "slow", register(t, op, "slow", "acme", nil))
	register(t, op, "gone", "acme", nil)
	resp, err := op.ScanService.StartScan(ctx, &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{AllClusters: true}})
	if err != nil {
		t.Fatal(err)
	}
	scan := waitScan(t, op, resp.Scan.Id)
	states := map[string]fleetscanv1.JobState{}
	for _, j := range scan.Jobs {
		states[j.ClusterId] = j.State
	}
	if states["slow"] != fleetscanv1.JobState_JOB_STATE_TIMED_OUT || states["gone"] != fleetscanv1.JobState_JOB_STATE_EXPIRED || scan.State != fleetscanv1.ScanState_SCAN_STATE_FAILED {
		t.Errorf("jobs %v, scan %v; want slow TIMED_OUT, gone EXPIRED, scan FAILED", states, scan.State)
	}
	waitStopped(t, src)
}

// TestDevTLS: --dev-tls serves TLS with a certificate its own CA signed;
// a client that trusts the CA connects, others do not.
func TestDevTLS(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Config{DataDir: dir, Listen: "127.0.0.1:0", DevTLS: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	token, err := os.ReadFile(filepath.Join(dir, server.OperatorTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	call := func(opts ...client.Option) error {
		c, err := client.New(srv.Addr().String(), append(opts, client.WithToken(strings.TrimSpace(string(token))))...)
		if err != nil {
			return err
		}
		defer c.Close()
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		defer ccancel()
		_, err = c.ClusterService.ListClusters(cctx, &fleetscanv1.ListClustersRequest{})
		return err
	}
	if err := call(client.WithCAFile(filepath.Join(dir, "tls", "ca.crt"))); err != nil {
		t.Errorf("client trusting the development CA: %v", err)
	}
	if err := call(); status.Code(err) != codes.Unavailable {
		t.Errorf("client trusting only the system roots: %v, want Unavailable", err)
	}
	if err := call(client.WithPlaintext()); err == nil {
		t.Error("a plaintext client reached a TLS server")
	}
}

// TestFleetWideJobLimit: with one slot for the whole fleet, a second
// cluster's job waits until the first ends, then runs.
func TestFleetWideJobLimit(t *testing.T) {
	ts := &testServer{t: t, dataDir: t.TempDir()}
	ts.cfg = func(c *server.Config) { c.MaxRunningJobs, c.MetricsListen = 1, "127.0.0.1:0" }
	ts.start()
	t.Cleanup(ts.shutdown)
	op := ts.client(ts.operatorToken())
	ctx := context.Background()
	slowA := startBlockingWorker(t, ts, "a", register(t, op, "a", "acme", nil))
	slowB := startBlockingWorker(t, ts, "b", register(t, op, "b", "acme", nil))
	waitConnected(t, op, "a")
	waitConnected(t, op, "b")
	startScan := func(id string) string {
		resp, err := op.ScanService.StartScan(ctx, &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{ClusterIds: []string{id}}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Scan.Id
	}
	state := func(scanID string) fleetscanv1.JobState {
		got, err := op.ScanService.GetScan(ctx, &fleetscanv1.GetScanRequest{ScanId: scanID})
		if err != nil {
			t.Fatal(err)
		}
		return got.Scan.Jobs[0].State
	}
	waitState := func(scanID string, want fleetscanv1.JobState) {
		deadline := time.Now().Add(10 * time.Second)
		for state(scanID) != want {
			if time.Now().After(deadline) {
				t.Fatalf("job of scan %s is %v, want %v", scanID, state(scanID), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	first := startScan("a")
	waitState(first, fleetscanv1.JobState_JOB_STATE_DISPATCHED)
	second := startScan("b")
	// The event: b's worker asked for the slot and was put in line.
	for !strings.Contains(metricsOf(t, ts), "\nfleetscan_jobs_waiting 1\n") {
		time.Sleep(10 * time.Millisecond) // polling; no time limit
	}
	if got := state(second); got != fleetscanv1.JobState_JOB_STATE_PENDING {
		t.Fatalf("second cluster's job is %v while the only slot is taken, want PENDING", got)
	}
	if _, err := op.ScanService.CancelScan(ctx, &fleetscanv1.CancelScanRequest{ScanId: first}); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, slowA)
	waitState(second, fleetscanv1.JobState_JOB_STATE_DISPATCHED)
	if _, err := op.ScanService.CancelScan(ctx, &fleetscanv1.CancelScanRequest{ScanId: second}); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, slowB)
}

// metricsOf returns the server's /metrics page.
func metricsOf(t *testing.T, ts *testServer) string {
	t.Helper()
	r, err := http.Get("http://" + ts.srv.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMetrics: after a scan, /metrics on the separate listener counts the
// worker, the findings ingested, the job and the API calls.
func TestMetrics(t *testing.T) {
	ts := &testServer{t: t, dataDir: t.TempDir()}
	ts.cfg = func(c *server.Config) { c.MetricsListen, c.Pprof = "127.0.0.1:0", true }
	ts.start()
	t.Cleanup(ts.shutdown)
	op := ts.client(ts.operatorToken())
	ts.startWorker("acme-prod", register(t, op, "acme-prod", "acme", nil), filepath.Join(demoClusters, "acme-prod"))
	waitConnected(t, op, "acme-prod")
	resp, err := op.ScanService.StartScan(context.Background(), &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{AllClusters: true}})
	if err != nil {
		t.Fatal(err)
	}
	scan := waitScan(t, op, resp.Scan.Id)
	c := scan.Jobs[0].Findings
	stored := c.Critical + c.High + c.Medium + c.Low + c.Info + c.Suppressed
	get := func(path string) string {
		r, err := http.Get("http://" + ts.srv.MetricsAddr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, r.Status)
		}
		return string(b)
	}
	body := get("/metrics")
	for _, want := range []string{
		"fleetscan_workers_connected 1",
		fmt.Sprintf("fleetscan_findings_ingested_total %d", stored),
		`fleetscan_jobs_ended_total{state="succeeded"} 1`,
		"fleetscan_job_duration_seconds_count 1",
		`fleetscan_rpc_duration_seconds_count{code="OK",method="/fleetscan.v1.ScanService/StartScan"} 1`,
		"fleetscan_store_bytes",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.Contains(get("/debug/pprof/"), "goroutine") {
		t.Error("pprof index missing")
	}
}
