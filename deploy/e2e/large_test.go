//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// The large cluster: about 50,000 objects of every kind the worker reads,
// shaped like a provider's biggest tenant cluster. Each namespace holds
// largeNamespaceObjects objects; the cluster-wide ones come on top.
const (
	largeNamespaces = 320
	// largeGroupBindings ClusterRoleBindings grant takeover powers to every
	// service account (the group system:serviceaccounts): SA-005 then
	// joins every workload with all of them, which once made findings of
	// 66 KB and batches of 14 MB.
	largeGroupBindings = 120
	largeClusterRoles  = 150
	largeNodes         = 100
)

// TestLargeCluster seeds a control plane of its own with about 50,000
// objects, scans it through a real server and worker, and checks that the
// scan completes with exactly the findings of a standalone scan of the
// same cluster. It prints the figures docs/benchmarks.md records: seeding
// and scan times, and the peak RSS of the worker, the standalone scan and
// the server.
func TestLargeCluster(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	cp, err := startRetrying(ctx, env.tools, "e2e-large", "10.100.0.0/16", filepath.Join(env.root, "e2e-large"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.stop)
	c := &cluster{controlPlane: cp, id: "e2e-large", tenant: "initech", installs: []string{"worker"}}
	if err := c.prepare(ctx); err != nil {
		t.Fatal(err)
	}
	seeded := time.Now()
	created, err := seedLarge(ctx, cp)
	if err != nil {
		t.Fatal(err)
	}
	objects := 0
	for _, n := range created {
		objects += n
	}
	t.Logf("large cluster: %d objects created in %s (control plane ready and worker RBAC in %s)",
		objects, time.Since(seeded).Round(100*time.Millisecond), seeded.Sub(start).Round(100*time.Millisecond))
	if objects < 45_000 {
		t.Fatalf("seeded %d objects, want about 50,000", objects)
	}

	// The standalone scan of the same cluster, with the worker's token.
	out := filepath.Join(t.TempDir(), "standalone.json")
	standalone, saRSS, saWall := standaloneScan(t, c, out)
	t.Logf("standalone scan: %d findings in %s, peak RSS %d MiB", len(standalone), saWall.Round(100*time.Millisecond), saRSS>>10)

	f := startFleetOf(t, []*cluster{c})
	scanStart := time.Now()
	s := f.scanWithin(10*time.Minute, c.id)
	wall := time.Since(scanStart)
	job := jobOf(t, s, c.id)
	workerRSS, workerPeak := f.workers[0].memory()
	serverRSS, serverPeak := f.server.memory()
	t.Logf("fleet scan through the server: %s wall, %d findings, %d objects, %d attempt(s)", wall.Round(100*time.Millisecond), total(job.Findings), job.ObjectsScanned, job.Attempts)
	t.Logf("peak RSS: worker %d MiB (now %d), server %d MiB (now %d), standalone scan %d MiB", workerPeak>>10, workerRSS>>10, serverPeak>>10, serverRSS>>10, saRSS>>10)
	_, apiPeak := cp.apiserver.memory()
	_, etcdPeak := cp.etcd.memory()
	t.Logf("peak RSS of the control plane: kube-apiserver %d MiB, etcd %d MiB", apiPeak>>10, etcdPeak>>10)

	if job.Attempts != 1 {
		t.Errorf("the job took %d attempts: the worker's stream broke", job.Attempts)
	}
	// Objects: what was created, and what the cluster had before (the
	// worker's install, default service accounts, the API server's own
	// ClusterRoles and bindings).
	if job.ObjectsScanned < int64(objects) {
		t.Errorf("objects scanned %d, fewer than the %d created", job.ObjectsScanned, objects)
	}
	stored := f.stored(c.id)
	if d := lineDiff(standalone, stored); d != "" {
		t.Errorf("stored findings differ from the standalone scan (-missing +unexpected), by check %v:\n%s",
			countDiff(standalone, stored), head(d, 40))
	}
	longest := 0
	for _, l := range stored {
		longest = max(longest, len(l))
	}
	t.Logf("findings by check: %v; longest finding line %d bytes", byCheck(stored), longest)
	if reconnects := strings.Count(readFile(t, f.workers[0].log), "disconnected from the server"); reconnects > 0 {
		t.Errorf("the worker reconnected %d times during the scan", reconnects)
	}
}

// scanWithin is scan with a deadline of its own.
func (f *fleet) scanWithin(d time.Duration, clusterIDs ...string) *fleetscanv1.Scan {
	f.t.Helper()
	resp, err := f.op.ScanService.StartScan(context.Background(), &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{ClusterIds: clusterIDs}})
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	s, err := f.op.WaitScan(ctx, resp.Scan.Id, 500*time.Millisecond, nil)
	if err != nil {
		f.t.Fatalf("scan %s: %v (last state %v)", resp.Scan.Id, err, s)
	}
	if s.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
		f.t.Fatalf("scan %s ended %v: %v", s.Id, s.State, s.Jobs)
	}
	return s
}

