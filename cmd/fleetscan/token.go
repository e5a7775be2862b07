package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/fleetscan/fleetscan/cmd/internal/duration"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

func tokenCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Create, list and revoke API tokens of operators and tenants"}
	cmd.AddCommand(tokenCreateCommand(g), tokenListCommand(g), tokenRevokeCommand(g))
	return cmd
}

func tokenCreateCommand(g *globals) *cobra.Command {
	var name, role, tenant, secretFile string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "create --name NAME (--tenant TENANT | --role operator)",
		Short: "Mint a token; its secret is shown once",
		Long: `Mint an API token. A tenant token reads the findings, trends and
clusters of its tenant, and nothing else; an operator token can do
everything. Every token expires (--ttl, default 90 days, at most 400).
The secret is shown once: the server keeps only its hash. With
--secret-file it is written to that file (mode 0600) instead.`,
		Example: `  fleetscan token create --name acme-ci --tenant acme --secret-file acme-ci.token
  fleetscan token create --name alice --role operator --ttl 30d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &fleetscanv1.CreateTokenRequest{Name: name, Tenant: tenant}
			switch {
			case role == "tenant" || (role == "" && tenant != ""):
				req.Role = fleetscanv1.TokenRole_TOKEN_ROLE_TENANT
			case role == "operator":
				req.Role = fleetscanv1.TokenRole_TOKEN_ROLE_OPERATOR
			default:
				return fmt.Errorf("give --tenant TENANT for a tenant token, or --role operator")
			}
			if cmd.Flags().Changed("ttl") {
				req.Ttl = durationpb.New(ttl)
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.TokenService.CreateToken(cmd.Context(), req)
			if err != nil {
				return g.explain(err)
			}
			if secretFile != "" {
				if err := os.WriteFile(secretFile, []byte(resp.Secret+"\n"), 0o600); err != nil {
					return fmt.Errorf("token %s created, but writing its secret failed (revoke it and try again): %w", resp.Token.Id, err)
				}
				resp.Secret = ""
			}
			if g.structured() {
				return g.print(resp)
			}
			fmt.Fprintf(g.stdout, "Created token %s (%s), expires %s.\n", resp.Token.Id, resp.Token.Name, when(resp.Token.ExpireTime))
			if secretFile != "" {
				fmt.Fprintf(g.stdout, "Its secret is in %s.\n", secretFile)
			} else {
				fmt.Fprintf(g.stdout, "Secret (shown once):\n%s\n", resp.Secret)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "who or what uses the token (required)")
	f.StringVar(&tenant, "tenant", "", "the tenant whose findings the token reads")
	f.StringVar(&role, "role", "", "tenant (default with --tenant) or operator")
	ttl = 90 * 24 * time.Hour
	f.Var(duration.Var(&ttl), "ttl", "how long the token is valid")
	f.StringVar(&secretFile, "secret-file", "", "write the secret to this file instead of printing it")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func tokenListCommand(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List operator and tenant tokens (never their secrets)",
		Example: "  fleetscan token list\n  fleetscan token list --all -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			out := &fleetscanv1.ListTokensResponse{}
			req := &fleetscanv1.ListTokensRequest{ShowAll: all, PageSize: 1000}
			for {
				resp, err := c.TokenService.ListTokens(cmd.Context(), req)
				if err != nil {
					return g.explain(err)
				}
				out.Tokens = append(out.Tokens, resp.Tokens...)
				if resp.NextPageToken == "" {
					break
				}
				req.PageToken = resp.NextPageToken
			}
			if g.structured() {
				return g.print(out)
			}
			t := newTable(g.stdout, "ID", "NAME", "ROLE", "TENANT", "CREATED", "EXPIRES", "REVOKED")
			for _, tok := range out.Tokens {
				t.row(tok.Id, tok.Name, enumName(tok.Role, "TOKEN_ROLE_"), orDash(tok.Tenant), when(tok.CreateTime), when(tok.ExpireTime), when(tok.RevokeTime))
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "also list revoked and expired tokens")
	return cmd
}

func tokenRevokeCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "revoke TOKEN_ID",
		Short:   "Revoke a token: it stops working at once",
		Example: "  fleetscan token revoke 01JD5S0Q4C3Y8X2M7V6K1N9B0T",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.TokenService.RevokeToken(cmd.Context(), &fleetscanv1.RevokeTokenRequest{TokenId: args[0]})
			if err != nil {
				return g.explain(err)
			}
			if g.structured() {
				return g.print(resp.Token)
			}
			fmt.Fprintf(g.stdout, "Revoked token %s (%s).\n", resp.Token.Id, resp.Token.Name)
			return nil
		},
	}
}
