package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/fleetscan/fleetscan/cmd/internal/bytesize"
	"github.com/fleetscan/fleetscan/cmd/internal/flagset"
	"github.com/fleetscan/fleetscan/cmd/internal/memlimit"
	"github.com/fleetscan/fleetscan/cmd/internal/report"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/worker"
	"github.com/fleetscan/fleetscan/worker/catalog"
	"github.com/fleetscan/fleetscan/worker/checks"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// errThreshold: findings reached --fail-on; the exit code says so.
var errThreshold = errors.New("findings at or above the --fail-on severity")

// errIncomplete: part of the input could not be read; exit 2.
var errIncomplete = errors.New("scan incomplete")

// runScan is `fleetscan-worker scan`: the checks on manifests or a cluster,
// without a server, for CI pipelines and air-gapped use.
func runScan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagset.New("fleetscan-worker scan", "FLEETSCAN_WORKER_")
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: fleetscan-worker scan (--snapshot DIR | --kubeconfig F [--context C]) [flags]

Runs fleetscan's checks once, without a server, and writes the findings to
stdout as they are found. Exit status: 0 when no finding reaches
--fail-on, 1 when one does, 2 on errors. Suppressed findings (objects with
a fleetscan.io/exempt annotation) are listed but never fail the run.

Examples:
  fleetscan-worker scan --snapshot ./manifests
  fleetscan-worker scan --snapshot ./manifests -o sarif > fleetscan.sarif
  fleetscan-worker scan --kubeconfig ~/.kube/config --fail-on high -o json
  fleetscan-worker scan --snapshot ./manifests --policies deploy/examples/policies

