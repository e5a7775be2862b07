package checks

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestWorkloadsOfUnreadControllers: what a controller of a kind fleetscan
// does not read controls (an operator's custom resource, an Argo Rollout
// on a live cluster) is checked itself; what a workload kind or a
// templated object controls is reported through it, once.
func TestWorkloadsOfUnreadControllers(t *testing.T) {
	owned := func(name, kind, owner string) metav1.ObjectMeta {
		yes := true
		return metav1.ObjectMeta{Name: name, Namespace: "shop", OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "example.io/v1", Kind: kind, Name: owner, Controller: &yes},
		}}
	}
	tmpl := corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
	inv := &Inventory{
		Pods: []corev1.Pod{
			{ObjectMeta: owned("pg-1", "Cluster", "pg"), Spec: tmpl.Spec},                // CloudNativePG: pods, no template
			{ObjectMeta: owned("web-7f9-abc", "ReplicaSet", "web-7f9"), Spec: tmpl.Spec}, // reported on its ReplicaSet
			{ObjectMeta: owned("mirror", "Node", "node-1"), Spec: tmpl.Spec},             // a static pod: the control plane's
		},
		ReplicaSets: []appsv1.ReplicaSet{
			{ObjectMeta: owned("web-7f9", "Rollout", "web"), Spec: appsv1.ReplicaSetSpec{Template: tmpl}}, // no Rollout read
			{ObjectMeta: owned("api-5c4", "Rollout", "api"), Spec: appsv1.ReplicaSetSpec{Template: tmpl}}, // the Rollout is read
			{ObjectMeta: owned("db-1", "Deployment", "db"), Spec: appsv1.ReplicaSetSpec{Template: tmpl}},  // reported on the Deployment
		},
		Templated: []TemplatedObject{{
			TypeMeta:   metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "Rollout"},
			ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "shop"}, Path: "spec.template", Template: tmpl,
		}},
	}
	var got []string
	for _, w := range inv.Workloads() {
		got = append(got, w.Kind+" "+w.Name)
	}
	slices.Sort(got)
	want := []string{"Pod pg-1", "ReplicaSet web-7f9", "Rollout api"}
	if !slices.Equal(got, want) {
		t.Errorf("workloads %q, want %q", got, want)
	}
}

// TestMergeExpecting: merging parts with an expected scale holds the same
// objects in the same order as merging them one by one, and a kind's
// slice grows once, to about what the scale says, not at every part.
func TestMergeExpecting(t *testing.T) {
	part := func(i int) *Inventory {
		p := &Inventory{Locations: map[string]string{}}
		for j := range 10 {
			name := fmt.Sprintf("sa-%d-%d", i, j)
			p.ServiceAccounts = append(p.ServiceAccounts, corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}})
			p.Locations["ServiceAccount/ns/"+name] = fmt.Sprintf("f%d.yaml:%d", i, j)
		}
		return p
	}
	plain, scaled := &Inventory{}, &Inventory{}
	grown := 0
	for i := range 20 {
		plain.Merge(part(i))
		before := cap(scaled.ServiceAccounts)
		scaled.MergeExpecting(part(i), 20/float64(i+1))
		if cap(scaled.ServiceAccounts) != before {
			grown++
		}
	}
	if !reflect.DeepEqual(plain.ServiceAccounts, scaled.ServiceAccounts) || !reflect.DeepEqual(plain.Locations, scaled.Locations) {
		t.Fatal("MergeExpecting holds other objects than Merge")
	}
	if grown > 2 {
		t.Errorf("the slice grew %d times, want at most 2 (the first part, then once)", grown)
	}
	if c := cap(scaled.ServiceAccounts); c < 200 || c > 220 {
		t.Errorf("capacity %d for 200 objects expected, want 200 to 220", c)
	}
}

// TestExpect: an empty inventory sized from another's counts holds room
// for the scaled count of each kind, and nothing else changes.
func TestExpect(t *testing.T) {
	seen := &Inventory{ServiceAccounts: make([]corev1.ServiceAccount, 100), Roles: make([]rbacv1.Role, 10)}
	inv := &Inventory{}
	inv.Expect(seen.Counts(), 0.5)
	if c := cap(inv.ServiceAccounts); c < 50 || c > 60 {
		t.Errorf("room for %d service accounts, want 50 to 60", c)
	}
	if c := cap(inv.Roles); c < 5 || c > 6 {
		t.Errorf("room for %d roles, want 5 to 6", c)
	}
	if inv.Len() != 0 || cap(inv.Deployments) != 0 {
		t.Errorf("Expect added objects (%d) or room for kinds not seen (%d deployments)", inv.Len(), cap(inv.Deployments))
	}
}

// TestLocator: a Locator answers as Location does, for the same resource
// asked again and for each change of kind, namespace or name.
func TestLocator(t *testing.T) {
	inv := &Inventory{Locations: map[string]string{
		"Deployment/team-a/web": "apps.yaml:1",
		"Deployment/team-b/web": "apps.yaml:20",
		"Service/team-a/web":    "svc.yaml:3",
		"Namespace//team-a":     "ns.yaml:1",
	}}
	l := inv.Locator()
	for _, q := range [][3]string{
		{"Deployment", "team-a", "web"}, {"Deployment", "team-a", "web"},
		{"Deployment", "team-b", "web"}, {"Service", "team-a", "web"},
		{"Service", "team-a", "api"}, {"Service", "team-a", "api"},
		{"Namespace", "", "team-a"}, {"Deployment", "team-a", "web"},
	} {
		if got, want := l.Location(q[0], q[1], q[2]), inv.Location(q[0], q[1], q[2]); got != want {
			t.Errorf("Locator.Location(%q) = %q, Location = %q", q, got, want)
		}
	}
}
