package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/fleetscan/fleetscan/worker/catalog"
)

const demo = "../../deploy/demo/clusters/"

func TestScanFailOn(t *testing.T) {
	tests := []struct {
		snapshot, failOn string
		want             error
	}{
		{"acme-prod", "critical", nil},
		{"acme-prod", "high", errThreshold},
		{"globex-prod", "critical", errThreshold},
		{"globex-prod", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.snapshot+"/"+tt.failOn, func(t *testing.T) {
			args := []string{"scan", "--snapshot", demo + tt.snapshot, "-o", "json"}
			if tt.failOn != "" {
				args = append(args, "--fail-on", tt.failOn)
			}
			var out bytes.Buffer
			err := run(context.Background(), args, &out, io.Discard)
			if !errors.Is(err, tt.want) && !(err == nil && tt.want == nil) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if code := exitCode(err); err != nil && code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			var doc struct {
				Findings []struct {
					CheckID     string `json:"checkId"`
					Fingerprint string `json:"fingerprint"`
				} `json:"findings"`
				NotAssessable []struct{ CheckID string } `json:"notAssessable"`
			}
			if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
				t.Fatalf("-o json is not JSON: %v\n%s", err, out.String())
			}
			if len(doc.Findings) == 0 || len(doc.NotAssessable) == 0 || len(doc.Findings[0].Fingerprint) != 32 {
				t.Errorf("json report: %d findings, %d not assessable", len(doc.Findings), len(doc.NotAssessable))
			}
		})
	}
}

