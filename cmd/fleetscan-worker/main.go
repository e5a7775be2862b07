// Command fleetscan-worker runs inside a Kubernetes cluster (or next to a
// snapshot of one), dials out to the fleetscan server and scans the
// cluster whenever the server assigns a job.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fleetscan/fleetscan/cmd/internal/bytesize"
	"github.com/fleetscan/fleetscan/cmd/internal/flagset"
	"github.com/fleetscan/fleetscan/cmd/internal/logging"
	"github.com/fleetscan/fleetscan/cmd/internal/memlimit"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/worker"
	"github.com/fleetscan/fleetscan/worker/policy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "fleetscan-worker:", err)
		}
		os.Exit(exitCode(err))
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "scan" {
		return runScan(ctx, args[1:], stdout, stderr)
	}
	fs := flagset.New("fleetscan-worker", "FLEETSCAN_WORKER_")
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: fleetscan-worker --server ADDR --cluster-id ID (--token-file F | $FLEETSCAN_WORKER_TOKEN) [source] [flags]

Connects a cluster to the fleetscan server and scans it when told to. The
worker only dials out; the cluster needs no inbound access. Source, one of:
  (none)              in-cluster config, when run as a pod
  --kubeconfig F      a kubeconfig file, with --context to pick a context
  --snapshot DIR      a directory of YAML/JSON manifests (kubectl get -A -o yaml)

To scan once without a server (CI pipelines, air-gapped use), see
  fleetscan-worker scan --help

Examples:
  fleetscan-worker --server fleetscan.example.com:8443 --ca ca.pem \
      --cluster-id prod-eu-1 --token-file /var/run/fleetscan/token
  fleetscan-worker --server 127.0.0.1:8443 --plaintext --cluster-id dev \
      --token-file dev.token --kubeconfig ~/.kube/config --context kind-dev

