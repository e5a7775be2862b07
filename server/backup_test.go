package server_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fleetscan/fleetscan/client"
	"github.com/fleetscan/fleetscan/internal/pgtest"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server"
	"github.com/fleetscan/fleetscan/worker"
)

// answers is what the API says of the fleet: clusters, scans with their
// jobs (an unfinished job as just that: a restored server requeues it),
// and every open finding of every cluster.
func answers(t *testing.T, c *client.Client) string {
	t.Helper()
	var b strings.Builder
	var ids []string
	for cl, err := range c.ListClusters(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, cl.Id)
		fmt.Fprintf(&b, "cluster %s %s\n", cl.Id, cl.Tenant)
	}
	for s, err := range c.ListScans(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "scan %s\n", s.Id)
		for _, j := range s.Jobs {
			state := j.State.String()
			if !strings.Contains("SUCCEEDED FAILED CANCELLED TIMED_OUT EXPIRED", strings.TrimPrefix(state, "JOB_STATE_")) {
				state = "unfinished"
			}
			fmt.Fprintf(&b, "  job %s %s %s %v\n", j.Id, j.ClusterId, state, j.GetFindings())
		}
	}
	for _, id := range ids {
		b.WriteString(listFindings(t, c, id))
	}
	return b.String()
}

// TestBackupUnderIngest: a backup taken while a worker streams findings
// is a consistent snapshot: it passes check, restores into a new data
// directory, and the restored server answers every query as the original
// did just before or just after the backup. Only operators may take one,
// and it is audited.
func TestBackupUnderIngest(t *testing.T) {
	bboltOnly(t)
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	bg := context.Background()
	for _, id := range []string{"acme-prod", "globex-prod"} {
		ts.startWorker(id, register(t, op, id, strings.Split(id, "-")[0], nil), filepath.Join(demoClusters, id))
	}
	scanClusters(t, ts, "acme-prod", "globex-prod")
	big := register(t, op, "acme-big", "acme", nil)
	ts.startWorkerWith("acme-big", big, manyDeployments(t, 1500), func(c *worker.Config) {
		c.BatchSize, c.DialOptions = 20, []grpc.DialOption{ts.dial()}
	})
	resp, err := op.ScanService.StartScan(bg, &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{ClusterIds: []string{"acme-big"}}})
	if err != nil {
		t.Fatal(err)
	}
	// Back up once the worker is streaming.
	for {
		s, err := op.ScanService.GetScan(bg, &fleetscanv1.GetScanRequest{ScanId: resp.Scan.Id})
		if err != nil {
			t.Fatal(err)
		}
		if s.Scan.Jobs[0].State == fleetscanv1.JobState_JOB_STATE_RUNNING || client.Finished(s.Scan) {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling; no time limit
	}
	before := answers(t, op)
	var backup bytes.Buffer
	n, err := op.Backup(bg, &backup, nil)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	after := answers(t, op)
	if n != int64(backup.Len()) || n == 0 {
		t.Fatalf("backup of %d bytes, %d received", n, backup.Len())
	}
	if s := waitScan(t, op, resp.Scan.Id); s.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
		t.Fatalf("the scan backed up under: %v", s.State)
	}

	file := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(file, backup.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	restoredDir := t.TempDir()
	var problems []string
	if _, err := server.Restore(bg, restoredDir, file, func(p server.Problem) { problems = append(problems, p.String()) }); err != nil {
		t.Fatalf("restore: %v %v", err, problems)
	}
	restored := &testServer{t: t, dataDir: restoredDir}
	restored.start()
	t.Cleanup(restored.shutdown)
	// The operator's token is in the database: the same token works.
	got := answers(t, restored.client(ts.operatorToken()))
	if got != before && got != after {
		t.Errorf("the restored server answers differently from the original at the backup:\n--- restored\n%s\n--- before\n%s", got, before)
	}

	minted, err := op.TokenService.CreateToken(bg, &fleetscanv1.CreateTokenRequest{Name: "acme-ci", Role: fleetscanv1.TokenRole_TOKEN_ROLE_TENANT, Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	tenant := ts.client(minted.Secret)
	if _, err := tenant.Backup(bg, &bytes.Buffer{}, nil); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a tenant's backup: %v, want PermissionDenied", err)
	}
	events, err := op.AuditService.ListAuditEvents(bg, &fleetscanv1.ListAuditEventsRequest{Method: "Backup"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events.Events) != 2 || events.Events[0].Code != "PermissionDenied" || events.Events[1].Code != "OK" {
		t.Errorf("audit log of backups: %v, want the tenant's refusal and the operator's backup", events.Events)
	}
}

// TestRestoreRefuses: restore leaves the data directory alone when the
// backup has problems or a server is running on it, and keeps the
// database it replaces.
func TestRestoreRefuses(t *testing.T) {
	bboltOnly(t)
	ts := startServer(t)
	op := ts.client(ts.operatorToken())
	var backup bytes.Buffer
	if _, err := op.Backup(context.Background(), &backup, nil); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(t.TempDir(), "good.db")
	if err := os.WriteFile(good, backup.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Restore(context.Background(), ts.dataDir, good, func(server.Problem) {}); err == nil || !strings.Contains(err.Error(), "stop the server") {
		t.Errorf("restore over a running server: %v", err)
	}
	ts.shutdown()

	cut := filepath.Join(t.TempDir(), "cut.db")
	if err := os.WriteFile(cut, backup.Bytes()[:backup.Len()/2], 0o600); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(ts.dataDir, server.DatabaseFile)
	orig, _ := os.ReadFile(live)
	if _, err := server.Restore(context.Background(), ts.dataDir, cut, func(server.Problem) {}); err == nil {
		t.Error("a truncated backup was restored")
	}
	if now, _ := os.ReadFile(live); !bytes.Equal(now, orig) {
		t.Error("a refused restore changed the database")
	}
	r, err := server.Restore(context.Background(), ts.dataDir, good, func(server.Problem) {})
	if err != nil {
		t.Fatal(err)
	}
	if kept, _ := os.ReadFile(r.Previous); !bytes.Equal(kept, orig) {
		t.Errorf("the replaced database was not kept at %q", r.Previous)
	}
}

// bboltOnly skips a test of the bbolt file itself (its backup, restore
// and damage) in the pass of the server's tests on PostgreSQL, whose
// store is backed up with PostgreSQL's own tools (TestBackupOnPostgres).
func bboltOnly(t *testing.T) {
	t.Helper()
	if onPostgres {
		t.Skip("a test of the bbolt file; on PostgreSQL see TestBackupOnPostgres")
	}
}

// TestBackupOnPostgres: the Backup API refuses on a PostgreSQL store and
// says what to use instead.
func TestBackupOnPostgres(t *testing.T) {
	ts := &testServer{t: t, dataDir: t.TempDir(), store: pgtest.Shared(t).CreateDatabase(t, "")}
	ts.start()
	t.Cleanup(ts.shutdown)
	op := ts.client(ts.operatorToken())
	var out bytes.Buffer
	_, err := op.Backup(context.Background(), &out, nil)
	if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "pg_dump") || out.Len() != 0 {
		t.Fatalf("backup of a PostgreSQL store: %v (%d bytes), want Unimplemented naming pg_dump", err, out.Len())
	}
}
