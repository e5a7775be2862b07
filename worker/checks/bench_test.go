package checks_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/fleetscan/fleetscan/worker/checks"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// benchObjects generates n objects of a realistic mix: per namespace one
// Namespace, a NetworkPolicy in half of them, Deployments (half hardened,
// half not), bare Pods, Services, ServiceAccounts, ConfigMaps, Roles and
// RoleBindings.
func benchObjects(n int) []runtime.Object {
	var out []runtime.Object
	t := func(v bool) *bool { return &v }
	uid := int64(10001)
	for i := 0; len(out) < n; i++ {
		ns := fmt.Sprintf("team-%04d", i/20)
		if i%20 == 0 {
			out = append(out, &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: ns}})
			if (i/20)%2 == 0 {
				out = append(out, &networkingv1.NetworkPolicy{
					TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
					ObjectMeta: metav1.ObjectMeta{Name: "default-deny", Namespace: ns},
				})
			}
		}
		name := fmt.Sprintf("app-%d", i)
		labels := map[string]string{"app": name}
		c := corev1.Container{Name: "app", Image: fmt.Sprintf("registry.example/app:%d.0", i%7)}
		if i%2 == 0 {
			c.SecurityContext = &corev1.SecurityContext{
				RunAsNonRoot: t(true), RunAsUser: &uid, AllowPrivilegeEscalation: t(false), ReadOnlyRootFilesystem: t(true),
				Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			}
			c.Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("256Mi")}
		} else {
			c.Image = "nginx"
			c.Env = []corev1.EnvVar{{Name: "DB_PASSWORD", Value: "changeme"}}
			c.SecurityContext = &corev1.SecurityContext{Privileged: t(i%10 == 1)}
		}
		spec := corev1.PodSpec{Containers: []corev1.Container{c}, ServiceAccountName: name}
		switch i % 10 {
		case 0, 1, 2, 3, 4:
			out = append(out, &appsv1.Deployment{
				TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
				Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}},
			})
		case 5:
			out = append(out, &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}, Spec: spec})
		case 6:
			out = append(out, &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80}}}})
		case 7:
			out = append(out, &corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}})
		case 8:
			out = append(out, &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Data: map[string]string{"app.properties": "log.level=info\nport=8080\n"}})
		case 9:
			out = append(out,
				&rbacv1.Role{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"}, ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
					Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods", "secrets"}, Verbs: []string{"get", "list"}}}},
				&rbacv1.RoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"}, ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
					RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
					Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: fmt.Sprintf("app-%d", i-9), Namespace: ns}}})
		}
	}
	return out[:n]
}

const benchSize = 10000

// BenchmarkEngine runs every check over 10,000 mixed objects and reports
// objects per second and bytes allocated per object.
func BenchmarkEngine(b *testing.B) {
	inv := &checks.Inventory{}
	for _, o := range benchObjects(benchSize) {
		inv.Add(o)
	}
	findings := 0
	b.ReportAllocs()
	var before, after goruntime.MemStats
	goruntime.ReadMemStats(&before)
	b.ResetTimer()
	for range b.N {
		findings = 0
		if _, err := checks.Run(context.Background(), inv, policy.Selection{}, func(checks.Finding) error { findings++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	goruntime.ReadMemStats(&after)
	perOp := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(benchSize)/perOp, "objects/s")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/benchSize, "B/object")
	b.ReportMetric(float64(findings), "findings/op")
}

// TestWriteBenchSnapshot writes the benchmark's objects as YAML files, 500
// per file, into $FLEETSCAN_BENCH_SNAPSHOT, for timing the standalone scan
// (make bench does).
func TestWriteBenchSnapshot(t *testing.T) {
	dir := os.Getenv("FLEETSCAN_BENCH_SNAPSHOT")
	if dir == "" {
		t.Skip("set FLEETSCAN_BENCH_SNAPSHOT to a directory to write the benchmark snapshot")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	objs := benchObjects(benchSize)
	for f := 0; f*500 < len(objs); f++ {
		var doc []byte
		for _, o := range objs[f*500 : min((f+1)*500, len(objs))] {
			y, err := yaml.Marshal(o)
			if err != nil {
				t.Fatal(err)
			}
			doc = append(append(doc, "---\n"...), y...)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("objects-%02d.yaml", f)), doc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
