package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// cliConfig is the CLI's config file: named contexts, like kubeconfig's,
// each a server with the credentials to reach it.
type cliConfig struct {
	CurrentContext string       `json:"current-context,omitempty"`
	Contexts       []cliContext `json:"contexts,omitempty"`
}

type cliContext struct {
	Name      string `json:"name"`
	Server    string `json:"server,omitempty"`
	TokenFile string `json:"token-file,omitempty"`
	CA        string `json:"ca,omitempty"`
	Cert      string `json:"cert,omitempty"`
	Key       string `json:"key,omitempty"`
	Plaintext bool   `json:"plaintext,omitempty"`
}

// configPath is --config, else $FLEETSCAN_CONFIG, else
// $XDG_CONFIG_HOME/fleetscan/config.yaml (~/.config by default).
func configPath(flag string) string {
	if flag != "" {
		return flag
	}
	if p := os.Getenv("FLEETSCAN_CONFIG"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "fleetscan", "config.yaml")
}

func loadConfig(path string) (*cliConfig, error) {
	cfg := &cliConfig{}
	if path == "" {
		return cfg, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := yaml.UnmarshalStrict(b, cfg); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

func (c *cliConfig) save(path string) error {
	b, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return os.WriteFile(path, b, 0o600)
}

func (c *cliConfig) find(name string) int {
	return slices.IndexFunc(c.Contexts, func(x cliContext) bool { return x.Name == name })
}

// applyContext fills the connection settings that neither a flag nor the
// environment gave from the chosen context: flags win, then the
// environment, then the context.
func (g *globals) applyContext(cmd *cobra.Command) error {
	cfg, err := loadConfig(configPath(g.configFile))
	if err != nil {
		return err
	}
	name := g.context
	if name == "" {
		name = cfg.CurrentContext
	}
	if name == "" {
		return nil
	}
	i := cfg.find(name)
	if i < 0 {
		return fmt.Errorf("context %q is not in %s (see 'fleetscan config get-contexts')", name, configPath(g.configFile))
	}
	ctx := cfg.Contexts[i]
	unset := func(flag, env string) bool { return !cmd.Flags().Changed(flag) && os.Getenv(env) == "" }
	if ctx.Server != "" && unset("server", "FLEETSCAN_SERVER") {
		g.server = ctx.Server
	}
	if ctx.TokenFile != "" && unset("token-file", "FLEETSCAN_TOKEN_FILE") && unset("token", "FLEETSCAN_TOKEN") {
		g.tokenFile = ctx.TokenFile
	}
	if ctx.CA != "" && unset("ca", "FLEETSCAN_CA") {
		g.caFile = ctx.CA
	}
	if ctx.Cert != "" && unset("cert", "FLEETSCAN_CERT") {
		g.certFile, g.keyFile = ctx.Cert, ctx.Key
	}
	if ctx.Plaintext && unset("plaintext", "FLEETSCAN_PLAINTEXT") {
		g.plaintext = true
	}
	return nil
}

func configCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Named contexts: servers and the credentials to reach them",
		Long: `Manage the CLI's config file (--config, $FLEETSCAN_CONFIG, or
~/.config/fleetscan/config.yaml). A context names a server, a token file
and a CA; the current one applies when no flag or environment variable
says otherwise.`,
		Example: `  fleetscan config set-context prod --server fleetscan.example.com:8443 \
      --token-file ~/.fleetscan/prod.token --ca ~/.fleetscan/ca.crt
  fleetscan config use-context prod
  fleetscan --context staging cluster list`,
	}
	var server, tokenFile, ca, cert, key string
	var plaintext bool
	set := &cobra.Command{
		Use: "set-context NAME [--server ADDR] [--token-file F] [--ca F] [--cert F --key F] [--plaintext]",
		Example: `  fleetscan config set-context prod --server fleetscan.example.com:8443 \
      --token-file ~/.config/fleetscan/prod.token --ca ca.crt
  fleetscan config set-context local --server 127.0.0.1:8443 --plaintext --token-file fleetscan-data/operator.token`,
		Short: "Create or update a context (the first one becomes current)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := configPath(g.configFile)
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			i := cfg.find(args[0])
			if i < 0 {
				cfg.Contexts = append(cfg.Contexts, cliContext{Name: args[0]})
				i = len(cfg.Contexts) - 1
			}
			c := &cfg.Contexts[i]
			f := cmd.Flags()
			if f.Changed("server") {
				c.Server = server
			}
			if f.Changed("token-file") {
				if c.TokenFile, err = filepath.Abs(tokenFile); err != nil {
					return err
				}
			}
			if f.Changed("ca") {
				if c.CA, err = filepath.Abs(ca); err != nil {
					return err
				}
			}
			if f.Changed("cert") {
				if c.Cert, err = filepath.Abs(cert); err != nil {
					return err
				}
			}
			if f.Changed("key") {
				if c.Key, err = filepath.Abs(key); err != nil {
					return err
				}
			}
			if f.Changed("plaintext") {
				c.Plaintext = plaintext
			}
			if cfg.CurrentContext == "" {
				cfg.CurrentContext = c.Name
			}
			if err := cfg.save(path); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Context %q saved in %s.\n", c.Name, path)
			return nil
		},
	}
	set.Flags().StringVar(&server, "server", "", "server address, host:port, or replicas of it, host:port,host:port")
	set.Flags().StringVar(&tokenFile, "token-file", "", "file holding the API token")
	set.Flags().StringVar(&ca, "ca", "", "CA certificate (PEM) of the server")
	set.Flags().StringVar(&cert, "cert", "", "client certificate (PEM) for mTLS")
	set.Flags().StringVar(&key, "key", "", "private key (PEM) of the client certificate")
	set.Flags().BoolVar(&plaintext, "plaintext", false, "no TLS (loopback servers only)")
	use := &cobra.Command{
		Use:     "use-context NAME",
		Example: `  fleetscan config use-context prod`,
		Short:   "Make a context the current one",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := configPath(g.configFile)
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			if cfg.find(args[0]) < 0 {
				return fmt.Errorf("no context %q in %s; create it with 'fleetscan config set-context'", args[0], path)
			}
			cfg.CurrentContext = args[0]
			if err := cfg.save(path); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Switched to context %q.\n", args[0])
			return nil
		},
	}
	get := &cobra.Command{
		Use:     "get-contexts",
		Example: `  fleetscan config get-contexts`,
		Short:   "List the contexts",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configPath(g.configFile))
			if err != nil {
				return err
			}
			t := newTable(g.stdout, "CURRENT", "NAME", "SERVER", "TOKEN FILE", "CA")
			for _, c := range cfg.Contexts {
				mark := ""
				if c.Name == cfg.CurrentContext {
					mark = "*"
				}
				t.row(mark, c.Name, orDash(c.Server), orDash(c.TokenFile), orDash(c.CA))
			}
			return t.flush()
		},
	}
	cmd.AddCommand(set, use, get)
	return cmd
}
