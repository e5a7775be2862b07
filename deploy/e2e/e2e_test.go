//go:build e2e

package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden from this run")

// env is what TestMain set up for the tests: the tools, the fleetscan
// binaries and the two clusters, seeded and with the worker's RBAC.
var env struct {
	tools     string // kube-apiserver, kubectl, etcd
	fleetscan string // fleetscan-server, fleetscan-worker
	repo      string
	root      string
	clusters  []*cluster
}

// cluster is a control plane as a member of the fleet.
type cluster struct {
	*controlPlane
	id          string
	tenant      string
	seedDirs    []string
	installs    []string // kustomizations of deploy/kubernetes applied to it
	workerToken string   // a TokenRequest token of the worker's ServiceAccount
	workerConf  string   // kubeconfig with workerToken
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(setup(m))
}

func setup(m *testing.M) int {
	ctx := context.Background()
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "e2e setup: "+format+"\n", args...)
		return 1
	}
	var err error
	if env.repo, err = filepath.Abs("../.."); err != nil {
		return fail("%v", err)
	}
	// make e2e builds the control plane first (deploy/e2e/build-tools.sh):
	// without it the suite fails, it never skips.
	if env.tools = os.Getenv("FLEETSCAN_E2E_TOOLS"); env.tools == "" {
		return fail("FLEETSCAN_E2E_TOOLS is not set: run the suite with 'make e2e'")
	}
	if env.fleetscan = os.Getenv("FLEETSCAN_BIN"); env.fleetscan == "" {
		return fail("FLEETSCAN_BIN is not set: run the suite with 'make e2e'")
	}
	for _, b := range []string{env.tools + "/kube-apiserver", env.tools + "/kubectl", env.tools + "/etcd", env.fleetscan + "/fleetscan-server", env.fleetscan + "/fleetscan-worker"} {
		if _, err := os.Stat(b); err != nil {
			return fail("%v (run the suite with 'make e2e')", err)
		}
	}
	sweepStaleRuns()
	if env.root, err = os.MkdirTemp("", runDirPrefix); err != nil {
		return fail("%v", err)
	}
	// A run killed by go test's timeout skips the deferred RemoveAll; the
	// pid file lets the next run remove what it left.
	if err := os.WriteFile(filepath.Join(env.root, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return fail("%v", err)
	}
	defer func() {
		if os.Getenv("FLEETSCAN_E2E_KEEP") == "" {
			os.RemoveAll(env.root)
		} else {
			fmt.Fprintln(os.Stderr, "e2e: kept", env.root)
		}
	}()

	start := time.Now()
	cps, err := startAll(ctx, env.tools, env.root, planeSpec{"e2e-alpha", "172.20.0.0/16"}, planeSpec{"e2e-beta", "10.96.0.0/16"})
	if err != nil {
		return fail("%v", err)
	}
	defer func() {
		for _, cp := range cps {
			cp.stop()
		}
	}()
	fmt.Fprintf(os.Stderr, "e2e: 2 control planes ready in %s\n", time.Since(start).Round(100*time.Millisecond))
	env.clusters = []*cluster{
		{controlPlane: cps[0], id: "e2e-alpha", tenant: "acme", seedDirs: []string{
			filepath.Join(env.repo, "deploy/demo/clusters/acme-dev"), "testdata/alpha"},
			// alpha is the provider's management cluster: it runs the
			// server as well, and the scan covers fleetscan's own objects.
			installs: []string{"worker", "server"}},
		{controlPlane: cps[1], id: "e2e-beta", tenant: "globex", seedDirs: []string{
			filepath.Join(env.repo, "deploy/demo/clusters/globex-prod"), "testdata/beta"},
			installs: []string{"worker"}},
	}
	for _, c := range env.clusters {
		start := time.Now()
		if err := c.prepare(ctx); err != nil {
			return fail("%s: %v", c.id, err)
		}
		fmt.Fprintf(os.Stderr, "e2e: %s seeded, worker RBAC applied in %s\n", c.id, time.Since(start).Round(100*time.Millisecond))
	}
	if err := seedBulk(ctx, env.clusters[1]); err != nil {
		return fail("%v", err)
	}

	code := m.Run()
	for _, c := range env.clusters {
		rss, peak := c.apiserver.memory()
		etcdRSS, etcdPeak := c.etcd.memory()
		fmt.Fprintf(os.Stderr, "e2e: %s kube-apiserver RSS %d MiB (peak %d MiB), etcd RSS %d MiB (peak %d MiB)\n",
			c.id, rss>>10, peak>>10, etcdRSS>>10, etcdPeak>>10)
	}
	return code
}

// runDirPrefix names the run directories in os.TempDir: etcd data, the
// API servers' keys and tokens, the logs.
const runDirPrefix = "fleetscan-e2e-"

// sweepStaleRuns removes the run directories of earlier runs whose process
// is gone.
func sweepStaleRuns() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), runDirPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "pid"))
		if err != nil {
			continue // not ours, or a run still writing it
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(d)
		}
	}
}

// skippedKinds are the custom resources in the demo snapshots: their CRDs
// belong to components (cert-manager, external-secrets, Karpenter) that the
// test clusters do not run, so they cannot be created and the checks do
// not read them.
var skippedKinds = map[string]bool{"Certificate": true, "ExternalSecret": true, "NodePool": true}

// prepare seeds the cluster, applies deploy/kubernetes/worker with
// kubectl's server-side apply, and asks the TokenRequest API
// for a token of the worker's ServiceAccount.
func (c *cluster) prepare(ctx context.Context) error {
	objs, err := readManifests(c.seedDirs...)
	if err != nil {
		return err
	}
	skipped, err := c.seed(ctx, objs)
	if err != nil {
		return err
	}
	for _, s := range skipped {
		if !skippedKinds[strings.Fields(s)[0]] {
			return fmt.Errorf("the API server does not serve %s: fix the fixture or list the kind in skippedKinds", s)
		}
	}
	// The kustomizations as an operator installs them: the worker's RBAC
	// is what the worker below runs with, and fleetscan's own objects are
	// scanned with the rest.
	for _, k := range c.installs {
		out, err := c.kubectl("apply", "--server-side", "--field-manager", fieldManager,
			"-k", filepath.Join(env.repo, "deploy/kubernetes", k))
		if err != nil {
			return fmt.Errorf("apply deploy/kubernetes/%s: %v\n%s", k, err, out)
		}
		if strings.Contains(out, "Warning:") {
			return fmt.Errorf("the API server warned on deploy/kubernetes/%s:\n%s", k, out)
		}
	}
	// Namespaces the kustomizations created get theirs too.
	if err := c.defaultServiceAccounts(ctx); err != nil {
		return err
	}
	exp := int64(3600)
	tr, err := c.client.CoreV1().ServiceAccounts("fleetscan").CreateToken(ctx, "fleetscan-worker",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("token for the worker's service account: %w", err)
	}
	c.workerToken = tr.Status.Token
	c.workerConf = filepath.Join(c.dir, "worker.kubeconfig")
	return c.kubeconfig(c.workerConf, "fleetscan-worker", c.workerToken)
}

// kubectl runs the built kubectl as the cluster's admin.
func (c *cluster) kubectl(args ...string) (string, error) {
	return c.controlPlane.kubectl(env.tools, args...)
}

// workerClient is a client with the worker's own token.
func (c *cluster) workerClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", c.workerConf)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