Flags:
`)
		fs.PrintDefaults()
	}
	serverAddr := fs.String("server", "", "fleetscan server address, host:port; or several replicas of it, host1:port,host2:port, of which the worker picks one at random and another when it fails (a name that resolves to several addresses works the same)")
	clusterID := fs.String("cluster-id", "", "id of this cluster, as registered")
	tokenFile := fs.String("token-file", "", "file holding the join token (default: $FLEETSCAN_WORKER_TOKEN)")
	caFile := fs.String("ca", "", "CA certificate (PEM) to verify the server with; default: system roots")
	credFile := fs.String("credential-file", "", "file where the worker keeps its own credential, given by the server in exchange for the single-use join token; use a persistent path (default: in memory only, so a restarted worker needs a new join token)")
	certFile := fs.String("cert", "", "client certificate (PEM) with the SAN fleetscan://worker/CLUSTER_ID: replaces the token on servers with a client CA")
	keyFile := fs.String("key", "", "private key (PEM) of --cert")
	plaintext := fs.Bool("plaintext", false, "no TLS; allowed to loopback servers only")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file; default: in-cluster config")
	kubeContext := fs.String("context", "", "kubeconfig context; default: the current one")
	snapshot := fs.String("snapshot", "", "scan a directory of manifests instead of a live cluster")
	pageSize := fs.Int64("page-size", worker.DefaultPageSize, "objects per List call")
	kubeQPS := fs.Float32("kube-qps", DefaultKubeQPS, "List calls per second to the API server, in bursts of twice as many (the kubeconfig's own qps, if it sets one, wins)")
	maxDocument := &bytesize.Flag{N: worker.DefaultMaxDocumentSize}
	fs.Var(maxDocument, "max-document-size", "largest manifest document of a --snapshot; a larger one is reported with its file and line and skipped, the rest is scanned")
	batchSize := fs.Int("batch-size", 500, "findings per batch sent to the server")
	policies := fs.String("policies", "", "custom checks (CheckPolicy YAML file or directory) to run in every job")
	trusted := fs.String("trusted-registries", "", "comma-separated registries images may come from (IMG-003), for jobs that bring none")
	denied := fs.String("denied-registries", "", "comma-separated registries images must not come from (IMG-005), added to every job's; k8s.gcr.io is always reported")
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
		fmt.Fprintln(stdout, "fleetscan-worker", worker.Version)
		return nil
	}
	log, err := logging.New(stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	memlimit.Pace()
	// In a container, the garbage collector keeps the heap inside the
	// container's memory limit rather than grow into an OOM kill.
	if soft, err := memlimit.Apply(); err != nil {
		log.Warn("cannot read the container's memory limit; the Go runtime's default applies", "err", err)
	} else if soft > 0 {
		log.Info("soft memory limit from the container's", "bytes", soft, "share", memlimit.Share)
	}
	token := os.Getenv("FLEETSCAN_WORKER_TOKEN")
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" && *certFile == "" && !worker.HasCredential(*credFile) {
		return errors.New("no token: give --token-file or set FLEETSCAN_WORKER_TOKEN (the join token from 'fleetscan cluster register'), or a client certificate (--cert, --key)")
	}
	source, err := newSource(*snapshot, *kubeconfig, *kubeContext, *pageSize, *kubeQPS, int(maxDocument.N), func(p string) { log.Warn("while reading the cluster", "problem", p) })
	if err != nil {
		return err
	}
	var custom []*fleetscanv1.CustomCheck
	if *policies != "" {
		if custom, err = policy.LoadPolicies(*policies); err != nil {
			return err
		}
	}
	w, err := worker.New(worker.Config{
		Server: *serverAddr, Token: token, ClusterID: *clusterID, Source: source,
		CAFile: *caFile, CertFile: *certFile, KeyFile: *keyFile, CredentialFile: *credFile, Plaintext: *plaintext, BatchSize: *batchSize, Policies: custom, TrustedRegistries: splitList(*trusted), DeniedRegistries: splitList(*denied), Logger: log,
	})
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

// newSource is the worker's source from its flags: a snapshot directory,
// or a cluster through a kubeconfig or the in-cluster config.
// DefaultKubeQPS is how many List calls a second the worker makes by
// default. At client-go's own default, 5, a standalone scan of a cluster
// of 49,039 objects (about 120 calls of 500 objects) spent most of its
// time waiting for the client's rate limiter: 24.5 s, against 13.3–14.3 s
// at 20 on the same machine and load. The API server's priority and
// fairness still shields it from every client alike.
const DefaultKubeQPS = 20

func newSource(snapshot, kubeconfig, kubeContext string, pageSize int64, qps float32, maxDocument int, warn func(string)) (worker.Source, error) {
	switch {
	case snapshot != "" && kubeconfig != "":
		return nil, errors.New("give --snapshot or --kubeconfig, not both")
	case snapshot != "":
		if _, err := os.Stat(snapshot); err != nil {
			return nil, fmt.Errorf("--snapshot: %w", err)
		}
		return worker.SnapshotSource(snapshot, warn, worker.WithMaxDocumentSize(maxDocument)), nil
	}
	cfg, err := restConfig(kubeconfig, kubeContext)
	if err != nil {
		return nil, err
	}
	listConfig(cfg, qps)
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return worker.KubeSource(client, pageSize, warn), nil
}

// listConfig sets how the worker lists: as protobuf, not JSON (a page of
// 500 objects decodes in a fraction of the time and garbage; every kind
// the worker lists is a built-in one, which the API server serves as
// protobuf), at qps calls a second in bursts of twice as many unless the
// kubeconfig sets its own rate.
func listConfig(cfg *rest.Config, qps float32) {
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	if cfg.QPS == 0 && qps > 0 {
		cfg.QPS, cfg.Burst = qps, int(2*qps)
	}
}

func restConfig(kubeconfig, kubeContext string) (*rest.Config, error) {
	if kubeconfig == "" && kubeContext == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("not running in a cluster (%w): give --kubeconfig or --snapshot", err)
		}
		return cfg, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return cfg, nil
}
