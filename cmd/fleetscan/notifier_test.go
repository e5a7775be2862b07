package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetscan/fleetscan/server"
)

// syncBuffer is a buffer that a command writes while the test reads it.
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

// receiving is a `fleetscan notifier receive` running in process.
type receiving struct {
	out, errOut *syncBuffer
	addr        string
}

func (r *receiving) url() string { return "http://" + r.addr + "/hooks/fleetscan" }

// startReceiver runs `fleetscan notifier receive` with args until the test
// ends, and returns once it listens (it writes its --address-file then).
func startReceiver(t *testing.T, args ...string) *receiving {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "receiver.addr")
	r := &receiving{out: &syncBuffer{}, errOut: &syncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"notifier", "receive", "--listen", "127.0.0.1:0", "--address-file", addrFile}, args...), r.out, r.errOut)
	}()
	t.Cleanup(func() {
		cancel()
		// Stopped by its context, as by Ctrl-C: a clean exit.
		if err := <-done; err != nil {
			t.Errorf("notifier receive: %v\n%s", err, r.errOut)
		}
	})
	waitUntil(t, "the receiver's address file", func() bool {
		b, err := os.ReadFile(addrFile)
		r.addr = strings.TrimSpace(string(b))
		return err == nil && r.addr != ""
	}, func() string { return r.errOut.String() })
	if !strings.Contains(r.out.String(), "Receiving on http://"+r.addr+"/") {
		t.Errorf("the receiver does not say where it listens:\n%s", r.out)
	}
	return r
}

// waitUntil polls until done: for what a server does on its own time. The
// bound only turns a hang into a failure that says what it waited for.
func waitUntil(t *testing.T, what string, done func() bool, state func() string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s:\n%s", what, state())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type deliveryJSON struct {
	ID         string `json:"id"`
	NotifierID string `json:"notifierId"`
	EventType  string `json:"eventType"`
	ClusterID  string `json:"clusterId"`
	State      string `json:"state"`
	Attempts   int    `json:"attempts"`
	LastStatus int    `json:"lastStatus"`
	LastError  string `json:"lastError"`
}