// TestScanSARIF checks the parts of SARIF 2.1.0 that code-scanning tools
// require: version, one run with a driver and its rules, results that
// name a rule by id and index, a level, a message and a location.
func TestScanSARIF(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"scan", "--snapshot", demo + "acme-dev", "-o", "sarif"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var log struct {
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name  string `json:"name"`
					Rules []struct {
						ID string `json:"id"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    string `json:"ruleId"`
				RuleIndex int    `json:"ruleIndex"`
				Level     string `json:"level"`
				Message   struct {
					Text string `json:"text"`
				} `json:"message"`
				Locations []struct {
					Physical struct {
						Artifact struct {
							URI string `json:"uri"`
						} `json:"artifactLocation"`
						Region struct {
							StartLine int `json:"startLine"`
						} `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
				PartialFingerprints map[string]string `json:"partialFingerprints"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(out.Bytes(), &log); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || log.Runs[0].Tool.Driver.Name != "fleetscan" {
		t.Fatalf("header: %+v", log)
	}
	run := log.Runs[0]
	rules := run.Tool.Driver.Rules
	if len(run.Results) == 0 {
		t.Fatal("no results")
	}
	for _, r := range run.Results {
		if r.RuleIndex >= len(rules) || rules[r.RuleIndex].ID != r.RuleID {
			t.Fatalf("result %s points at rule %d", r.RuleID, r.RuleIndex)
		}
		if r.Level == "" || r.Message.Text == "" || r.PartialFingerprints["fleetscan/v1"] == "" {
			t.Errorf("incomplete result %+v", r)
		}
		// Findings on objects point at their file and line; a finding about
		// something absent from the snapshot (no admission webhook…) at a
		// URI that names it: every result is placeable.
		loc := r.Locations[0].Physical
		inFile := strings.HasPrefix(loc.Artifact.URI, demo+"acme-dev/") && loc.Region.StartLine >= 1
		named := strings.HasPrefix(loc.Artifact.URI, "kubernetes/local/") && !strings.HasPrefix(r.RuleID, "POD-")
		if !inFile && !named {
			t.Errorf("%s: location %+v does not point into the snapshot", r.RuleID, loc)
		}
	}
}

func TestScanUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"scan", "--snapshot", demo + "acme-dev", "-o", "xml"},
		{"scan", "--snapshot", demo + "acme-dev", "--fail-on", "severe"},
		{"scan", "--snapshot", demo + "acme-dev", "--checks", "NOPE-1"},
		{"scan", "--snapshot", "/nonexistent"},
	} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		if err == nil || exitCode(err) != 2 {
			t.Errorf("%q: got %v (exit %d), want a usage error with exit 2", args, err, exitCode(err))
		}
	}
}

// TestHelpExitsZero: --help is not an error, for the daemon and for scan.
func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"scan", "--help"}} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		if code := exitCode(err); code != 0 {
			t.Errorf("%q: exit %d (%v), want 0", args, code, err)
		}
	}
}

// TestDemoReadmeCounts keeps the severity table of deploy/demo/README.md
// true to what a scan of each demo snapshot finds.
func TestDemoReadmeCounts(t *testing.T) {
	readme, err := os.ReadFile("../../deploy/demo/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, cluster := range []string{"acme-prod", "acme-dev", "globex-prod"} {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"scan", "--snapshot", demo + cluster, "-o", "json"}, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Findings []struct{ Severity, Status string } `json:"findings"`
		}
		if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		counts := map[string]int{}
		for _, f := range doc.Findings {
			if f.Status == "FINDING_STATUS_OPEN" {
				counts[f.Severity]++
			}
		}
		row := fmt.Sprintf("| `%s` | %d | %d | %d | %d | %d |", cluster,
			counts["SEVERITY_CRITICAL"], counts["SEVERITY_HIGH"], counts["SEVERITY_MEDIUM"], counts["SEVERITY_LOW"], len(doc.Findings))
		if !strings.Contains(string(readme), row) {
			t.Errorf("deploy/demo/README.md lacks the row %s", row)
		}
	}
}

// TestScanIncompleteSnapshot: a snapshot part of which cannot be read (a
// document that does not decode, a named pipe) is still scanned, its
// findings reported, and what was not read listed in every format; the
// scan exits 2 even with --fail-on and findings above it, since a gate
// that saw less than everything must not pass, nor report a finding as
// the reason it failed.
func TestScanIncompleteSnapshot(t *testing.T) {
	dir := t.TempDir()
	pod := "apiVersion: v1\nkind: Pod\nmetadata: {name: debug, namespace: shop}\nspec:\n  hostPID: true\n  containers:\n    - {name: app, image: nginx:1.27, securityContext: {privileged: true}}\n"
	if err := os.WriteFile(dir+"/pods.yaml", []byte(pod+"---\napiVersion: v1\nkind: Pod\nmetadata: [not, a, map]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(dir+"/pipe.yaml", 0o644); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"table", "json", "sarif"} {
		t.Run(format, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), []string{"scan", "--snapshot", dir, "-o", format, "--fail-on", "low"}, &out, io.Discard)
			if !errors.Is(err, errIncomplete) || exitCode(err) != 2 {
				t.Fatalf("got %v (exit %d), want the scan incomplete, exit 2", err, exitCode(err))
			}
			report := out.String()
			for _, want := range []string{"POD-001", "pods.yaml:9", "pipe.yaml: not a regular file"} {
				if !strings.Contains(report, want) {
					t.Errorf("the %s report lacks %q:\n%s", format, want, report)
				}
			}
			switch format {
			case "json":
				var doc struct{ Problems []string }
				if err := json.Unmarshal(out.Bytes(), &doc); err != nil || len(doc.Problems) != 2 {
					t.Errorf("json problems: %v %q", err, doc.Problems)
				}
			case "sarif":
				inv := sarifInvocation(t, out.Bytes())
				if inv.ExecutionSuccessful || len(inv.ToolExecutionNotifications) != 2 || inv.ToolExecutionNotifications[0].Level != "error" {
					t.Errorf("sarif invocation: %+v", inv)
				}
			}
		})
	}
}

// TestScanListsWhatItDoesNotCheck: a privileged CronJob written in a
// removed version, an Argo Rollout and a ReplicationController fail the
// gate like their current kinds; the documents no check reads are listed
// in each format, with where and why, and do not make the scan
// incomplete. Before, the CronJob scanned as "0 objects" and --fail-on
// high exited 0.
func TestScanListsWhatItDoesNotCheck(t *testing.T) {
	dir := t.TempDir()
	privileged := "{containers: [{name: app, image: nginx:1.27, securityContext: {privileged: true}}]}"
	manifests := "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: nightly, namespace: shop}\n" +
		"spec: {schedule: '0 3 * * *', jobTemplate: {spec: {template: {spec: {hostPID: true, restartPolicy: Never, containers: [{name: app, image: nginx:1.27, securityContext: {privileged: true}}]}}}}}\n" +
		"---\napiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: canary, namespace: shop}\nspec: {template: {spec: " + privileged + "}}\n" +
		"---\napiVersion: v1\nkind: ReplicationController\nmetadata: {name: old, namespace: shop}\nspec: {template: {spec: " + privileged + "}}\n" +
		"---\napiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: shop}\n" +
		"---\napiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: tls, namespace: shop}\nspec: {secretName: tls}\n"
	if err := os.WriteFile(dir+"/all.yaml", []byte(manifests), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"table", "json", "sarif"} {
		t.Run(format, func(t *testing.T) {
			var out, stderr bytes.Buffer
			err := run(context.Background(), []string{"scan", "--snapshot", dir, "-o", format, "--fail-on", "high", "--checks", "POD-001,POD-003"}, &out, &stderr)
			if !errors.Is(err, errThreshold) || exitCode(err) != 1 {
				t.Fatalf("got %v (exit %d), want findings at high, exit 1", err, exitCode(err))
			}
			report := out.String()
			for _, want := range []string{"CronJob", "nightly", "Rollout", "canary", "ReplicationController", "old", "all.yaml:16", "Secret", "all.yaml:20", "Certificate"} {
				if !strings.Contains(report, want) {
					t.Errorf("the %s report lacks %q:\n%s", format, want, report)
				}
			}
			if !strings.Contains(stderr.String(), "2 documents not checked") {
				t.Errorf("stderr: %s", stderr.String())
			}
			switch format {
			case "table":
				if !strings.Contains(report, "1 × v1 Secret: no check reads this kind (") {
					t.Errorf("table does not group the unchecked:\n%s", report)
				}
			case "json":
				var doc struct {
					Findings  []struct{ CheckID string }
					Unchecked []catalog.Unchecked
				}
				if err := json.Unmarshal(out.Bytes(), &doc); err != nil || len(doc.Findings) != 4 || len(doc.Unchecked) != 2 {
					t.Fatalf("json: %v, %d findings, unchecked %+v", err, len(doc.Findings), doc.Unchecked)
				}
				if u := doc.Unchecked[0]; u.Location != dir+"/all.yaml:16" || u.Kind != "Secret" || u.Name != "db" || u.Reason != catalog.ReasonNoChecks {
					t.Errorf("json unchecked[0] = %+v", u)
				}
			case "sarif":
				inv := sarifInvocation(t, out.Bytes())
				if !inv.ExecutionSuccessful || len(inv.ToolExecutionNotifications) != 2 || inv.ToolExecutionNotifications[0].Level != "note" {
					t.Errorf("sarif invocation: %+v", inv)
				}
			}
		})
	}
}

// sarifInvocation returns what a SARIF report says of its run.
func sarifInvocation(t *testing.T, report []byte) (inv struct {
	ExecutionSuccessful        bool
	ToolExecutionNotifications []struct{ Level string }
}) {
	t.Helper()
	var doc struct {
		Runs []struct{ Invocations []json.RawMessage }
	}
	if err := json.Unmarshal(report, &doc); err != nil || len(doc.Runs) != 1 || len(doc.Runs[0].Invocations) != 1 {
		t.Fatalf("SARIF runs: %v", err)
	}
	if err := json.Unmarshal(doc.Runs[0].Invocations[0], &inv); err != nil {
		t.Fatal(err)
	}
	return inv
}

// TestFlagSpellings: the scan takes GNU flags, the single-dash spellings
// of earlier releases and environment variables alike, with the command
// line winning.
func TestFlagSpellings(t *testing.T) {
	findings := func(args ...string) int {
		t.Helper()
		var out bytes.Buffer
		if err := run(context.Background(), append([]string{"scan"}, args...), &out, io.Discard); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		var doc struct{ Findings []json.RawMessage }
		if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
			t.Fatalf("%q: output is not JSON: %v", args, err)
		}
		return len(doc.Findings)
	}
	all := findings("--snapshot", demo+"acme-dev", "--output", "json")
	if got := findings("-snapshot", demo+"acme-dev", "-o", "json"); got != all {
		t.Errorf("single-dash spellings: %d findings, want %d", got, all)
	}
	t.Setenv("FLEETSCAN_WORKER_SNAPSHOT", demo+"acme-dev")
	t.Setenv("FLEETSCAN_WORKER_OUTPUT", "json")
	if got := findings(); got != all {
		t.Errorf("from the environment: %d findings, want %d", got, all)
	}
	t.Setenv("FLEETSCAN_WORKER_CHECKS", "POD-001")
	if got := findings("--checks", ""); got != all {
		t.Errorf("--checks '' over $FLEETSCAN_WORKER_CHECKS: %d findings, want all %d", got, all)
	}
	if got := findings(); got >= all {
		t.Errorf("$FLEETSCAN_WORKER_CHECKS=POD-001: %d findings, want fewer than %d", got, all)
	}
}

// TestMaxDocumentSize: a document over --max-document-size is reported
// with its file and line and skipped (exit 2: the scan is incomplete);
// the documents around it are scanned.
func TestMaxDocumentSize(t *testing.T) {
	dir := t.TempDir()
	small := "apiVersion: v1\nkind: Pod\nmetadata: {name: small, namespace: shop}\nspec:\n  containers:\n    - {name: app, image: nginx:1.27, securityContext: {privileged: true}}\n"
	big := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big, namespace: shop}\ndata:\n  blob: \"" + strings.Repeat("x", 4096) + "\"\n"
	if err := os.WriteFile(dir+"/all.yaml", []byte(big+"---\n"+small), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"scan", "--snapshot", dir, "--max-document-size", "2KiB", "-o", "json"}, &out, io.Discard)
	if !errors.Is(err, errIncomplete) || exitCode(err) != 2 {
		t.Fatalf("got %v (exit %d), want the scan incomplete, exit 2", err, exitCode(err))
	}
	for _, want := range []string{"all.yaml:1", "--max-document-size", `"name":"small"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"scan", "--snapshot", dir, "-o", "json"}, &out, io.Discard); err != nil {
		t.Errorf("with the default limit: %v", err)
	}
}
