// Command fleetscan-server schedules scans of a fleet of Kubernetes
// clusters, receives the findings of their workers and keeps the history
// in an embedded bbolt database.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/fleetscan/fleetscan/cmd/internal/bytesize"
	"github.com/fleetscan/fleetscan/cmd/internal/flagset"
	"github.com/fleetscan/fleetscan/cmd/internal/logging"
	"github.com/fleetscan/fleetscan/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "fleetscan-server:", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitCode maps run's error to the process status, as in every fleetscan
// binary: 0 for success and --help, 1 when check found problems (what it
// is run to find), 2 for any error.
func exitCode(err error) int {
	switch {
	case err == nil || errors.Is(err, pflag.ErrHelp):
		return 0
	case errors.Is(err, errProblems):
		return 1
	}
	return 2
}

// storeFlag reads --store: "" for the embedded bbolt file, or the
// PostgreSQL URL.
func storeFlag(v string) (string, error) {
	switch {
	case v == "" || v == "bbolt":
		return "", nil
	case strings.HasPrefix(v, "postgres://"), strings.HasPrefix(v, "postgresql://"):
		return v, nil
	}
	return "", fmt.Errorf("--store %q: want bbolt or a postgres:// URL", v)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "check":
			return runCheck(ctx, args[1:], stdout, stderr)
		case "restore":
			return runRestore(ctx, args[1:], stdout, stderr)
		case "serve":
			args = args[1:]
		}
	}
	fs := flagset.New("fleetscan-server", "FLEETSCAN_SERVER_")
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: fleetscan-server [serve] [flags]
       fleetscan-server check --data-dir DIR    (see fleetscan-server check --help)
       fleetscan-server restore --data-dir DIR --from BACKUP

Runs the fleetscan server. On first start it creates an operator token and
writes it to DATA_DIR/operator.token (mode 0600); use it with the fleetscan
CLI to register clusters and start scans. A data directory whose token says
a server ran there but whose database is missing or empty is refused,
unless --init says a new, empty database is wanted.

Examples:
  fleetscan-server --data-dir ./data --listen 127.0.0.1:8443 --plaintext
  fleetscan-server --data-dir /var/lib/fleetscan --listen 0.0.0.0:8443 --tls-cert s.crt --tls-key s.key
  fleetscan-server --data-dir ./data --listen 0.0.0.0:8443 --dev-tls --dev-tls-hosts fleetscan.lan,10.0.0.5
  PGPASSWORD=... fleetscan-server --store postgres://fleetscan@db.internal/fleetscan --data-dir ./data --listen 0.0.0.0:8443 --tls-cert s.crt --tls-key s.key

