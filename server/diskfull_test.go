package server_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/fleetscan/fleetscan/client"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server"
	"github.com/fleetscan/fleetscan/worker"
)

// smallDisk mounts a tmpfs of size bytes for the test, or skips it with a
// message when this user may not mount one.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the full-disk test mounts a small tmpfs, which needs root; run make test as root to run it")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("the full-disk test could not mount a tmpfs (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file in dir until the disk is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			return path
		}
	}
}

// manyDeployments writes a snapshot of n deployments with a handful of
// findings each.
func manyDeployments(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app-%[1]d, namespace: team-%[2]d}
spec:
  selector: {matchLabels: {app: app-%[1]d}}
  template:
    metadata: {labels: {app: app-%[1]d}}
    spec:
      containers:
      - name: app
        image: registry.example.com/app:latest
        securityContext: {privileged: true}
`, i, i%20)
	}
	if err := os.WriteFile(filepath.Join(dir, "deployments.yaml"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestFullDisk: when the database's disk fills up, a job whose findings
// cannot be stored fails at once with an error that says so (not
// TIMED_OUT later, as if the worker had gone); the worker is told to come
// back later; health and a metric show it; reads go on; once space is
// freed, the next scan succeeds without a restart; nothing stored before
// is lost.
func TestFullDisk(t *testing.T) {
	disk := smallDisk(t, 96<<20)
	ts := &testServer{t: t, dataDir: filepath.Join(disk, "data"), cfg: func(c *server.Config) {
		c.NoSpaceRetryDelay = 50 * time.Millisecond
		c.JobTimeout = time.Hour // a TIMED_OUT job would be the bug
	}}
	ts.start()
	t.Cleanup(ts.shutdown)
	op := ts.client(ts.operatorToken())
	bg := context.Background()

	small := register(t, op, "acme-prod", "acme", nil)
	ts.startWorker("acme-prod", small, filepath.Join(demoClusters, "acme-prod"))
	before := scanClusters(t, ts, "acme-prod")
	if before.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
		t.Fatalf("scan before the disk is full: %v", before.State)
	}
	wantFindings := listFindings(t, op, "acme-prod")

	big := register(t, op, "acme-big", "acme", nil)
	ts.startWorkerWith("acme-big", big, manyDeployments(t, 1500), func(c *worker.Config) { c.BatchSize, c.DialOptions = 500, []grpc.DialOption{ts.dial()} })
	filler := fill(t, disk)

	scan := scanClusters(t, ts, "acme-big")
	job := scan.Jobs[0]
	if scan.State != fleetscanv1.ScanState_SCAN_STATE_FAILED || job.State != fleetscanv1.JobState_JOB_STATE_FAILED || !strings.Contains(job.Error, "disk is full") {
		t.Fatalf("scan on a full disk: scan %v, job %v %q; want FAILED saying the disk is full", scan.State, job.State, job.Error)
	}

	conn := ts.rawConn()
	healthOf := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		resp, err := healthpb.NewHealthClient(conn).Check(bg, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("health of %q: %v", service, err)
		}
		return resp.Status
	}
	if st := healthOf(server.StorageHealthService); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("storage health on a full disk: %v", st)
	}
	if st := healthOf(""); st != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("server health on a full disk: %v, want SERVING (reads go on)", st)
	}
	if got := listFindings(t, op, "acme-prod"); got != wantFindings {
		t.Errorf("reading on a full disk: %d findings, want %d", strings.Count(got, "\n"), strings.Count(wantFindings, "\n"))
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	after := scanClusters(t, ts, "acme-big")
	if after.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
		t.Fatalf("scan after space was freed: %v %q", after.State, after.Jobs[0].Error)
	}
	if st := healthOf(server.StorageHealthService); st != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("storage health after space was freed: %v", st)
	}
	if got := listFindings(t, op, "acme-prod"); got != wantFindings {
		t.Errorf("after the full disk: %d findings of acme-prod, want the %d stored before", strings.Count(got, "\n"), strings.Count(wantFindings, "\n"))
	}
}

// listFindings returns every open finding of a cluster, one line each.
func listFindings(t *testing.T, c *client.Client, clusterID string) string {
	t.Helper()
	var b strings.Builder
	for f, err := range c.Findings(context.Background(), &fleetscanv1.ListFindingsRequest{ClusterId: clusterID}) {
		if err != nil {
			t.Fatalf("findings of %s: %v", clusterID, err)
		}
		fmt.Fprintf(&b, "%s %s %s %s\n", f.CheckId, f.GetResource().GetNamespace(), f.GetResource().GetName(), f.Message)
	}
	return b.String()
}
