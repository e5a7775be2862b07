package checks

import (
	"context"
	"encoding/json"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// allFindings runs every check of sel on inv and returns its findings and
// the checks not assessable.
func allFindings(t *testing.T, inv *Inventory, sel policy.Selection) ([]Finding, []NotAssessable) {
	t.Helper()
	var out []Finding
	sel.TrustedRegistries = []string{"registry.example.com"}
	na, err := Run(context.Background(), inv, sel, func(f Finding) error {
		out = append(out, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, na
}

// podImagePolicy is a custom check that reads the spec of every Pod,
// controlled ones included.
var podImagePolicy = &fleetscanv1.CustomCheck{
	Id: "ORG-100", Title: "Pods pull from the company registry", Severity: fleetscanv1.Severity_SEVERITY_MEDIUM,
	Match:      &fleetscanv1.CustomCheckMatch{Kinds: []string{"Pod"}},
	Expression: `object.spec.containers.all(c, c.image.startsWith("registry.example.com/"))`,
}

// TestTrimKeepsFindings: every check finds the same on objects trimmed to
// what the checks read as on whole ones, over every fixture of the
// catalog (the last-applied and managedFields fixtures of NS-008 and
// SEC-003 among them) and the trim fixture, which carries the
// bookkeeping of a live cluster and pods managed by controllers, in
// kube-system and out. A custom check that reads Pods keeps them whole.
func TestTrimKeepsFindings(t *testing.T) {
	files, err := filepath.Glob("testdata/*/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		t.Run(path, func(t *testing.T) {
			for _, sel := range []policy.Selection{{}, {Custom: []*fleetscanv1.CustomCheck{podImagePolicy}}} {
				wantF, wantNA := allFindings(t, decodeFixtureWith(t, path, &Inventory{Trim: TrimNone}), sel)
				for _, mode := range []TrimMode{TrimBookkeeping, TrimUnread} {
					gotF, gotNA := allFindings(t, decodeFixtureWith(t, path, &Inventory{Trim: mode, WholeKinds: sel.CustomKinds()}), sel)
					if !reflect.DeepEqual(gotF, wantF) || !reflect.DeepEqual(gotNA, wantNA) {
						t.Errorf("trim mode %d, %d custom checks: other findings:\n got %d %+v\nwant %d %+v", mode, len(sel.Custom), len(gotF), gotF, len(wantF), wantF)
					}
				}
			}
		})
	}
}

// TestTrimUnreadNeedsWholeKinds: the pods a custom check reads are
// what TrimUnread drops when it is not told to keep them, so the
// fixture does test the custom check's kinds being kept.
func TestTrimUnreadNeedsWholeKinds(t *testing.T) {
	sel := policy.Selection{Custom: []*fleetscanv1.CustomCheck{podImagePolicy}}
	want, _ := allFindings(t, decodeFixtureWith(t, "testdata/trim/live.yaml", &Inventory{Trim: TrimNone}), sel)
	got, _ := allFindings(t, decodeFixtureWith(t, "testdata/trim/live.yaml", &Inventory{Trim: TrimUnread}), sel)
	if reflect.DeepEqual(got, want) {
		t.Fatal("the custom check finds the same on pods without specs: the fixture does not show what WholeKinds keeps")
	}
}

// TestTrimShrinksLiveObjects: the trim fixture's objects lose their field
// sets, their manifests' copies and, managed by a controller outside
// kube-system, their pod specs; they keep what the checks read, and are
// trimmed the same when trimmed again.
func TestTrimShrinksLiveObjects(t *testing.T) {
	whole := decodeFixtureWith(t, "testdata/trim/live.yaml", &Inventory{Trim: TrimNone})
	trimmed := decodeFixtureWith(t, "testdata/trim/live.yaml", &Inventory{Trim: TrimUnread})
	size := func(inv *Inventory) int {
		n := 0
		inv.eachObject(func(_, _ string, _ metav1.Object, obj runtime.Object) {
			b, err := json.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			n += len(b)
		})
		return n
	}
	// What is left is the specs and the ConfigMap's data, which the
	// checks read.
	if w, g := size(whole), size(trimmed); g*10 > w*6 {
		t.Errorf("trimmed objects are %d bytes of %d: want under 60%%", g, w)
	}
	cm := &trimmed.ConfigMaps[0]
	applied := cm.Annotations[corev1.LastAppliedConfigAnnotation]
	for _, want := range []string{`"apiVersion":"v1"`, `"kind":"ConfigMap"`, `"DB_PASSWORD"`, `"tls.key":""`, `"name":"old-tls"`} {
		if !strings.Contains(applied, want) {
			t.Errorf("compacted last-applied %s lacks %s", applied, want)
		}
	}
	if strings.Contains(applied, "LS0tLS1") {
		t.Errorf("compacted last-applied keeps a Secret's value: %s", applied)
	}
	for _, f := range trimmed.Deployments[0].ManagedFields {
		if f.Operation != metav1.ManagedFieldsOperationApply || f.FieldsV1 != nil || f.Manager != "" {
			t.Errorf("managedFields entry kept whole: %+v", f)
		}
	}
	if len(trimmed.Deployments[0].ManagedFields) != 1 {
		t.Errorf("kept %d managedFields entries, want the one Apply", len(trimmed.Deployments[0].ManagedFields))
	}
	// Managed pods outside kube-system are kept as their metadata;
	// kube-system's keep their specs.
	for _, p := range trimmed.Pods {
		if p.Namespace != "kube-system" || len(p.Spec.Containers) == 0 {
			t.Errorf("pod %s/%s kept as a whole Pod with %d containers; only kube-system's pods should be", p.Namespace, p.Name, len(p.Spec.Containers))
		}
	}
	if len(trimmed.ManagedPods) != 1 || trimmed.ManagedPods[0].Name != "api-5d4f8c7b9-x7k2p" {
		t.Errorf("managed pods kept as metadata: %+v, want the shop pod", trimmed.ManagedPods)
	}
	for _, p := range trimmed.ManagedPods {
		if len(p.Labels) == 0 || len(p.OwnerReferences) == 0 || p.Kind != "Pod" {
			t.Errorf("managed pod %s/%s lost its kind, labels or owners, which the checks read", p.Namespace, p.Name)
		}
	}
	if whole.Len() != trimmed.Len() {
		t.Errorf("trimmed inventory counts %d objects, the whole one %d", trimmed.Len(), whole.Len())
	}
	// Equal label sets are one map, shared by template, ReplicaSet and pod.
	same := func(a, b map[string]string) bool {
		return a != nil && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
	}
	if len(trimmed.ReplicaSets) != 0 || len(trimmed.ManagedReplicaSets) != 1 {
		t.Fatalf("%d whole ReplicaSets, %d kept as metadata; want the Deployment's as metadata", len(trimmed.ReplicaSets), len(trimmed.ManagedReplicaSets))
	}
	if d, rs, p := trimmed.Deployments[0], trimmed.ManagedReplicaSets[0], trimmed.ManagedPods[0]; !same(d.Spec.Template.Labels, p.Labels) || !same(rs.Labels, p.Labels) || !same(rs.PodLabels, p.Labels) || !same(d.Spec.Selector.MatchLabels, p.Labels) {
		t.Errorf("equal label sets are not shared: template %v, ReplicaSet %v and its pods' %v, selector %v, pod %v", d.Spec.Template.Labels, rs.Labels, rs.PodLabels, d.Spec.Selector.MatchLabels, p.Labels)
	}
	// Of ConfigMaps outside kube-system, the entries checks read.
	for _, c := range trimmed.ConfigMaps {
		switch c.Name {
		case "settings":
			if c.Data != nil {
				t.Errorf("ConfigMap settings keeps data no check reads: %v", c.Data)
			}
		case "ingress-nginx-controller":
			if got := slices.Sorted(maps.Keys(c.Data)); !slices.Equal(got, []string{"API_TOKEN", "allow-snippet-annotations"}) {
				t.Errorf("ConfigMap ingress-nginx-controller keeps %v, want the credential and allow-snippet-annotations", got)
			}
			if c.Labels != nil {
				t.Errorf("ConfigMap ingress-nginx-controller keeps its labels, which no check reads: %v", c.Labels)
			}
		}
	}
	// Identities no check reads; last-applied copies that say nothing.
	trimmed.eachObject(func(_, kind string, m metav1.Object, _ runtime.Object) {
		if m.GetUID() != "" || m.GetResourceVersion() != "" {
			t.Errorf("%s %s keeps its UID or resource version", kind, m.GetName())
		}
		for _, o := range m.GetOwnerReferences() {
			if o.UID != "" {
				t.Errorf("%s %s keeps its owner's UID", kind, m.GetName())
			}
		}
		_, applied := m.GetAnnotations()[corev1.LastAppliedConfigAnnotation]
		switch {
		case kind == "Deployment" && applied:
			t.Errorf("Deployment %s keeps a last-applied copy in a served version", m.GetName())
		case kind == "PodDisruptionBudget" && !applied:
			t.Errorf("PodDisruptionBudget %s lost the last-applied copy in a removed version, which NS-008 reports", m.GetName())
		}
	})
	again := cm.DeepCopy()
	Trim(again)
	if !reflect.DeepEqual(again, cm) {
		t.Errorf("Trim is not idempotent:\n%v\n%v", again.Annotations, cm.Annotations)
	}
}
