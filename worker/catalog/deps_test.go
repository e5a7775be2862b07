package catalog_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoKubernetesTypes: the catalog exists so that the server and the CLI
// do not link the Kubernetes API types and clients; this keeps them so. A
// new import of worker/checks (or of anything that reads typed objects)
// from one of them fails here, naming the package that brought it in.
func TestNoKubernetesTypes(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command lists the dependencies: %v", err)
	}
	for _, pkg := range []string{
		"github.com/fleetscan/fleetscan/worker/catalog",
		"github.com/fleetscan/fleetscan/worker/policy",
		"github.com/fleetscan/fleetscan/cmd/fleetscan-server",
		"github.com/fleetscan/fleetscan/cmd/fleetscan",
	} {
		t.Run(pkg[strings.LastIndexByte(pkg, '/')+1:], func(t *testing.T) {
			out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", pkg).Output()
			if err != nil {
				t.Fatalf("go list %s: %v", pkg, err)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) < 10 {
				t.Fatalf("go list %s lists %d packages: not its dependencies", pkg, len(lines))
			}
			for _, line := range lines {
				importer, imports, _ := strings.Cut(line, " ")
				if forbidden(importer) {
					continue // reported where it is imported from outside
				}
				for _, imp := range strings.Fields(imports) {
					if forbidden(imp) {
						t.Errorf("%s links %s: %s imports it", pkg, imp, importer)
					}
				}
			}
		})
	}
}

// forbidden are the Kubernetes API types and the client; apimachinery's
// utilities (label selectors, name validation, YAML) are welcome.
func forbidden(pkg string) bool {
	return strings.HasPrefix(pkg, "k8s.io/api/") || strings.HasPrefix(pkg, "k8s.io/client-go/") ||
		pkg == "github.com/fleetscan/fleetscan/worker/checks"
}
