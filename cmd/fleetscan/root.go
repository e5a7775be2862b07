package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fleetscan/fleetscan/client"
)

// globals are the connection flags every command shares.
type globals struct {
	server    string
	token     string
	tokenFile string
	caFile    string
	certFile  string
	keyFile   string
	plaintext bool
	output    string
	stdout    io.Writer
	// sarifOK is set by the commands that can write SARIF, htmlOK by
	// the report.
	sarifOK, htmlOK bool
	// configFile and context choose the config file and a context in it.
	configFile, context string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := rootCommand(&globals{stdout: stdout})
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

// rootCommand builds the command tree.
func rootCommand(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "fleetscan",
		Short: "Scan the security posture of a fleet of Kubernetes clusters",
		Long: `fleetscan talks to a fleetscan server: register clusters, start scans of
one cluster or the whole fleet, and read what they found and how it
changes.

The server and its credentials come from flags, else the environment, else
the current context of the config file ('fleetscan config --help'):
  --server      FLEETSCAN_SERVER      (default 127.0.0.1:8443)
  --token       FLEETSCAN_TOKEN
  --token-file  FLEETSCAN_TOKEN_FILE  (the server writes its first operator
                                       token to DATA_DIR/operator.token)
  --ca          FLEETSCAN_CA          (the server's CA; TLS is the default)`,
		Example: `  fleetscan config set-context prod --server fleetscan.example.com:8443 \
      --token-file fleetscan-data/operator.token --ca fleetscan-data/tls/ca.crt
  fleetscan cluster register prod-eu-1 --tenant acme --label env=prod
  fleetscan scan start --all --wait
  fleetscan findings list --severity high`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Parent() != nil && cmd.Parent().Name() == "config" {
				return nil
			}
			return g.applyContext(cmd)
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", envOr("FLEETSCAN_SERVER", "127.0.0.1:8443"), "server address, host:port, or replicas of it, host:port,host:port (one is used, another when it fails) [$FLEETSCAN_SERVER]")
	pf.StringVar(&g.token, "token", "", "API token [$FLEETSCAN_TOKEN]")
	pf.StringVar(&g.tokenFile, "token-file", os.Getenv("FLEETSCAN_TOKEN_FILE"), "file holding the API token [$FLEETSCAN_TOKEN_FILE]")
	pf.StringVar(&g.caFile, "ca", os.Getenv("FLEETSCAN_CA"), "CA certificate (PEM) of the server [$FLEETSCAN_CA]")
	pf.StringVar(&g.certFile, "cert", os.Getenv("FLEETSCAN_CERT"), "client certificate (PEM) for mTLS; replaces a token on servers with a client CA [$FLEETSCAN_CERT]")
	pf.StringVar(&g.keyFile, "key", os.Getenv("FLEETSCAN_KEY"), "private key (PEM) of --cert [$FLEETSCAN_KEY]")
	pf.BoolVar(&g.plaintext, "plaintext", os.Getenv("FLEETSCAN_PLAINTEXT") == "1", "no TLS, for a server on loopback [$FLEETSCAN_PLAINTEXT=1]")
	pf.StringVar(&g.configFile, "config", "", "config file with named contexts [$FLEETSCAN_CONFIG] (default ~/.config/fleetscan/config.yaml)")
	pf.StringVar(&g.context, "context", "", "context of the config file to use (default: its current context)")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table, wide, json or yaml (and sarif for findings list, html for report)")
	root.AddCommand(clusterCommand(g), tokenCommand(g), auditCommand(g), exceptionCommand(g), scanCommand(g), findingsCommand(g), checksCommand(g), diffCommand(g), trendCommand(g), compareCommand(g), summaryCommand(g), scheduleCommand(g), notifierCommand(g), configCommand(g), adminCommand(g), reportCommand(g))
	return root
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// connect returns a client with the global flags applied.
func (g *globals) connect() (*client.Client, error) {
	switch g.output {
	case "table", "wide", "json", "yaml", "sarif", "html":
	default:
		return nil, fmt.Errorf("--output %q: use table, wide, json or yaml (sarif: findings list; html: report)", g.output)
	}
	if g.output == "html" && !g.htmlOK {
		return nil, errNoHTML
	}
	if g.output == "sarif" && !g.sarifOK {
		return nil, errors.New("--output sarif: only 'fleetscan findings list' writes SARIF")
	}
	// Flags win over the environment; a token beats a token file.
	token := g.token
	if token == "" && g.tokenFile == "" {
		token = os.Getenv("FLEETSCAN_TOKEN")
	}
	if token == "" && g.tokenFile != "" {
		b, err := os.ReadFile(g.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("token file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" && g.certFile == "" {
		return nil, errors.New("no API token: give --token-file (the server writes DATA_DIR/operator.token on first start), --token, FLEETSCAN_TOKEN, or a client certificate (--cert, --key)")
	}
	var opts []client.Option
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	if g.certFile != "" {
		opts = append(opts, client.WithClientCert(g.certFile, g.keyFile))
	}
	if g.plaintext {
		opts = append(opts, client.WithPlaintext())
	}
	if g.caFile != "" {
		opts = append(opts, client.WithCAFile(g.caFile))
	}
	return client.New(g.server, opts...)
}

// explain turns a call's error into a message that says what to do.
func (g *globals) explain(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Unavailable:
		hint := "is fleetscan-server running there? (--server, $FLEETSCAN_SERVER)"
		if !g.plaintext && strings.Contains(st.Message(), "handshake") {
			hint = "the TLS handshake failed: for a plaintext server on loopback pass --plaintext, else give its CA with --ca"
		}
		return fmt.Errorf("cannot reach the server at %s: %s\n  %s", g.server, st.Message(), hint)
	case codes.Unauthenticated:
		return fmt.Errorf("the server rejected the token: check --token-file / $FLEETSCAN_TOKEN (%s)", st.Message())
	case codes.PermissionDenied:
		return fmt.Errorf("not allowed: %s", st.Message())
	case codes.DeadlineExceeded:
		return errors.New("timed out waiting for the server")
	}
	return errors.New(st.Message())
}

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitCode is the process status for run's error: 1 only for findings
// at or above --fail-on (an exitError with code 1); 2 for every error, so
// that a pipeline never takes a failure for a finding, nor for a pass.
func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 2
}
