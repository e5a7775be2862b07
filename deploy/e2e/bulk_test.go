//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Bulk objects: more of each kind than one List page holds, so that the
// worker, which runs with pages of pageSize, must follow continue tokens.
const (
	pageSize       = 500
	bulkNamespace  = "bulk"
	bulkConfigMaps = 3000
	bulkPods       = 2000
)

// seedBulk creates the bulk namespace in c with 16 concurrent writers.
func seedBulk(ctx context.Context, c *cluster) error {
	start := time.Now()
	cfg := *c.admin
	cfg.QPS, cfg.Burst = 2000, 4000
	cs, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		return err
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: bulkNamespace}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := c.defaultServiceAccounts(ctx); err != nil {
		return err
	}
	var jobs []createJob
	for i := range bulkConfigMaps {
		jobs = append(jobs, createJob{"ConfigMap", func(ctx context.Context) error {
			_, err := cs.CoreV1().ConfigMaps(bulkNamespace).Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("settings-%04d", i), Labels: map[string]string{"app": "batch"}},
				Data:       map[string]string{"LOG_LEVEL": "info", "SHARD": fmt.Sprint(i)},
			}, metav1.CreateOptions{})
			return err
		}})
	}
	for i := range bulkPods {
		jobs = append(jobs, createJob{"Pod", func(ctx context.Context) error {
			_, err := cs.CoreV1().Pods(bulkNamespace).Create(ctx, bulkPod(i), metav1.CreateOptions{})
			return err
		}})
	}
	if _, err := createAll(ctx, 16, jobs); err != nil {
		return fmt.Errorf("bulk objects in %s: %w", c.id, err)
	}
	fmt.Fprintf(os.Stderr, "e2e: %s: %d ConfigMaps and %d Pods created in %s\n", c.id, bulkConfigMaps, bulkPods, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// createJob creates one object of kind.
type createJob struct {
	kind string
	do   func(context.Context) error
}

// createAll runs jobs with writers concurrent writers and returns how many
// objects of each kind it created; after the first error it creates no
// more and returns that error.
func createAll(ctx context.Context, writers int, jobs []createJob) (map[string]int, error) {
	var mu sync.Mutex
	created := map[string]int{}
	ch := make(chan createJob)
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for it := range ch {
				if failed.Load() != nil {
					continue
				}
				if err := it.do(ctx); err != nil {
					err = fmt.Errorf("create %s: %w", it.kind, err)
					failed.CompareAndSwap(nil, &err)
					continue
				}
				mu.Lock()
				created[it.kind]++
				mu.Unlock()
			}
		})
	}
	for _, it := range jobs {
		ch <- it
	}
	close(ch)
	wg.Wait()
	if err := failed.Load(); err != nil {
		return created, *err
	}
	return created, nil
}

// bulkPod is a hardened batch pod but for its mutable image tag: the same
// few findings on each of many objects.
func bulkPod(i int) *corev1.Pod {
	no, yes := false, true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("batch-%04d", i), Labels: map[string]string{"app": "batch"}},
		Spec: corev1.PodSpec{
			RestartPolicy:                corev1.RestartPolicyNever,
			AutomountServiceAccountToken: &no,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   &yes,
				RunAsUser:      new(int64(10001)),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:  "worker",
				Image: "registry.globex.example/batch/worker:latest",
				Args:  []string{"--shard", fmt.Sprint(i)},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: &no,
					ReadOnlyRootFilesystem:   &yes,
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
				},
			}},
		},
	}
}
