package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetscan/fleetscan/client"
	"github.com/fleetscan/fleetscan/cmd/internal/htmlreport"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// Report limits: a report is read or printed, so what would make it
// unreadable is left out with a note saying how much.
const (
	reportMaxFindings      = 2000
	reportMaxMatrixChecks  = 40
	reportMaxMatrixCluster = 40
	// reportMaxScanPages bounds the scans read to find each cluster's
	// latest job for a framework's "not assessable" (500 a page).
	reportMaxScanPages = 20
)

func reportCommand(g *globals) *cobra.Command {
	var scope scopeFlags
	var since, framework string
	cmd := &cobra.Command{
		Use:   "report (--cluster ID | --tenant TENANT | --fleet) [--framework cis|nsa|pss] -o html",
		Short: "Write a posture report as one self-contained HTML file",
		Long: `Write the posture of a cluster, a tenant or the fleet as one HTML file
that loads nothing from anywhere and prints well: the summary, the posture
score over time, the clusters ranked, the check by cluster matrix, the
checks with the most findings, the open findings (all of them for a
cluster; critical and high for a tenant or the fleet, at most 2,000, the
rest counted), and with --framework each control of CIS, NSA/CISA or the
Pod Security Standards as passed, failed or not assessable, with why.

Everything in it is what the API returns for the token used: a tenant's
report shows only the tenant's clusters and granted namespaces.`,
		Example: `  fleetscan report --fleet -o html > fleet.html
  fleetscan report --tenant acme --framework cis --since 90d -o html > acme-cis.html
  fleetscan report --cluster prod-eu-1 -o html > prod-eu-1.html`,
		Args: cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			g.htmlOK = true
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.output != "html" {
				return fmt.Errorf("--output %q: a report is HTML; give -o html (and redirect it to a file)", g.output)
			}
			sc, what, err := scope.scope()
			if err != nil {
				return err
			}
			age, err := parseAge(since)
			if err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			prefix, err := frameworkPrefix(framework)
			if err != nil {
				return err
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			r := &reportBuilder{c: c, scope: sc, scopeFlags: scope, now: time.Now()}
			rep, err := r.build(cmd.Context(), what, g.server, age, prefix)
			if err != nil {
				return g.explain(err)
			}
			return htmlreport.Write(g.stdout, rep)
		},
	}
	scope.add(cmd)
	cmd.Flags().StringVar(&since, "since", "90d", "how far back the trend goes: e.g. 90d, 52w")
	cmd.Flags().StringVar(&framework, "framework", "", "add each control of a framework: cis, nsa or pss")
	return cmd
}

// frameworkPrefix is how the catalog cites a framework's controls.
func frameworkPrefix(name string) (string, error) {
	switch strings.ToLower(name) {
	case "":
		return "", nil
	case "cis":
		return "CIS ", nil
	case "nsa", "nsa-cisa":
		return "NSA ", nil
	case "pss":
		return "PSS ", nil
	}
	return "", fmt.Errorf("--framework %q: use cis, nsa or pss", name)
}

var frameworkNames = map[string]string{"CIS ": "CIS Kubernetes Benchmark", "NSA ": "NSA/CISA Kubernetes Hardening Guide", "PSS ": "Pod Security Standards"}

type reportBuilder struct {
	c          *client.Client
	scope      *fleetscanv1.Scope
	scopeFlags scopeFlags
	now        time.Time
	checks     map[string]*fleetscanv1.Check
	clusters   []string // in scope, ranked worst first
	// openByCheck counts a one-cluster report's open findings by check
	// as findings pages through them, for its framework's controls.
	openByCheck map[string]int64
}

