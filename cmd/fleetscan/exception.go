package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/fleetscan/fleetscan/cmd/internal/duration"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

func exceptionCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "exception", Short: "Accept risks for a while: suppress findings by scope, with a reason and an expiry"}
	cmd.AddCommand(exceptionCreateCommand(g), exceptionListCommand(g), exceptionDeleteCommand(g))
	return cmd
}

func exceptionCreateCommand(g *globals) *cobra.Command {
	var e fleetscanv1.Exception
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "create --reason TEXT --ttl DURATION [--cluster ID] [--namespace NS] [--check ID] [--kind K --name N] [--tenant T]",
		Short: "Suppress the findings a scope covers, until the exception expires",
		Long: `Create an exception: the findings matching every scope flag given stay
stored and listed with status suppressed and the reason, and are not
counted as open. Lists follow at once; counts and trends from the
cluster's next scan. Every exception expires (--ttl, at most a year).
Tenants may create exceptions inside their own scope when the server runs
with --tenant-exceptions.`,
		Example: `  fleetscan exception create --cluster prod-eu-1 --check POD-020 --ttl 30d \
      --reason "AppArmor unavailable on these nodes; seccomp enforced instead (SEC-1234)"
  fleetscan exception create --cluster prod-eu-1 --namespace legacy --kind Deployment --name billing \
      --ttl 168h --reason "being replaced this sprint"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.ExceptionService.CreateException(cmd.Context(), &fleetscanv1.CreateExceptionRequest{Exception: &e, Ttl: durationpb.New(ttl)})
			if err != nil {
				return g.explain(err)
			}
			if g.structured() {
				return g.print(resp.Exception)
			}
			fmt.Fprintf(g.stdout, "Created exception %s; it applies until %s.\nFinding lists show it now; scan counts, trends and scores will at each cluster's next scan.\n", resp.Exception.Id, when(resp.Exception.ExpireTime))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&e.Reason, "reason", "", "why the risk is accepted (required)")
	ttl = 0
	f.Var(duration.Var(&ttl), "ttl", "how long the exception applies, e.g. 30d or 2w (required; at most a year)")
	f.StringVar(&e.ClusterId, "cluster", "", "only findings of this cluster")
	f.StringVar(&e.Namespace, "namespace", "", "only findings on objects of this namespace")
	f.StringVar(&e.CheckId, "check", "", "only findings of this check")
	f.StringVar(&e.ResourceKind, "kind", "", "only findings on objects of this kind, e.g. Deployment")
	f.StringVar(&e.ResourceName, "name", "", "only findings on the object of this name (with --kind)")
	f.StringVar(&e.Tenant, "tenant", "", "only findings of this tenant's clusters")
	_ = cmd.MarkFlagRequired("reason")
	_ = cmd.MarkFlagRequired("ttl")
	return cmd
}

func exceptionListCommand(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List exceptions, newest first",
		Example: "  fleetscan exception list\n  fleetscan exception list --all -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			out := &fleetscanv1.ListExceptionsResponse{}
			req := &fleetscanv1.ListExceptionsRequest{ShowExpired: all, PageSize: 1000}
			for {
				resp, err := c.ExceptionService.ListExceptions(cmd.Context(), req)
				if err != nil {
					return g.explain(err)
				}
				out.Exceptions = append(out.Exceptions, resp.Exceptions...)
				if resp.NextPageToken == "" {
					break
				}
				req.PageToken = resp.NextPageToken
			}
			if g.structured() {
				return g.print(out)
			}
			t := newTable(g.stdout, "ID", "STATE", "SCOPE", "AUTHOR", "EXPIRES", "REASON")
			for _, e := range out.Exceptions {
				t.row(e.Id, enumName(e.State, "EXCEPTION_STATE_"), exceptionScope(e), e.Author, when(e.ExpireTime), e.Reason)
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "also list expired and deleted exceptions")
	return cmd
}

func exceptionScope(e *fleetscanv1.Exception) string {
	s := ""
	add := func(k, v string) {
		if v != "" {
			if s != "" {
				s += " "
			}
			s += k + "=" + v
		}
	}
	add("tenant", e.Tenant)
	add("cluster", e.ClusterId)
	add("namespace", e.Namespace)
	add("check", e.CheckId)
	add("kind", e.ResourceKind)
	add("name", e.ResourceName)
	return s
}

func exceptionDeleteCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "delete EXCEPTION_ID",
		Short:   "End an exception now; it stays listed as deleted",
		Example: "  fleetscan exception delete 01JD5S0Q4C3Y8X2M7V6K1N9B0T",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.ExceptionService.DeleteException(cmd.Context(), &fleetscanv1.DeleteExceptionRequest{ExceptionId: args[0]})
			if err != nil {
				return g.explain(err)
			}
			if g.structured() {
				return g.print(resp.Exception)
			}
			fmt.Fprintf(g.stdout, "Deleted exception %s; its findings are open again in finding lists, and in scan counts, trends and scores from each cluster's next scan.\n", resp.Exception.Id)
			return nil
		},
	}
}
