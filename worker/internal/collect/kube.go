package collect

import (
	"context"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/fleetscan/fleetscan/worker/checks"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// DefaultPageSize is how many objects one List call asks for.
const DefaultPageSize = 500

// Kube reads a cluster through its API server. It only lists; it never
// reads Secrets.
type Kube struct {
	Client   kubernetes.Interface
	PageSize int64
	// Warn, if set, receives what the collector had to work around (a
	// listing started again).
	Warn func(problem string)
}

// lister lists one kind, one page at a time.
type lister struct {
	resource string // for error messages and the RBAC the worker needs
	// list returns a page, the continue token for the next one and, when
	// the API server says, how many objects remain after it.
	list func(ctx context.Context, opts metav1.ListOptions) (items []runtime.Object, cont string, remaining int64, err error)
}

// listed adapts a typed List call to a lister: every typed list has Items
// and a continue token.
func listed[L interface {
	GetContinue() string
	GetRemainingItemCount() *int64
}, T any, PT interface {
	*T
	runtime.Object
}](resource string, call func(context.Context, metav1.ListOptions) (L, error), items func(L) []T) lister {
	return lister{resource: resource, list: func(ctx context.Context, opts metav1.ListOptions) ([]runtime.Object, string, int64, error) {
		l, err := call(ctx, opts)
		if err != nil {
			return nil, "", 0, err
		}
		its := items(l)
		out := make([]runtime.Object, len(its))
		for i := range its {
			out[i] = PT(&its[i])
		}
		var remaining int64
		if n := l.GetRemainingItemCount(); n != nil {
			remaining = *n
		}
		return out, l.GetContinue(), remaining, nil
	}}
}

func (k *Kube) listers() []lister {
	c := k.Client
	return []lister{
		listed("namespaces", c.CoreV1().Namespaces().List, func(l *corev1.NamespaceList) []corev1.Namespace { return l.Items }),
		listed("pods", c.CoreV1().Pods("").List, func(l *corev1.PodList) []corev1.Pod { return l.Items }),
		listed("services", c.CoreV1().Services("").List, func(l *corev1.ServiceList) []corev1.Service { return l.Items }),
		listed("serviceaccounts", c.CoreV1().ServiceAccounts("").List, func(l *corev1.ServiceAccountList) []corev1.ServiceAccount { return l.Items }),
		listed("deployments.apps", c.AppsV1().Deployments("").List, func(l *appsv1.DeploymentList) []appsv1.Deployment { return l.Items }),
		listed("replicasets.apps", c.AppsV1().ReplicaSets("").List, func(l *appsv1.ReplicaSetList) []appsv1.ReplicaSet { return l.Items }),
		listed("statefulsets.apps", c.AppsV1().StatefulSets("").List, func(l *appsv1.StatefulSetList) []appsv1.StatefulSet { return l.Items }),
		listed("daemonsets.apps", c.AppsV1().DaemonSets("").List, func(l *appsv1.DaemonSetList) []appsv1.DaemonSet { return l.Items }),
		listed("jobs.batch", c.BatchV1().Jobs("").List, func(l *batchv1.JobList) []batchv1.Job { return l.Items }),
		listed("cronjobs.batch", c.BatchV1().CronJobs("").List, func(l *batchv1.CronJobList) []batchv1.CronJob { return l.Items }),
		listed("roles.rbac.authorization.k8s.io", c.RbacV1().Roles("").List, func(l *rbacv1.RoleList) []rbacv1.Role { return l.Items }),
		listed("clusterroles.rbac.authorization.k8s.io", c.RbacV1().ClusterRoles().List, func(l *rbacv1.ClusterRoleList) []rbacv1.ClusterRole { return l.Items }),
		listed("rolebindings.rbac.authorization.k8s.io", c.RbacV1().RoleBindings("").List, func(l *rbacv1.RoleBindingList) []rbacv1.RoleBinding { return l.Items }),
		listed("clusterrolebindings.rbac.authorization.k8s.io", c.RbacV1().ClusterRoleBindings().List, func(l *rbacv1.ClusterRoleBindingList) []rbacv1.ClusterRoleBinding { return l.Items }),
		listed("networkpolicies.networking.k8s.io", c.NetworkingV1().NetworkPolicies("").List, func(l *networkingv1.NetworkPolicyList) []networkingv1.NetworkPolicy { return l.Items }),
		listed("ingresses.networking.k8s.io", c.NetworkingV1().Ingresses("").List, func(l *networkingv1.IngressList) []networkingv1.Ingress { return l.Items }),
		listed("configmaps", c.CoreV1().ConfigMaps("").List, func(l *corev1.ConfigMapList) []corev1.ConfigMap { return l.Items }),
		listed("nodes", c.CoreV1().Nodes().List, func(l *corev1.NodeList) []corev1.Node { return l.Items }),
		listed("limitranges", c.CoreV1().LimitRanges("").List, func(l *corev1.LimitRangeList) []corev1.LimitRange { return l.Items }),
		listed("resourcequotas", c.CoreV1().ResourceQuotas("").List, func(l *corev1.ResourceQuotaList) []corev1.ResourceQuota { return l.Items }),
		listed("replicationcontrollers", c.CoreV1().ReplicationControllers("").List, func(l *corev1.ReplicationControllerList) []corev1.ReplicationController {
			return l.Items
		}),
		listed("horizontalpodautoscalers.autoscaling", c.AutoscalingV2().HorizontalPodAutoscalers("").List, func(l *autoscalingv2.HorizontalPodAutoscalerList) []autoscalingv2.HorizontalPodAutoscaler {
			return l.Items
		}),
		listed("poddisruptionbudgets.policy", c.PolicyV1().PodDisruptionBudgets("").List, func(l *policyv1.PodDisruptionBudgetList) []policyv1.PodDisruptionBudget { return l.Items }),
		listed("validatingwebhookconfigurations.admissionregistration.k8s.io", c.AdmissionregistrationV1().ValidatingWebhookConfigurations().List, func(l *admissionregistrationv1.ValidatingWebhookConfigurationList) []admissionregistrationv1.ValidatingWebhookConfiguration {
			return l.Items
		}),
		listed("mutatingwebhookconfigurations.admissionregistration.k8s.io", c.AdmissionregistrationV1().MutatingWebhookConfigurations().List, func(l *admissionregistrationv1.MutatingWebhookConfigurationList) []admissionregistrationv1.MutatingWebhookConfiguration {
			return l.Items
		}),
	}
}

// Resources lists the resources the collector reads, as RBAC names them:
// the worker's ClusterRole grants get and list on exactly these.
func (k *Kube) Resources() []string {
	var out []string
	for _, l := range k.listers() {
		out = append(out, l.resource)
	}
	return out
}

// Collect lists every kind the checks read, page by page. A kind it is not
// allowed to list fails the collection: a scan that silently skipped it
// would report a clean bill of health it did not check. Objects are
// reduced as each page arrives to what the checks of sel read
// (checks.TrimUnread, with the kinds of its custom checks whole), so
// that the inventory of a large cluster is what the checks need, not what
// the API server keeps.
func (k *Kube) Collect(ctx context.Context, sel policy.Selection) (*checks.Inventory, error) {
	pageSize := k.PageSize
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	inv := &checks.Inventory{Trim: checks.TrimUnread, WholeKinds: sel.CustomKinds()}
	for _, l := range k.listers() {
		// Each kind is read into an inventory of its own and kept once
		// it is complete, so that a listing started again leaves nothing
		// of the first try behind.
		part := inv.Part()
		pages, err := k.list(ctx, l, pageSize, part)
		if apierrors.IsResourceExpired(err) {
			// The API server no longer holds the snapshot the pages came
			// from (etcd compacted it: the listing took longer than the
			// compaction interval, 5 minutes by default). Paging again
			// could expire again just the same; one unpaged List, which
			// the API server serves from its cache, cannot. client-go's
			// pager does the same.
			k.warn(fmt.Sprintf("list %s: the continue token expired after %d page(s); listing it again in one call", l.resource, pages))
			part = inv.Part()
			_, err = k.list(ctx, l, 0, part)
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", l.resource, err)
		}
		inv.Absorb(part)
	}
	// The version checks need it; a cluster that hides it is still scanned.
	inv.ServerVersion, _ = k.KubernetesVersion(ctx)
	return inv, nil
}

// list reads every object of one kind into inv, in pages of pageSize (0:
// one List call), and returns how many pages it read.
func (k *Kube) list(ctx context.Context, l lister, pageSize int64, inv *checks.Inventory) (int, error) {
	opts := metav1.ListOptions{Limit: pageSize}
	for pages := 1; ; pages++ {
		items, cont, remaining, err := l.list(ctx, opts)
		if err != nil {
			return pages - 1, err
		}
		if pages == 1 && len(items) > 0 {
			// The whole kind at once, not grown by doubling as pages come:
			// on a large cluster the spare capacity of a slice of Pods
			// was a third of the inventory.
			inv.Reserve(items[0], len(items)+int(remaining))
		}
		for _, obj := range items {
			inv.Add(obj)
		}
		if cont == "" {
			return pages, nil
		}
		opts.Continue = cont
	}
}

func (k *Kube) warn(problem string) {
	if k.Warn != nil {
		k.Warn(problem)
	}
}

// KubernetesVersion returns the API server's gitVersion.
func (k *Kube) KubernetesVersion(context.Context) (string, error) {
	v, err := k.Client.Discovery().ServerVersion()
	if err != nil {
		return "", fmt.Errorf("server version: %w", err)
	}
	return v.GitVersion, nil
}

// Snapshot reads a directory of manifests.
type Snapshot struct {
	Dir string
	// Warn receives each object that decoded with unknown or duplicate
	// fields, as "file:line: ..."; what could not be read at all is in
	// the inventory's Problems.
	Warn func(problem string)
	// MaxDocument bounds one document in bytes (0: MaxDocumentSize).
	MaxDocument int
}

// Collect loads the snapshot; it is read again for every job, so edits to
// the directory show in the next scan. Its objects are reduced to what the
// checks of sel read, as a live cluster's are (checks.TrimUnread, with the
// kinds of its custom checks whole): the 100,000 generated objects of
// BenchmarkScan held 264 MiB after loading whole, 149 MiB so.
func (s *Snapshot) Collect(_ context.Context, sel policy.Selection) (*checks.Inventory, error) {
	inv, stats, err := loadSnapshot(s.Dir, s.MaxDocument, checks.TrimUnread, sel.CustomKinds())
	if err != nil {
		return nil, err
	}
	// What could not be read travels with the inventory, into the
	// report and the job's result; Warn gets what was read with doubts.
	inv.Problems = stats.Problems
	if s.Warn != nil {
		for _, p := range stats.Warnings {
			s.Warn(p)
		}
	}
	return inv, nil
}

// KubernetesVersion of a snapshot is unknown.
func (s *Snapshot) KubernetesVersion(context.Context) (string, error) { return "snapshot", nil }
