package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/worker"
)

// runWorker runs a worker until it stops by itself or the test ends, and
// returns a channel with Run's result.
func (ts *testServer) runWorker(clusterID, token, credFile string) (done <-chan error, stop func()) {
	ts.t.Helper()
	w, err := worker.New(worker.Config{
		Server: "passthrough:///bufnet", Token: token, CredentialFile: credFile, ClusterID: clusterID, Plaintext: true,
		Source:     worker.SnapshotSource(filepath.Join(demoClusters, "acme-dev"), nil),
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Logger: testLogger(), DialOptions: []grpc.DialOption{ts.dial()},
	})
	if err != nil {
		ts.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch, fin := make(chan error, 1), make(chan struct{})
	go func() { ch <- w.Run(ctx); close(fin) }()
	ts.t.Cleanup(func() { cancel(); <-fin })
	return ch, cancel
}

// waitCredential waits until the worker has kept a credential other
// than old in path, and returns it.
func waitCredential(t *testing.T, path, old string) []byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if len(b) > 0 && string(b) != old {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new credential in %s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func refusedWithin(t *testing.T, what string, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("%s: stopped without an error", what)
		}
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still running; want it refused", what)
	}
	return nil
}

// TestJoinTokenIsSingleUse: the join token is exchanged for the worker's
// own credential on first connect; a second use of it (a stolen copy) is
// refused; the worker restarts on its kept credential; a rotation revokes
// that credential and disconnects the worker, and a new join token works.
func TestJoinTokenIsSingleUse(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	ctx := context.Background()
	join := register(t, op, "acme-dev", "acme", nil)
	if !strings.HasPrefix(join, "fsj_") {
		t.Fatalf("join token %q lacks its prefix", join[:4])
	}
	dir := t.TempDir()
	cred := filepath.Join(dir, "credential")

	_, stop := ts.runWorker("acme-dev", join, cred)
	// The server shows the worker connected before its Welcome, with the
	// credential, reaches the worker: wait for the file, not for that.
	kept := waitCredential(t, cred, "")
	if !strings.HasPrefix(string(kept), "fsw_") {
		t.Fatalf("credential file: %q", kept)
	}
	if info, _ := os.Stat(cred); info.Mode().Perm() != 0o600 {
		t.Errorf("credential file mode %v, want 0600", info.Mode().Perm())
	}
	// The worker's receipt, sent once it has kept the credential, spends
	// the join token.
	ts.waitJoinSpent("acme-dev", join)
	stop()

	thief, _ := ts.runWorker("acme-dev", join, filepath.Join(dir, "thief"))
	if err := refusedWithin(t, "second use of the join token", thief); !strings.Contains(err.Error(), "refused") {
		t.Errorf("second use of the join token: %v", err)
	}

	// The same worker restarts: its kept credential wins over the spent join token.
	_, stop = ts.runWorker("acme-dev", join, cred)
	resp, err := op.ScanService.StartScan(ctx, &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{ClusterIds: []string{"acme-dev"}}})
	if err != nil {
		t.Fatal(err)
	}
	if scan := waitScan(t, op, resp.Scan.Id); scan.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
		t.Fatalf("scan after a restart on the kept credential: %v", scan.State)
	}
	stop()

	running, _ := ts.runWorker("acme-dev", join, cred)
	waitConnected(t, op, "acme-dev")
	rot, err := op.ClusterService.RotateClusterToken(ctx, &fleetscanv1.RotateClusterTokenRequest{ClusterId: "acme-dev"})
	if err != nil {
		t.Fatal(err)
	}
	if rot.Revoked < 1 {
		t.Errorf("rotation revoked %d credentials", rot.Revoked)
	}
	if err := refusedWithin(t, "worker after a rotation", running); status.Code(err) != codes.Unauthenticated {
		t.Errorf("worker after a rotation: %v, want Unauthenticated", err)
	}
	// The worker restarts with the new join token and its old credential
	// file, as a Deployment does after the Secret is updated: the refused
	// credential gives way to the join token.
	ts.runWorker("acme-dev", rot.JoinToken, cred)
	waitCredential(t, cred, string(kept))
	waitConnected(t, op, "acme-dev")
	if _, err := op.ClusterService.RotateClusterToken(ctx, &fleetscanv1.RotateClusterTokenRequest{ClusterId: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("rotating an unknown cluster: %v", err)
	}
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// connectRaw opens a worker stream with token, sends Hello, and returns
// the server's first answer: the Welcome, or the error that refused it.
func (ts *testServer) connectRaw(ctx context.Context, clusterID, token string, caps ...string) (workerv1.WorkerService_ConnectClient, *workerv1.Welcome, error) {
	ts.t.Helper()
	if caps == nil {
		caps = []string{"resume", "heartbeat", "credential", "receipt"}
	}
	return ts.connectHello(ctx, token, &workerv1.Hello{ClusterId: clusterID, Capabilities: caps})
}

// connectHello opens a worker stream with token and sends hello; it
// returns the server's Welcome or the error that refused it.
func (ts *testServer) connectHello(ctx context.Context, token string, hello *workerv1.Hello) (workerv1.WorkerService_ConnectClient, *workerv1.Welcome, error) {
	ts.t.Helper()
	conn, err := grpc.NewClient("passthrough:///bufnet", ts.dial(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(func() { conn.Close() })
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	stream, err := workerv1.NewWorkerServiceClient(conn).Connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := stream.Send(&workerv1.ConnectRequest{Msg: &workerv1.ConnectRequest_Hello{Hello: hello}}); err != nil {
		if errors.Is(err, io.EOF) {
			// The server ended the stream (refused it): its status is what
			// Recv returns, not Send's io.EOF.
			_, err = stream.Recv()
		}
		return nil, nil, err
	}
	m, err := stream.Recv()
	if err != nil {
		return nil, nil, err
	}
	return stream, m.GetWelcome(), nil
}

// TestLostWelcomeKeepsJoinToken: a worker whose first Welcome, with its
// new credential, never reached it (the connection broke, the pod was
// killed) connects again with its join token and gets a credential; the
// one it lost is deleted. Once the worker has answered, the join token is
// spent. Before, the join token was spent when the Welcome was sent, and
// such a worker was locked out until an operator rotated its token.
func TestLostWelcomeKeepsJoinToken(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	join := register(t, op, "acme-dev", "acme", nil)

	ctx, cut := context.WithCancel(context.Background())
	_, welcome, err := ts.connectRaw(ctx, "acme-dev", join)
	if err != nil || welcome.GetWorkerToken() == "" {
		t.Fatalf("first connect: %v %v", welcome, err)
	}
	lost := welcome.WorkerToken
	cut() // the connection breaks before the worker keeps the credential
	waitDisconnected(t, op, "acme-dev")

	cred := filepath.Join(t.TempDir(), "credential")
	ts.runWorker("acme-dev", join, cred)
	waitConnected(t, op, "acme-dev")
	var kept []byte
	deadline := time.Now().Add(10 * time.Second)
	for len(kept) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the worker got no credential with its join token after a lost Welcome")
		}
		time.Sleep(10 * time.Millisecond)
		kept, _ = os.ReadFile(cred)
	}
	if strings.TrimSpace(string(kept)) == lost {
		t.Fatal("the worker was given the lost credential again")
	}

	// The worker's receipt spends the join token; the lost credential is gone.
	ts.waitJoinSpent("acme-dev", join)
	if _, _, err := ts.connectRaw(context.Background(), "acme-dev", lost); status.Code(err) != codes.Unauthenticated {
		t.Errorf("the lost credential: %v, want refused", err)
	}
}

// waitJoinSpent waits until the join token is refused: the worker that
// exchanged it has sent its receipt, which comes right after the Welcome.
// The probe leaves out the "credential" capability, so that a join token
// still valid is refused for that ("upgrade it") instead of being
// exchanged by the probe.
func (ts *testServer) waitJoinSpent(clusterID, join string) {
	ts.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, err := ts.connectRaw(context.Background(), clusterID, join, "heartbeat")
		if status.Code(err) == codes.Unauthenticated && !strings.Contains(err.Error(), "upgrade") {
			return
		}
		if time.Now().After(deadline) {
			ts.t.Fatalf("join token after the worker's receipt: %v, want refused as spent", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