func (r *reportBuilder) build(ctx context.Context, what, server string, age time.Duration, framework string) (*htmlreport.Report, error) {
	rep := &htmlreport.Report{Scope: what, Server: server, Generated: r.now}
	catalog, err := r.c.FindingService.ListChecks(ctx, &fleetscanv1.ListChecksRequest{})
	if err != nil {
		return nil, err
	}
	r.checks = map[string]*fleetscanv1.Check{}
	for _, ch := range catalog.Checks {
		r.checks[ch.Id] = ch
	}
	sum, err := r.c.FindingService.GetSummary(ctx, &fleetscanv1.GetSummaryRequest{Scope: r.scope})
	if err != nil {
		return nil, err
	}
	rep.Summary = htmlreport.Summary{Score: int(sum.Score), Counts: counts(sum.Counts), Clusters: int(sum.Clusters), Scanned: int(sum.ClustersScanned)}
	for _, tc := range sum.TopChecks {
		rep.TopChecks = append(rep.TopChecks, htmlreport.CheckCount{CheckID: tc.CheckId, Title: r.checks[tc.CheckId].GetTitle(), Count: tc.Count})
	}
	trend, err := r.c.FindingService.GetTrend(ctx, &fleetscanv1.GetTrendRequest{Scope: r.scope, Since: timestamppb.New(r.now.Add(-age)), Bucket: fleetscanv1.TrendBucket_TREND_BUCKET_DAY})
	if err != nil {
		return nil, err
	}
	for _, p := range trend.Points {
		pt := htmlreport.Point{Time: p.Time.AsTime(), Counts: counts(p.Counts)}
		if p.Score != nil {
			s := int(*p.Score)
			pt.Score = &s
		}
		rep.Trend = append(rep.Trend, pt)
	}

	var matrix *fleetscanv1.CompareClustersResponse
	if cluster := r.scopeFlags.cluster; cluster != "" {
		r.clusters = []string{cluster}
	} else {
		matrix, err = r.c.FindingService.CompareClusters(ctx, &fleetscanv1.CompareClustersRequest{Tenant: r.scopeFlags.tenant})
		if err != nil {
			return nil, err
		}
		for _, cp := range matrix.Clusters {
			r.clusters = append(r.clusters, cp.ClusterId)
			cl := htmlreport.Cluster{ID: cp.ClusterId, Tenant: cp.Tenant, Score: int(cp.Score), Counts: counts(cp.Counts)}
			if cp.ScanTime != nil {
				cl.LastScan = cp.ScanTime.AsTime()
			}
			rep.Clusters = append(rep.Clusters, cl)
		}
		rep.Matrix = printableMatrix(matrix)
	}
	if err := r.findings(ctx, rep); err != nil {
		return nil, err
	}
	if framework != "" {
		if rep.Compliance, err = r.compliance(ctx, framework, matrix); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

func counts(c *fleetscanv1.SeverityCounts) htmlreport.Counts {
	return htmlreport.Counts{Critical: c.GetCritical(), High: c.GetHigh(), Medium: c.GetMedium(), Low: c.GetLow(), Info: c.GetInfo(), Suppressed: c.GetSuppressed()}
}

// printableMatrix keeps the checks and clusters with the most findings
// that fit a page, and says what it left out.
func printableMatrix(m *fleetscanv1.CompareClustersResponse) *htmlreport.Matrix {
	out := &htmlreport.Matrix{}
	nClusters := min(len(m.Clusters), reportMaxMatrixCluster)
	for _, cp := range m.Clusters[:nClusters] {
		out.Clusters = append(out.Clusters, cp.ClusterId)
	}
	rows := m.Checks
	if len(rows) > reportMaxMatrixChecks {
		rows = rows[:reportMaxMatrixChecks]
	}
	for _, row := range rows {
		out.Rows = append(out.Rows, htmlreport.MatrixRow{CheckID: row.CheckId, Counts: row.Counts[:min(nClusters, len(row.Counts))], Total: row.Total})
	}
	var left []string
	if len(m.Checks) > len(rows) {
		left = append(left, fmt.Sprintf("the %d checks with the most findings of %d are shown", len(rows), len(m.Checks)))
	}
	if len(m.Clusters) > nClusters {
		left = append(left, fmt.Sprintf("the %d worst clusters of %d (totals count them all)", nClusters, len(m.Clusters)))
	}
	if len(left) > 0 {
		out.Note = "Too large to print whole: " + strings.Join(left, "; ") + "."
	}
	return out
}

// findings lists the open findings: all of them for one cluster, the
// critical and high ones for more, up to reportMaxFindings.
func (r *reportBuilder) findings(ctx context.Context, rep *htmlreport.Report) error {
	minSev, which := fleetscanv1.Severity_SEVERITY_UNSPECIFIED, "open findings"
	if r.scopeFlags.cluster == "" {
		minSev, which = fleetscanv1.Severity_SEVERITY_HIGH, "open critical and high findings"
	}
	total, listed := 0, 0
	for _, cluster := range r.clusters {
		req := &fleetscanv1.ListFindingsRequest{ClusterId: cluster, MinSeverity: minSev, PageSize: 1000}
		for {
			resp, err := r.c.FindingService.ListFindings(ctx, req)
			if err != nil {
				return fmt.Errorf("findings of %s: %w", cluster, err)
			}
			for _, f := range resp.Findings {
				total++
				if minSev == fleetscanv1.Severity_SEVERITY_UNSPECIFIED {
					if r.openByCheck == nil {
						r.openByCheck = map[string]int64{}
					}
					r.openByCheck[f.CheckId]++
				}
				if listed >= reportMaxFindings {
					continue
				}
				listed++
				rep.Findings = append(rep.Findings, htmlreport.Finding{
					Cluster: f.ClusterId, CheckID: f.CheckId, Severity: severityName(f.Severity), Title: f.Title,
					Resource: resourceString(f.Resource), Message: f.Message, Party: enumName(f.ResponsibleParty, "RESPONSIBLE_PARTY_"),
					FirstSeen: f.FirstSeenTime.AsTime(),
				})
			}
			if resp.NextPageToken == "" {
				break
			}
			req.PageToken = resp.NextPageToken
		}
	}
	rep.FindingsNote = fmt.Sprintf("All %s: %d.", which, total)
	if total > listed {
		rep.FindingsNote = fmt.Sprintf("The first %d of %d %s, cluster by cluster, worst cluster first; the rest are in the API (fleetscan findings list).", listed, total, which)
	}
	return nil
}

// compliance judges each control of a framework by its checks: failed
// where a cluster in scope has an open finding of one, not assessable
// where a cluster's latest scan could not evaluate one (with the reason),
// passed only when every cluster was scanned and none of that holds.
func (r *reportBuilder) compliance(ctx context.Context, prefix string, matrix *fleetscanv1.CompareClustersResponse) (*htmlreport.Compliance, error) {
	controls := map[string][]string{} // "CIS 5.2.2" → check ids
	for id, ch := range r.checks {
		for _, ref := range ch.Frameworks {
			if strings.HasPrefix(ref, prefix) {
				controls[ref] = append(controls[ref], id)
			}
		}
	}
	if len(controls) == 0 {
		return nil, fmt.Errorf("no check of the server's catalog cites %s", strings.TrimSpace(prefix))
	}
	// Open findings per check and cluster.
	open := map[string]map[string]int64{}
	if matrix != nil {
		for _, row := range matrix.Checks {
			for i, n := range row.Counts {
				if n > 0 && i < len(matrix.Clusters) {
					if open[row.CheckId] == nil {
						open[row.CheckId] = map[string]int64{}
					}
					open[row.CheckId][matrix.Clusters[i].ClusterId] = n
				}
			}
		}
	} else {
		// One cluster: findings paged through all its open findings.
		for id, n := range r.openByCheck {
			open[id] = map[string]int64{r.scopeFlags.cluster: n}
		}
	}
	notAssessable, unscanned, err := r.latestJobs(ctx)
	scansHidden := status.Code(err) == codes.PermissionDenied // a tenant's token
	if err != nil && !scansHidden {
		return nil, err
	}
	out := &htmlreport.Compliance{Framework: frameworkNames[prefix]}
	refs := make([]string, 0, len(controls))
	for ref := range controls {
		refs = append(refs, ref)
	}
	slices.SortFunc(refs, compareRefs)
	for _, ref := range refs {
		ids := controls[ref]
		slices.Sort(ids)
		ctl := htmlreport.Control{Ref: ref, Checks: ids, Status: htmlreport.Passed}
		var failed, unassessed []string
		for _, id := range ids {
			for _, cluster := range r.clusters {
				if n, ok := open[id][cluster]; ok {
					failed = append(failed, fmt.Sprintf("%s: %d open finding(s) of %s", cluster, n, id))
				}
				if why, ok := notAssessable[cluster][id]; ok {
					unassessed = append(unassessed, fmt.Sprintf("%s: %s not assessable: %s", cluster, id, why))
				}
			}
		}
		switch {
		case len(failed) > 0:
			ctl.Status, ctl.Why = htmlreport.Failed, failed
		case len(unassessed) > 0:
			ctl.Status, ctl.Why = htmlreport.NotAssessable, unassessed
		case scansHidden:
			ctl.Status, ctl.Why = htmlreport.NoFinding, []string{"whether every cluster's scan could evaluate the checks is visible to operators only"}
		case len(unscanned) > 0:
			ctl.Status, ctl.Why = htmlreport.NotAssessable, []string{fmt.Sprintf("not scanned: %s", strings.Join(unscanned, ", "))}
		}
		out.Controls = append(out.Controls, ctl)
	}
	out.Note = fmt.Sprintf("Judged on each cluster's open findings and its latest succeeded scan; %d control(s) cited by fleetscan's checks. A control no check cites is not listed: fleetscan does not judge it.", len(refs))
	if scansHidden {
		out.Note += " This token cannot read scans, so a control without open findings is reported as having none, not as passed."
	} else if len(unscanned) > 0 {
		out.Note += fmt.Sprintf(" Clusters without a succeeded scan among the newest scans: %s.", strings.Join(unscanned, ", "))
	}
	return out, nil
}

// latestJobs finds each cluster's latest succeeded job, newest scans
// first, and returns what its checks could not assess, and the clusters
// with no such job among the newest scans.
func (r *reportBuilder) latestJobs(ctx context.Context) (map[string]map[string]string, []string, error) {
	want := map[string]bool{}
	for _, id := range r.clusters {
		want[id] = true
	}
	out := map[string]map[string]string{}
	req := &fleetscanv1.ListScansRequest{PageSize: 500}
	for page := 0; page < reportMaxScanPages && len(out) < len(want); page++ {
		resp, err := r.c.ScanService.ListScans(ctx, req)
		if err != nil {
			return nil, nil, err
		}
		for _, s := range resp.Scans {
			for _, j := range s.Jobs {
				if !want[j.ClusterId] || out[j.ClusterId] != nil || j.State != fleetscanv1.JobState_JOB_STATE_SUCCEEDED {
					continue
				}
				m := map[string]string{}
				for _, na := range j.NotAssessable {
					m[na.CheckId] = na.Reason
				}
				out[j.ClusterId] = m
			}
		}
		if resp.NextPageToken == "" {
			break
		}
		req.PageToken = resp.NextPageToken
	}
	var unscanned []string
	for _, id := range r.clusters {
		if out[id] == nil {
			unscanned = append(unscanned, id)
		}
	}
	slices.Sort(unscanned)
	return out, unscanned, nil
}

// compareRefs orders control references by their numbers: CIS 5.2.10
// after CIS 5.2.9.
func compareRefs(a, b string) int {
	pa, pb := strings.FieldsFunc(a, sep), strings.FieldsFunc(b, sep)
	for i := range min(len(pa), len(pb)) {
		var na, nb int
		_, ea := fmt.Sscan(pa[i], &na)
		_, eb := fmt.Sscan(pb[i], &nb)
		switch {
		case ea == nil && eb == nil && na != nb:
			return na - nb
		case (ea != nil || eb != nil) && pa[i] != pb[i]:
			return strings.Compare(pa[i], pb[i])
		}
	}
	return len(pa) - len(pb)
}

func sep(r rune) bool { return r == ' ' || r == '.' || r == ':' }

var errNoHTML = errors.New("--output html: only 'fleetscan report' writes HTML")
