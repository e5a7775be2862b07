package main

// Crash tests: the real fleetscan-server and fleetscan-worker binaries,
// killed with SIGKILL in the middle of a fleet scan.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleetscan/fleetscan/client"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/worker"
	"github.com/fleetscan/fleetscan/worker/checks"
	"github.com/fleetscan/fleetscan/worker/policy"
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// binaries returns a directory holding fleetscan-server and
// fleetscan-worker: FLEETSCAN_BIN when make has built them, else a build
// of its own.
func binaries(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("crash tests run the real binaries; skipped with -short")
	}
	binOnce.Do(func() {
		if dir := os.Getenv("FLEETSCAN_BIN"); dir != "" {
			binDir = dir
			return
		}
		binDir, binErr = os.MkdirTemp("", "fleetscan-bin-")
		if binErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binDir+"/", "github.com/fleetscan/fleetscan/cmd/fleetscan-server", "github.com/fleetscan/fleetscan/cmd/fleetscan-worker").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	for _, name := range []string{"fleetscan-server", "fleetscan-worker"} {
		if _, err := os.Stat(filepath.Join(binDir, name)); err != nil {
			t.Fatalf("%s: %v (run 'make build' or unset FLEETSCAN_BIN)", name, err)
		}
	}
	return binDir
}

// syncBuffer collects a process's output for the failure message.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// startProc starts a binary; it is killed when the test ends, and its
// output is shown if the test failed.
func startProc(t *testing.T, bin, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- output of %s:\n%s", p.name, tail(p.out.String(), 40))
		}
	})
	return p
}

