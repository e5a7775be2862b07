package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetscan/fleetscan/cmd/internal/report"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

func findingsCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "findings", Short: "Read the findings of the fleet"}
	cmd.AddCommand(findingsListCommand(g), findingsGetCommand(g))
	return cmd
}

func findingsListCommand(g *globals) *cobra.Command {
	var cluster, severity, check, statusFlag, namespace, category, party, newer, failOn string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List findings, open ones by default",
		Long: `List findings of the latest completed scans, worst first. Filters
combine: --severity keeps findings of that severity or worse.`,
		Example: `  fleetscan findings list --severity critical
  fleetscan findings list --cluster prod-eu-1 --check RBAC-001 -o json
  fleetscan findings list --status resolved --limit 0
  fleetscan findings list --party workload --namespace shop --new-since 7d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sev, err := parseSeverity(severity)
			if err != nil {
				return fmt.Errorf("--severity: %w", err)
			}
			threshold, err := parseSeverity(failOn)
			if err != nil {
				return fmt.Errorf("--fail-on: %w", err)
			}
			g.sarifOK = true
			st, ok := fleetscanv1.FindingStatus_value["FINDING_STATUS_"+strings.ToUpper(statusFlag)]
			if !ok || st == 0 {
				return fmt.Errorf("--status %q: use open, resolved or suppressed", statusFlag)
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			req := &fleetscanv1.ListFindingsRequest{
				ClusterId: cluster, MinSeverity: sev, CheckId: strings.ToUpper(check), Status: fleetscanv1.FindingStatus(st),
				Namespace: namespace, Category: category,
			}
			if party != "" {
				p, ok := fleetscanv1.ResponsibleParty_value["RESPONSIBLE_PARTY_"+strings.ToUpper(party)]
				if !ok || p == 0 {
					return fmt.Errorf("--party %q: use provider, platform or workload", party)
				}
				req.ResponsibleParty = fleetscanv1.ResponsibleParty(p)
			}
			if newer != "" {
				age, err := parseAge(newer)
				if err != nil {
					return fmt.Errorf("--new-since: %w", err)
				}
				req.FirstSeenAfter = timestamppb.New(time.Now().Add(-age))
			}
			all := &fleetscanv1.ListFindingsResponse{}
			for f, err := range c.Findings(cmd.Context(), req) {
				if err != nil {
					return g.explain(err)
				}
				all.Findings = append(all.Findings, f)
			}
			// Worst first: the server's order (cluster, fingerprint) is
			// stable for paging, not for reading. --limit keeps the worst.
			slices.SortStableFunc(all.Findings, func(a, b *fleetscanv1.Finding) int {
				return cmp.Or(cmp.Compare(b.Severity, a.Severity), cmp.Compare(a.ClusterId, b.ClusterId), cmp.Compare(a.CheckId, b.CheckId))
			})
			// --fail-on counts every matching finding, shown or not: a
			// gate judges all of them.
			failing := 0
			for _, f := range all.Findings {
				if threshold != 0 && f.Severity >= threshold && f.Status != fleetscanv1.FindingStatus_FINDING_STATUS_SUPPRESSED {
					failing++
				}
			}
			// The default --limit keeps a terminal readable; a report for
			// tools (json, yaml, sarif) holds every finding unless --limit
			// is given.
			if limit > 0 && len(all.Findings) > limit && (g.output == "table" || g.output == "wide" || cmd.Flags().Changed("limit")) {
				fmt.Fprintf(cmd.ErrOrStderr(), "(the worst %d of %d matching findings; --limit 0 shows all)\n", limit, len(all.Findings))
				all.Findings = all.Findings[:limit]
			}
			if err := printFindings(g, all, req.Status == fleetscanv1.FindingStatus_FINDING_STATUS_SUPPRESSED); err != nil {
				return err
			}
			if failing > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d finding(s) at or above %s", failing, strings.ToLower(severityName(threshold)))}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&failOn, "fail-on", "", "exit with status 1 when a listed finding has this severity or worse (for CI)")
	f.StringVar(&cluster, "cluster", "", "only this cluster")
	f.StringVar(&severity, "severity", "", "only this severity or worse: info, low, medium, high, critical")
	f.StringVar(&check, "check", "", "only this check id, e.g. POD-001")
	f.StringVar(&statusFlag, "status", "open", "open, resolved or suppressed")
	f.StringVar(&namespace, "namespace", "", "only findings on objects of this namespace")
	f.StringVar(&category, "category", "", "only this category, e.g. rbac, pod-security, network")
	f.StringVar(&party, "party", "", "only what this party fixes: provider, platform or workload")
	f.StringVar(&newer, "new-since", "", "only findings first seen in this period, e.g. 7d")
	f.IntVar(&limit, "limit", 100, "show the worst N findings in a table (0: all); json, yaml and sarif hold all unless it is given")
	return cmd
}

func checksCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "checks", Short: "The catalog of built-in checks"}
	cmd.AddCommand(&cobra.Command{
		Use: "list",
		Example: `  fleetscan checks list
  fleetscan checks list -o json`,
		Short: "List the built-in checks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.FindingService.ListChecks(cmd.Context(), &fleetscanv1.ListChecksRequest{})
			if err != nil {
				return g.explain(err)
			}
			if g.structured() {
				return g.print(resp)
			}
			t := newTable(g.stdout, "ID", "SEVERITY", "CATEGORY", "PARTY", "TITLE")
			for _, ch := range resp.Checks {
				t.row(ch.Id, severityName(ch.Severity), ch.Category, enumName(ch.ResponsibleParty, "RESPONSIBLE_PARTY_"), ch.Title)
			}
			return t.flush()
		},
	})
	return cmd
}

// printFindings writes findings as a table (wide adds columns), JSON, YAML
// or SARIF.
func printFindings(g *globals, all *fleetscanv1.ListFindingsResponse, suppressed bool) error {
	switch g.output {
	case "json", "yaml":
		return g.print(all)
	case "sarif":
		w, err := report.New("sarif", g.stdout, "")
		if err != nil {
			return err
		}
		for _, f := range all.Findings {
			if err := w.Finding(f, f.Location); err != nil {
				return err
			}
		}
		return w.Close(report.Outcome{})
	}
	if len(all.Findings) == 0 {
		fmt.Fprintln(g.stdout, "No findings.")
		return nil
	}
	if g.output == "wide" {
		t := newTable(g.stdout, "CLUSTER", "SEVERITY", "CHECK", "RESOURCE", "STATUS", "PARTY", "FIRST SEEN", "FINGERPRINT", "MESSAGE")
		for _, f := range all.Findings {
			t.row(f.ClusterId, severityName(f.Severity), f.CheckId, resourceString(f.Resource), enumName(f.Status, "FINDING_STATUS_"),
				enumName(f.ResponsibleParty, "RESPONSIBLE_PARTY_"), when(f.FirstSeenTime), f.Fingerprint, f.Message)
		}
		return t.flush()
	}
	if suppressed {
		t := newTable(g.stdout, "CLUSTER", "SEVERITY", "CHECK", "RESOURCE", "SUPPRESSED BECAUSE")
		for _, f := range all.Findings {
			t.row(f.ClusterId, severityName(f.Severity), f.CheckId, resourceString(f.Resource), f.SuppressionReason)
		}
		return t.flush()
	}
	t := newTable(g.stdout, "CLUSTER", "SEVERITY", "CHECK", "RESOURCE", "MESSAGE")
	for _, f := range all.Findings {
		t.row(f.ClusterId, severityName(f.Severity), f.CheckId, resourceString(f.Resource), f.Message)
	}
	return t.flush()
}
