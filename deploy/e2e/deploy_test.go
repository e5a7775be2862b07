//go:build e2e

package e2e

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDeployManifestsServerDryRun sends every kustomization in
// deploy/kubernetes through a real API server's validation, defaulting
// and admission (Pod Security included) without persisting anything, on a
// control plane of its own where none of the objects exist yet, so that
// they meet the create path. A warning fails the test as well: kubectl
// prints the API server's deprecation and Pod Security warnings.
func TestDeployManifestsServerDryRun(t *testing.T) {
	cp, err := startRetrying(context.Background(), env.tools, "e2e-dry-run", "10.96.0.0/16", filepath.Join(t.TempDir(), "cp"))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.stop()
	for _, base := range []string{"server", "worker"} {
		t.Run(base, func(t *testing.T) {
			dir := filepath.Join(env.repo, "deploy/kubernetes", base)
			rendered, err := cp.kubectl(env.tools, "kustomize", dir)
			if err != nil {
				t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, rendered)
			}
			objects := len(regexp.MustCompile(`(?m)^kind: `).FindAllString(rendered, -1))
			// A dry run cannot create the namespace the other objects go
			// into: the namespace alone is created for real.
			if out, err := cp.kubectl(env.tools, "apply", "--server-side", "--field-manager", fieldManager, "-f", filepath.Join(dir, "namespace.yaml")); err != nil {
				t.Fatalf("apply namespace: %v\n%s", err, out)
			}
			out, err := cp.kubectl(env.tools, "apply", "--server-side", "--field-manager", fieldManager, "--dry-run=server", "-k", dir)
			if err != nil {
				t.Fatalf("kubectl apply --dry-run=server -k %s: %v\n%s", dir, err, out)
			}
			if strings.Contains(out, "Warning:") {
				t.Errorf("the API server warned:\n%s", out)
			}
			if got := strings.Count(out, "serverside-applied (server dry run)"); got != objects {
				t.Errorf("%d objects passed the dry run, the kustomization has %d:\n%s", got, objects, out)
			}
		})
	}
}

// TestDemoSnapshotsApply applies the demo snapshots that seed no fleet
// cluster to a control plane of their own, with server-side apply: every
// manifest in deploy/demo must be a valid object that admission accepts.
// (acme-dev and globex-prod seed alpha and beta; a rejection there fails
// the setup.) deploy/examples/policies holds CheckPolicy files, which the
// worker reads, not API objects.
func TestDemoSnapshotsApply(t *testing.T) {
	ctx := context.Background()
	seeded := map[string]bool{}
	for _, c := range env.clusters {
		for _, d := range c.seedDirs {
			seeded[filepath.Clean(d)] = true
		}
	}
	dirs, err := filepath.Glob(filepath.Join(env.repo, "deploy/demo/clusters/*"))
	if err != nil {
		t.Fatal(err)
	}
	var rest []string
	for _, d := range dirs {
		if !seeded[filepath.Clean(d)] {
			rest = append(rest, d)
		}
	}
	if len(rest) == 0 {
		t.Skip("every demo snapshot seeds a fleet cluster")
	}
	for _, d := range rest {
		t.Run(filepath.Base(d), func(t *testing.T) {
			cp, err := startRetrying(ctx, env.tools, "e2e-"+filepath.Base(d), "172.20.0.0/16", filepath.Join(t.TempDir(), "cp"))
			if err != nil {
				t.Fatal(err)
			}
			defer cp.stop()
			objs, err := readManifests(d)
			if err != nil {
				t.Fatal(err)
			}
			skipped, err := cp.seed(ctx, objs)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range skipped {
				if !skippedKinds[strings.Fields(s)[0]] {
					t.Errorf("the API server does not serve %s", s)
				}
			}
			t.Logf("%d objects applied, %d custom resources skipped", len(objs)-len(skipped), len(skipped))
		})
	}
}
