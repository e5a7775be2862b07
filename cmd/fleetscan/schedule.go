package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/fleetscan/fleetscan/cmd/internal/duration"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

func scheduleCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "schedule", Short: "Scan on a cron schedule"}
	var clusters []string
	var all bool
	var selector, tenant, missed string
	var jitter time.Duration
	create := &cobra.Command{
		Use:   "create CRON (--cluster ID ... | --all | --selector LABELS | --tenant TENANT)",
		Short: "Start scans of a target whenever a cron expression fires (UTC)",
		Long: `Create a schedule. CRON is a standard five-field expression in UTC
("0 3 * * *" is 03:00 every day) or a descriptor such as @daily. --jitter
spreads each run over a random delay so that many clusters do not start on
the same second. A run missed while the server was down runs once when it
is back (--missed run-once, the default) or is skipped (--missed skip).`,
		Example: `  fleetscan schedule create "0 3 * * *" --all --jitter 15m
  fleetscan schedule create @hourly --selector env=prod --missed skip`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target := &fleetscanv1.ScanTarget{ClusterIds: clusters, AllClusters: all, LabelSelector: selector, Tenant: tenant}
			req := &fleetscanv1.CreateScheduleRequest{Cron: args[0], Target: target, Spec: &fleetscanv1.ScanSpec{}, Jitter: durationpb.New(jitter)}
			switch missed {
			case "run-once":
				req.MissedRunPolicy = fleetscanv1.MissedRunPolicy_MISSED_RUN_POLICY_RUN_ONCE
			case "skip":
				req.MissedRunPolicy = fleetscanv1.MissedRunPolicy_MISSED_RUN_POLICY_SKIP
			default:
				return fmt.Errorf("--missed %q: use run-once or skip", missed)
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.ScanService.CreateSchedule(cmd.Context(), req)
			if err != nil {
				return g.explain(err)
			}
			if g.structured() {
				return g.print(resp.Schedule)
			}
			fmt.Fprintf(g.stdout, "Created schedule %s; first run at %s.\n", resp.Schedule.Id, when(resp.Schedule.NextRunTime))
			return nil
		},
	}
	f := create.Flags()
	f.StringArrayVar(&clusters, "cluster", nil, "cluster id to scan; repeatable")
	f.BoolVar(&all, "all", false, "scan every cluster")
	f.StringVar(&selector, "selector", "", "scan the clusters whose labels match")
	f.StringVar(&tenant, "tenant", "", "scan every cluster of a tenant")
	jitter = 0
	f.Var(duration.Var(&jitter), "jitter", "random delay of each run, at most 1h")
	f.StringVar(&missed, "missed", "run-once", "runs missed while the server was down: run-once or skip")

	list := &cobra.Command{
		Use: "list",
		Example: `  fleetscan schedule list
  fleetscan schedule list -o json`,
		Short: "List schedules",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			all := &fleetscanv1.ListSchedulesResponse{}
			token := ""
			for {
				resp, err := c.ScanService.ListSchedules(cmd.Context(), &fleetscanv1.ListSchedulesRequest{PageToken: token})
				if err != nil {
					return g.explain(err)
				}
				all.Schedules = append(all.Schedules, resp.Schedules...)
				if token = resp.NextPageToken; token == "" {
					break
				}
			}
			if g.structured() {
				return g.print(all)
			}
			t := newTable(g.stdout, "SCHEDULE", "CRON", "JITTER", "NEXT RUN", "LAST RUN", "LAST SCAN", "LAST ERROR")
			for _, s := range all.Schedules {
				t.row(s.Id, s.Cron, s.Jitter.AsDuration().String(), when(s.NextRunTime), when(s.LastRunTime), orDash(s.LastScanId), orDash(s.LastError))
			}
			return t.flush()
		},
	}
	del := &cobra.Command{
		Use:     "delete SCHEDULE_ID",
		Example: `  fleetscan schedule delete 01J9Z3R6T4W8X2Y5A7B9C1D3E5`,
		Short:   "Delete a schedule (the scans it started stay)",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.ScanService.DeleteSchedule(cmd.Context(), &fleetscanv1.DeleteScheduleRequest{ScheduleId: args[0]}); err != nil {
				return g.explain(err)
			}
			fmt.Fprintf(g.stdout, "Deleted schedule %s.\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}
