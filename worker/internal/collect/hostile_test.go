package collect

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const privilegedPod = `apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: shop}
spec:
  containers:
    - {name: app, image: nginx:1.27, securityContext: {privileged: true}}
`

func podDoc(name string) string { return strings.Replace(privilegedPod, "%s", name, 1) }

// TestHostileSnapshotInput: whatever a snapshot holds, the load never
// aborts nor hangs. A file it cannot read, a named pipe, a symlink loop,
// a document or a line over MaxDocumentSize is a problem with its path
// and line; every other document of every file loads.
func TestHostileSnapshotInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	huge := strings.Repeat("x", MaxDocumentSize+1)
	// One line longer than a document may be, between two good pods.
	write("a-long-line.yaml", podDoc("before-line")+"---\nmetadata: {note: "+huge+"}\n---\n"+podDoc("after-line"))
	// A document of many short lines, larger than a document may be.
	var many bytes.Buffer
	many.WriteString(podDoc("before-doc") + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: big, namespace: shop}\ndata:\n")
	for many.Len() < MaxDocumentSize+1024 {
		many.WriteString("  k" + strings.Repeat("y", 60) + ": v\n")
	}
	many.WriteString("---\n" + podDoc("after-doc"))
	write("b-large-doc.yaml", many.String())
	write("c-fine.yaml", podDoc("fine"))
	if err := syscall.Mkfifo(filepath.Join(dir, "d-pipe.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("e-loop.yaml", filepath.Join(dir, "e-loop.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("c-fine.yaml", filepath.Join(dir, "f-link.yaml")); err != nil {
		t.Fatal(err)
	}

	inv, stats, err := LoadSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	var pods []string
	for _, p := range inv.Pods {
		pods = append(pods, p.Name)
	}
	if got, want := strings.Join(pods, " "), "before-line after-line before-doc after-doc fine fine"; got != want {
		t.Errorf("pods loaded: %s; want %s", got, want)
	}
	wantProblems := []string{
		"a-long-line.yaml:8: document larger than",
		"b-large-doc.yaml:8: document larger than",
		"d-pipe.yaml: not a regular file (a named pipe); skipped",
		"e-loop.yaml: cannot read",
	}
	if len(stats.Problems) != len(wantProblems) {
		t.Errorf("problems:\n%s\nwant %d", strings.Join(stats.Problems, "\n"), len(wantProblems))
	}
	for _, want := range wantProblems {
		found := false
		for _, p := range stats.Problems {
			found = found || strings.Contains(p, want)
		}
		if !found {
			t.Errorf("no problem %q in:\n%s", want, strings.Join(stats.Problems, "\n"))
		}
	}
}