// standaloneScan runs 'fleetscan-worker scan -o json' on the cluster with
// the worker's token and returns its findings as lines, its peak RSS in
// KiB and its wall time.
func standaloneScan(t *testing.T, c *cluster, out string) ([]string, int64, time.Duration) {
	t.Helper()
	file, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	cmd := exec.Command(filepath.Join(env.fleetscan, "fleetscan-worker"), "scan", "--kubeconfig", c.workerConf, "-o", "json", "--cluster-id", c.id)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = file, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("standalone scan: %v\n%s", err, stderr.String())
	}
	wall := time.Since(start)
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Findings []struct {
			CheckID  string `json:"checkId"`
			Severity string `json:"severity"`
			Resource struct {
				Kind, Namespace, Name, SubPath string
			} `json:"resource"`
			Message           string `json:"message"`
			SuppressionReason string `json:"suppressionReason"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(b, &report); err != nil {
		t.Fatalf("standalone report: %v", err)
	}
	lines := make([]string, 0, len(report.Findings))
	for _, fd := range report.Findings {
		r := fd.Resource
		sev := fleetscanv1.Severity(fleetscanv1.Severity_value[fd.Severity])
		lines = append(lines, findingLine(fd.CheckID, sev, r.Kind, r.Namespace, r.Name, r.SubPath, fd.Message, fd.SuppressionReason))
	}
	slices.Sort(lines)
	return lines, rss, wall
}

func byCheck(lines []string) map[string]int {
	out := map[string]int{}
	for _, l := range lines {
		out[strings.Fields(l)[0]]++
	}
	return out
}

// countDiff is, for each check whose count differs, "want→got".
func countDiff(want, got []string) map[string]string {
	w, g := byCheck(want), byCheck(got)
	out := map[string]string{}
	for _, id := range slices.Sorted(maps.Keys(w)) {
		if w[id] != g[id] {
			out[id] = fmt.Sprintf("%d→%d", w[id], g[id])
		}
	}
	for id := range g {
		if _, ok := w[id]; !ok {
			out[id] = fmt.Sprintf("0→%d", g[id])
		}
	}
	return out
}

func head(s string, n int) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	var b strings.Builder
	for i := 0; sc.Scan(); i++ {
		if i == n {
			b.WriteString("…\n")
			break
		}
		b.WriteString(sc.Text() + "\n")
	}
	return b.String()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// seedLarge creates the large cluster's objects with 32 concurrent
// writers and returns how many of each kind it created. Every object
// carries what kubectl apply leaves on it (the last-applied
// configuration) and the API server adds its managedFields: the weight of
// objects on a real cluster, which the worker must not keep.
func seedLarge(ctx context.Context, cp *controlPlane) (map[string]int, error) {
	cfg := *cp.admin
	cfg.QPS, cfg.Burst = 5000, 10000
	cs, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		return nil, err
	}
	created := map[string]int{}
	run := func(items []createJob) error {
		n, err := createAll(ctx, 32, items)
		for kind, c := range n {
			created[kind] += c
		}
		return err
	}
	c, a, b, n, r, p := cs.CoreV1(), cs.AppsV1(), cs.BatchV1(), cs.NetworkingV1(), cs.RbacV1(), cs.PolicyV1()
	opts := metav1.CreateOptions{FieldManager: "kubectl-client-side-apply"}
	add := func(items *[]createJob, kind string, do func(context.Context) error) {
		*items = append(*items, createJob{kind, do})
	}

	// Namespaces and service accounts first: pods need theirs to exist.
	var first []createJob
	for i := range largeNamespaces {
		ns := largeNS(i)
		add(&first, "Namespace", func(ctx context.Context) error {
			o := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"team": fmt.Sprintf("t%d", i%40)}}}
			if i%4 == 0 {
				// warn, not enforce: the seed holds pods that baseline
				// forbids, as clusters that only warn do.
				o.Labels["pod-security.kubernetes.io/warn"] = "baseline"
			}
			_, err := c.Namespaces().Create(ctx, applied(o), opts)
			return err
		})
	}
	for i := range largeClusterRoles {
		add(&first, "ClusterRole", func(ctx context.Context) error {
			_, err := r.ClusterRoles().Create(ctx, applied(largeClusterRole(i)), opts)
			return err
		})
		add(&first, "ClusterRoleBinding", func(ctx context.Context) error {
			_, err := r.ClusterRoleBindings().Create(ctx, applied(largeClusterRoleBinding(i)), opts)
			return err
		})
	}
	for i := range largeNodes {
		add(&first, "Node", func(ctx context.Context) error {
			node, err := c.Nodes().Create(ctx, applied(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%03d", i), Labels: map[string]string{"kubernetes.io/os": "linux"}}}), opts)
			if err != nil {
				return err
			}
			kubelet := "v1.37.2"
			if i%10 == 0 {
				kubelet = "v1.33.4"
			}
			node.Status.NodeInfo = corev1.NodeSystemInfo{KubeletVersion: kubelet, OSImage: "Ubuntu 24.04.1 LTS", KernelVersion: "6.8.0-45-generic", ContainerRuntimeVersion: "containerd://2.1.4", Architecture: "amd64", OperatingSystem: "linux"}
			_, err = c.Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
			return err
		})
	}
	add(&first, "ValidatingWebhookConfiguration", func(ctx context.Context) error {
		_, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, applied(largeWebhook()), opts)
		return err
	})
	if err := run(first); err != nil {
		return nil, err
	}
	var sas []createJob
	for i := range largeNamespaces {
		ns := largeNS(i)
		for _, name := range []string{"default", "app", "batch"} {
			add(&sas, "ServiceAccount", func(ctx context.Context) error {
				o := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
				if name == "batch" {
					no := false
					o.AutomountServiceAccountToken = &no
				}
				_, err := c.ServiceAccounts(ns).Create(ctx, applied(o), opts)
				return err
			})
		}
	}
	if err := run(sas); err != nil {
		return nil, err
	}

	var rest, after []createJob
	for i := range largeNamespaces {
		ns := largeNS(i)
		for j := range 60 {
			add(&rest, "ConfigMap", func(ctx context.Context) error {
				_, err := c.ConfigMaps(ns).Create(ctx, applied(largeConfigMap(ns, j)), opts)
				return err
			})
		}
		for j := range 10 {
			add(&rest, "Service", func(ctx context.Context) error {
				o := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%02d", j), Namespace: ns},
					Spec: corev1.ServiceSpec{Selector: map[string]string{"app": fmt.Sprintf("app-%02d", j)}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
				if j == 0 && i%8 == 0 {
					o.Spec.Type = corev1.ServiceTypeNodePort
				}
				_, err := c.Services(ns).Create(ctx, applied(o), opts)
				return err
			})
			add(&rest, "Deployment", func(ctx context.Context) error {
				_, err := a.Deployments(ns).Create(ctx, applied(largeDeployment(ns, j)), opts)
				return err
			})
			// What the Deployment controller would have made, which no
			// controller-manager runs here to make: a ReplicaSet and its pods.
			add(&rest, "ReplicaSet", func(ctx context.Context) error {
				d := largeDeployment(ns, j)
				rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: d.Name + "-5d4f8c7b9", Namespace: ns, Labels: d.Spec.Template.Labels,
					OwnerReferences: owner("apps/v1", "Deployment", d.Name)},
					Spec: appsv1.ReplicaSetSpec{Replicas: d.Spec.Replicas, Selector: d.Spec.Selector, Template: d.Spec.Template}}
				_, err := a.ReplicaSets(ns).Create(ctx, rs, opts)
				return err
			})
			for k := range 4 {
				add(&rest, "Pod", func(ctx context.Context) error {
					d := largeDeployment(ns, j)
					pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-5d4f8c7b9-%05d", d.Name, k), Namespace: ns, Labels: d.Spec.Template.Labels,
						OwnerReferences: owner("apps/v1", "ReplicaSet", d.Name+"-5d4f8c7b9")}, Spec: d.Spec.Template.Spec}
					_, err := c.Pods(ns).Create(ctx, pod, opts)
					return err
				})
			}
		}
		for j := range 2 {
			add(&rest, "StatefulSet", func(ctx context.Context) error {
				d := largeDeployment(ns, 20+j)
				o := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("db-%d", j), Namespace: ns},
					Spec: appsv1.StatefulSetSpec{Replicas: d.Spec.Replicas, Selector: d.Spec.Selector, Template: d.Spec.Template, ServiceName: "db"}}
				_, err := a.StatefulSets(ns).Create(ctx, applied(o), opts)
				return err
			})
			add(&rest, "CronJob", func(ctx context.Context) error {
				d := largeDeployment(ns, 30+j)
				tmpl := d.Spec.Template
				tmpl.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
				o := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("report-%d", j), Namespace: ns},
					Spec: batchv1.CronJobSpec{Schedule: "17 3 * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tmpl}}}}
				_, err := b.CronJobs(ns).Create(ctx, applied(o), opts)
				return err
			})
			add(&rest, "Job", func(ctx context.Context) error {
				d := largeDeployment(ns, 40+j)
				tmpl := d.Spec.Template
				tmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
				o := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("migrate-%d", j), Namespace: ns}, Spec: batchv1.JobSpec{Template: tmpl}}
				if j == 1 {
					o.OwnerReferences = owner("batch/v1", "CronJob", "report-0")
				}
				_, err := b.Jobs(ns).Create(ctx, o, opts)
				return err
			})
		}
		add(&rest, "DaemonSet", func(ctx context.Context) error {
			d := largeDeployment(ns, 50)
			o := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "log-agent", Namespace: ns}, Spec: appsv1.DaemonSetSpec{Selector: d.Spec.Selector, Template: d.Spec.Template}}
			_, err := a.DaemonSets(ns).Create(ctx, applied(o), opts)
			return err
		})
		for j := range 3 {
			add(&rest, "Role", func(ctx context.Context) error {
				_, err := r.Roles(ns).Create(ctx, applied(largeRole(ns, j)), opts)
				return err
			})
			add(&rest, "RoleBinding", func(ctx context.Context) error {
				_, err := r.RoleBindings(ns).Create(ctx, applied(largeRoleBinding(ns, j)), opts)
				return err
			})
		}
		if i%2 == 0 {
			add(&rest, "NetworkPolicy", func(ctx context.Context) error {
				o := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default-deny", Namespace: ns},
					Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}}}
				_, err := n.NetworkPolicies(ns).Create(ctx, applied(o), opts)
				return err
			})
		}
		add(&rest, "Ingress", func(ctx context.Context) error {
			prefix := networkingv1.PathTypePrefix
			o := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
				Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: ns + ".example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "svc-00", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}}}}
			_, err := n.Ingresses(ns).Create(ctx, applied(o), opts)
			return err
		})
		add(&rest, "PodDisruptionBudget", func(ctx context.Context) error {
			one := intstr.FromInt32(1)
			o := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "app-00", Namespace: ns},
				Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "app-00"}}}}
			_, err := p.PodDisruptionBudgets(ns).Create(ctx, applied(o), opts)
			return err
		})
		// A LimitRange with a maximum makes the API server refuse pods
		// without limits: it comes after every pod of its namespace, or
		// the writers race it.
		add(&after, "LimitRange", func(ctx context.Context) error {
			o := &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "limits", Namespace: ns},
				Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, Max: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("8Gi")}}}}}
			_, err := c.LimitRanges(ns).Create(ctx, applied(o), opts)
			return err
		})
		add(&rest, "ResourceQuota", func(ctx context.Context) error {
			o := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "quota", Namespace: ns},
				Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("200")}}}
			_, err := c.ResourceQuotas(ns).Create(ctx, applied(o), opts)
			return err
		})
	}
	if err := run(rest); err != nil {
		return nil, err
	}
	if err := run(after); err != nil {
		return nil, err
	}
	return created, nil
}

func largeNS(i int) string { return fmt.Sprintf("team-%03d", i) }

// applied sets on o the annotation kubectl apply leaves: its manifest.
func applied[T runtime.Object](o T) T {
	b, err := json.Marshal(o)
	if err != nil {
		panic(err)
	}
	m := any(o).(metav1.Object)
	ann := m.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[corev1.LastAppliedConfigAnnotation] = string(b)
	m.SetAnnotations(ann)
	return o
}

func owner(apiVersion, kind, name string) []metav1.OwnerReference {
	yes := true
	return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID("00000000-0000-4000-8000-" + fmt.Sprintf("%012x", len(name))), Controller: &yes}}
}

// largeDeployment is the j-th Deployment of a namespace: two containers,
// a mix of what tenants deploy: some hardened, some privileged, some
// without limits, images by tag or by digest.
func largeDeployment(ns string, j int) *appsv1.Deployment {
	labels := map[string]string{"app": fmt.Sprintf("app-%02d", j), "tier": "backend"}
	replicas := int32(1 + j%3)
	no, yes := false, true
	uid := int64(10001)
	app := corev1.Container{
		Name: "app", Image: fmt.Sprintf("registry.example.com/%s/app-%02d:1.%d.0", ns, j, j%7),
		Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
		Env: []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}, {Name: "DB_HOST", Value: "db." + ns + ".svc"},
			{Name: "API_KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "api"}, Key: "key"}}}},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("512Mi")}},
		SecurityContext: &corev1.SecurityContext{RunAsNonRoot: &yes, RunAsUser: &uid, AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes,
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8080)}}},
	}
	sidecar := corev1.Container{Name: "proxy", Image: "docker.io/envoyproxy/envoy:v1.31.0"}
	switch j % 5 {
	case 1:
		app.SecurityContext = &corev1.SecurityContext{Privileged: &yes}
	case 2:
		app.Resources = corev1.ResourceRequirements{}
		app.Image = "nginx:latest"
	case 3:
		app.Image = "registry.example.com/base@sha256:" + strings.Repeat("ab", 32)
	}
	spec := corev1.PodSpec{ServiceAccountName: "app", Containers: []corev1.Container{app, sidecar}}
	if j%5 == 4 {
		spec.ServiceAccountName = "batch"
		spec.HostNetwork = true
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%02d", j), Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}},
	}
}

func largeConfigMap(ns string, j int) *corev1.ConfigMap {
	data := map[string]string{"LOG_LEVEL": "info", "FEATURES": "a,b,c", "settings.yaml": strings.Repeat("key: value\n", 20)}
	if j%10 == 0 {
		data["DB_PASSWORD"] = fmt.Sprintf("s3cr3t-%s-%d", ns, j)
	}
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("config-%02d", j), Namespace: ns, Labels: map[string]string{"app": fmt.Sprintf("app-%02d", j%10)}}, Data: data}
}

func largeRole(ns string, j int) *rbacv1.Role {
	rules := [][]rbacv1.PolicyRule{
		{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"}}},
		{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list"}}},
		{{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"*"}}, {APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"create"}}},
	}[j]
	return &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("role-%d", j), Namespace: ns}, Rules: rules}
}

func largeRoleBinding(ns string, j int) *rbacv1.RoleBinding {
	subjects := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "app", Namespace: ns}}
	if j == 1 {
		// Every service account of the namespace reads its Secrets.
		subjects = []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:serviceaccounts:" + ns}}
	}
	return &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("binding-%d", j), Namespace: ns},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: fmt.Sprintf("role-%d", j)}, Subjects: subjects}
}

// largeClusterRole: the first largeGroupBindings are dangerous (secrets,
// escalate, nodes/proxy), the rest harmless readers.
func largeClusterRole(i int) *rbacv1.ClusterRole {
	rules := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods", "services"}, Verbs: []string{"get", "list", "watch"}}}
	if i < largeGroupBindings {
		rules = [][]rbacv1.PolicyRule{
			{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch"}}},
			{{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"clusterroles"}, Verbs: []string{"escalate", "bind"}}},
			{{APIGroups: []string{""}, Resources: []string{"nodes/proxy"}, Verbs: []string{"get"}}},
		}[i%3]
	}
	return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("platform-role-%03d", i)}, Rules: rules}
}

func largeClusterRoleBinding(i int) *rbacv1.ClusterRoleBinding {
	subjects := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: fmt.Sprintf("engineer-%03d@example.com", i)}}
	if i < largeGroupBindings {
		subjects = []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:serviceaccounts"}}
	}
	return &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("platform-binding-%03d", i)},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: fmt.Sprintf("platform-role-%03d", i)}, Subjects: subjects}
}

func largeWebhook() *admissionregistrationv1.ValidatingWebhookConfiguration {
	fail, none := admissionregistrationv1.Ignore, admissionregistrationv1.SideEffectClassNone
	url := "https://policy.example.com/validate"
	return &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "policy"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{Name: "policy.example.com", FailurePolicy: &fail, SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url},
			Rules: []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				// A group nothing here creates: the API server must not call
				// the webhook, which is not there, while the seed is created.
				Rule: admissionregistrationv1.Rule{APIGroups: []string{"widgets.example.com"}, APIVersions: []string{"v1"}, Resources: []string{"widgets"}}}}}}}
}
