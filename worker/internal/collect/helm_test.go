package collect

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleetscan/fleetscan/deploy/helm/render"
	"github.com/fleetscan/fleetscan/worker/catalog"
	"github.com/fleetscan/fleetscan/worker/checks"
)

var update = flag.Bool("update", false, "rewrite testdata/helm-objects.txt from the chart")

// chartDir is the Helm chart that installs the server and the worker.
const chartDir = "../../../deploy/helm/fleetscan"

// chartRelease is how the tests install the chart:
// helm install fleetscan deploy/helm/fleetscan --namespace fleetscan.
var chartRelease = render.Release{Name: "fleetscan", Namespace: "fleetscan"}

// chartObjects is the golden list of what the chart renders for each value
// set.
const chartObjects = "testdata/helm-objects.txt"

// unknownKinds are the kinds the chart may render that fleetscan has no Go
// type for, so that the strict decoding below cannot judge their fields.
// cert-manager's Certificate goes through a real API server's validation
// against a schema of its fields in deploy/e2e (TestHelmChartServerDryRun).
var unknownKinds = []string{"cert-manager.io/v1 Certificate"}

// TestHelmChartPassesOwnChecks renders deploy/helm/fleetscan with the Helm
// Go SDK, as `helm template` does, for its defaults and every
// ci/<name>-values.yaml, and judges each rendering as
// TestDeployManifestsPassOwnChecks judges the kustomize bases: every object
// decodes strictly, every namespaced one lands in the release's namespace,
// and fleetscan's checks report no HIGH or CRITICAL finding on them. The
// objects of each value set must be those of testdata/helm-objects.txt
// (-update rewrites it).
//
// The chart creates no namespace: its README has the operator create it,
// labelled to enforce the restricted Pod Security Standard, with a default
// ServiceAccount that does not mount its token. The checks see that
// namespace too, as deploy/kubernetes' bases ship it.
func TestHelmChartPassesOwnChecks(t *testing.T) {
	chart, err := render.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	sets, err := chart.ValueSets()
	if err != nil {
		t.Fatal(err)
	}
	want, err := readChartObjects()
	if err != nil && !*update {
		t.Fatalf("%v (go test -run TestHelmChartPassesOwnChecks -update writes it)", err)
	}
	got := map[string][]string{}
	for _, set := range sets {
		t.Run(set.Name, func(t *testing.T) {
			inv, objects := loadChart(t, chart, set)
			got[set.Name] = objects
			if !*update && !slices.Equal(objects, want[set.Name]) {
				t.Errorf("the chart renders other objects than %s lists (-update rewrites it, for review):\n%s",
					chartObjects, lineDiff(want[set.Name], objects))
			}
			inv.Add(&corev1.Namespace{
				TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
				ObjectMeta: metav1.ObjectMeta{Name: chartRelease.Namespace, Labels: map[string]string{
					"kubernetes.io/metadata.name":        chartRelease.Namespace,
					"pod-security.kubernetes.io/enforce": "restricted",
					"pod-security.kubernetes.io/warn":    "restricted",
				}},
			})
			inv.Add(&corev1.ServiceAccount{
				TypeMeta:                     metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
				ObjectMeta:                   metav1.ObjectMeta{Name: "default", Namespace: chartRelease.Namespace},
				AutomountServiceAccountToken: new(false),
			})
			judgeOwnFindings(t, inv, "")
		})
	}
	if len(got) < len(sets) {
		if *update {
			t.Errorf("-update needs every value set rendered; %d of %d were", len(got), len(sets))
		}
		return // -run chose some of the sets
	}
	if *update {
		if err := writeChartObjects(sets, got); err != nil {
			t.Fatal(err)
		}
		return
	}
	for name := range want {
		if _, ok := got[name]; !ok {
			t.Errorf("%s lists value set %s, which the chart no longer has", chartObjects, name)
		}
	}
}

