package server_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
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
	waitConnected(t, op, "acme-dev")
	kept, err := os.ReadFile(cred)
	if err != nil || !strings.HasPrefix(string(kept), "fsw_") {
		t.Fatalf("credential file: %q %v", kept, err)
	}
	if info, _ := os.Stat(cred); info.Mode().Perm() != 0o600 {
		t.Errorf("credential file mode %v, want 0600", info.Mode().Perm())
	}
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		now, _ := os.ReadFile(cred)
		if len(now) > 0 && string(now) != string(kept) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("after a rotation the worker did not get a new credential with the new join token")
		}
		time.Sleep(10 * time.Millisecond)
	}
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