Flags:
`)
		fs.PrintDefaults()
	}
	dataDir := fs.String("data-dir", "fleetscan-data", "directory of the database and the first operator token")
	storeURL := fs.String("store", "bbolt", "where the history is kept: bbolt (a file in --data-dir) or a PostgreSQL database, postgres://USER@HOST:PORT/DB?sslmode=verify-full, which any number of servers may share (docs/scaling.md); give the password in PGPASSWORD or ~/.pgpass rather than in the URL")
	initDB := fs.Bool("init", false, "start a new, empty database in a data directory that holds an operator token but no database (after a loss you chose not to restore)")
	listen := fs.String("listen", server.Defaults.Listen, "gRPC listen address")
	plaintext := fs.Bool("plaintext", false, "serve without TLS; allowed on a loopback --listen address only (for local trials and tests)")
	tlsCert := fs.String("tls-cert", "", "TLS certificate file (PEM)")
	tlsKey := fs.String("tls-key", "", "TLS private key file (PEM)")
	clientCA := fs.String("client-ca", "", "CA (PEM) of client certificates: a certificate it signed with a fleetscan:// URI SAN (fleetscan://operator/NAME, fleetscan://tenant/TENANT/NAME, fleetscan://worker/CLUSTER) authenticates without a token")
	devTLS := fs.Bool("dev-tls", false, "make a development CA and server certificate under DATA_DIR/tls and serve TLS with them (clients use --ca DATA_DIR/tls/ca.crt)")
	devHosts := fs.String("dev-tls-hosts", "localhost,127.0.0.1,::1", "comma-separated names and addresses the development certificate is for")
	metricsListen := fs.String("metrics-listen", "", "HTTP address for Prometheus /metrics, e.g. 127.0.0.1:9464 (default: off)")
	webListen := fs.String("web-listen", "", "address of the web listener, e.g. 127.0.0.1:8080: the web console at / and the public API over the Connect and gRPC-Web protocols for browsers, with the API's TLS, tokens, rate limits and audit (default: off)")
	pprofOn := fs.Bool("pprof", false, "also serve /debug/pprof/ on the metrics listener")
	addrFile := fs.String("address-file", "", "write the address actually listened on to this file (for scripts using port 0)")
	webAddrFile := fs.String("web-address-file", "", "write the web listener's address to this file (for scripts using port 0)")
	shutdown := fs.Duration("shutdown-timeout", server.Defaults.ShutdownTimeout, "how long to wait for calls in progress on shutdown (worker streams are ended at once; their jobs are requeued)")
	jobTimeout := fs.Duration("job-timeout", server.Defaults.JobTimeout, "a job still running after this long ends as TIMED_OUT")
	jobExpiry := fs.Duration("job-expiry", server.Defaults.JobExpiry, "a job whose worker has not connected after this long ends as EXPIRED")
	tick := fs.Duration("tick", server.Defaults.Tick, "how often schedules and job deadlines are checked: the granularity of schedules, timeouts and expiry")
	tenantExceptions := fs.Bool("tenant-exceptions", false, "let tenants create and delete exceptions (accepted risks) inside their own scope")
	rateLimit := fs.Float64("rate-limit", server.Defaults.RateLimit, "API calls a second each token may make, with bursts of --rate-burst (0: no limit); more are refused with RESOURCE_EXHAUSTED")
	rateBurst := fs.Int("rate-burst", server.Defaults.RateBurst, "calls a token may make at once before --rate-limit applies")
	heartbeat := fs.Duration("heartbeat", server.Defaults.Heartbeat, "how often workers send something when idle; a worker silent for three intervals is disconnected")
	maxRunning := fs.Int("max-running-jobs", server.Defaults.MaxRunningJobs, "jobs dispatched at once across the fleet; clusters wait their turn in order (-1: no cap)")
	maxAttempts := fs.Int("max-attempts", server.Defaults.MaxAttempts, "times a job is sent to its worker before a lost connection fails it")
	retention := fs.Duration("retention", server.Defaults.Retention, "how long per-scan finding sets (for diffs) and resolved findings are kept; trends and open findings are kept; 0 keeps all")
	notifyRetryFor := fs.Duration("notify-retry-for", server.Defaults.NotifyRetryFor, "how long a notification is tried, with backoff, before it is given up (docs/notifications.md)")
	maxMessage := &bytesize.Flag{N: int64(server.Defaults.MaxMessageBytes)}
	fs.Var(maxMessage, "max-message-size", "largest message the server receives, from workers and API clients (at least 64KiB); workers are told it and keep their batches under it")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	if *showVersion {
		fmt.Fprintln(stdout, "fleetscan-server", server.Version)
		return nil
	}
	log, err := logging.New(stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	pg, err := storeFlag(*storeURL)
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, server.Config{
		Store: pg, DataDir: *dataDir, Init: *initDB, Listen: *listen, TLSCertFile: *tlsCert, TLSKeyFile: *tlsKey, ClientCAFile: *clientCA, Plaintext: *plaintext,
		DevTLS: *devTLS, DevTLSHosts: strings.Split(*devHosts, ","),
		MetricsListen: *metricsListen, Pprof: *pprofOn, WebListen: *webListen,
		AddressFile: *addrFile, WebAddressFile: *webAddrFile, ShutdownTimeout: *shutdown, Retention: *retention, NotifyRetryFor: *notifyRetryFor, JobTimeout: *jobTimeout, JobExpiry: *jobExpiry, Tick: *tick, Heartbeat: *heartbeat, RateLimit: *rateLimit, TenantExceptions: *tenantExceptions, RateBurst: *rateBurst, MaxAttempts: *maxAttempts, MaxRunningJobs: *maxRunning, MaxMessageBytes: int(min(maxMessage.N, math.MaxInt32)), Logger: log,
	})
	if err != nil {
		return err
	}
	return srv.Serve(ctx)
}
