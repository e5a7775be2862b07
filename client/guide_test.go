package client_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fleetscan/fleetscan/client"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server"
	"github.com/fleetscan/fleetscan/worker"
)

// TestTenantGuideGoProgram: the Go program of docs/tenant-guide.md, as it
// stands there, builds and lists a tenant's critical findings from a real
// server over TLS: what a tenant copying it gets.
func TestTenantGuideGoProgram(t *testing.T) {
	guide, err := os.ReadFile("../docs/tenant-guide.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```go\n(.*?)```").FindSubmatch(guide)
	if m == nil {
		t.Fatal("no Go program in docs/tenant-guide.md")
	}
	// Inside the module, so that its imports resolve to this tree.
	dir, err := os.MkdirTemp("..", ".guide-program-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "main.go"), m[1], 0o600); err != nil {
		t.Fatal(err)
	}

	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(ctx, server.Config{DataDir: data, Listen: "127.0.0.1:0", DevTLS: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	ca := filepath.Join(data, "tls", "ca.crt")
	op, err := client.New(srv.Addr().String(), client.WithTokenFile(filepath.Join(data, server.OperatorTokenFile)), client.WithCAFile(ca))
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	reg, err := op.ClusterService.RegisterCluster(ctx, &fleetscanv1.RegisterClusterRequest{ClusterId: "globex-prod", Tenant: "globex"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{Server: srv.Addr().String(), CAFile: ca, Token: reg.JoinToken, ClusterID: "globex-prod",
		Source: worker.SnapshotSource("../deploy/demo/clusters/globex-prod", nil), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWorker := context.WithCancel(ctx)
	wdone := make(chan error, 1)
	go func() { wdone <- w.Run(wctx) }()
	defer func() { stopWorker(); <-wdone }()
	started, err := op.ScanService.StartScan(ctx, &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{ClusterIds: []string{"globex-prod"}}})
	if err != nil {
		t.Fatal(err)
	}
	scan, err := op.WaitScan(ctx, started.Scan.Id, 0, nil)
	if err != nil || scan.Findings.GetCritical() == 0 {
		t.Fatalf("scan: %v, %d critical; the program needs some to list", err, scan.GetFindings().GetCritical())
	}
	minted, err := op.TokenService.CreateToken(ctx, &fleetscanv1.CreateTokenRequest{Name: "globex-ci", Role: fleetscanv1.TokenRole_TOKEN_ROLE_TENANT, Tenant: "globex"})
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "globex-ci.token")
	if err := os.WriteFile(tokenFile, []byte(minted.Secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("go", "run", "./"+filepath.Base(dir))
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "FLEETSCAN_SERVER="+srv.Addr().String(), "FLEETSCAN_TOKEN_FILE="+tokenFile, "FLEETSCAN_CA="+ca)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run of the guide's program: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if int64(len(lines)) != scan.Findings.GetCritical() || !strings.HasPrefix(lines[0], "globex-prod ") {
		t.Errorf("the guide's program printed %d lines for %d critical findings:\n%s", len(lines), scan.Findings.GetCritical(), out)
	}
}
