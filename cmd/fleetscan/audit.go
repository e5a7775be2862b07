package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

func auditCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read the audit log of changes to the fleet"}
	cmd.AddCommand(auditListCommand(g))
	return cmd
}

func auditListCommand(g *globals) *cobra.Command {
	var since, principal, method string
	var limit int
	cmd := &cobra.Command{
		Use:   "list [--since 24h] [--principal NAME] [--method RPC]",
		Short: "List audited calls, newest first",
		Long: `List the calls that changed something (clusters, scans, schedules,
tokens), including those that failed or were refused: when, who (the
token's name), from where, what was asked and what came of it.`,
		Example: `  fleetscan audit list --since 24h
  fleetscan audit list --principal acme-ci --method CreateToken -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &fleetscanv1.ListAuditEventsRequest{Principal: principal, Method: method, PageSize: 1000}
			if since != "" {
				d, err := parseAge(since)
				if err != nil {
					return fmt.Errorf("--since: %w", err)
				}
				req.Since = timestamppb.New(time.Now().Add(-d))
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			out := &fleetscanv1.ListAuditEventsResponse{}
			for limit <= 0 || len(out.Events) < limit {
				resp, err := c.AuditService.ListAuditEvents(cmd.Context(), req)
				if err != nil {
					return g.explain(err)
				}
				out.Events = append(out.Events, resp.Events...)
				if resp.NextPageToken == "" {
					break
				}
				req.PageToken = resp.NextPageToken
			}
			if limit > 0 && len(out.Events) > limit {
				out.Events = out.Events[:limit]
			}
			if g.structured() {
				return g.print(out)
			}
			t := newTable(g.stdout, "TIME", "PRINCIPAL", "METHOD", "RESULT", "PEER", "REQUEST")
			for _, e := range out.Events {
				result := e.Code
				if e.Error != "" {
					result += ": " + e.Error
				}
				t.row(when(e.Time), orDash(e.Principal), shortMethod(e.Method), result, orDash(e.Peer), e.Request)
			}
			return t.flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "only events in this period, e.g. 24h or 7d")
	f.StringVar(&principal, "principal", "", "only calls of this token name")
	f.StringVar(&method, "method", "", "only this RPC, e.g. StartScan")
	f.IntVar(&limit, "limit", 100, "at most this many events (0: all)")
	return cmd
}

func shortMethod(m string) string {
	for i := len(m) - 1; i >= 0; i-- {
		if m[i] == '.' {
			return m[i+1:]
		}
	}
	return m
}
