package collect

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/fleetscan/fleetscan/worker/catalog"
	"github.com/fleetscan/fleetscan/worker/checks"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// deployManifests holds one kustomize base per directory.
const deployManifests = "../../../deploy/kubernetes"

var workerManifests = filepath.Join(deployManifests, "worker")

// TestWorkerClusterRoleMatchesCollectors derives what the collectors list
// and compares it with the ClusterRoles shipped in deploy/, the kustomize
// base's and the Helm chart's: get and list on exactly those resources,
// nothing else, and never Secrets. The chart's rules are also the base's,
// rule for rule.
func TestWorkerClusterRoleMatchesCollectors(t *testing.T) {
	inv, stats, err := LoadSnapshot(workerManifests)
	if err != nil || len(stats.Problems) > 0 {
		t.Fatalf("load %s: %v %v", workerManifests, err, stats.Problems)
	}
	kustomize := checkWorkerClusterRole(t, inv, "fleetscan-worker", workerManifests)

	// The chart as a cluster to scan installs it: the worker alone.
	chart := renderChart(t, "worker-only")
	helm := checkWorkerClusterRole(t, chart, "fleetscan-worker", chartDir)
	if !reflect.DeepEqual(helm, kustomize) {
		t.Errorf("the chart's ClusterRole differs from %s:\n%v\n%v", workerManifests, helm, kustomize)
	}
	// Granted to the worker's own ServiceAccount, and to nothing else.
	wantBinding := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "fleetscan-worker", Namespace: chartRelease.Namespace}}
	var bound int
	for _, b := range chart.ClusterRoleBindings {
		if b.RoleRef.Name != "fleetscan-worker" {
			continue
		}
		bound++
		if b.RoleRef.Kind != "ClusterRole" || !reflect.DeepEqual(b.Subjects, wantBinding) {
			t.Errorf("%s: ClusterRoleBinding %s grants %s %s to %v, want the ClusterRole to %v", chartDir, b.Name, b.RoleRef.Kind, b.RoleRef.Name, b.Subjects, wantBinding)
		}
	}
	if bound != 1 {
		t.Errorf("%s: %d ClusterRoleBindings of the ClusterRole fleetscan-worker, want 1", chartDir, bound)
	}
	for _, d := range chart.Deployments {
		if sa := d.Spec.Template.Spec.ServiceAccountName; sa != "fleetscan-worker" {
			t.Errorf("%s: Deployment %s runs as ServiceAccount %q, not fleetscan-worker", chartDir, d.Name, sa)
		}
	}
}

// checkWorkerClusterRole finds the ClusterRole name in inv and checks its
// rules against the collectors; it returns them.
func checkWorkerClusterRole(t *testing.T, inv *checks.Inventory, name, where string) []rbacv1.PolicyRule {
	t.Helper()
	var role *rbacv1.ClusterRole
	var granted []string
	for i, cr := range inv.ClusterRoles {
		if cr.Name != name {
			continue
		}
		role = &inv.ClusterRoles[i]
		for _, rule := range cr.Rules {
			if !slices.Equal(rule.Verbs, []string{"get", "list"}) {
				t.Errorf("%s: rule %v grants verbs %v, want exactly [get list]", where, rule.Resources, rule.Verbs)
			}
			if len(rule.ResourceNames) > 0 || len(rule.NonResourceURLs) > 0 {
				t.Errorf("%s: unexpected rule %v", where, rule)
			}
			for _, g := range rule.APIGroups {
				for _, r := range rule.Resources {
					name := r
					if g != "" {
						name += "." + g
					}
					granted = append(granted, name)
				}
			}
		}
	}
	if role == nil {
		t.Fatalf("no ClusterRole %s in %s", name, where)
	}
	if role.AggregationRule != nil {
		t.Errorf("%s: ClusterRole %s aggregates other roles", where, name)
	}
	want := (&Kube{Client: fake.NewClientset()}).Resources()
	slices.Sort(want)
	slices.Sort(granted)
	if !slices.Equal(granted, want) {
		t.Errorf("%s: ClusterRole grants %v\ncollectors list  %v", where, granted, want)
	}
	if slices.Contains(granted, "secrets") {
		t.Errorf("%s: the worker may read Secrets", where)
	}
	return role.Rules
}

// TestDeployManifestsPassOwnChecks runs fleetscan's checks over every
// kustomize base under deploy/kubernetes/ (worker, server) as
// `kubectl apply -k` deploys it: each base decodes strictly, since an
// unknown or misspelled field would hide a setting from the checks, and has
// no HIGH or CRITICAL finding, suppressed or not. The MEDIUM and LOW
// findings that remain are logged (go test -v).
func TestDeployManifestsPassOwnChecks(t *testing.T) {
	entries, err := os.ReadDir(deployManifests)
	if err != nil {
		t.Fatal(err)
	}
	var bases []string
	for _, e := range entries {
		if e.IsDir() {
			bases = append(bases, e.Name())
		}
	}
	for _, want := range []string{"server", "worker"} {
		if !slices.Contains(bases, want) {
			t.Errorf("no %s base in %s", want, deployManifests)
		}
	}
	for _, base := range bases {
		t.Run(base, func(t *testing.T) {
			inv := loadKustomization(t, filepath.Join(deployManifests, base))
			judgeOwnFindings(t, inv, deployManifests+"/")
		})
	}
}

