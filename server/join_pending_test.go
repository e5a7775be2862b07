package server_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
)

// TestPendingCredentialConnectionSpendsJoinToken: a worker that kept its
// credential but whose first stream broke before its receipt connects with
// the credential; that connection spends the join token.
func TestPendingCredentialConnectionSpendsJoinToken(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	join := register(t, op, "acme-dev", "acme", nil)

	ctx, cut := context.WithCancel(context.Background())
	_, welcome, err := ts.connectRaw(ctx, "acme-dev", join)
	if err != nil || welcome.GetWorkerToken() == "" {
		t.Fatalf("first connect: %v %v", welcome, err)
	}
	cred := welcome.WorkerToken
	cut() // no receipt
	waitDisconnected(t, op, "acme-dev")

	if _, w, err := ts.connectRaw(context.Background(), "acme-dev", cred); err != nil || w == nil {
		t.Fatalf("connect with the pending credential: %v", err)
	}
	ts.waitJoinSpent("acme-dev", join)
}

// TestRotationWhileCredentialPending: a rotation while a credential is
// pending revokes it and the old join token; the new join token works.
func TestRotationWhileCredentialPending(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	join := register(t, op, "acme-dev", "acme", nil)

	stream, welcome, err := ts.connectRaw(context.Background(), "acme-dev", join)
	if err != nil || welcome.GetWorkerToken() == "" {
		t.Fatalf("first connect: %v %v", welcome, err)
	}
	rot, err := op.ClusterService.RotateClusterToken(context.Background(), &fleetscanv1.RotateClusterTokenRequest{ClusterId: "acme-dev"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.Unauthenticated {
		t.Errorf("pending session after a rotation: %v, want Unauthenticated", err)
	}
	if _, _, err := ts.connectRaw(context.Background(), "acme-dev", welcome.WorkerToken); status.Code(err) != codes.Unauthenticated {
		t.Errorf("pending credential after a rotation: %v, want refused", err)
	}
	if _, _, err := ts.connectRaw(context.Background(), "acme-dev", join); status.Code(err) != codes.Unauthenticated {
		t.Errorf("old join token after a rotation: %v, want refused", err)
	}
	if _, w, err := ts.connectRaw(context.Background(), "acme-dev", rot.JoinToken); err != nil || w.GetWorkerToken() == "" {
		t.Errorf("new join token: %v %v", w, err)
	}
}

// TestOldWorkerSpendsJoinTokenAtWelcome: a worker without the "receipt"
// capability (released before it) sends its first message only a
// heartbeat interval (10 s by default) after its Welcome. For such a
// worker the join token is spent when the Welcome is sent, as before:
// a stolen copy is refused at once, and the worker keeps its credential.
func TestOldWorkerSpendsJoinTokenAtWelcome(t *testing.T) {
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	join := register(t, op, "acme-dev", "acme", nil)

	// The old worker: Hello, Welcome, then silence until its first heartbeat.
	worker, welcome, err := ts.connectRaw(context.Background(), "acme-dev", join, "resume", "heartbeat", "credential")
	if err != nil || welcome.GetWorkerToken() == "" {
		t.Fatalf("old worker: %v %v", welcome, err)
	}
	// At once, long before the old worker's first heartbeat: the token was
	// spent when the Welcome was sent, before the worker read it.
	if _, stolen, err := ts.connectRaw(context.Background(), "acme-dev", join); status.Code(err) != codes.Unauthenticated {
		t.Errorf("a second use of the join token right after the worker's Welcome: %v (credential %v); want Unauthenticated", err, stolen.GetWorkerToken() != "")
	}
	// The old worker's stream goes on: it is sent the next job.
	if err := worker.Send(&workerv1.ConnectRequest{Msg: &workerv1.ConnectRequest_Progress{Progress: &workerv1.Progress{}}}); err != nil {
		t.Fatalf("old worker's heartbeat: %v", err)
	}
	if _, err := op.ScanService.StartScan(context.Background(), &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{ClusterIds: []string{"acme-dev"}}}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := worker.Recv()
		if err != nil {
			t.Fatalf("old worker's stream ended: %v", err)
		}
		if m.GetAssign() != nil {
			break
		}
	}
	if _, _, err := ts.connectRaw(context.Background(), "acme-dev", welcome.WorkerToken); err != nil {
		t.Errorf("old worker reconnecting with its credential: %v", err)
	}
}