func (c *cli) deliveries(args ...string) []deliveryJSON {
	c.t.Helper()
	var resp struct{ Deliveries []deliveryJSON }
	out := c.must(append([]string{"notifier", "deliveries", "-o", "json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		c.t.Fatalf("notifier deliveries -o json: %v\n%s", err, out)
	}
	return resp.Deliveries
}

// TestCLINotifiers drives notifiers through the CLI against a real server,
// with `notifier receive` as their receiver: a real scan's new findings
// reach it signed and are printed with the worst of them; a receiver that
// fails twice gets the event on the third attempt; a notifier with
// another secret is refused 401 and its `notifier test` exits 2; deleting
// a notifier abandons what it still had to send.
func TestCLINotifiers(t *testing.T) {
	c := startCLIWith(t, func(cfg *server.Config) {
		cfg.NotifyBackoff = [2]time.Duration{20 * time.Millisecond, 200 * time.Millisecond}
	})
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "hook.secret")
	// The receiver starts before the notifier whose secret it verifies
	// with, as the docs and the demo do.
	rcv := startReceiver(t, "--secret-file", secretFile, "--fail-first", "2")
	if !strings.Contains(rcv.errOut.String(), "is not there yet") {
		t.Errorf("the receiver does not say its secret file is missing:\n%s", rcv.errOut)
	}

	// Names of events and severities in any case.
	out := c.must("notifier", "create", "ops-hook", "--webhook", rcv.url(), "--secret-file", secretFile,
		"--events", "New-Findings,JOB_FAILED", "--min-severity", "HIGH")
	if !strings.Contains(out, "Created notifier ops-hook") || !strings.Contains(out, "new-findings (high or worse), job-failed") ||
		!strings.Contains(out, "Its signing secret is in "+secretFile) {
		t.Errorf("notifier create:\n%s", out)
	}
	secret, err := os.ReadFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(secretFile); !strings.HasPrefix(string(secret), "whsec_") || info.Mode().Perm() != 0o600 {
		t.Errorf("secret file: %q, mode %v; want whsec_..., 0600", secret, info.Mode().Perm())
	}
	if strings.Contains(out, strings.TrimSpace(string(secret))) {
		t.Errorf("the secret is printed although --secret-file was given:\n%s", out)
	}
	// Printed once, without --secret-file.
	shown := c.must("notifier", "create", "unreachable", "--webhook", "http://127.0.0.1:1/", "--events", "new-findings", "--min-severity", "critical")
	if !strings.Contains(shown, "Signing secret (shown once") || !strings.Contains(shown, "\nwhsec_") {
		t.Errorf("notifier create without --secret-file:\n%s", shown)
	}
	list := c.must("notifier", "list")
	for _, want := range []string{"ops-hook", "unreachable", "webhook", "new-findings,job-failed", rcv.url()} {
		if !strings.Contains(list, want) {
			t.Errorf("notifier list lacks %q:\n%s", want, list)
		}
	}
	if strings.Contains(list, "whsec_") || strings.Contains(c.must("notifier", "list", "-o", "json"), "whsec_") {
		t.Errorf("notifier list shows a secret:\n%s", list)
	}

	// A real scan: its new findings are an event for both notifiers.
	c.must("cluster", "register", "acme-dev", "--tenant", "acme", "--join-token-file", filepath.Join(dir, "acme-dev.token"))
	c.worker("acme-dev", filepath.Join(dir, "acme-dev.token"), filepath.Join("..", "..", "deploy", "demo", "clusters", "acme-dev"))
	if out, errOut, err := c.runBoth("scan", "start", "--all", "--wait", "--timeout", "30s"); err != nil {
		t.Fatalf("scan start: %v\n%s%s", err, out, errOut)
	}
	var ops string // the id of ops-hook
	waitUntil(t, "the new findings delivered to ops-hook", func() bool {
		for _, d := range c.deliveries() {
			if d.EventType == "EVENT_TYPE_NEW_FINDINGS" && d.State == "DELIVERY_STATE_DELIVERED" {
				ops = d.NotifierID
				return true
			}
		}
		return false
	}, func() string { return c.must("notifier", "deliveries") + rcv.out.String() })
	got := rcv.out.String()
	if strings.Count(got, "answered 500 (--fail-first") != 2 || !strings.Contains(got, "2 of 2") {
		t.Errorf("the receiver did not fail the first two requests:\n%s", got)
	}
	if !strings.Contains(got, "dev.fleetscan.findings.new  acme-dev  ") || !strings.Contains(got, "new finding(s) at high or worse (its first scan)") ||
		strings.Contains(got, "(again)") {
		t.Errorf("the receiver's lines:\n%s", got)
	}
	// The worst finding of the scan is the first listed under the event.
	var crit struct {
		Findings []struct{ CheckID string }
	}
	if err := json.Unmarshal([]byte(c.must("findings", "list", "--cluster", "acme-dev", "--severity", "critical", "-o", "json")), &crit); err != nil || len(crit.Findings) == 0 {
		t.Fatalf("acme-dev has no critical finding to look for: %v", err)
	}
	if !slices.ContainsFunc(crit.Findings, func(f struct{ CheckID string }) bool {
		return strings.Contains(got, "\n    CRITICAL  "+f.CheckID+"  ")
	}) {
		t.Errorf("the receiver does not list a critical finding (%s) on a line of its own:\n%s", crit.Findings[0].CheckID, got)
	}
	table := c.must("notifier", "deliveries", "--notifier", "ops-hook")
	row := lineWith(table, "new-findings")
	if f := strings.Fields(row); len(f) < 6 || f[1] != "ops-hook" || f[3] != "acme-dev" || f[4] != "delivered" || atoi(f[5]) < 3 || !strings.Contains(row, "last ") {
		t.Errorf("notifier deliveries: want ops-hook's new-findings of acme-dev delivered at the 3rd attempt:\n%s", table)
	}
	for _, d := range c.deliveries("--notifier", ops) {
		if d.EventType == "EVENT_TYPE_NEW_FINDINGS" && (d.Attempts < 3 || d.LastStatus != 204) {
			t.Errorf("delivery after --fail-first 2: %+v, want 3 attempts or more, the last answered 204", d)
		}
	}

	// notifier test: DELIVERED, printed by the receiver.
	if out := c.must("notifier", "test", "ops-hook"); !strings.HasPrefix(out, "DELIVERED: ops-hook answered 204") {
		t.Errorf("notifier test:\n%s", out)
	}
	if got := rcv.out.String(); !strings.Contains(got, "dev.fleetscan.test  ops-hook  test event for notifier ops-hook") {
		t.Errorf("the receiver did not print the test event:\n%s", got)
	}

	// A notifier signing with another secret is refused 401 with the
	// reason; its test fails, and the command exits 2.
	c.must("notifier", "create", "forged", "--webhook", rcv.url(), "--events", "job-failed", "--secret-file", filepath.Join(dir, "other.secret"))
	out, err = c.run("notifier", "test", "forged")
	// exitCode(nil) is 2 too: the command must fail.
	if err == nil || exitCode(err) != 2 || !strings.HasPrefix(out, "FAILED: 401 Unauthorized: no signature matches") {
		t.Errorf("notifier test of a notifier the receiver refuses: exit %d (%v)\n%s", exitCode(err), err, out)
	}
	if !strings.Contains(rcv.errOut.String(), "(401): no signature matches") || strings.Contains(rcv.out.String(), "notifier forged") {
		t.Errorf("the receiver's refusal:\nstdout:\n%s\nstderr:\n%s", rcv.out, rcv.errOut)
	}
	if failed := c.must("notifier", "deliveries", "--state", "Failed"); lineWith(failed, "forged") == "" || lineWith(failed, "ops-hook") != "" {
		t.Errorf("notifier deliveries --state failed:\n%s", failed)
	}

	// Pages: every delivery, however small the pages.
	all := c.deliveries("--limit", "0")
	deliveriesPage = 1
	paged := c.deliveries("--limit", "0")
	deliveriesPage = 500
	if len(all) < 4 || !slices.EqualFunc(all, paged, func(a, b deliveryJSON) bool { return a.ID == b.ID }) {
		t.Errorf("deliveries a page at a time: %d, want the %d of one page, in the same order", len(paged), len(all))
	}
	if out, note, err := c.runBoth("notifier", "deliveries", "--limit", "2"); err != nil || strings.Count(out, "\n") != 3 || !strings.Contains(note, "the newest 2") {
		t.Errorf("notifier deliveries --limit 2: %v, note %q\n%s", err, note, out)
	}

	// unreachable still tries its event: deleting it abandons it.
	pending := c.deliveries("--state", "pending")
	if len(pending) == 0 {
		t.Fatalf("unreachable has no pending delivery:\n%s", c.must("notifier", "deliveries"))
	}
	if out := c.must("notifier", "delete", "unreachable"); !strings.Contains(out, "Deleted notifier unreachable; 1 pending delivery abandoned") {
		t.Errorf("notifier delete:\n%s", out)
	}
	if d := c.deliveries("--state", "failed"); !slices.ContainsFunc(d, func(d deliveryJSON) bool { return d.ID == pending[0].ID && d.LastError == "notifier deleted" }) {
		t.Errorf("the abandoned delivery is not listed as failed: %+v", d)
	}
	if out := c.must("notifier", "delete", ops); !strings.Contains(out, "Deleted notifier ops-hook; 0 pending deliveries abandoned.") {
		t.Errorf("notifier delete by id:\n%s", out)
	}
	if list := c.must("notifier", "list"); strings.Contains(list, "ops-hook") || strings.Contains(list, "unreachable") || !strings.Contains(list, "forged") {
		t.Errorf("notifier list after deletes:\n%s", list)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// lineWith is the first line of s containing sub.
func lineWith(s, sub string) string {
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			return line
		}
	}
	return ""
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		15 * time.Minute: "15m", 2 * time.Hour: "2h", 90 * time.Minute: "1h30m", 72 * time.Hour: "3d", 90 * time.Second: "1m30s", 36 * time.Hour: "36h",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