// judgeOwnFindings runs fleetscan's checks over inv, fleetscan's own
// objects: a HIGH or CRITICAL finding, suppressed or not, fails the test;
// the others are logged (go test -v), most severe first. trim is cut from
// the objects' locations.
func judgeOwnFindings(t *testing.T, inv *checks.Inventory, trim string) {
	t.Helper()
	var findings []checks.Finding
	_, err := checks.Run(context.Background(), inv, policy.Selection{}, func(f checks.Finding) error {
		findings = append(findings, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortStableFunc(findings, func(a, b checks.Finding) int {
		return cmp.Or(cmp.Compare(b.Severity, a.Severity), cmp.Compare(a.CheckID, b.CheckID))
	})
	for _, f := range findings {
		line := fmt.Sprintf("%s %s on %s %s/%s", f.CheckID, strings.TrimPrefix(f.Severity.String(), "SEVERITY_"),
			f.Resource.Kind, f.Resource.Namespace, f.Resource.Name)
		if f.Resource.SubPath != "" {
			line += " " + f.Resource.SubPath
		}
		if loc := inv.Location(f.Resource.Kind, f.Resource.Namespace, f.Resource.Name); loc != "" {
			line += " (" + strings.TrimPrefix(loc, trim) + ")"
		}
		line += ": " + f.Message
		if f.Suppressed != "" {
			line += " [suppressed: " + f.Suppressed + "]"
		}
		if f.Severity >= catalog.SeverityHigh {
			t.Error(line)
		} else {
			t.Log(line)
		}
	}
}

// kustomization is what the test applies of a kustomization.yaml. A base
// that uses more (patches, name prefixes, labels) must teach the test, or
// the checks would judge other objects than kustomize deploys: the strict
// decoding below refuses any other field.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
}

// loadKustomization loads the base in dir as kustomize renders it: the
// files its resources list, which must be every manifest in dir, with its
// namespace set on the namespaced objects.
func loadKustomization(t *testing.T, dir string) *checks.Inventory {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := sigsyaml.UnmarshalStrict(raw, &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v (the test applies only namespace and resources)", dir, err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Fatalf("%s/kustomization.yaml is a %s %s", dir, k.APIVersion, k.Kind)
	}
	if k.Namespace == "" {
		t.Errorf("%s/kustomization.yaml sets no namespace: the base would land in whatever namespace kubectl defaults to", dir)
	}
	var files []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml", ".json":
			if rel, _ := filepath.Rel(dir, path); rel != "kustomization.yaml" {
				files = append(files, filepath.ToSlash(rel))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	resources := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(resources, files) {
		t.Errorf("%s: kustomization.yaml lists %v, the directory holds %v; the test checks the directory, kustomize deploys the list", dir, resources, files)
	}

	inv, stats, err := LoadSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range stats.Problems {
		t.Errorf("does not decode: %s", p)
	}
	for _, w := range stats.Warnings {
		t.Errorf("unknown or duplicate field: %s", w)
	}
	if t.Failed() {
		t.FailNow()
	}
	inNamespace(inv, k.Namespace)

	// kustomize moves the ServiceAccount subjects of bindings that name no
	// namespace or "default" into its namespace, and leaves the others: a
	// ServiceAccount of the base bound under another namespace is granted
	// nothing, and the checks would not see what the binding was meant to
	// grant it.
	sas := map[string]bool{}
	for _, sa := range inv.ServiceAccounts {
		sas[sa.Name] = true
	}
	subjects := func(kind, name string, list []rbacv1.Subject) {
		for i := range list {
			s := &list[i]
			if s.Kind != rbacv1.ServiceAccountKind {
				continue
			}
			if s.Namespace == "" || s.Namespace == metav1.NamespaceDefault {
				s.Namespace = k.Namespace
			}
			if sas[s.Name] && s.Namespace != k.Namespace {
				t.Errorf("%s %s binds ServiceAccount %s/%s, the base deploys it in %s", kind, name, s.Namespace, s.Name, k.Namespace)
			}
		}
	}
	for i := range inv.ClusterRoleBindings {
		subjects("ClusterRoleBinding", inv.ClusterRoleBindings[i].Name, inv.ClusterRoleBindings[i].Subjects)
	}
	for i := range inv.RoleBindings {
		subjects("RoleBinding", inv.RoleBindings[i].Name, inv.RoleBindings[i].Subjects)
	}
	return inv
}

// clusterScoped are the kinds of the inventory that have no namespace.
var clusterScoped = []string{"Namespace", "Node", "ClusterRole", "ClusterRoleBinding", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}

// inNamespace does what kustomize's namespace field does: it puts every
// namespaced object of the inventory in ns, and moves their locations.
func inNamespace(inv *checks.Inventory, ns string) {
	v := reflect.ValueOf(inv).Elem()
	for i := range v.NumField() {
		field := v.Field(i)
		if field.Kind() != reflect.Slice {
			continue
		}
		kind := field.Type().Elem().Name()
		if slices.Contains(clusterScoped, kind) {
			continue
		}
		for j := range field.Len() {
			obj, ok := field.Index(j).Addr().Interface().(metav1.Object)
			if !ok {
				continue
			}
			old := kind + "/" + obj.GetNamespace() + "/" + obj.GetName()
			if loc, ok := inv.Locations[old]; ok {
				delete(inv.Locations, old)
				inv.Locations[kind+"/"+ns+"/"+obj.GetName()] = loc
			}
			obj.SetNamespace(ns)
		}
	}
}
