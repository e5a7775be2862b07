package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExitCodes: a CI pipeline reads the exit status. 0: the command ran
// and nothing reached --fail-on; 1: findings at or above --fail-on (see
// TestCLIEndToEnd); 2: anything else went wrong, whatever it was, so that
// a broken pipeline never passes for a finding, nor for a clean run.
func TestExitCodes(t *testing.T) {
	c := startCLI(t)
	dir := t.TempDir()
	c.must("cluster", "register", "acme-prod", "--tenant", "acme", "--join-token-file", filepath.Join(dir, "acme-prod.token"))
	c.must("token", "create", "--name", "acme-ci", "--tenant", "acme", "--secret-file", filepath.Join(dir, "acme.token"))
	c.must("cluster", "register", "damaged-other", "--tenant", "globex", "--join-token-file", filepath.Join(dir, "other.token"))
	tenant := &cli{t: t, addr: c.addr, tok: filepath.Join(dir, "acme.token")}
	garbage := filepath.Join(dir, "garbage.token")
	if err := os.WriteFile(garbage, []byte("fso_not-a-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	refused := &cli{t: t, addr: c.addr, tok: garbage}
	unreachable := &cli{t: t, addr: "127.0.0.1:1", tok: c.tok}

	// A cluster whose worker cannot read all of its snapshot: its job
	// succeeds on the rest, and the scan is incomplete.
	snap := filepath.Join(dir, "damaged")
	if err := os.MkdirAll(snap, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(snap, "pods.yaml"), []byte("apiVersion: v1\nkind: Pod\nmetadata: [not, a, map]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.must("cluster", "register", "damaged", "--tenant", "acme", "--join-token-file", filepath.Join(dir, "damaged.token"))
	c.worker("damaged", filepath.Join(dir, "damaged.token"), snap)

	// An operator's notifier, which the tenant does not see.
	c.must("notifier", "create", "ops", "--webhook", "http://127.0.0.1:1/")

	// A scan that cannot complete: no worker connects, and it is cancelled.
	started := c.must("scan", "start", "--cluster", "acme-prod", "-o", "json")
	scanID := jsonField(t, started, "id")
	c.must("scan", "cancel", scanID)

	tests := []struct {
		name string
		c    *cli
		args []string
		want int
	}{
		{"ran", c, []string{"cluster", "list"}, 0},
		{"help", c, []string{"findings", "list", "--help"}, 0},
		{"no findings at --fail-on", c, []string{"findings", "list", "--fail-on", "low"}, 0},
		{"unknown flag", c, []string{"cluster", "list", "--frobnicate"}, 2},
		{"unknown command", c, []string{"frobnicate"}, 2},
		{"invalid argument", c, []string{"findings", "list", "--severity", "urgent"}, 2},
		{"not found", c, []string{"cluster", "get", "nope"}, 2},
		{"findings of an unknown cluster", c, []string{"findings", "list", "--cluster", "nope"}, 2},
		{"findings of another tenant's cluster", tenant, []string{"findings", "list", "--cluster", "damaged-other"}, 2},
		{"trend of an unknown cluster", c, []string{"trend", "--cluster", "nope"}, 2},
		{"trend of another tenant's cluster", tenant, []string{"trend", "--cluster", "damaged-other"}, 2},
		{"summary of an unknown cluster", c, []string{"summary", "--cluster", "nope"}, 2},
		{"a finding of an unknown cluster", c, []string{"findings", "get", "nope", "0123456789abcdef0123456789abcdef"}, 2},
		// Every command that takes an id says when nothing has it.
		{"update of an unknown cluster", c, []string{"cluster", "update", "nope", "--label", "env=x"}, 2},
		{"token of an unknown cluster", c, []string{"cluster", "rotate-token", "nope"}, 2},
		{"get of an unknown scan", c, []string{"scan", "get", "01HZZZZZZZZZZZZZZZZZZZZZZZ"}, 2},
		{"watch of an unknown scan", c, []string{"scan", "watch", "01HZZZZZZZZZZZZZZZZZZZZZZZ"}, 2},
		{"cancel of an unknown scan", c, []string{"scan", "cancel", "01HZZZZZZZZZZZZZZZZZZZZZZZ"}, 2},
		{"diff of unknown scans", c, []string{"diff", "01HZZZZZZZZZZZZZZZZZZZZZZZ", "01HZZZZZZZZZZZZZZZZZZZZZZY"}, 2},
		{"diff with one unknown scan", c, []string{"diff", scanID, "01HZZZZZZZZZZZZZZZZZZZZZZZ"}, 2},
		{"delete of an unknown schedule", c, []string{"schedule", "delete", "01HZZZZZZZZZZZZZZZZZZZZZZZ"}, 2},
		{"delete of an unknown exception", c, []string{"exception", "delete", "01HZZZZZZZZZZZZZZZZZZZZZZZ"}, 2},
		{"revoke of an unknown token", c, []string{"token", "revoke", "nope"}, 2},
		{"test of an unknown notifier", c, []string{"notifier", "test", "nope"}, 2},
		{"test of another's notifier", tenant, []string{"notifier", "test", "ops"}, 2},
		{"test of a notifier whose receiver does not answer", c, []string{"notifier", "test", "ops"}, 2},
		{"delete of an unknown notifier", c, []string{"notifier", "delete", "nope"}, 2},
		{"deliveries of an unknown notifier", c, []string{"notifier", "deliveries", "--notifier", "nope"}, 2},
		{"deliveries of another's notifier", tenant, []string{"notifier", "deliveries", "--notifier", "ops"}, 2},
		{"unreachable server", unreachable, []string{"cluster", "list"}, 2},
		{"refused token", refused, []string{"cluster", "list"}, 2},
		{"permission denied", tenant, []string{"scan", "start", "--all"}, 2},
		{"timeout", c, []string{"scan", "start", "--cluster", "acme-prod", "--wait", "--timeout", "1s"}, 2},
		{"cancelled scan", c, []string{"scan", "watch", scanID}, 2},
		{"a job that could not read everything", c, []string{"scan", "start", "--cluster", "damaged", "--wait"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.c.run(tt.args...)
			code := 0
			if err != nil {
				code = exitCode(err)
			}
			if code != tt.want {
				t.Errorf("fleetscan %s: exit %d (%v), want %d\n%s", strings.Join(tt.args, " "), code, err, tt.want, out)
			}
		})
	}
}

// jsonField returns a top-level string field of a JSON object.
func jsonField(t *testing.T, doc, field string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("%v:\n%s", err, doc)
	}
	s, _ := m[field].(string)
	if s == "" {
		t.Fatalf("no %q in:\n%s", field, doc)
	}
	return s
}
