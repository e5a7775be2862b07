package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

func clusterCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Register, update and inspect the clusters of the fleet"}
	cmd.AddCommand(clusterRegisterCommand(g), clusterUpdateCommand(g), clusterRotateCommand(g), clusterListCommand(g), clusterGetCommand(g))
	return cmd
}

func clusterRegisterCommand(g *globals) *cobra.Command {
	var tenant, displayName, tokenFile string
	var labels, grants []string
	cmd := &cobra.Command{
		Use:   "register CLUSTER_ID [--tenant TENANT] [--grant TENANT=NS,...]",
		Short: "Register a cluster and print the join token of its worker",
		Long: `Register a cluster and print the join token its worker connects with.
The token is shown once (the server keeps only its hash), expires after
a day, and works once: on first connect the worker gets a credential of
its own in exchange and keeps it in its --credential-file. With
--join-token-file the token is written to that file (mode 0600) instead
of being printed.

A cluster owned by a tenant (--tenant) is wholly visible to that tenant's
tokens. A cluster of the provider's own (no --tenant) can be shared:
--grant gives a tenant the findings of some namespaces, never those of
cluster-scoped objects.`,
		Example: `  fleetscan cluster register prod-eu-1 --tenant acme --label env=prod --label region=eu-west
  fleetscan cluster register dev-1 --tenant acme --join-token-file dev-1.token
  fleetscan cluster register shared-eu --grant acme=shop,web --grant globex=payments`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lbls, err := parseLabels(labels)
			if err != nil {
				return err
			}
			gr, err := parseGrants(grants)
			if err != nil {
				return err
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.ClusterService.RegisterCluster(cmd.Context(), &fleetscanv1.RegisterClusterRequest{
				ClusterId: args[0], Tenant: tenant, DisplayName: displayName, Labels: lbls, NamespaceGrants: gr,
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
			fmt.Fprintf(g.stdout, "Registered cluster %s (tenant %s).\n", resp.Cluster.Id, orDash(resp.Cluster.Tenant))
			if tokenFile != "" {
				fmt.Fprintf(g.stdout, "Its worker's join token is in %s.\n", tokenFile)
			} else {
				fmt.Fprintf(g.stdout, "Join token for its worker (shown once):\n%s\n", resp.JoinToken)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant that owns the cluster (default: none, a provider cluster)")
	cmd.Flags().StringVar(&displayName, "display-name", "", "human-friendly name (default: the id)")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "label key=value; repeatable")
	cmd.Flags().StringArrayVar(&grants, "grant", nil, "TENANT=NS1,NS2: the tenant may read the findings of these namespaces; repeatable")
	cmd.Flags().StringVar(&tokenFile, "join-token-file", "", "write the join token to this file instead of printing it")
	return cmd
}

func parseLabels(labels []string) (map[string]string, error) {
	out := map[string]string{}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return nil, fmt.Errorf("--label %q: use key=value", l)
		}
		out[k] = v
	}
	return out, nil
}

func parseGrants(grants []string) ([]*fleetscanv1.NamespaceGrant, error) {
	var out []*fleetscanv1.NamespaceGrant
	for _, g := range grants {
		tenant, nss, ok := strings.Cut(g, "=")
		if !ok || tenant == "" || nss == "" {
			return nil, fmt.Errorf("--grant %q: use TENANT=NAMESPACE[,NAMESPACE...]", g)
		}
		out = append(out, &fleetscanv1.NamespaceGrant{Tenant: tenant, Namespaces: strings.Split(nss, ",")})
	}
	return out, nil
}

func clusterUpdateCommand(g *globals) *cobra.Command {
	var tenant, displayName string
	var labels, grants []string
	var clearGrants bool
	cmd := &cobra.Command{
		Use:   "update CLUSTER_ID [flags]",
		Short: "Change a cluster's owner, name, labels or namespace grants",
		Long: `Change the fields given by flags; the others stay. --label replaces
all labels and --grant all grants with the ones given; --clear-grants
removes every grant. A grant's tenant sees the findings of its namespaces
from the next call on.`,
		Example: `  fleetscan cluster update shared-eu --grant acme=shop,web,checkout --grant globex=payments
  fleetscan cluster update prod-eu-1 --label env=prod --label tier=gold
  fleetscan cluster update old-1 --tenant globex`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &fleetscanv1.UpdateClusterRequest{Cluster: &fleetscanv1.Cluster{Id: args[0]}, UpdateMask: &fieldmaskpb.FieldMask{}}
			f := cmd.Flags()
			if f.Changed("tenant") {
				req.Cluster.Tenant = tenant
				req.UpdateMask.Paths = append(req.UpdateMask.Paths, "tenant")
			}
			if f.Changed("display-name") {
				req.Cluster.DisplayName = displayName
				req.UpdateMask.Paths = append(req.UpdateMask.Paths, "display_name")
			}
			if f.Changed("label") {
				var err error
				if req.Cluster.Labels, err = parseLabels(labels); err != nil {
					return err
				}
				req.UpdateMask.Paths = append(req.UpdateMask.Paths, "labels")
			}
			if f.Changed("grant") && clearGrants {
				return fmt.Errorf("give --grant or --clear-grants, not both")
			}
			if f.Changed("grant") || clearGrants {
				var err error
				if req.Cluster.NamespaceGrants, err = parseGrants(grants); err != nil {
					return err
				}
				req.UpdateMask.Paths = append(req.UpdateMask.Paths, "namespace_grants")
			}
			if len(req.UpdateMask.Paths) == 0 {
				return fmt.Errorf("nothing to change: give --tenant, --display-name, --label, --grant or --clear-grants")
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.ClusterService.UpdateCluster(cmd.Context(), req)
			if err != nil {
				return g.explain(err)
			}
			if g.structured() {
				return g.print(resp.Cluster)
			}
			fmt.Fprintf(g.stdout, "Updated %s of cluster %s.\n", strings.Join(req.UpdateMask.Paths, ", "), resp.Cluster.Id)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", "", "new owning tenant; empty makes it a provider cluster")
	f.StringVar(&displayName, "display-name", "", "new human-friendly name")
	f.StringArrayVar(&labels, "label", nil, "label key=value; repeatable; replaces all labels")
	f.StringArrayVar(&grants, "grant", nil, "TENANT=NS1,NS2; repeatable; replaces all grants")
	f.BoolVar(&clearGrants, "clear-grants", false, "remove every namespace grant")
	return cmd
}

func grantString(gs []*fleetscanv1.NamespaceGrant) string {
	if len(gs) == 0 {
		return "-"
	}
	var parts []string
	for _, g := range gs {
		parts = append(parts, g.Tenant+"="+strings.Join(g.Namespaces, ","))
	}
	return strings.Join(parts, " ")
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
				t.row(cl.Id, orDash(cl.Tenant), labelString(cl.Labels), workerState(cl.Worker), orDash(cl.Worker.GetKubernetesVersion()), when(cl.Worker.GetLastSeenTime()))
			}
			return t.flush()
		},
	}
}

func clusterGetCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "get CLUSTER_ID",
		Example: `  fleetscan cluster get prod-eu-1
  fleetscan cluster get prod-eu-1 -o yaml`,
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
			fmt.Fprintf(g.stdout, "ID:          %s\nName:        %s\nTenant:      %s\nLabels:      %s\nGrants:      %s\nRegistered:  %s\nWorker:      %s (version %s)\nKubernetes:  %s\nLast seen:   %s\n",
				cl.Id, cl.DisplayName, orDash(cl.Tenant), labelString(cl.Labels), grantString(cl.NamespaceGrants), when(cl.CreateTime), workerState(cl.Worker),
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

func clusterRotateCommand(g *globals) *cobra.Command {
	var tokenFile string
	cmd := &cobra.Command{
		Use:   "rotate-token CLUSTER_ID",
		Short: "Revoke a worker's credentials and print a new join token",
		Long: `Revoke every credential of the cluster's worker, disconnect it, and
print a new single-use join token: for a worker that lost its credential
file, or whose credential may have leaked. Give the new token to the
worker (its --token-file) and restart it.`,
		Example: `  fleetscan cluster rotate-token prod-eu-1 --join-token-file prod-eu-1.token`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.ClusterService.RotateClusterToken(cmd.Context(), &fleetscanv1.RotateClusterTokenRequest{ClusterId: args[0]})
			if err != nil {
				return g.explain(err)
			}
			if tokenFile != "" {
				if err := os.WriteFile(tokenFile, []byte(resp.JoinToken+"\n"), 0o600); err != nil {
					return fmt.Errorf("credentials rotated, but writing the new join token failed (rotate again): %w", err)
				}
				resp.JoinToken = ""
			}
			if g.structured() {
				return g.print(resp)
			}
			fmt.Fprintf(g.stdout, "Revoked %d credential(s) of %s; its worker is disconnected.\n", resp.Revoked, args[0])
			if tokenFile != "" {
				fmt.Fprintf(g.stdout, "The new join token is in %s; it expires %s.\n", tokenFile, when(resp.JoinTokenExpireTime))
			} else {
				fmt.Fprintf(g.stdout, "New join token (shown once, expires %s):\n%s\n", when(resp.JoinTokenExpireTime), resp.JoinToken)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&tokenFile, "join-token-file", "", "write the new join token to this file instead of printing it")
	return cmd
}