// kill sends SIGKILL: no deferred function, no graceful shutdown runs.
func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeFleetSnapshot writes a cluster of n insecure Deployments: many
// findings, so that a scan takes many batches.
func writeFleetSnapshot(t *testing.T, dir string, n int) {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-%d
  namespace: team-%d
spec:
  selector: {matchLabels: {app: app-%d}}
  template:
    metadata: {labels: {app: app-%d}}
    spec:
      hostNetwork: true
      containers:
      - name: app
        image: nginx:latest
        securityContext: {privileged: true, runAsUser: 0}
      - name: sidecar
        image: busybox
        env: [{name: DB_PASSWORD, value: hunter2}]
`, i, i%7, i, i)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "workloads.yaml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func expectedCount(t *testing.T, dir string) int64 {
	t.Helper()
	inv, err := worker.SnapshotSource(dir, nil).Collect(context.Background(), policy.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	if _, err := checks.Run(context.Background(), inv, policy.Selection{}, func(checks.Finding) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// fleet is a server process and its clusters' workers.
type fleet struct {
	t        *testing.T
	bin      string
	addr     string
	dataDir  string
	server   *proc
	clusters []string
	tokens   map[string]string
	snaps    map[string]string
	want     map[string]int64
	op       *client.Client
}

func newFleet(t *testing.T, clusters, deployments int, serverArgs ...string) *fleet {
	f := &fleet{t: t, bin: binaries(t), addr: freeAddr(t), dataDir: t.TempDir(), tokens: map[string]string{}, snaps: map[string]string{}, want: map[string]int64{}}
	f.startServer(serverArgs...)
	tok, err := os.ReadFile(filepath.Join(f.dataDir, "operator.token"))
	if err != nil {
		t.Fatal(err)
	}
	f.op, err = client.New(f.addr, client.WithPlaintext(), client.WithToken(strings.TrimSpace(string(tok))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.op.Close() })
	snaps := t.TempDir()
	for i := range clusters {
		id := fmt.Sprintf("cluster-%02d", i)
		f.clusters = append(f.clusters, id)
		f.snaps[id] = filepath.Join(snaps, id)
		writeFleetSnapshot(t, f.snaps[id], deployments+i*10)
		f.want[id] = expectedCount(t, f.snaps[id])
		resp, err := f.op.ClusterService.RegisterCluster(context.Background(), &fleetscanv1.RegisterClusterRequest{ClusterId: id, Tenant: "t"})
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[id] = filepath.Join(snaps, id+".token")
		if err := os.WriteFile(f.tokens[id], []byte(resp.JoinToken), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fleet) startServer(args ...string) {
	f.t.Helper()
	f.server = startProc(f.t, filepath.Join(f.bin, "fleetscan-server"), "fleetscan-server",
		append([]string{"--data-dir", f.dataDir, "--listen", f.addr, "--plaintext", "--tick", "200ms", "--rate-limit", "0"}, args...)...)
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", f.addr, 100*time.Millisecond)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-f.server.done:
			f.t.Fatalf("server exited:\n%s", f.server.out.String())
		default:
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("server not listening on %s:\n%s", f.addr, f.server.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (f *fleet) startWorker(id string) *proc {
	return startProc(f.t, filepath.Join(f.bin, "fleetscan-worker"), "worker "+id,
		"--server", f.addr, "--plaintext", "--cluster-id", id, "--token-file", f.tokens[id],
		"--snapshot", f.snaps[id], "--batch-size", "20", "--credential-file", f.tokens[id]+".credential")
}

func (f *fleet) startScan() string {
	f.t.Helper()
	resp, err := f.op.ScanService.StartScan(context.Background(), &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{AllClusters: true}})
	if err != nil {
		f.t.Fatal(err)
	}
	return resp.Scan.Id
}

// check fails the test if a job shows SUCCEEDED with other than all of
// its cluster's findings.
func (f *fleet) check(scan *fleetscanv1.Scan) {
	f.t.Helper()
	for _, j := range scan.GetJobs() {
		if j.State != fleetscanv1.JobState_JOB_STATE_SUCCEEDED {
			continue
		}
		c := j.Findings
		got := c.GetCritical() + c.GetHigh() + c.GetMedium() + c.GetLow() + c.GetInfo() + c.GetSuppressed()
		if got != f.want[j.ClusterId] {
			f.t.Fatalf("job of %s SUCCEEDED with %d findings, want %d", j.ClusterId, got, f.want[j.ClusterId])
		}
	}
}

// waitFor polls the scan until cond holds, checking every state it sees.
func (f *fleet) waitFor(scanID string, what string, timeout time.Duration, cond func(*fleetscanv1.Scan) bool) *fleetscanv1.Scan {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	var last *fleetscanv1.Scan
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := f.op.ScanService.GetScan(ctx, &fleetscanv1.GetScanRequest{ScanId: scanID})
		cancel()
		if err == nil {
			last = resp.Scan
			f.check(last)
			if cond(last) {
				return last
			}
		}
		time.Sleep(15 * time.Millisecond)
	}
	f.t.Fatalf("timed out waiting for %s; last state: %v", what, last)
	return nil
}

// storedTotal counts the findings stored for a cluster.
func (f *fleet) storedTotal(id string) int64 {
	f.t.Helper()
	var n int64
	for _, err := range f.op.Findings(context.Background(), &fleetscanv1.ListFindingsRequest{ClusterId: id, PageSize: 1000}) {
		if err != nil {
			f.t.Fatal(err)
		}
		n++
	}
	return n
}

// TestServerKilledMidIngest kills the server with SIGKILL while every
// worker streams findings, restarts it on the same database, and expects
// the scan to end with every finding stored exactly once: the database
// opens clean, no job ever shows SUCCEEDED with findings missing, and the
// interrupted jobs go on by themselves, most of them resumed rather than
// run again.
func TestServerKilledMidIngest(t *testing.T) {
	f := newFleet(t, 4, 600)
	for _, id := range f.clusters {
		f.startWorker(id)
	}
	scanID := f.startScan()
	f.waitFor(scanID, "jobs streaming", 60*time.Second, func(s *fleetscanv1.Scan) bool {
		streaming := 0
		for _, j := range s.Jobs {
			if j.State == fleetscanv1.JobState_JOB_STATE_RUNNING && j.FindingsReceived > 0 {
				streaming++
			}
		}
		return streaming >= 2
	})
	f.server.kill()
	f.startServer()
	scan := f.waitFor(scanID, "the scan to end", 90*time.Second, client.Finished)
	if scan.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
		t.Fatalf("scan after the crash: %v", scan)
	}
	resumed := 0
	for _, j := range scan.Jobs {
		if j.Attempts == 1 {
			resumed++
		}
		if got := f.storedTotal(j.ClusterId); got != f.want[j.ClusterId] {
			t.Errorf("%s: %d findings stored, want %d", j.ClusterId, got, f.want[j.ClusterId])
		}
	}
	t.Logf("%d clusters, %d findings each or so; %d of the jobs went on without being sent again", len(f.clusters), f.want[f.clusters[0]], resumed)
	if !strings.Contains(f.server.out.String(), "job resumed") {
		t.Errorf("no job was resumed after the restart")
	}
}

// TestWorkerKilledMidScan kills a worker with SIGKILL in the middle of its
// job. A new worker process of the cluster runs the job again (the lost
// process's batches are dropped, not mixed in) and the scan succeeds with
// exactly the cluster's findings; a cluster whose worker never comes back
// ends TIMED_OUT.
func TestWorkerKilledMidScan(t *testing.T) {
	// killMidStream starts the fleet's workers and a scan, and kills the
	// workers once every job streams.
	killMidStream := func(f *fleet) string {
		workers := map[string]*proc{}
		for _, id := range f.clusters {
			workers[id] = f.startWorker(id)
		}
		scanID := f.startScan()
		f.waitFor(scanID, "the job streaming", 60*time.Second, func(s *fleetscanv1.Scan) bool {
			for _, j := range s.Jobs {
				if j.State != fleetscanv1.JobState_JOB_STATE_RUNNING || j.FindingsReceived == 0 {
					return false
				}
			}
			return true
		})
		for _, w := range workers {
			w.kill()
		}
		return scanID
	}
	// Two servers: the returning worker's job must not race a job timeout
	// short enough for the test to see the other one time out.
	t.Run("worker comes back", func(t *testing.T) {
		f := newFleet(t, 1, 800)
		scanID := killMidStream(f)
		victim := f.clusters[0]
		f.startWorker(victim)
		j := f.waitFor(scanID, "the scan to end", 5*time.Minute, client.Finished).Jobs[0]
		if j.State != fleetscanv1.JobState_JOB_STATE_SUCCEEDED || j.Attempts != 2 {
			t.Errorf("%s, whose worker came back: %v after %d attempts (%s), want SUCCEEDED after 2", victim, j.State, j.Attempts, j.Error)
		}
		if got := f.storedTotal(victim); got != f.want[victim] {
			t.Errorf("%s: %d findings stored, want %d", victim, got, f.want[victim])
		}
	})
	t.Run("worker never comes back", func(t *testing.T) {
		f := newFleet(t, 1, 800, "--job-timeout", "8s")
		scanID := killMidStream(f)
		j := f.waitFor(scanID, "the scan to end", 90*time.Second, client.Finished).Jobs[0]
		if j.State != fleetscanv1.JobState_JOB_STATE_TIMED_OUT {
			t.Errorf("%s, whose worker never came back: %v (%s), want TIMED_OUT", f.clusters[0], j.State, j.Error)
		}
	})
}
