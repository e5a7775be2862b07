package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

func clusterCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Register and inspect the clusters of the fleet"}
	cmd.AddCommand(clusterRegisterCommand(g), clusterListCommand(g), clusterGetCommand(g))
	return cmd
}

func clusterRegisterCommand(g *globals) *cobra.Command {
	var tenant, displayName, tokenFile string
	var labels []string
	cmd := &cobra.Command{
		Use:   "register CLUSTER_ID --tenant TENANT",
		Short: "Register a cluster and print the join token of its worker",
		Long: `Register a cluster and print the join token its worker connects with.
The token is shown once; the server keeps only its hash. With
--join-token-file it is written to that file (mode 0600) instead of
being printed.`,
		Example: `  fleetscan cluster register prod-eu-1 --tenant acme --label env=prod --label region=eu-west
  fleetscan cluster register dev-1 --tenant acme --join-token-file dev-1.token`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lbls := map[string]string{}
			for _, l := range labels {
				k, v, ok := strings.Cut(l, "=")
				if !ok {
					return fmt.Errorf("--label %q: use key=value", l)
				}
				lbls[k] = v
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.ClusterService.RegisterCluster(cmd.Context(), &fleetscanv1.RegisterClusterRequest{
				ClusterId: args[0], Tenant: tenant, DisplayName: displayName, Labels: lbls,
			})
			if err != nil {
				return g.explain(err)
			}
			if tokenFile != "" {
				if err := os.WriteFile(tokenFile, []byte(resp.JoinToken+"\n"), 0o600); err != nil {
					return fmt.Errorf("cluster registered, but writing its token failed: %w", err)
				}
				resp.JoinToken = ""
			}
			if g.structured() {
				return g.print(resp)
			}
			fmt.Fprintf(g.stdout, "Registered cluster %s (tenant %s).\n", resp.Cluster.Id, resp.Cluster.Tenant)
			if tokenFile != "" {
				fmt.Fprintf(g.stdout, "Its worker's join token is in %s.\n", tokenFile)
			} else {
				fmt.Fprintf(g.stdout, "Join token for its worker (shown once):\n%s\n", resp.JoinToken)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant that owns the cluster (required)")
	cmd.Flags().StringVar(&displayName, "display-name", "", "human-friendly name (default: the id)")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "label key=value; repeatable")
	cmd.Flags().StringVar(&tokenFile, "join-token-file", "", "write the join token to this file instead of printing it")
	_ = cmd.MarkFlagRequired("tenant")
	return cmd
}

func clusterListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the clusters of the fleet",
		Example: "  fleetscan cluster list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			all := &fleetscanv1.ListClustersResponse{}
			for cl, err := range c.ListClusters(cmd.Context()) {
				if err != nil {
					return g.explain(err)
				}
				all.Clusters = append(all.Clusters, cl)
			}
			if g.structured() {
				return g.print(all)
			}
			t := newTable(g.stdout, "ID", "TENANT", "LABELS", "WORKER", "KUBERNETES", "LAST SEEN")
			for _, cl := range all.Clusters {
				t.row(cl.Id, cl.Tenant, labelString(cl.Labels), workerState(cl.Worker), orDash(cl.Worker.GetKubernetesVersion()), when(cl.Worker.GetLastSeenTime()))
			}
			return t.flush()
		},
	}
}

func clusterGetCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get CLUSTER_ID",
		Short: "Show one cluster and its worker",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.ClusterService.GetCluster(cmd.Context(), &fleetscanv1.GetClusterRequest{ClusterId: args[0]})
			if err != nil {
				return g.explain(err)
			}
			if g.structured() {
				return g.print(resp.Cluster)
			}
			cl := resp.Cluster
			fmt.Fprintf(g.stdout, "ID:          %s\nName:        %s\nTenant:      %s\nLabels:      %s\nRegistered:  %s\nWorker:      %s (version %s)\nKubernetes:  %s\nLast seen:   %s\n",
				cl.Id, cl.DisplayName, cl.Tenant, labelString(cl.Labels), when(cl.CreateTime), workerState(cl.Worker),
				orDash(cl.Worker.GetWorkerVersion()), orDash(cl.Worker.GetKubernetesVersion()), when(cl.Worker.GetLastSeenTime()))
			return nil
		},
	}
}

func labelString(l map[string]string) string {
	if len(l) == 0 {
		return "-"
	}
	var parts []string
	for k, v := range l {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func workerState(w *fleetscanv1.WorkerStatus) string {
	switch {
	case w.GetConnected():
		return "connected"
	case w.GetLastSeenTime() != nil:
		return "disconnected"
	}
	return "never connected"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
