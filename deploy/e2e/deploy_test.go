//go:build e2e

package e2e

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDeployManifestsServerDryRun sends every kustomization in
// deploy/kubernetes through the real API server's validation, defaulting
// and admission (Pod Security included) without persisting anything. A
// warning fails the test as well: kubectl prints the API server's
// deprecation and Pod Security warnings. (Setup has applied both to alpha
// for real, so the namespaces they go into exist: a dry run alone cannot
// create a namespace and then objects in it.)
func TestDeployManifestsServerDryRun(t *testing.T) {
	c := env.clusters[0]
	for _, base := range []string{"server", "worker"} {
		t.Run(base, func(t *testing.T) {
			dir := filepath.Join(env.repo, "deploy/kubernetes", base)
			rendered, err := c.kubectl("kustomize", dir)
			if err != nil {
				t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, rendered)
			}
			objects := len(regexp.MustCompile(`(?m)^kind: `).FindAllString(rendered, -1))
			out, err := c.kubectl("apply", "--server-side", "--field-manager", fieldManager, "--dry-run=server", "-k", dir)
			if err != nil {
				t.Fatalf("kubectl apply --dry-run=server -k %s: %v\n%s", dir, err, out)
			}
			if strings.Contains(out, "Warning:") {
				t.Errorf("the API server warned:\n%s", out)
			}
			if got := strings.Count(out, "(server dry run)"); got != objects {
				t.Errorf("%d objects passed the dry run, the kustomization has %d:\n%s", got, objects, out)
			}
		})
	}
}