// readChartObjects reads chartObjects: each value set's name on a line of
// its own, then its objects indented by two spaces.
func readChartObjects() (map[string][]string, error) {
	raw, err := os.ReadFile(chartObjects)
	if err != nil {
		return nil, err
	}
	sets := map[string][]string{}
	var set string
	for line := range strings.Lines(string(raw)) {
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "  "):
			sets[set] = append(sets[set], strings.TrimPrefix(line, "  "))
		default:
			set = line
			sets[set] = []string{}
		}
	}
	return sets, nil
}

// writeChartObjects writes chartObjects, in the order of sets.
func writeChartObjects(sets []render.ValueSet, objects map[string][]string) error {
	var b strings.Builder
	b.WriteString("# The objects deploy/helm/fleetscan renders for each value set, with their\n" +
		"# templates (TestHelmChartPassesOwnChecks; -update rewrites this file).\n")
	for _, set := range sets {
		fmt.Fprintf(&b, "\n%s\n", set.Name)
		for _, o := range objects[set.Name] {
			fmt.Fprintf(&b, "  %s\n", o)
		}
	}
	return os.WriteFile(chartObjects, []byte(b.String()), 0o644)
}

// renderChart renders the chart's value set name and loads it.
func renderChart(t *testing.T, name string) *checks.Inventory {
	t.Helper()
	chart, err := render.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	sets, err := chart.ValueSets()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(sets, func(s render.ValueSet) bool { return s.Name == name })
	if i < 0 {
		t.Fatalf("the chart has no value set %s (ci/%s-values.yaml)", name, name)
	}
	inv, _ := loadChart(t, chart, sets[i])
	return inv
}

// loadChart renders the chart with set into a directory laid out as
// `helm template --output-dir` does and loads that like a snapshot,
// strictly: an unknown or misspelt field fails the test. It returns the
// inventory and its objects as "Kind namespace/name (template)", sorted.
func loadChart(t *testing.T, chart *render.Chart, set render.ValueSet) (*checks.Inventory, []string) {
	t.Helper()
	out, err := chart.Render(t.Context(), chartRelease, set.Values)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := out.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	inv, stats, err := LoadSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Locations relative to the chart: templates/server/statefulset.yaml:2.
	for key, location := range inv.Locations {
		inv.Locations[key] = strings.TrimPrefix(location, dir+"/")
	}
	for i := range inv.Unchecked {
		inv.Unchecked[i].Location = strings.TrimPrefix(inv.Unchecked[i].Location, dir+"/")
	}
	for _, p := range stats.Problems {
		t.Errorf("does not decode: %s", strings.TrimPrefix(p, dir+"/"))
	}
	for _, w := range stats.Warnings {
		t.Errorf("unknown or duplicate field: %s", strings.TrimPrefix(w, dir+"/"))
	}

	var objects []string
	object := func(kind, namespace, name, location string) {
		template, _, _ := strings.Cut(location, ":")
		objects = append(objects, fmt.Sprintf("%s %s/%s (%s)", kind, namespace, name, template))
		if slices.Contains(clusterScoped, kind) {
			return
		}
		if namespace != chartRelease.Namespace {
			t.Errorf("%s %s/%s (%s) is not in the release's namespace %s", kind, namespace, name, template, chartRelease.Namespace)
		}
	}
	for key, location := range inv.Locations {
		kind, rest, _ := strings.Cut(key, "/")
		namespace, name, _ := strings.Cut(rest, "/")
		object(kind, namespace, name, location)
	}
	for _, u := range inv.Unchecked {
		object(u.Kind, u.Namespace, u.Name, u.Location)
		if u.Reason == catalog.ReasonUnknown && !slices.Contains(unknownKinds, u.APIVersion+" "+u.Kind) {
			t.Errorf("%s: fleetscan has no type for %s %s, so its fields are not checked", u.Location, u.APIVersion, u.Kind)
		}
	}
	slices.Sort(objects)
	if t.Failed() {
		t.FailNow()
	}
	return inv, objects
}

// lineDiff lists the lines only want has (-) and only got has (+).
func lineDiff(want, got []string) string {
	var b strings.Builder
	for _, l := range want {
		if !slices.Contains(got, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	if b.Len() == 0 {
		return "(the same lines, in another order or count)"
	}
	return b.String()
}
