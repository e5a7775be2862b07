package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server"
	"github.com/fleetscan/fleetscan/worker"
)

// cli runs the fleetscan command against a real server on loopback, as a
// user would, and returns stdout.
type cli struct {
	t    *testing.T
	addr string
	tok  string
}

func (c *cli) run(args ...string) (string, error) {
	c.t.Helper()
	out, _, err := c.runBoth(args...)
	return out, err
}

// runBoth returns stdout and stderr.
func (c *cli) runBoth(args ...string) (string, string, error) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	all := append([]string{"--server", c.addr, "--token-file", c.tok, "--plaintext"}, args...)
	err := run(context.Background(), all, &out, &errOut)
	return out.String(), errOut.String(), err
}

func (c *cli) must(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("fleetscan %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func startCLI(t *testing.T) *cli {
	t.Helper()
	return startCLIWith(t, nil)
}

// startCLIWith starts the server with what change makes of its config.
func startCLIWith(t *testing.T, change func(*server.Config)) *cli {
	t.Helper()
	dir := t.TempDir()
	// Never read the developer's own config file.
	t.Setenv("FLEETSCAN_CONFIG", filepath.Join(dir, "config.yaml"))
	ctx, cancel := context.WithCancel(context.Background())
	cfg := server.Config{DataDir: dir, Listen: "127.0.0.1:0", Plaintext: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if change != nil {
		change(&cfg)
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &cli{t: t, addr: srv.Addr().String(), tok: filepath.Join(dir, server.OperatorTokenFile)}
}

func (c *cli) worker(id, tokenFile, snapshot string) {
	c.t.Helper()
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		c.t.Fatal(err)
	}
	w, err := worker.New(worker.Config{
		Server: c.addr, Token: strings.TrimSpace(string(b)), ClusterID: id, Plaintext: true,
		Source: worker.SnapshotSource(snapshot, nil), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	c.t.Cleanup(func() { cancel(); <-done })
}

// TestCLIEndToEnd drives a fleet scan and the history commands through the
// CLI, the way the README shows them.
func TestCLIEndToEnd(t *testing.T) {
	c := startCLI(t)
	tmp := t.TempDir()
	for _, id := range []string{"acme-prod", "globex-prod"} {
		tokenFile := filepath.Join(tmp, id+".token")
		out := c.must("cluster", "register", id, "--tenant", strings.Split(id, "-")[0], "--label", "env=prod", "--join-token-file", tokenFile)
		if !strings.Contains(out, "Registered cluster "+id) {
			t.Fatalf("register output: %s", out)
		}
		if info, err := os.Stat(tokenFile); err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("join token file: %v %v", info, err)
		}
		c.worker(id, tokenFile, filepath.Join("../../deploy/demo/clusters", id))
	}
	out, progress, err := c.runBoth("scan", "start", "--all", "--wait", "--timeout", "30s")
	if err != nil {
		t.Fatalf("scan start --wait: %v\n%s", err, progress)
	}
	if !strings.Contains(out, "succeeded") || !strings.Contains(out, "acme-prod") || !strings.Contains(out, "globex-prod") || !strings.Contains(out, "Not assessable") {
		t.Errorf("scan start --wait output:\n%s", out)
	}
	// Not a terminal: plain progress lines, the last one complete.
	lines := strings.Split(strings.TrimSpace(progress), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "succeeded") || !strings.Contains(last, "2/2 clusters done") || strings.Contains(progress, "\r") {
		t.Errorf("scan start --wait progress on stderr:\n%s", progress)
	}
	var started struct {
		Scans []struct{ ID string }
	}
	if err := json.Unmarshal([]byte(c.must("scan", "list", "-o", "json")), &started); err != nil || len(started.Scans) == 0 {
		t.Fatalf("scan list -o json: %v", err)
	}
	// scan get says in one line what the followed scan listed in full;
	// -o wide lists it.
	shown := c.must("scan", "get", started.Scans[0].ID)
	if strings.Contains(shown, "Not assessable (") || !strings.Contains(shown, "checks were not assessable") {
		t.Errorf("scan get repeats the not-assessable table, or says nothing of it:\n%s", shown)
	}
	if wide := c.must("scan", "get", started.Scans[0].ID, "-o", "wide"); !strings.Contains(wide, "Not assessable (") {
		t.Errorf("scan get -o wide lacks the not-assessable table:\n%s", wide)
	}
	watched, progress, err := c.runBoth("scan", "watch", started.Scans[0].ID)
	if err != nil || !strings.Contains(watched, "succeeded") || !strings.Contains(progress, "2/2 clusters done") {
		t.Errorf("scan watch of a finished scan: %v\n%s\n%s", err, watched, progress)
	}

	var list struct {
		Findings []struct {
			ClusterID   string `json:"clusterId"`
			Fingerprint string `json:"fingerprint"`
			Severity    string `json:"severity"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(c.must("findings", "list", "--severity", "critical", "--limit", "0", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Findings) == 0 {
		t.Fatal("no critical findings listed")
	}
	for _, f := range list.Findings {
		if f.Severity != "SEVERITY_CRITICAL" {
			t.Errorf("--severity critical listed a %s finding", f.Severity)
		}
	}
	got := c.must("findings", "get", list.Findings[0].ClusterID, list.Findings[0].Fingerprint)
	if !strings.Contains(got, "Seen by 1 scan(s)") {
		t.Errorf("findings get:\n%s", got)
	}
	if out := c.must("trend", "--fleet", "--since", "7d"); !strings.Contains(out, "open findings") || !strings.Contains(out, "score") {
		t.Errorf("trend:\n%s", out)
	}
	cmp := c.must("compare", "--selector", "env=prod")
	if lines := strings.Split(cmp, "\n"); len(lines) < 4 || !strings.Contains(lines[0], "worst first") || !strings.Contains(lines[2], "globex-prod") {
		t.Errorf("compare should say which end is worst and rank globex-prod (the worse) first:\n%s", cmp)
	}
	// Nothing was scanned 90 minutes ago: every cluster is new since.
	if out := c.must("compare", "--since", "90m"); !strings.Contains(out, "SCORE 90m AGO") || !strings.Contains(out, "new") || !strings.Contains(out, "No cluster's score fell in the last 90m") {
		t.Errorf("compare --since:\n%s", out)
	}
	if out := c.must("summary", "--tenant", "acme"); !strings.Contains(out, "1 of 1 clusters scanned") || !strings.Contains(out, "TITLE") || !strings.Contains(out, "SEVERITY") {
		t.Errorf("summary (with check titles):\n%s", out)
	}
	sched := c.must("schedule", "create", "0 3 * * *", "--selector", "env=prod", "--jitter", "5m")
	if !strings.Contains(sched, "Created schedule") {
		t.Errorf("schedule create: %s", sched)
	}
	if out := c.must("schedule", "list"); !strings.Contains(out, "0 3 * * *") {
		t.Errorf("schedule list:\n%s", out)
	}
	// Output formats and CI exit codes.
	if out := c.must("findings", "list", "--cluster", "acme-prod", "-o", "yaml"); !strings.Contains(out, "findings:") || !strings.Contains(out, "checkId:") {
		t.Errorf("-o yaml:\n%.300s", out)
	}
	if out := c.must("findings", "list", "--limit", "5", "-o", "wide"); !strings.Contains(out, "FINGERPRINT") {
		t.Errorf("-o wide:\n%s", out)
	}
	var sarif struct {
		Version string `json:"version"`
		Runs    []struct {
			Results []json.RawMessage `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(c.must("findings", "list", "--severity", "high", "-o", "sarif")), &sarif); err != nil || sarif.Version != "2.1.0" || len(sarif.Runs[0].Results) == 0 {
		t.Errorf("-o sarif: %v %+v", err, sarif)
	}
	// Reports for tools are never cut at the table's default --limit of
	// 100: globex-prod alone has more open findings than that.
	var all struct {
		Findings []struct {
			Location string `json:"location"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(c.must("findings", "list", "--cluster", "globex-prod", "-o", "json")), &all); err != nil || len(all.Findings) <= 100 {
		t.Fatalf("-o json: %v, %d findings; want every one of them, more than 100", err, len(all.Findings))
	}
	if err := json.Unmarshal([]byte(c.must("findings", "list", "--cluster", "globex-prod", "-o", "sarif")), &sarif); err != nil || len(sarif.Runs[0].Results) != len(all.Findings) {
		t.Errorf("-o sarif: %v, %d results; want all %d findings", err, len(sarif.Runs[0].Results), len(all.Findings))
	}
	// The worker read a snapshot: findings say where each object is
	// defined, and SARIF places them there.
	located := 0
	for _, f := range all.Findings {
		if strings.Contains(f.Location, "globex-prod/") && strings.Contains(f.Location, ".yaml:") {
			located++
		}
	}
	if located < len(all.Findings)/2 {
		t.Errorf("%d of %d findings carry the manifest location", located, len(all.Findings))
	}
	table, note, err := c.runBoth("findings", "list", "--cluster", "globex-prod")
	if err != nil || !strings.Contains(note, "the worst 100 of") || strings.Count(table, "\n") > 102 {
		t.Errorf("table: %v, note %q, %d lines", err, note, strings.Count(table, "\n"))
	}
	if _, err := c.run("cluster", "list", "-o", "sarif"); err == nil {
		t.Error("-o sarif accepted for cluster list")
	}
	_, err = c.run("findings", "list", "--fail-on", "critical")
	if exitCode(err) != 1 {
		t.Errorf("--fail-on critical with critical findings: %v (exit %d), want exit 1", err, exitCode(err))
	}
	if _, err := c.run("findings", "list", "--cluster", "acme-prod", "--fail-on", "critical"); err != nil {
		t.Errorf("--fail-on critical on a cluster without criticals: %v", err)
	}
	scans := c.must("scan", "list")
	if !strings.Contains(scans, "succeeded") {
		t.Errorf("scan list:\n%s", scans)
	}
}

// TestCLITenantToken: an operator mints a tenant token and shares a
// provider cluster's namespace; the tenant's CLI sees that and its own
// cluster, and is refused operator commands.
func TestCLITenantToken(t *testing.T) {
	c := startCLI(t)
	dir := t.TempDir()
	for _, args := range [][]string{
		{"cluster", "register", "acme-prod", "--tenant", "acme", "--join-token-file", filepath.Join(dir, "acme-prod.token")},
		{"cluster", "register", "globex-prod", "--tenant", "globex", "--join-token-file", filepath.Join(dir, "globex-prod.token")},
		{"cluster", "register", "shared", "--join-token-file", filepath.Join(dir, "shared.token")},
		{"cluster", "update", "shared", "--grant", "acme=storefront"},
		{"token", "create", "--name", "acme-ci", "--tenant", "acme", "--secret-file", filepath.Join(dir, "acme.token")},
	} {
		c.must(args...)
	}
	if got := c.must("cluster", "get", "shared"); !strings.Contains(got, "acme=storefront") {
		t.Errorf("cluster get shows no grant:\n%s", got)
	}
	c.must("exception", "create", "--cluster", "acme-prod", "--check", "POD-020", "--ttl", "24h", "--reason", "AppArmor not on these nodes")
	if got := c.must("exception", "list"); !strings.Contains(got, "check=POD-020") || !strings.Contains(got, "active") || !strings.Contains(got, "AppArmor") {
		t.Errorf("exception list:\n%s", got)
	}
	if _, err := c.run("exception", "create", "--cluster", "acme-prod", "--reason", "x"); err == nil || !strings.Contains(err.Error(), "ttl") {
		t.Errorf("exception without --ttl: %v", err)
	}
	if got := c.must("token", "list"); !strings.Contains(got, "acme-ci") || !strings.Contains(got, "tenant") {
		t.Errorf("token list:\n%s", got)
	}
	tenant := &cli{t: t, addr: c.addr, tok: filepath.Join(dir, "acme.token")}
	got := tenant.must("cluster", "list")
	if !strings.Contains(got, "acme-prod") || !strings.Contains(got, "shared") || strings.Contains(got, "globex") {
		t.Errorf("the tenant's cluster list:\n%s", got)
	}
	if _, err := tenant.run("scan", "start", "--all"); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Errorf("a tenant starting a scan: %v, want 'not allowed'", err)
	}
	if _, err := tenant.run("cluster", "get", "globex-prod"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("a tenant getting another's cluster: %v, want not found", err)
	}
	var list struct {
		Tokens []struct{ ID, Name string }
	}
	if err := json.Unmarshal([]byte(c.must("token", "list", "-o", "json")), &list); err != nil {
		t.Fatalf("token list -o json: %v", err)
	}
	id := ""
	for _, tok := range list.Tokens {
		if tok.Name == "acme-ci" {
			id = tok.ID
		}
	}
	c.must("token", "revoke", id)
	if _, err := tenant.run("cluster", "list"); err == nil {
		t.Error("a revoked token still works")
	}
}

func TestCLIErrorsSayWhatToDo(t *testing.T) {
	c := startCLI(t)
	garbage := filepath.Join(t.TempDir(), "garbage.secret")
	if err := os.WriteFile(garbage, []byte("not a secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"scan", "start"}, "give one target"},
		{[]string{"scan", "start", "--all", "--tenant", "acme"}, "give one target"},
		{[]string{"scan", "start", "--selector", "env in prod"}, "label_selector"},
		{[]string{"scan", "start", "--tenant", "nobody"}, "no registered cluster matches"},
		{[]string{"trend", "--fleet", "--cluster", "x"}, "give one of --cluster"},
		{[]string{"trend", "--fleet", "--since", "soon"}, "--since"},
		{[]string{"findings", "list", "--severity", "urgent"}, "--severity"},
		{[]string{"cluster", "get", "nope"}, "not found"},
		{[]string{"compare", "--selector", "env in prod"}, "label_selector"},
		{[]string{"cluster", "list", "-o", "xml"}, "--output"},
		{[]string{"notifier", "create", "n"}, "give one of --webhook URL"},
		{[]string{"notifier", "create", "n", "--webhook", "https://a.example/", "--slack", "https://hooks.slack.com/x"}, "give one of --webhook URL"},
		{[]string{"notifier", "create", "n", "--slack", "https://hooks.slack.com/x", "--secret-file", "x"}, "a Slack notifier has no signing secret"},
		{[]string{"notifier", "create", "n", "--webhook", "https://a.example/", "--events", "new-findings,everything"},
			`--events "everything": use new-findings, score-dropped, job-failed, worker-offline or exception-expiring`},
		{[]string{"notifier", "create", "n", "--webhook", "https://a.example/", "--min-severity", "urgent"}, "use info, low, medium, high or critical"},
		{[]string{"notifier", "create", "n", "--webhook", "https://a.example/", "--score-drop", "0"}, "--score-drop 0: 1 to 100"},
		{[]string{"notifier", "create", "n", "--webhook", "http://a.example/"}, "want https, or http to a loopback address"},
		{[]string{"notifier", "deliveries", "--state", "done"}, `--state "done": use pending, delivered or failed`},
		{[]string{"notifier", "receive"}, `"secret-file" not set`},
		{[]string{"notifier", "receive", "--secret-file", garbage}, "not whsec_ and base64"},
		{[]string{"notifier", "receive", "--secret-file", garbage + ".missing", "--listen", "127.0.0.1:65536"}, "--listen"},
	}
	for _, tt := range tests {
		_, err := c.run(tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("fleetscan %s: got %v, want an error mentioning %q", strings.Join(tt.args, " "), err, tt.want)
		}
	}
	bad := &cli{t: t, addr: "127.0.0.1:1", tok: c.tok}
	if _, err := bad.run("cluster", "list"); err == nil || !strings.Contains(err.Error(), "is fleetscan-server running") {
		t.Errorf("unreachable server: %v", err)
	}
}

// TestConfigContexts: a saved context supplies the server and credentials;
// flags still win over it.
func TestConfigContexts(t *testing.T) {
	c := startCLI(t)
	var out bytes.Buffer
	runRaw := func(args ...string) error {
		out.Reset()
		return run(context.Background(), args, &out, io.Discard)
	}
	if err := runRaw("config", "set-context", "local", "--server", c.addr, "--token-file", c.tok, "--plaintext"); err != nil {
		t.Fatal(err)
	}
	if err := runRaw("config", "set-context", "elsewhere", "--server", "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	if err := runRaw("cluster", "list"); err != nil {
		t.Fatalf("cluster list through the first (current) context: %v", err)
	}
	if err := runRaw("config", "use-context", "elsewhere"); err != nil {
		t.Fatal(err)
	}
	if err := runRaw("cluster", "list"); err == nil {
		t.Error("the current context's unreachable server was not used")
	}
	if err := runRaw("--context", "local", "cluster", "list"); err != nil {
		t.Errorf("--context local: %v", err)
	}
	if err := runRaw("--server", c.addr, "--token-file", c.tok, "--plaintext", "cluster", "list"); err != nil {
		t.Errorf("flags over the context: %v", err)
	}
	if err := runRaw("config", "get-contexts"); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if fields := strings.Fields(line); len(fields) > 1 && (fields[1] == "elsewhere") != (fields[0] == "*") {
			t.Errorf("get-contexts marks the wrong current context:\n%s", out.String())
		}
	}
	if err := runRaw("--context", "nope", "cluster", "list"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown context: %v", err)
	}
}

// TestCLIBackup: admin backup writes a whole database file that the
// server's check accepts, only under the name asked for; without -o it is
// a usage error (exit 2) and writes nothing.
func TestCLIBackup(t *testing.T) {
	c := startCLI(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "fleetscan-backup.db")
	out := c.must("admin", "backup", "-o", file)
	if !strings.Contains(out, "wrote "+file) {
		t.Errorf("admin backup said %q", out)
	}
	var problems []string
	st, err := server.CheckDatabase(context.Background(), file, func(p server.Problem) { problems = append(problems, p.String()) })
	if err != nil || len(problems) > 0 || st.Records == 0 {
		t.Fatalf("check of the backup: %v %v (%d records)", err, problems, st.Records)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("backup left %d files in its directory, want just the backup", len(entries))
	}
	if _, err := c.run("admin", "backup"); exitCode(err) != 2 {
		t.Errorf("admin backup without -o: exit %d (%v), want 2", exitCode(err), err)
	}
}

// TestWaitNamesWhatItWaitsFor: a wait that runs out names the clusters not
// done and why (exit 2), not "the server"; the default wait follows the
// server's job timeout.
func TestWaitNamesWhatItWaitsFor(t *testing.T) {
	c := startCLI(t)
	dir := t.TempDir()
	c.must("cluster", "register", "acme-prod", "--tenant", "acme", "--join-token-file", filepath.Join(dir, "acme-prod.token"))
	c.must("cluster", "register", "acme-edge", "--tenant", "acme", "--join-token-file", filepath.Join(dir, "acme-edge.token"))
	c.worker("acme-prod", filepath.Join(dir, "acme-prod.token"), filepath.Join("..", "..", "deploy", "demo", "clusters", "acme-prod"))
	// acme-edge's worker never connects, however long the wait: the short
	// timeout is the expected outcome, not a race.
	out, errOut, err := c.runBoth("scan", "start", "--cluster", "acme-prod", "--cluster", "acme-edge", "--wait", "--timeout", "1s")
	if exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), "acme-edge: pending: its worker never connected") {
		t.Fatalf("scan start --wait with a worker that never connects: exit %d, %v\n%s%s", exitCode(err), err, out, errOut)
	}
	if strings.Contains(err.Error(), "the server") {
		t.Errorf("the timeout blames the server: %v", err)
	}
	// While it waits, the log names the cluster it waits for, and why.
	if !strings.Contains(errOut, "waiting for acme-edge: pending: its worker never connected") {
		t.Errorf("the wait's progress does not name acme-edge:\n%s", errOut)
	}

	for _, tt := range []struct {
		jobTimeout, asked, want time.Duration
	}{
		{2 * time.Hour, 0, 2*time.Hour + time.Minute},
		{0, 0, time.Hour + time.Minute},
		{2 * time.Hour, 5 * time.Minute, 5 * time.Minute},
	} {
		scan := &fleetscanv1.Scan{}
		if tt.jobTimeout > 0 {
			scan.JobTimeout = durationpb.New(tt.jobTimeout)
		}
		if got := waitFor(scan, tt.asked); got != tt.want {
			t.Errorf("waitFor(job timeout %v, asked %v) = %v, want %v", tt.jobTimeout, tt.asked, got, tt.want)
		}
	}
}
