package checks

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/fleetscan/fleetscan/worker/policy"
)

// runCheck runs one check and returns its findings as "Kind ns/name
// sub-path: SEVERITY", and its not-assessable reason if any.
func runCheck(t *testing.T, inv *Inventory, id string) (got []string, unassessed string) {
	t.Helper()
	skipped, err := Run(context.Background(), inv, policy.Selection{Include: []string{id}}, func(f Finding) error {
		r := f.Resource
		line := strings.TrimSpace(fmt.Sprintf("%s %s/%s %s", r.Kind, r.Namespace, r.Name, r.SubPath))
		got = append(got, line+": "+strings.TrimPrefix(f.Severity.String(), "SEVERITY_"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, na := range skipped {
		unassessed = na.Reason
	}
	slices.Sort(got)
	return got, unassessed
}

func node(name, kubelet string) corev1.Node {
	return corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status:     corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KubeletVersion: kubelet}},
	}
}

func daemonSet(namespace, name, image string) appsv1.DaemonSet {
	ds := appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	ds.Spec.Template.Spec.Containers = []corev1.Container{{Name: name, Image: image}}
	return ds
}

// TestServerVersion covers what fixtures cannot carry: the API server's
// version, which a snapshot does not hold.
func TestServerVersion(t *testing.T) {
	tests := []struct {
		server  string
		nodes   []corev1.Node
		id      string
		want    []string
		noCheck bool // not assessable
	}{
		{server: "v1.34.9", id: "VER-001", want: []string{"APIServer /kube-apiserver: MEDIUM"}},
		{server: "v1.34.9-eks-8c1b2d7", id: "VER-001", want: []string{"APIServer /kube-apiserver: MEDIUM"}},
		{server: "v1.35.0", id: "VER-001"},
		{server: "v1.37.2+k3s1", id: "VER-001"},
		{server: "v1.36.1", nodes: []corev1.Node{node("old", "v1.33.2")}, id: "VER-001", want: []string{"Node /old status.nodeInfo.kubeletVersion: MEDIUM"}},
		{server: "", id: "VER-001", noCheck: true},
		{server: "not a version", nodes: []corev1.Node{node("manifest", "")}, id: "VER-001", noCheck: true},
		{server: "v1.24.4", id: "TP-003", want: []string{"APIServer /kube-apiserver: HIGH"}},
		{server: "v1.25.0", id: "TP-003", want: []string{"APIServer /kube-apiserver: HIGH"}},
		{server: "v1.24.5", id: "TP-003"},
		{server: "v1.22.14", id: "TP-003"},
	}
	for _, tt := range tests {
		t.Run(tt.id+" "+tt.server, func(t *testing.T) {
			inv := &Inventory{ServerVersion: tt.server, Nodes: tt.nodes}
			got, unassessed := runCheck(t, inv, tt.id)
			if tt.noCheck != (unassessed != "") {
				t.Errorf("not assessable = %q, want %v", unassessed, tt.noCheck)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("findings %q, want %q", got, tt.want)
			}
		})
	}
}

// TestAssessable covers the inventories on which checks cannot tell, and
// must say so rather than pass.
func TestAssessable(t *testing.T) {
	kyverno := admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "kyverno-resource-validating-webhook-cfg"},
		Webhooks:   []admissionregistrationv1.ValidatingWebhook{{Name: "validate.kyverno.svc-fail"}},
	}
	kubeProxy := daemonSet("kube-system", "kube-proxy", "registry.k8s.io/kube-proxy:v1.37.0")
	tests := []struct {
		name, id string
		inv      Inventory
		assessed bool
	}{
		{"no network plugin recognised", "NET-005", Inventory{DaemonSets: []appsv1.DaemonSet{kubeProxy}}, false},
		{"flannel recognised", "NET-005", Inventory{DaemonSets: []appsv1.DaemonSet{daemonSet("kube-flannel", "flannel", "flannel/flannel:v0.26.4")}}, true},
		{"Kyverno may verify images", "ADM-002", Inventory{ValidatingWebhooks: []admissionregistrationv1.ValidatingWebhookConfiguration{kyverno}}, false},
		{"no webhook at all", "ADM-002", Inventory{}, true},
		{"nodes without status", "NODE-001", Inventory{Nodes: []corev1.Node{node("n", "")}}, false},
		{"bindings without ClusterRoles", "RBAC-018", Inventory{ClusterRoleBindings: []rbacv1.ClusterRoleBinding{{
			ObjectMeta: metav1.ObjectMeta{Name: "b"}, RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "custom"},
		}}}, false},
		{"bindings to default ClusterRoles only", "RBAC-018", Inventory{ClusterRoleBindings: []rbacv1.ClusterRoleBinding{{
			ObjectMeta: metav1.ObjectMeta{Name: "b"}, RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"},
		}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.id+" "+tt.name, func(t *testing.T) {
			_, unassessed := runCheck(t, &tt.inv, tt.id)
			if tt.assessed != (unassessed == "") {
				t.Errorf("not assessable: %q, want assessed %v", unassessed, tt.assessed)
			}
		})
	}
}

