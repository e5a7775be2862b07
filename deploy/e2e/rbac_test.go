//go:build e2e

package e2e

import (
	"context"
	"path/filepath"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fleetscan/fleetscan/worker"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// TestWorkerRBAC runs the worker's collector with a token of the worker's
// own ServiceAccount, bound by the ClusterRole from deploy/: it must list
// every kind it reads, and be refused on Secrets and on every write.
func TestWorkerRBAC(t *testing.T) {
	ctx := context.Background()
	for _, c := range env.clusters {
		t.Run(c.id, func(t *testing.T) {
			wc := c.workerClient(t)
			inv, err := worker.KubeSource(wc, worker.DefaultPageSize, nil).Collect(ctx, policy.Selection{})
			if err != nil {
				t.Fatalf("the worker's role is not enough to collect: %v", err)
			}
			if inv.Len() == 0 {
				t.Fatal("collected nothing")
			}
			refused := []struct {
				what string
				call func() error
			}{
				{"list secrets", func() error {
					_, err := wc.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
					return err
				}},
				{"get a secret", func() error {
					_, err := wc.CoreV1().Secrets("kube-system").Get(ctx, "any", metav1.GetOptions{})
					return err
				}},
				{"watch pods", func() error {
					w, err := wc.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{})
					if err == nil {
						w.Stop()
					}
					return err
				}},
				{"create a configmap", func() error {
					_, err := wc.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "fleetscan-probe"}}, metav1.CreateOptions{})
					return err
				}},
				{"delete a pod", func() error {
					return wc.CoreV1().Pods("kube-system").Delete(ctx, "kube-apiserver-cp-1", metav1.DeleteOptions{})
				}},
				{"create a token", func() error {
					_, err := wc.CoreV1().ServiceAccounts("fleetscan").CreateToken(ctx, "fleetscan-worker", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
					return err
				}},
			}
			for _, r := range refused {
				t.Run(r.what, func(t *testing.T) {
					if err := r.call(); !apierrors.IsForbidden(err) {
						t.Errorf("got %v, want Forbidden", err)
					}
				})
			}

			// Beyond these samples: what the API server's authorizer grants
			// the worker is exactly the ClusterRole of rbac.yaml, get and
			// list, plus what every authenticated user has. No other
			// binding, aggregation or wildcard widens it (nodes/proxy,
			// pods/exec, impersonate would show here).
			review, err := wc.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authorizationv1.SelfSubjectRulesReview{
				Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: "kube-system"},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if review.Status.Incomplete {
				t.Fatalf("rules review incomplete: %s", review.Status.EvaluationError)
			}
			got := map[string]bool{}
			for _, r := range review.Status.ResourceRules {
				for _, g := range r.APIGroups {
					for _, res := range r.Resources {
						for _, v := range r.Verbs {
							if !everyUser[g+"/"+res+":"+v] {
								got[g+"/"+res+":"+v] = true
							}
						}
					}
				}
			}
			want := workerRole(t)
			for k := range want {
				if !got[k] {
					t.Errorf("the worker is not granted %s", k)
				}
			}
			for k := range got {
				if !want[k] {
					t.Errorf("the worker is granted %s, which rbac.yaml does not list", k)
				}
			}
		})
	}
}

// everyUser is what Kubernetes v1.37's default roles grant every
// authenticated user: system:basic-user's self reviews, and reading
// ClusterTrustBundles (public CA certificates, for pods to trust).
var everyUser = map[string]bool{
	"authorization.k8s.io/selfsubjectaccessreviews:create": true,
	"authorization.k8s.io/selfsubjectrulesreviews:create":  true,
	"authentication.k8s.io/selfsubjectreviews:create":      true,
	"certificates.k8s.io/clustertrustbundles:get":          true,
	"certificates.k8s.io/clustertrustbundles:list":         true,
	"certificates.k8s.io/clustertrustbundles:watch":        true,
}

// workerRole is the worker ClusterRole's rules from deploy/, as
// "group/resource:verb".
func workerRole(t *testing.T) map[string]bool {
	t.Helper()
	objs, err := decodeFile(filepath.Join(env.repo, "deploy/kubernetes/worker/rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, u := range objs {
		if u.GetKind() != "ClusterRole" {
			continue
		}
		var role rbacv1.ClusterRole
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &role); err != nil {
			t.Fatal(err)
		}
		for _, r := range role.Rules {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						out[g+"/"+res+":"+v] = true
					}
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no ClusterRole in rbac.yaml")
	}
	return out
}
