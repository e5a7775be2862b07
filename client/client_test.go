package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/fleetscan/fleetscan/client"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server"
)

func startServer(t *testing.T) (dial client.Option, token string) {
	t.Helper()
	dir := t.TempDir()
	lis := bufconn.Listen(1 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Config{DataDir: dir, Listener: lis, Plaintext: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	b, err := os.ReadFile(filepath.Join(dir, server.OperatorTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return client.WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) })),
		strings.TrimSpace(string(b))
}

func TestTypedErrorsAndIterators(t *testing.T) {
	dial, token := startServer(t)
	ctx := context.Background()
	c, err := client.New("passthrough:///bufnet", client.WithPlaintext(), client.WithToken(token), dial)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, id := range []string{"a", "b", "c"} {
		if _, err := c.ClusterService.RegisterCluster(ctx, &fleetscanv1.RegisterClusterRequest{ClusterId: id, Tenant: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for cl, err := range c.ListClusters(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, cl.Id)
	}
	if strings.Join(ids, ",") != "a,b,c" {
		t.Errorf("ListClusters iterated %v", ids)
	}
	_, err = c.ClusterService.GetCluster(ctx, &fleetscanv1.GetClusterRequest{ClusterId: "nope"})
	if !errors.Is(err, client.ErrNotFound) {
		t.Errorf("GetCluster(nope): %v, want ErrNotFound", err)
	}
	_, err = c.ClusterService.RegisterCluster(ctx, &fleetscanv1.RegisterClusterRequest{ClusterId: "a", Tenant: "t"})
	if !errors.Is(err, client.ErrAlreadyExists) {
		t.Errorf("duplicate: %v, want ErrAlreadyExists", err)
	}

	bad, err := client.New("passthrough:///bufnet", client.WithPlaintext(), client.WithToken("fsa_wrong"), dial)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	for _, err := range bad.ListClusters(ctx) {
		if !errors.Is(err, client.ErrUnauthenticated) {
			t.Errorf("wrong token: %v, want ErrUnauthenticated", err)
		}
		break
	}
}

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	empty, good := filepath.Join(dir, "empty"), filepath.Join(dir, "good")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, []byte("fsa_secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, wantErr string
	}{
		{filepath.Join(dir, "missing"), "token file"},
		{empty, "is empty"},
		{good, ""},
	} {
		c, err := client.New("127.0.0.1:1", client.WithTokenFile(tc.path), client.WithPlaintext())
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.path, err)
			} else {
				c.Close()
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: %v, want an error mentioning %q", tc.path, err, tc.wantErr)
		}
	}
}

// flakyClusters answers Unavailable to its first `fails` calls of each
// method, and counts the calls.
type flakyClusters struct {
	fleetscanv1.UnimplementedClusterServiceServer
	mu    sync.Mutex
	fails int
	calls map[string]int
}

func (f *flakyClusters) called(m string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[m]++
	if f.calls[m] <= f.fails {
		return status.Error(codes.Unavailable, "restarting")
	}
	return nil
}

func (f *flakyClusters) ListClusters(context.Context, *fleetscanv1.ListClustersRequest) (*fleetscanv1.ListClustersResponse, error) {
	if err := f.called("list"); err != nil {
		return nil, err
	}
	return &fleetscanv1.ListClustersResponse{}, nil
}

func (f *flakyClusters) RegisterCluster(context.Context, *fleetscanv1.RegisterClusterRequest) (*fleetscanv1.RegisterClusterResponse, error) {
	if err := f.called("register"); err != nil {
		return nil, err
	}
	return &fleetscanv1.RegisterClusterResponse{}, nil
}

