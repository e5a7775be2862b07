// Package checkstest generates clusters of any size for benchmarks and
// tests of the checks and the scan: a realistic mix of the kinds a
// provider's cluster holds, in the proportions that make a scan's cost
// (workloads and their replicas, ConfigMaps, RBAC with group-wide
// bindings, policies), deterministic so that runs compare.
package checkstest

import (
	"fmt"
	"os"
	"path/filepath"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// perNamespace is how many objects a namespace holds, roughly.
const perNamespace = 50

// GroupBindings is how many ClusterRoleBindings grant pod creation to
// every service account (the group system:serviceaccounts) in a corpus of
// at least GroupBindings × 1,000 objects; smaller corpora have one per
// 1,000 objects. They are what made SA-005 join every workload with every
// binding.
const GroupBindings = 100

// Objects returns n objects: per namespace a Namespace, a NetworkPolicy in
// half of them, and then, in turn, Deployments with a ReplicaSet and two
// Pods (half hardened, half not), bare Pods, Services, ServiceAccounts,
// ConfigMaps, and Roles with their RoleBindings; ClusterRoles and
// group-wide ClusterRoleBindings come first.
func Objects(n int) []runtime.Object {
	var out []runtime.Object
	groups := min(max(n/1000, 1), GroupBindings)
	for i := range groups {
		name := fmt.Sprintf("ci-runner-%03d", i)
		out = append(out,
			&rbacv1.ClusterRole{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"}, ObjectMeta: metav1.ObjectMeta{Name: name},
				Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create"}}}},
			&rbacv1.ClusterRoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"}, ObjectMeta: metav1.ObjectMeta{Name: name},
				RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
				Subjects: []rbacv1.Subject{{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: "system:serviceaccounts"}}})
	}
	t := func(v bool) *bool { return &v }
	uid := int64(10001)
	for i := 0; len(out) < n; i++ {
		ns := fmt.Sprintf("team-%04d", i/perNamespace)
		if i%perNamespace == 0 {
			out = append(out, &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: ns}})
			if (i/perNamespace)%2 == 0 {
				out = append(out, &networkingv1.NetworkPolicy{
					TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
					ObjectMeta: metav1.ObjectMeta{Name: "default-deny", Namespace: ns},
				})
			}
		}
		name := fmt.Sprintf("app-%d", i)
		labels := map[string]string{"app": name, "tier": "backend"}
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
			if i%10 < 2 {
				// What the controllers made of it, as a listing shows them.
				rs := name + "-5d4f8c7b9"
				out = append(out, &appsv1.ReplicaSet{
					TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"},
					ObjectMeta: metav1.ObjectMeta{Name: rs, Namespace: ns, Labels: labels, OwnerReferences: owner("apps/v1", "Deployment", name)},
					Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
						Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}},
				})
				for k := range 2 {
					out = append(out, &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
						ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%05d", rs, k), Namespace: ns, Labels: labels, OwnerReferences: owner("apps/v1", "ReplicaSet", rs)},
						Spec:       spec})
				}
			}
		case 5:
			out = append(out, &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}, Spec: spec})
		case 6:
			out = append(out, &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80}}}})
		case 7:
			out = append(out, &corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}})
		case 8:
			out = append(out, &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Data: map[string]string{"app.properties": "log.level=info\nport=8080\n", "LOG_LEVEL": "info"}})
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

func owner(apiVersion, kind, name string) []metav1.OwnerReference {
	yes := true
	return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: name, UID: "5c0d1e2f-0000-4000-8000-000000000000", Controller: &yes}}
}

// WriteSnapshot writes objs as YAML files of perFile documents each into
// dir, as a snapshot the worker scans (--snapshot).
func WriteSnapshot(dir string, objs []runtime.Object, perFile int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for f := 0; f*perFile < len(objs); f++ {
		var doc []byte
		for _, o := range objs[f*perFile : min((f+1)*perFile, len(objs))] {
			y, err := yaml.Marshal(o)
			if err != nil {
				return fmt.Errorf("%T: %w", o, err)
			}
			doc = append(append(doc, "---\n"...), y...)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("objects-%04d.yaml", f)), doc, 0o644); err != nil {
			return err
		}
	}
	return nil
}
