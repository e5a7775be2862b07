package server_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetscan/fleetscan/client"
	"github.com/fleetscan/fleetscan/internal/pgtest"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server"
	"github.com/fleetscan/fleetscan/worker"
)

// replica is a server of a set sharing one PostgreSQL database, on a
// loopback TCP port so that workers can be given several of them.
type replica struct {
	srv     *server.Server
	addr    string
	dataDir string
	stop    func()
}

// startReplica starts a replica listening on listen, with its own data
// directory.
func startReplica(t *testing.T, dsn, listen string) *replica {
	t.Helper()
	r := &replica{dataDir: t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Config{DataDir: r.dataDir, Store: dsn, Listen: listen, Plaintext: true,
		ShutdownTimeout: 2 * time.Second, Tick: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r.srv, r.addr = srv, srv.Addr().String()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("replica %s: %v", r.addr, err)
			}
		})
	}
	t.Cleanup(r.stop)
	return r
}

// TestReplicas runs two servers on one database: a scan started on one
// reaches workers connected to the other and is watched to its end there,
// findings read the same on both, and when one stops its workers move to the other, which
// finishes the next scan and leads.
func TestReplicas(t *testing.T) {
	dsn := pgtest.Shared(t).CreateDatabase(t, "")
	a := startReplica(t, dsn, "127.0.0.1:0")
	b := startReplica(t, dsn, "127.0.0.1:0")
	if _, err := os.Stat(filepath.Join(b.dataDir, server.OperatorTokenFile)); err == nil {
		t.Fatal("the second replica made an operator token too")
	}
	token, err := os.ReadFile(filepath.Join(a.dataDir, server.OperatorTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	dial := func(addr string) *client.Client {
		c, err := client.New(addr, client.WithPlaintext(), client.WithToken(strings.TrimSpace(string(token))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	onA, onB := dial(a.addr), dial(b.addr)

	// The workers know only a: the scan started on b must wake them
	// there.
	clusters := []string{"acme-prod", "globex-prod"}
	var want []string
	for _, id := range clusters {
		joinToken := register(t, onB, id, strings.Split(id, "-")[0], nil)
		startNetWorker(t, a.addr, id, joinToken, filepath.Join(demoClusters, id))
		want = append(want, expectedFindings(t, id, filepath.Join(demoClusters, id))...)
	}
	slices.Sort(want)
	for _, id := range clusters {
		waitConnected(t, onB, id) // a's workers count as connected on b
	}
	resp, err := onB.ScanService.StartScan(context.Background(), &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{AllClusters: true}})
	if err != nil {
		t.Fatal(err)
	}
	// b watches the jobs that run on a, from what a stores.
	if scan := waitScan(t, onB, resp.Scan.Id); scan.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
		t.Fatalf("scan ended %v: %v", scan.State, scan.Jobs)
	}
	for name, c := range map[string]*client.Client{"a": onA, "b": onB} {
		if got := storedFindings(t, c, &fleetscanv1.ListFindingsRequest{PageSize: 13}); !slices.Equal(got, want) {
			t.Errorf("findings read on %s differ from the engine's:\n%s", name, diffLines(got, want))
		}
	}

	// A worker that knows both replicas while only a listens connects
	// to a; b comes back on its address (a replica restarted); when a
	// stops, the worker moves to b, which then leads and finishes the
	// next scan alone.
	b.stop()
	third := "initech-prod"
	joinToken := register(t, onA, third, "initech", nil)
	startNetWorker(t, a.addr+","+b.addr, third, joinToken, filepath.Join(demoClusters, "acme-prod"))
	waitConnected(t, onA, third)
	startReplica(t, dsn, b.addr) // b, again: the client onB reconnects to it
	a.stop()
	resp, err = onB.ScanService.StartScan(context.Background(), &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{ClusterIds: []string{third}}})
	if err != nil {
		t.Fatal(err)
	}
	if scan := waitScan(t, onB, resp.Scan.Id); scan.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
		t.Fatalf("scan after a stopped ended %v: %v", scan.State, scan.Jobs)
	}
}

// startNetWorker runs a worker on a snapshot, dialling server over TCP,
// until the test ends.
func startNetWorker(t *testing.T, server, clusterID, token, snapshot string) {
	t.Helper()
	w, err := worker.New(worker.Config{
		Server: server, Token: token, ClusterID: clusterID, Plaintext: true,
		Source: worker.SnapshotSource(snapshot, nil), BatchSize: 7,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}
