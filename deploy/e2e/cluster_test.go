//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestClusterUpDown: make cluster-up's script starts a control plane on
// loopback that kubectl and a standalone scan can use, says so twice
// without starting another, and cluster-down stops both processes and
// removes the data.
func TestClusterUpDown(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster")
	apiPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	etcdPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	command := func(arg string) *exec.Cmd {
		cmd := exec.Command("bash", "deploy/e2e/cluster.sh", arg)
		cmd.Dir = "../.."
		// Its own directory and ports: a developer's cluster-up is left alone.
		cmd.Env = append(os.Environ(), "CLUSTER_DIR="+dir, fmt.Sprintf("CLUSTER_PORT=%d", apiPort), fmt.Sprintf("ETCD_PORT=%d", etcdPort))
		return cmd
	}
	script := func(arg string) string {
		t.Helper()
		out, err := command(arg).CombinedOutput()
		if err != nil {
			t.Fatalf("cluster.sh %s: %v\n%s", arg, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { command("down").Run() })
	out := script("up")
	kubeconfig := filepath.Join(dir, "admin.kubeconfig")
	if !strings.Contains(out, fmt.Sprintf("https://127.0.0.1:%d", apiPort)) || !strings.Contains(out, "KUBECONFIG=") {
		t.Errorf("cluster-up said:\n%s", out)
	}
	pids := map[string]string{}
	for _, p := range []string{"etcd", "kube-apiserver"} {
		b, err := os.ReadFile(filepath.Join(dir, p+".pid"))
		if err != nil {
			t.Fatalf("%s PID file: %v", p, err)
		}
		pids[p] = strings.TrimSpace(string(b))
	}
	if again := script("up"); !strings.Contains(again, "already up") {
		t.Errorf("a second cluster-up: %s", again)
	}
	kubectl := func(args ...string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(env.tools, "kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	kubectl("create", "namespace", "shop")
	kubectl("-n", "shop", "create", "deployment", "web", "--image", "nginx:latest")
	scan := exec.Command(filepath.Join(env.fleetscan, "fleetscan-worker"), "scan", "--kubeconfig", kubeconfig, "--namespaces", "shop")
	report, _ := scan.Output() // exit 1 or 0 by findings; the report is what counts
	if !strings.Contains(string(report), "web") {
		t.Errorf("a scan of the cluster found nothing on shop/web:\n%s", report)
	}
	script("down")
	for p, pid := range pids {
		if err := exec.Command("kill", "-0", pid).Run(); err == nil {
			t.Errorf("%s (pid %s) still runs after cluster-down", p, pid)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cluster-down left %s: %v", dir, err)
	}
}
