package collect

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/fleetscan/fleetscan/worker/policy"
)

func TestKubeCollectsEveryKind(t *testing.T) {
	client := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "shop"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "shop"}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "r"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "shop"}},
	)
	k := &Kube{Client: client}
	inv, err := k.Collect(context.Background(), policy.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Namespaces) != 1 || len(inv.Pods) != 1 || len(inv.Deployments) != 1 || len(inv.ClusterRoles) != 1 || inv.Len() != 4 {
		t.Errorf("inventory: %d objects, %+v", inv.Len(), inv)
	}
	for _, a := range client.Actions() {
		if a.GetResource().Resource == "secrets" {
			t.Errorf("the collector touched secrets: %v", a)
		}
		if a.GetVerb() != "list" && a.GetResource().Resource != "version" {
			t.Errorf("the collector did more than list: %v", a)
		}
	}
}

// TestKubeFollowsContinueTokens serves pods in pages of the requested size
// and checks that every pod is read exactly once.
func TestKubeFollowsContinueTokens(t *testing.T) {
	const total = 1234
	client := fake.NewClientset()
	calls := servePods(client, total, nil)
	inv, err := (&Kube{Client: client, PageSize: 100}).Collect(context.Background(), policy.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range inv.Pods {
		if seen[p.Name] {
			t.Fatalf("pod %s read twice", p.Name)
		}
		seen[p.Name] = true
	}
	if len(seen) != total || len(*calls) != 13 {
		t.Errorf("read %d pods in %d calls, want %d in 13", len(seen), len(*calls), total)
	}
}

// TestKubeFailsOnForbiddenKind: a kind the worker may not list fails the
// job rather than passing it unchecked.
func TestKubeFailsOnForbiddenKind(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("list", "roles", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.NewForbidden(schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "roles"}, "", fmt.Errorf("RBAC: no"))
	})
	_, err := (&Kube{Client: client}).Collect(context.Background(), policy.Selection{})
	if !errors.IsForbidden(err) {
		t.Fatalf("got %v, want a Forbidden error", err)
	}
	if want := "list roles.rbac.authorization.k8s.io"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %q", err, want)
	}
}

// TestKubeListsAgainWhenContinueExpires: when the API server no longer
// holds the snapshot a listing's pages come from (410 Expired on the
// continue token, after etcd compacted it), the kind is listed again in
// one call: every object once, none of the first try left behind, and
// the collector says so.
func TestKubeListsAgainWhenContinueExpires(t *testing.T) {
	const total = 1234
	client := fake.NewClientset()
	calls := servePods(client, total, func(opts metav1.ListOptions) error {
		if opts.Continue == "1000" {
			return errors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result.")
		}
		return nil
	})
	var warnings []string
	inv, err := (&Kube{Client: client, PageSize: 500, Warn: func(p string) { warnings = append(warnings, p) }}).Collect(context.Background(), policy.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, p := range inv.Pods {
		seen[p.Name]++
	}
	for name, n := range seen {
		if n != 1 {
			t.Errorf("pod %s held %d times", name, n)
		}
	}
	if len(seen) != total {
		t.Errorf("held %d pods, want %d", len(seen), total)
	}
	var got []string
	for _, o := range *calls {
		got = append(got, fmt.Sprintf("limit=%d continue=%q", o.Limit, o.Continue))
	}
	want := []string{`limit=500 continue=""`, `limit=500 continue="500"`, `limit=500 continue="1000"`, `limit=0 continue=""`}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("List calls:\n got %q\nwant %q", got, want)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "pods") || !strings.Contains(warnings[0], "expired after 2 page(s)") {
		t.Errorf("warnings %q, want one naming pods and the expiry", warnings)
	}
}

// servePods answers the pod Lists of client from total pods, in pages of
// the requested limit (all of them without one) with the next offset as
// the continue token; fail, if not nil, may answer a call with an error
// instead. It returns the options of every call, in order.
func servePods(client *fake.Clientset, total int, fail func(metav1.ListOptions) error) *[]metav1.ListOptions {
	calls := &[]metav1.ListOptions{}
	client.PrependReactor("list", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		opts := action.(k8stesting.ListActionImpl).GetListOptions()
		*calls = append(*calls, opts)
		if fail != nil {
			if err := fail(opts); err != nil {
				return true, nil, err
			}
		}
		start := 0
		if opts.Continue != "" {
			start, _ = strconv.Atoi(opts.Continue)
		}
		end := total
		if opts.Limit > 0 {
			end = min(start+int(opts.Limit), total)
		}
		list := &corev1.PodList{}
		for i := start; i < end; i++ {
			list.Items = append(list.Items, corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: "shop"}})
		}
		if end < total {
			list.Continue = strconv.Itoa(end)
		}
		return true, list, nil
	})
	return calls
}
