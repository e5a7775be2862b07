package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetscan/fleetscan/cmd/internal/duration"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/worker/catalog"
)

func findingsGetCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get CLUSTER_ID FINGERPRINT",
		Short: "Show one finding with the scans that saw it",
		Example: `  fleetscan findings list --cluster prod-eu-1 -o json | jq -r '.findings[0].fingerprint'
  fleetscan findings get prod-eu-1 3f2a9c0e4b7d1a6f8e5c2b0d9a7f6e1c`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.FindingService.GetFinding(cmd.Context(), &fleetscanv1.GetFindingRequest{ClusterId: args[0], Fingerprint: args[1]})
			if err != nil {
				return g.explain(err)
			}
			if g.structured() {
				return g.print(resp)
			}
			f := resp.Finding
			w := g.stdout
			fmt.Fprintf(w, "%s  %s  %s\n", f.CheckId, severityName(f.Severity), f.Title)
			fmt.Fprintf(w, "Cluster:      %s\nResource:     %s\nStatus:       %s\nMessage:      %s\n", f.ClusterId, resourceString(f.Resource), enumName(f.Status, "FINDING_STATUS_"), f.Message)
			if f.SuppressionReason != "" {
				fmt.Fprintf(w, "Suppressed:   %s\n", f.SuppressionReason)
			}
			fmt.Fprintf(w, "Remediation:  %s\nFirst seen:   %s\nLast seen:    %s (scan %s)\n", orDash(f.Remediation), when(f.FirstSeenTime), when(f.LastSeenTime), f.LastScanId)
			if f.ResolvedTime != nil {
				fmt.Fprintf(w, "Resolved:     %s\n", when(f.ResolvedTime))
			}
			for _, iv := range resp.PreviousIntervals {
				fmt.Fprintf(w, "Open before:  %s – %s, resolved %s\n", when(iv.FirstSeenTime), when(iv.LastSeenTime), when(iv.ResolvedTime))
			}
			fmt.Fprintf(w, "\nSeen by %d scan(s):\n", resp.SightingsTotal)
			t := newTable(w, "SCAN", "TIME")
			for _, s := range resp.Sightings {
				t.row(s.ScanId, when(s.Time))
			}
			return t.flush()
		},
	}
}

func diffCommand(g *globals) *cobra.Command {
	var cluster string
	cmd := &cobra.Command{
		Use:   "diff BASE_SCAN_ID HEAD_SCAN_ID",
		Short: "What is new and what was resolved between two scans of a cluster",
		Long: `Compare two scans of one cluster. With fleet scans, name the cluster with
--cluster unless the two scans share exactly one.`,
		Example: `  fleetscan diff 01J9Z… 01JA3… --cluster prod-eu-1`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.FindingService.DiffScans(cmd.Context(), &fleetscanv1.DiffScansRequest{BaseScanId: args[0], HeadScanId: args[1], ClusterId: cluster})
			if err != nil {
				return g.explain(err)
			}
			if g.structured() {
				return g.print(resp)
			}
			w := g.stdout
			fmt.Fprintf(w, "Cluster %s: %d new%s, %d resolved%s, %d unchanged\n", resp.ClusterId,
				len(resp.New), bySeverity(resp.New), len(resp.Resolved), bySeverity(resp.Resolved), resp.UnchangedCount)
			for _, part := range []struct {
				title string
				list  []*fleetscanv1.Finding
			}{{"New", resp.New}, {"Resolved", resp.Resolved}} {
				if len(part.list) == 0 {
					continue
				}
				worstFirst(part.list)
				fmt.Fprintf(w, "\n%s, worst first:\n", part.title)
				t := newTable(w, "SEVERITY", "CHECK", "RESOURCE", "MESSAGE")
				for _, f := range part.list {
					t.row(severityName(f.Severity), f.CheckId, resourceString(f.Resource), f.Message)
				}
				if err := t.flush(); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "the cluster to compare")
	return cmd
}

// worstFirst orders findings by severity, worst first, then by check and
// resource, so that what matters most heads the list.
func worstFirst(fs []*fleetscanv1.Finding) {
	slices.SortStableFunc(fs, func(a, b *fleetscanv1.Finding) int {
		if c := cmp.Compare(b.Severity, a.Severity); c != 0 {
			return c
		}
		if c := cmp.Compare(a.CheckId, b.CheckId); c != 0 {
			return c
		}
		return cmp.Compare(resourceString(a.Resource), resourceString(b.Resource))
	})
}

// bySeverity counts findings per severity, worst first: " (1 critical,
// 2 high)", "" for none.
func bySeverity(fs []*fleetscanv1.Finding) string {
	counts := map[fleetscanv1.Severity]int{}
	for _, f := range fs {
		counts[f.Severity]++
	}
	var parts []string
	for sev := fleetscanv1.Severity_SEVERITY_CRITICAL; sev >= fleetscanv1.Severity_SEVERITY_INFO; sev-- {
		if n := counts[sev]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, strings.ToLower(severityName(sev))))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// scopeFlags are the --cluster / --tenant / --fleet choice of trend and
// summary.
type scopeFlags struct {
	cluster, tenant string
	fleet           bool
}

func (s *scopeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.cluster, "cluster", "", "one cluster")
	cmd.Flags().StringVar(&s.tenant, "tenant", "", "every cluster of a tenant")
	cmd.Flags().BoolVar(&s.fleet, "fleet", false, "every cluster")
}