Flags:
`)
		fs.PrintDefaults()
	}
	snapshot := fs.String("snapshot", "", "directory of YAML/JSON manifests to scan")
	kubeconfig := fs.String("kubeconfig", "", "scan the cluster of this kubeconfig")
	kubeContext := fs.String("context", "", "kubeconfig context")
	output := fs.StringP("output", "o", "table", "output: "+strings.Join(report.Formats, ", "))
	failOn := fs.String("fail-on", "", "exit 1 when a finding has this severity or worse: info, low, medium, high, critical")
	include := fs.String("checks", "", "comma-separated check ids to run (default: all)")
	exclude := fs.String("exclude-checks", "", "comma-separated check ids to skip")
	namespaces := fs.String("namespaces", "", "comma-separated namespaces to scan (default: all)")
	clusterID := fs.String("cluster-id", "local", "cluster id the fingerprints are computed for")
	policies := fs.String("policies", "", "custom checks in CEL: a CheckPolicy YAML file or a directory of them")
	trusted := fs.String("trusted-registries", "", "comma-separated registries images may come from, e.g. registry.example.com,docker.io/library (IMG-003)")
	denied := fs.String("denied-registries", "", "comma-separated registries images must not come from, e.g. docker.io,quay.io/untrusted (IMG-005; k8s.gcr.io is always reported)")
	pageSize := fs.Int64("page-size", worker.DefaultPageSize, "objects per List call")
	kubeQPS := fs.Float32("kube-qps", DefaultKubeQPS, "List calls per second to the API server, in bursts of twice as many (the kubeconfig's own qps, if it sets one, wins)")
	maxDocument := &bytesize.Flag{N: worker.DefaultMaxDocumentSize}
	fs.Var(maxDocument, "max-document-size", "largest manifest document of a --snapshot; a larger one is reported with its file and line and skipped, the rest is scanned")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see scan --help)", fs.Arg(0))
	}
	threshold, err := report.ParseSeverity(*failOn)
	if err != nil {
		return fmt.Errorf("--fail-on: %w", err)
	}
	sel := policy.Selection{Include: splitList(*include), Exclude: splitList(*exclude), Namespaces: splitList(*namespaces), TrustedRegistries: splitList(*trusted), DeniedRegistries: splitList(*denied)}
	if *policies != "" {
		if sel.Custom, err = policy.LoadPolicies(*policies); err != nil {
			return err
		}
	}
	if err := sel.Validate(); err != nil {
		return fmt.Errorf("--checks/--exclude-checks: %w (see 'fleetscan checks list')", err)
	}
	// Findings stream out as they are found: buffered, not one write each.
	buf := bufio.NewWriterSize(stdout, 64<<10)
	defer buf.Flush()
	out, err := report.New(*output, buf, worker.Version)
	if err != nil {
		return fmt.Errorf("-o: %w", err)
	}

	source, err := newSource(*snapshot, *kubeconfig, *kubeContext, *pageSize, *kubeQPS, int(maxDocument.N), func(p string) { fmt.Fprintln(stderr, "warning:", p) })
	if err != nil {
		return err
	}

	// The same pacing as the worker's: the peak follows what the scan
	// holds, without the fixed limit that once made the collector run
	// back to back on large clusters (45% of the CPU at 10,000 objects).
	memlimit.Pace()
	if _, err := memlimit.Apply(); err != nil {
		fmt.Fprintln(stderr, "warning: cannot read the container's memory limit:", err)
	}
	start := time.Now()
	inv, err := source.Collect(ctx, sel)
	if err != nil {
		return err
	}
	counts := map[fleetscanv1.Severity]int{}
	var finding fleetscanv1.Finding
	var resource fleetscanv1.ResourceRef
	suppressed, failing := 0, 0
	locator := inv.Locator()
	skipped, err := checks.Run(ctx, inv, sel, func(f checks.Finding) error {
		if f.Suppressed != "" {
			suppressed++
		} else {
			counts[f.Severity]++
			if threshold != 0 && f.Severity >= threshold {
				failing++
			}
		}
		return out.Finding(apiFinding(&finding, &resource, *clusterID, f), locator.Location(f.Resource.Kind, f.Resource.Namespace, f.Resource.Name))
	})
	if err != nil {
		return err
	}
	var na []*fleetscanv1.CheckNotAssessable
	for _, s := range skipped {
		na = append(na, &fleetscanv1.CheckNotAssessable{CheckId: s.CheckID, Reason: s.Reason})
	}
	if err := out.Close(report.Outcome{NotAssessable: na, Problems: inv.Problems, Unchecked: inv.Unchecked}); err != nil {
		return err
	}
	if err := buf.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d objects scanned in %v: %d critical, %d high, %d medium, %d low, %d suppressed; %d checks not assessable",
		inv.Len(), time.Since(start).Round(time.Millisecond),
		counts[catalog.SeverityCritical], counts[catalog.SeverityHigh], counts[fleetscanv1.Severity_SEVERITY_MEDIUM], counts[fleetscanv1.Severity_SEVERITY_LOW],
		suppressed, len(skipped))
	if n := len(inv.Unchecked); n > 0 {
		fmt.Fprintf(stderr, "; %d documents not checked (listed in the report)", n)
	}
	fmt.Fprintln(stderr)
	// A scan that could not read everything is incomplete: an error,
	// whatever it found, so that a gate never passes on less.
	if n := len(inv.Problems); n > 0 {
		return fmt.Errorf("%w: %d file(s) or document(s) could not be read and were not scanned (listed in the report)", errIncomplete, n)
	}
	if failing > 0 {
		return fmt.Errorf("%d %w (%s)", failing, errThreshold, strings.ToLower(report.SeverityName(threshold)))
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// exitCode maps run's error to the process status, as in every fleetscan
// binary: 0 for --help, 1 for findings at or above --fail-on, 2 for any
// error.
func exitCode(err error) int {
	switch {
	case err == nil || errors.Is(err, pflag.ErrHelp):
		return 0
	case errors.Is(err, errThreshold):
		return 1
	}
	return 2
}

// apiFinding converts an engine finding to the API form in out (whose
// resource is res), reused from finding to finding since the report
// writers keep none; the fingerprint is computed for clusterID.
func apiFinding(out *fleetscanv1.Finding, res *fleetscanv1.ResourceRef, clusterID string, f checks.Finding) *fleetscanv1.Finding {
	r := f.Resource
	out.Reset()
	res.Reset()
	res.ApiVersion, res.Kind, res.Namespace, res.Name, res.SubPath = r.APIVersion, r.Kind, r.Namespace, r.Name, r.SubPath
	out.Fingerprint = catalog.FingerprintString(catalog.Fingerprint(clusterID, f.CheckID, r))
	out.ClusterId, out.CheckId, out.Severity, out.Category = clusterID, f.CheckID, f.Severity, f.Category
	out.ResponsibleParty, out.Message, out.Resource = f.Party, f.Message, res
	out.Status = fleetscanv1.FindingStatus_FINDING_STATUS_OPEN
	if f.Suppressed != "" {
		out.Status, out.SuppressionReason = fleetscanv1.FindingStatus_FINDING_STATUS_SUPPRESSED, f.Suppressed
	}
	if m, ok := catalog.Lookup(f.CheckID); ok {
		out.Title, out.Remediation = m.Title, m.Remediation
	}
	return out
}
