//go:build e2e

package e2e

import (
	"context"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleetscan/fleetscan/worker"
)

// TestWorkerRBAC runs the worker's collector with a token of the worker's
// own ServiceAccount, bound by the ClusterRole from deploy/: it must list
// every kind it reads, and be refused on Secrets and on every write.
func TestWorkerRBAC(t *testing.T) {
	ctx := context.Background()
	for _, c := range env.clusters {
		t.Run(c.id, func(t *testing.T) {
			wc := c.workerClient(t)
			inv, err := worker.KubeSource(wc, worker.DefaultPageSize).Collect(ctx)
			if err != nil {
				t.Fatalf("the worker's role is not enough to collect: %v", err)
			}
			if inv.Len() == 0 {
				t.Fatal("collected nothing")
			}
			refused := map[string]func() error{
				"list secrets": func() error {
					_, err := wc.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
					return err
				},
				"get a secret": func() error {
					_, err := wc.CoreV1().Secrets("kube-system").Get(ctx, "any", metav1.GetOptions{})
					return err
				},
				"watch pods": func() error {
					w, err := wc.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{})
					if err == nil {
						w.Stop()
					}
					return err
				},
				"create a configmap": func() error {
					_, err := wc.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "fleetscan-probe"}}, metav1.CreateOptions{})
					return err
				},
				"delete a pod": func() error {
					return wc.CoreV1().Pods("kube-system").Delete(ctx, "kube-apiserver-cp-1", metav1.DeleteOptions{})
				},
				"create a token": func() error {
					_, err := wc.CoreV1().ServiceAccounts("fleetscan").CreateToken(ctx, "fleetscan-worker", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
					return err
				},
			}
			for what, call := range refused {
				if err := call(); !apierrors.IsForbidden(err) {
					t.Errorf("%s: got %v, want Forbidden", what, err)
				}
			}
		})
	}
}