func (s *scopeFlags) scope() (*fleetscanv1.Scope, string, error) {
	n := 0
	for _, set := range []bool{s.cluster != "", s.tenant != "", s.fleet} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, "", errors.New("give one of --cluster ID, --tenant TENANT or --fleet")
	}
	switch {
	case s.cluster != "":
		return &fleetscanv1.Scope{Scope: &fleetscanv1.Scope_ClusterId{ClusterId: s.cluster}}, "cluster " + s.cluster, nil
	case s.tenant != "":
		return &fleetscanv1.Scope{Scope: &fleetscanv1.Scope_Tenant{Tenant: s.tenant}}, "tenant " + s.tenant, nil
	}
	return &fleetscanv1.Scope{Scope: &fleetscanv1.Scope_Fleet{Fleet: true}}, "the fleet", nil
}

// parseAge reads "90d", "12w", "36h" or any Go duration.
func parseAge(s string) (time.Duration, error) {
	d, err := duration.Parse(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want e.g. 90d, 12w or 36h", s)
	}
	return d, nil
}

func trendCommand(g *globals) *cobra.Command {
	var scope scopeFlags
	var since, bucket string
	cmd := &cobra.Command{
		Use:   "trend (--cluster ID | --tenant TENANT | --fleet) [--since 90d]",
		Short: "Open findings and posture score over time",
		Long: `Show how the posture of a cluster, a tenant or the fleet changed: open
findings and the posture score (0–100, docs/posture-score.md) at the end
of each day or week. A cluster counts as its latest scan found it.`,
		Example: `  fleetscan trend --fleet --since 90d --bucket week
  fleetscan trend --cluster prod-eu-1 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sc, what, err := scope.scope()
			if err != nil {
				return err
			}
			age, err := parseAge(since)
			if err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			req := &fleetscanv1.GetTrendRequest{Scope: sc, Since: timestamppb.New(time.Now().Add(-age))}
			switch bucket {
			case "day":
				req.Bucket = fleetscanv1.TrendBucket_TREND_BUCKET_DAY
			case "week":
				req.Bucket = fleetscanv1.TrendBucket_TREND_BUCKET_WEEK
			default:
				return fmt.Errorf("--bucket %q: use day or week", bucket)
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.FindingService.GetTrend(cmd.Context(), req)
			if err != nil {
				return g.explain(err)
			}
			if g.structured() {
				return g.print(resp)
			}
			return printTrend(g.stdout, what, bucket, resp.Points)
		},
	}
	scope.add(cmd)
	cmd.Flags().StringVar(&since, "since", "30d", "how far back: e.g. 90d, 12w, 36h")
	cmd.Flags().StringVar(&bucket, "bucket", "day", "day or week")
	return cmd
}

func printTrend(w io.Writer, what, bucket string, points []*fleetscanv1.TrendPoint) error {
	var measured []*fleetscanv1.TrendPoint
	for _, p := range points {
		if p.Score != nil {
			measured = append(measured, p)
		}
	}
	if len(measured) == 0 {
		fmt.Fprintf(w, "No scan of %s in this period.\n", what)
		return nil
	}
	// A gap (nothing scanned yet) is drawn blank and printed as "-", never
	// as zero findings and a perfect score.
	open := make([]float64, len(points))
	scores := make([]float64, len(points))
	for i, p := range points {
		open[i], scores[i] = -1, -1
		if p.Score != nil {
			c := p.Counts
			open[i] = float64(c.GetCritical() + c.GetHigh() + c.GetMedium() + c.GetLow())
			scores[i] = float64(p.GetScore())
		}
	}
	openOf := func(p *fleetscanv1.TrendPoint) int64 {
		c := p.Counts
		return c.GetCritical() + c.GetHigh() + c.GetMedium() + c.GetLow()
	}
	first, last := points[0], points[len(points)-1]
	firstM, lastM := measured[0], measured[len(measured)-1]
	fmt.Fprintf(w, "Posture of %s, by %s, %s – %s\n\n", what, bucket, first.Time.AsTime().Format(time.DateOnly), last.Time.AsTime().Format(time.DateOnly))
	fmt.Fprintf(w, "  open findings  %s  %d → %d\n", sparkline(open), openOf(firstM), openOf(lastM))
	fmt.Fprintf(w, "  score          %s  %d → %d\n\n", sparkline(scores), firstM.GetScore(), lastM.GetScore())
	t := newTable(w, "DATE", "CRITICAL", "HIGH", "MEDIUM", "LOW", "SCORE", "CLUSTERS", "SCANS")
	start := max(0, len(points)-14)
	carried := false
	for _, p := range points[start:] {
		row := []string{p.Time.AsTime().Format(time.DateOnly)}
		if p.Score == nil {
			row = append(row, "-", "-", "-", "-", "-")
		} else {
			row = append(append(row, countsString(p.Counts)...), fmt.Sprint(p.GetScore()))
		}
		scans := fmt.Sprint(p.Scans)
		if p.Score != nil && p.Scans == 0 {
			scans, carried = "0*", true
		}
		t.row(append(row, fmt.Sprint(p.Clusters), scans)...)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if start > 0 {
		fmt.Fprintf(w, "(the last 14 of %d points; -o json has all)\n", len(points))
	}
	if carried {
		fmt.Fprintln(w, "* no scan in that "+bucket+": each cluster as its last scan before found it")
	}
	return nil
}

// sparkline draws values as block characters, scaled from the smallest to
// the largest; negative values (no data) are blank.
func sparkline(values []float64) string {
	const blocks = "▁▂▃▄▅▆▇█"
	lo, hi := 0.0, 0.0
	seen := false
	for _, v := range values {
		if v < 0 {
			continue
		}
		if !seen || v < lo {
			lo = v
		}
		if !seen || v > hi {
			hi = v
		}
		seen = true
	}
	runes := []rune(blocks)
	var b strings.Builder
	for _, v := range values {
		switch {
		case v < 0:
			b.WriteRune(' ')
		case hi == lo:
			b.WriteRune(runes[len(runes)/2])
		default:
			b.WriteRune(runes[int((v-lo)/(hi-lo)*float64(len(runes)-1)+0.5)])
		}
	}
	return b.String()
}

func compareCommand(g *globals) *cobra.Command {
	var selector, tenant, since string
	var checks int
	cmd := &cobra.Command{
		Use:   "compare [--selector LABELS] [--tenant TENANT] [--since 7d]",
		Short: "Rank clusters by posture and show which checks fail where",
		Long: `Rank clusters by posture score, lowest first, and show which checks fail
where. With --since, each cluster's score at that time (its latest scan
before then) and the change since are shown too, and the clusters whose
score fell most are listed: the fleet's worst movers.`,
		Example: `  fleetscan compare --selector env=prod
  fleetscan compare --tenant acme --checks 20
  fleetscan compare --since 7d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &fleetscanv1.CompareClustersRequest{LabelSelector: selector, Tenant: tenant}
			if since != "" {
				age, err := parseAge(since)
				if err != nil {
					return fmt.Errorf("--since: %w", err)
				}
				req.BaselineTime = timestamppb.New(time.Now().Add(-age))
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.FindingService.CompareClusters(cmd.Context(), req)
			if err != nil {
				return g.explain(err)
			}
			if g.structured() {
				return g.print(resp)
			}
			if len(resp.Clusters) == 0 {
				fmt.Fprintln(g.stdout, "No cluster matches.")
				return nil
			}
			fmt.Fprintln(g.stdout, "Clusters by posture, worst first (rank 1 has the lowest score):")
			header := []string{"RANK", "CLUSTER", "TENANT", "SCORE"}
			if since != "" {
				header = append(header, "SCORE "+since+" AGO", "CHANGE")
			}
			t := newTable(g.stdout, append(header, "CRITICAL", "HIGH", "MEDIUM", "LOW", "OBJECTS", "SCANNED")...)
			for i, p := range resp.Clusters {
				score := fmt.Sprint(p.Score)
				if p.ScanTime == nil {
					score = "-"
				}
				row := []string{fmt.Sprint(i + 1), p.ClusterId, p.Tenant, score}
				if since != "" {
					before, change := baselineColumns(p)
					row = append(row, before, change)
				}
				t.row(append(append(row, countsString(p.Counts)...), fmt.Sprint(p.ObjectsScanned), when(p.ScanTime))...)
			}
			if err := t.flush(); err != nil {
				return err
			}
			if since != "" {
				printMovers(g.stdout, resp.Clusters, since)
			}
			if len(resp.Checks) == 0 {
				return nil
			}
			rows := resp.Checks
			if checks > 0 && len(rows) > checks {
				rows = rows[:checks]
			}
			fmt.Fprintf(g.stdout, "\nOpen findings per check and cluster (the %d checks failing most):\n", len(rows))
			header = []string{"CHECK", "TOTAL"}
			for _, p := range resp.Clusters {
				header = append(header, p.ClusterId)
			}
			m := newTable(g.stdout, header...)
			for _, r := range rows {
				cols := []string{r.CheckId, fmt.Sprint(r.Total)}
				for _, n := range r.Counts {
					cols = append(cols, fmt.Sprint(n))
				}
				m.row(cols...)
			}
			return m.flush()
		},
	}
	cmd.Flags().StringVar(&selector, "selector", "", "Kubernetes label selector over cluster labels, e.g. env=prod,region in (eu,us)")
	cmd.Flags().StringVar(&tenant, "tenant", "", "only clusters of this tenant")
	cmd.Flags().StringVar(&since, "since", "", "also show each cluster's score this long ago and the worst movers since: e.g. 7d, 4w")
	cmd.Flags().IntVar(&checks, "checks", 10, "rows of the check matrix (0: all)")
	return cmd
}

// baselineColumns are a cluster's score at the baseline and its change
// since: "-" where either end was never scanned.
func baselineColumns(p *fleetscanv1.ClusterPosture) (before, change string) {
	if p.BaselineScore == nil {
		return "-", "new"
	}
	if p.ScanTime == nil {
		return fmt.Sprint(*p.BaselineScore), "-"
	}
	return fmt.Sprint(*p.BaselineScore), fmt.Sprintf("%+d", p.Score-*p.BaselineScore)
}

// maxMovers is how many of the clusters whose score fell most are listed.
const maxMovers = 5

// printMovers lists the clusters whose score fell most since the
// baseline, worst first.
func printMovers(w io.Writer, clusters []*fleetscanv1.ClusterPosture, since string) {
	var fell []*fleetscanv1.ClusterPosture
	for _, p := range clusters {
		if p.BaselineScore != nil && p.ScanTime != nil && p.Score < *p.BaselineScore {
			fell = append(fell, p)
		}
	}
	slices.SortStableFunc(fell, func(a, b *fleetscanv1.ClusterPosture) int {
		return cmp.Compare(a.Score-*a.BaselineScore, b.Score-*b.BaselineScore)
	})
	if len(fell) == 0 {
		fmt.Fprintf(w, "\nNo cluster's score fell in the last %s.\n", since)
		return
	}
	fmt.Fprintf(w, "\nWorst movers in the last %s (%d of %d clusters fell):\n", since, len(fell), len(clusters))
	for _, p := range fell[:min(len(fell), maxMovers)] {
		fmt.Fprintf(w, "  %s: %d → %d (%+d)\n", p.ClusterId, *p.BaselineScore, p.Score, p.Score-*p.BaselineScore)
	}
}

func summaryCommand(g *globals) *cobra.Command {
	var scope scopeFlags
	cmd := &cobra.Command{
		Use:     "summary (--cluster ID | --tenant TENANT | --fleet)",
		Short:   "Current posture: open findings, score, worst checks",
		Example: "  fleetscan summary --fleet",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sc, what, err := scope.scope()
			if err != nil {
				return err
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.FindingService.GetSummary(cmd.Context(), &fleetscanv1.GetSummaryRequest{Scope: sc})
			if err != nil {
				return g.explain(err)
			}
			if g.structured() {
				return g.print(resp)
			}
			k := resp.Counts
			fmt.Fprintf(g.stdout, "Posture of %s: score %d/100 (%d of %d clusters scanned)\nOpen findings: %d critical, %d high, %d medium, %d low (%d suppressed)\n",
				what, resp.Score, resp.ClustersScanned, resp.Clusters, k.GetCritical(), k.GetHigh(), k.GetMedium(), k.GetLow(), k.GetSuppressed())
			if len(resp.TopChecks) > 0 {
				fmt.Fprintln(g.stdout, "\nChecks failing most:")
				t := newTable(g.stdout, "CHECK", "OPEN", "SEVERITY", "TITLE")
				for _, c := range resp.TopChecks {
					sev, title := "-", "(a custom check)"
					if m, ok := catalog.Lookup(c.CheckId); ok {
						sev, title = severityName(m.Severity), m.Title
					}
					t.row(c.CheckId, fmt.Sprint(c.Count), sev, title)
				}
				return t.flush()
			}
			return nil
		},
	}
	scope.add(cmd)
	return cmd
}
