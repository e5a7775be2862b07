//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fleetscan/fleetscan/deploy/helm/render"
)

// helmRelease is how the test installs the chart:
// helm install fleetscan deploy/helm/fleetscan --namespace fleetscan.
var helmRelease = render.Release{Name: "fleetscan", Namespace: "fleetscan"}

// helmNamespace is the release's namespace as the chart's README has the
// operator create it: the restricted Pod Security Standard enforced, and
// warned about, so that the API server also judges the pod templates of
// the StatefulSet and the Deployment, which the dry run creates no pod of.
const helmNamespace = `apiVersion: v1
kind: Namespace
metadata:
  name: fleetscan
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/warn: restricted
`

// TestHelmChartServerDryRun renders deploy/helm/fleetscan with the Helm Go
// SDK for its defaults and every ci/<name>-values.yaml, as `helm template`
// does, and sends each rendering through a real API server's validation,
// defaulting and admission without persisting anything, as
// TestDeployManifestsServerDryRun does for the kustomize bases: every
// rendered object must be accepted, with no warning (no deprecated API, no
// Pod Security violation of the restricted level). Then fleetscan-worker
// scans what the API server returned, its defaults filled in, with the
// namespace as the README prepares it: no HIGH or CRITICAL finding.
//
// cert-manager's Certificate, which the cert-manager value set renders, is
// not served by a bare API server: a CRD with a schema of its fields
// (testdata/helm/certificate-crd.yaml, not cert-manager's own) is
// installed first, and the Certificate is validated against that.
func TestHelmChartServerDryRun(t *testing.T) {
	ctx := context.Background()
	cp, err := startRetrying(ctx, env.tools, "e2e-helm", "10.96.0.0/16", filepath.Join(t.TempDir(), "cp"))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.stop()
	kubectl := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := cp.kubectl(env.tools, args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	// What the README has the operator do before helm install: create the
	// namespace, whose default ServiceAccount (the controller-manager's,
	// here the harness') is told not to mount its token.
	dir := t.TempDir()
	nsFile := filepath.Join(dir, "namespace.yaml")
	if err := os.WriteFile(nsFile, []byte(helmNamespace), 0o644); err != nil {
		t.Fatal(err)
	}
	kubectl(t, "apply", "--server-side", "--field-manager", fieldManager, "-f", nsFile)
	if err := cp.defaultServiceAccounts(ctx); err != nil {
		t.Fatal(err)
	}
	kubectl(t, "-n", helmRelease.Namespace, "patch", "serviceaccount", "default", "-p", `{"automountServiceAccountToken": false}`)
	kubectl(t, "apply", "--server-side", "--field-manager", fieldManager, "-f", filepath.Join("testdata", "helm", "certificate-crd.yaml"))
	kubectl(t, "wait", "--for=condition=Established", "--timeout=60s", "crd/certificates.cert-manager.io")

	chart, err := render.Load(filepath.Join(env.repo, "deploy/helm/fleetscan"))
	if err != nil {
		t.Fatal(err)
	}
	sets, err := chart.ValueSets()
	if err != nil {
		t.Fatal(err)
	}
	for _, set := range sets {
		t.Run(set.Name, func(t *testing.T) {
			out, err := chart.Render(ctx, helmRelease, set.Values)
			if err != nil {
				t.Fatal(err)
			}
			rendered := filepath.Join(t.TempDir(), "rendered.yaml")
			if err := os.WriteFile(rendered, []byte(out.YAML()), 0o644); err != nil {
				t.Fatal(err)
			}
			objects := len(regexp.MustCompile(`(?m)^kind: `).FindAllString(out.YAML(), -1))
			if objects == 0 {
				t.Fatal("the chart rendered no object")
			}
			apply := []string{"apply", "--server-side", "--field-manager", fieldManager, "--dry-run=server", "-f", rendered}
			dryRun := kubectl(t, apply...)
			if strings.Contains(dryRun, "Warning:") {
				t.Errorf("the API server warned:\n%s", dryRun)
			}
			if got := strings.Count(dryRun, "serverside-applied (server dry run)"); got != objects {
				t.Errorf("%d objects passed the dry run, the chart rendered %d:\n%s", got, objects, dryRun)
			}

			// The objects as the API server would store them, and the
			// namespace they go into, scanned by fleetscan.
			snapshot := t.TempDir()
			for file, args := range map[string][]string{
				"objects.yaml":    slices.Concat(apply, []string{"-o", "yaml"}),
				"namespace.yaml":  {"get", "namespace", helmRelease.Namespace, "-o", "yaml"},
				"default-sa.yaml": {"-n", helmRelease.Namespace, "get", "serviceaccount", "default", "-o", "yaml"},
			} {
				stdout, err := cp.kubectlStdout(env.tools, args...)
				if err != nil {
					t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
				}
				if err := os.WriteFile(filepath.Join(snapshot, file), stdout, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			scan := exec.Command(filepath.Join(env.fleetscan, "fleetscan-worker"), "scan", "--snapshot", snapshot, "--fail-on", "high")
			report, err := scan.CombinedOutput()
			if err != nil {
				t.Errorf("fleetscan-worker scan --fail-on high: %v\n%s", err, report)
			} else {
				// The findings and the summary; not the checks that a
				// snapshot cannot assess, the same in every set.
				findings, _, _ := strings.Cut(string(report), "\nNot assessable")
				t.Logf("fleetscan-worker scan:\n%s\n%s", findings, lastLine(report))
			}
		})
	}
}

// kubectlStdout runs the built kubectl as the cluster's admin and returns
// what it printed on stdout alone; what it printed on stderr is in the
// error.
func (cp *controlPlane) kubectlStdout(tools string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(tools, "kubectl"), append([]string{"--kubeconfig", cp.adminConf}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// lastLine is the last non-empty line of out.
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}