// TestImageProvenance covers ADM-002 without any verifier (one finding on
// the API server) and with the ImagePolicyWebhook plugin of a visible
// kube-apiserver (none).
func TestImageProvenance(t *testing.T) {
	inv := &Inventory{Namespaces: []corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}}}
	if got, _ := runCheck(t, inv, "ADM-002"); !slices.Equal(got, []string{"APIServer /kube-apiserver: MEDIUM"}) {
		t.Errorf("without verifier: %q", got)
	}
	inv.Pods = []corev1.Pod{{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-apiserver-cp1", Namespace: "kube-system", Labels: map[string]string{"component": "kube-apiserver"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:    "kube-apiserver",
			Command: []string{"kube-apiserver", "--enable-admission-plugins=NodeRestriction,ImagePolicyWebhook", "--admission-control-config-file=/etc/kubernetes/admission.yaml"},
		}}},
	}}
	if got, _ := runCheck(t, inv, "ADM-002"); len(got) > 0 {
		t.Errorf("with ImagePolicyWebhook: %q", got)
	}
}

// TestSeverities checks the findings whose severity differs from their
// check's default, on the fixtures.
func TestSeverities(t *testing.T) {
	tests := []struct {
		id   string
		want []string
	}{
		{"RBAC-017", []string{
			"ClusterRole /config-writer rules[0]: CRITICAL",
			"ClusterRole /net-admin rules[0]: HIGH",
			"ClusterRole /platform rules[0]: HIGH",
			"Role kube-system/dns-editor rules[0]: CRITICAL",
			"Role shop/app-config rules[1]: HIGH",
			"Role shop/svc-editor rules[0]: HIGH",
		}},
		{"SA-005", []string{
			"CronJob batch/report: HIGH",
			"DaemonSet kube-system/agent: HIGH",
			"Deployment ci/deployer: HIGH",
			"Deployment shop/api: MEDIUM",
			"Deployment shop/projector: HIGH",
			"Deployment web/frontend: MEDIUM",
			"Pod dev/debug: MEDIUM",
			"StatefulSet monitoring/prometheus: HIGH",
		}},
		{"TP-004", []string{
			"Deployment kubernetes-dashboard/kubernetes-dashboard: MEDIUM",
			"Deployment ops/dashboard: HIGH",
			"Deployment tools/dashboard-web: HIGH",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			got, _ := runCheck(t, decodeFixture(t, filepath.Join("testdata", tt.id, "fail.yaml")), tt.id)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in   string
		want releaseVersion
		ok   bool
	}{
		{"v1.37.2", releaseVersion{1, 37, 2, ""}, true},
		{"1.8", releaseVersion{1, 8, 0, ""}, true},
		{"v1.30.5-gke.1014001", releaseVersion{1, 30, 5, ""}, true},
		{"v1.29.1+k3s1", releaseVersion{1, 29, 1, ""}, true},
		{"9.2.3-ubuntu", releaseVersion{9, 2, 3, ""}, true},
		{"v2.3.0-RC1", releaseVersion{2, 3, 0, "rc1"}, true},
		{"5.14.0-427.50.1.el9_4.x86_64", releaseVersion{5, 14, 0, ""}, true},
		{"latest", releaseVersion{}, false},
		{"1", releaseVersion{}, false},
		{"1.2.3.4", releaseVersion{}, false},
		{"", releaseVersion{}, false},
	}
	for _, tt := range tests {
		got, ok := parseVersion(tt.in)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseVersion(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	ordered := []string{"1.9.0", "1.10.0-alpha.1", "1.10.0-alpha.2", "1.10.0-alpha.10", "1.10.0-beta", "1.10.0-rc.1", "1.10.0", "1.10.1", "2.0"}
	for i := 1; i < len(ordered); i++ {
		a, b := mustVersion(ordered[i-1]), mustVersion(ordered[i])
		if !a.less(b) || b.less(a) {
			t.Errorf("want %s < %s", ordered[i-1], ordered[i])
		}
	}
	for _, a := range advisories {
		for _, r := range a.affected {
			if r.introduced != "" {
				mustVersion(r.introduced)
			}
			mustVersion(r.fixed)
		}
	}
}

// decodeFixture reads a fixture as the snapshot collector would (that
// package imports this one, so the test cannot use it).
func decodeFixture(t *testing.T, path string) *Inventory {
	t.Helper()
	return decodeFixtureWith(t, path, &Inventory{})
}

// decodeFixtureWith adds a fixture's objects to inv.
func decodeFixtureWith(t *testing.T, path string, inv *Inventory) *Inventory {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	decoder := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatal(err)
		}
		if string(bytes.TrimSpace(js)) == "null" {
			continue
		}
		obj, _, err := decoder.Decode(js, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !inv.Add(obj) {
			t.Fatalf("%s: %T is not an inventory kind", path, obj)
		}
	}
	return inv
}