// TestRetriesReadsOnly: a read that meets Unavailable is sent again, up to
// 4 times; a call that changes something is sent once.
func TestRetriesReadsOnly(t *testing.T) {
	fake := &flakyClusters{fails: 2, calls: map[string]int{}}
	c := fakeServer(t, func(srv *grpc.Server) { fleetscanv1.RegisterClusterServiceServer(srv, fake) })
	ctx := context.Background()
	if _, err := c.ClusterService.ListClusters(ctx, &fleetscanv1.ListClustersRequest{}); err != nil {
		t.Errorf("a read after two Unavailable answers: %v", err)
	}
	_, err := c.ClusterService.RegisterCluster(ctx, &fleetscanv1.RegisterClusterRequest{ClusterId: "x"})
	if !errors.Is(err, client.ErrUnavailable) {
		t.Errorf("a write meeting Unavailable: %v, want ErrUnavailable", err)
	}
	fake.mu.Lock()
	fake.fails = 10
	fake.mu.Unlock()
	_, err = c.ClusterService.ListClusters(ctx, &fleetscanv1.ListClustersRequest{})
	if !errors.Is(err, client.ErrUnavailable) {
		t.Errorf("a read that keeps failing: %v", err)
	}
	if fake.calls["list"] != 3+4 || fake.calls["register"] != 1 {
		t.Errorf("calls: %v, want list 3+4 (two retries, then the cap of 4), register 1", fake.calls)
	}
}

// downScans answers Unavailable to every WatchScan, as a server that is
// not there does.
type downScans struct {
	fleetscanv1.UnimplementedScanServiceServer
}

func (downScans) WatchScan(*fleetscanv1.WatchScanRequest, grpc.ServerStreamingServer[fleetscanv1.WatchScanResponse]) error {
	return status.Error(codes.Unavailable, "connection refused")
}

// TestWaitScanDoesNotWaitForAServerThatNeverAnswered: following a scan on
// a server that never answered ends with ErrUnavailable after a few
// tries, not at the end of a --timeout of two weeks.
func TestWaitScanDoesNotWaitForAServerThatNeverAnswered(t *testing.T) {
	c := fakeServer(t, func(srv *grpc.Server) { fleetscanv1.RegisterScanServiceServer(srv, downScans{}) })
	// The deadline is far beyond what a few tries take: the test fails
	// on it only if WaitScan waits it out.
	ctx, cancel := context.WithTimeout(context.Background(), 14*24*time.Hour)
	defer cancel()
	_, err := c.WaitScan(ctx, "01J9Z3R6T4W8X2Y5A7B9C1D3E5", time.Millisecond, nil)
	if !errors.Is(err, client.ErrUnavailable) || status.Code(err) != codes.Unavailable {
		t.Errorf("WaitScan on a server that never answered: %v, want ErrUnavailable", err)
	}
}

// limitedClusters refuses its first `refusals` calls as the server's rate
// limit does.
type limitedClusters struct {
	fleetscanv1.UnimplementedClusterServiceServer
	mu       sync.Mutex
	refusals int
	calls    int
}

func (l *limitedClusters) ListClusters(context.Context, *fleetscanv1.ListClustersRequest) (*fleetscanv1.ListClustersResponse, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.calls <= l.refusals {
		return nil, status.Error(codes.ResourceExhausted, "rate limit: at most 50 calls a second (bursts of 100) per token; slow down and retry")
	}
	return &fleetscanv1.ListClustersResponse{}, nil
}

// TestRateLimitedCallsWait: a call the server's rate limit refused is sent
// again a moment later, so that a long listing slows down instead of
// failing halfway.
func TestRateLimitedCallsWait(t *testing.T) {
	fake := &limitedClusters{refusals: 2}
	c := fakeServer(t, func(srv *grpc.Server) { fleetscanv1.RegisterClusterServiceServer(srv, fake) })
	if _, err := c.ClusterService.ListClusters(context.Background(), &fleetscanv1.ListClustersRequest{}); err != nil {
		t.Errorf("a call refused twice by the rate limit: %v", err)
	}
	if fake.calls != 3 {
		t.Errorf("%d calls, want 3", fake.calls)
	}
}

// fakeServer serves the services register adds over an in-process
// connection, and returns a client of it.
func fakeServer(t *testing.T, register func(*grpc.Server)) *client.Client {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	register(srv)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	c, err := client.New("passthrough:///bufnet", client.WithPlaintext(),
		client.WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) })))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
