package checkstest

import (
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Cluster returns a cluster of at least n objects, whole namespaces of
// about 50 each, with every kind the checks read: what Objects leaves out
// (StatefulSets, DaemonSets, Jobs, CronJobs, ReplicationControllers,
// Services of every type, Ingresses, NetworkPolicies with selectors and
// peers, PodDisruptionBudgets, HorizontalPodAutoscalers, LimitRanges,
// ResourceQuotas, Nodes, webhooks, a visible control plane) is what a
// check that joins two kinds by scanning one of them per object of the
// other would be slow on, and Objects would not show it. Its kinds that
// grow with a real cluster grow with n: namespaces and all they hold,
// Nodes, the ClusterRoles operators aggregate into view and edit, the
// ClusterRoleBindings of namespaces' CI accounts. Deterministic: the same
// n gives the same objects, so that runs compare. Objects stays as it is:
// published figures were measured on it.
func Cluster(n int) []runtime.Object {
	c := &cluster{nodes: max(3, n/500)}
	c.clusterWide(max(2, n/2000))
	for i := 0; len(c.out) < n; i++ {
		c.namespace(i)
	}
	return c.out
}

type cluster struct {
	out   []runtime.Object
	nodes int
}

func (c *cluster) add(objs ...runtime.Object) { c.out = append(c.out, objs...) }

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

func objectMeta(namespace, name string, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels}
}

const rbacGroup = "rbac.authorization.k8s.io"

func rbacType(kind string) metav1.TypeMeta { return typeMeta(rbacGroup+"/v1", kind) }

var (
	systemNamespaces = []string{"kube-system", "kube-public", "kube-node-lease", "default"}
	tiers            = []string{"frontend", "backend", "data"}
	psaLevels        = []string{"", "baseline", "restricted", "privileged"}
)

func int32p(v int32) *int32 { return &v }
func int64p(v int64) *int64 { return &v }
func boolp(v bool) *bool    { return &v }

// clusterWide adds what a cluster holds once: the system namespaces and
// their components, Nodes, the control plane as static pods, an ingress
// controller, monitoring, the Dashboard, admission webhooks, and the
// cluster's roles and bindings, with operators ClusterRoles aggregated
// into the built-in ones.
func (c *cluster) clusterWide(operators int) {
	for _, ns := range systemNamespaces {
		c.add(&corev1.Namespace{TypeMeta: typeMeta("v1", "Namespace"), ObjectMeta: objectMeta("", ns, nil)})
	}
	for _, ns := range []string{"monitoring", "ingress-nginx", "kubernetes-dashboard"} {
		c.add(&corev1.Namespace{TypeMeta: typeMeta("v1", "Namespace"), ObjectMeta: objectMeta("", ns, map[string]string{"owner": "platform"})})
	}
	for i := range c.nodes {
		kubelet, osImage, kernel, runtime := "v1.36.2", "Ubuntu 24.04.1 LTS", "6.8.0-1015-aws", "containerd://2.0.2"
		switch i % 7 {
		case 3:
			kubelet, osImage, kernel, runtime = "v1.31.4", "Ubuntu 20.04.6 LTS", "5.4.0-1103-aws", "containerd://1.6.0"
		case 5:
			osImage, runtime = "Amazon Linux 2", "containerd://1.7.22"
		}
		c.add(&corev1.Node{TypeMeta: typeMeta("v1", "Node"),
			ObjectMeta: objectMeta("", fmt.Sprintf("node-%03d", i), map[string]string{"kubernetes.io/os": "linux", "topology.kubernetes.io/zone": fmt.Sprintf("zone-%c", 'a'+i%3)}),
			Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{
				KubeletVersion: kubelet, OSImage: osImage, KernelVersion: kernel, ContainerRuntimeVersion: runtime,
			}}})
	}
	c.controlPlane()
	c.systemComponents()
	c.addons()
	c.webhooks()
	c.clusterRBAC(operators)
}

// controlPlane adds the static pods of a control plane the API shows,
// mirrored from the first node.
func (c *cluster) controlPlane() {
	node := "node-000"
	static := func(component, image string, command ...string) {
		p := &corev1.Pod{TypeMeta: typeMeta("v1", "Pod"),
			ObjectMeta: objectMeta("kube-system", component+"-"+node, map[string]string{"component": component, "tier": "control-plane"}),
			Spec: corev1.PodSpec{HostNetwork: true, PriorityClassName: "system-node-critical",
				Containers: []corev1.Container{{Name: component, Image: image, Command: command,
					VolumeMounts: []corev1.VolumeMount{{Name: "k8s-certs", MountPath: "/etc/kubernetes/pki", ReadOnly: true}}}},
				Volumes: []corev1.Volume{{Name: "k8s-certs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/etc/kubernetes/pki"}}}}}}
		p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "3f2a9c0d1e4b"}
		p.OwnerReferences = owner("v1", "Node", node)
		c.add(p)
	}
	static("kube-apiserver", "registry.k8s.io/kube-apiserver:v1.36.2", "kube-apiserver",
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction", "--client-ca-file=/etc/kubernetes/pki/ca.crt",
		"--tls-cert-file=/etc/kubernetes/pki/apiserver.crt", "--tls-private-key-file=/etc/kubernetes/pki/apiserver.key",
		"--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt", "--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
		"--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key", "--service-account-key-file=/etc/kubernetes/pki/sa.pub",
		"--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt", "--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
		"--audit-log-path=/var/log/kubernetes/audit.log", "--audit-log-maxage=7", "--profiling=false")
	static("kube-controller-manager", "registry.k8s.io/kube-controller-manager:v1.36.2", "kube-controller-manager",
		"--use-service-account-credentials=true", "--service-account-private-key-file=/etc/kubernetes/pki/sa.key",
		"--root-ca-file=/etc/kubernetes/pki/ca.crt", "--bind-address=127.0.0.1")
	static("kube-scheduler", "registry.k8s.io/kube-scheduler:v1.36.2", "kube-scheduler", "--bind-address=0.0.0.0")
	static("etcd", "registry.k8s.io/etcd:3.5.16-0", "etcd",
		"--cert-file=/etc/kubernetes/pki/etcd/server.crt", "--key-file=/etc/kubernetes/pki/etcd/server.key",
		"--client-cert-auth=true", "--trusted-client-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
		"--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt", "--peer-key-file=/etc/kubernetes/pki/etcd/peer.key")
}

// systemComponents adds kube-system's DaemonSets and DNS, with the
// ConfigMaps that configure them.
func (c *cluster) systemComponents() {
	sys := map[string]string{"k8s-app": "kube-proxy"}
	c.daemonSet("kube-system", "kube-proxy", sys, c.nodeAgent("kube-proxy", "registry.k8s.io/kube-proxy:v1.36.2"))
	c.daemonSet("kube-system", "kube-flannel-ds", map[string]string{"k8s-app": "flannel"}, c.nodeAgent("kube-flannel", "docker.io/flannel/flannel:v0.26.1"))
	c.add(&corev1.ConfigMap{TypeMeta: typeMeta("v1", "ConfigMap"), ObjectMeta: objectMeta("kube-system", "kube-proxy", sys),
		Data: map[string]string{"config.conf": "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmetricsBindAddress: 0.0.0.0:10249\nmode: iptables\n"}},
		&corev1.ConfigMap{TypeMeta: typeMeta("v1", "ConfigMap"), ObjectMeta: objectMeta("kube-system", "coredns", nil),
			Data: map[string]string{"Corefile": ".:53 {\n    errors\n    health\n    kubernetes cluster.local in-addr.arpa ip6.arpa\n    forward . /etc/resolv.conf\n    cache 30\n}\n"}})
	dns := map[string]string{"k8s-app": "kube-dns"}
	c.deployment("kube-system", "coredns", dns, 2, c.podSpec("coredns", "registry.k8s.io/coredns/coredns:v1.11.3", 53, true), true)
	c.add(&corev1.Service{TypeMeta: typeMeta("v1", "Service"), ObjectMeta: objectMeta("kube-system", "kube-dns", dns),
		Spec: corev1.ServiceSpec{Selector: dns, Ports: []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}}})
	c.add(&corev1.Service{TypeMeta: typeMeta("v1", "Service"), ObjectMeta: objectMeta("default", "kubernetes", nil),
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https", Port: 443}}}})
}

// addons adds the ingress controller, monitoring and the Dashboard that
// tenants' policies and Ingresses refer to.
func (c *cluster) addons() {
	nginx := map[string]string{"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"}
	c.deployment("ingress-nginx", "ingress-nginx-controller", nginx, 2, c.podSpec("controller", "registry.k8s.io/ingress-nginx/controller:v1.11.2", 80, true), true)
	c.add(&corev1.Service{TypeMeta: typeMeta("v1", "Service"), ObjectMeta: objectMeta("ingress-nginx", "ingress-nginx-controller", nginx),
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: nginx, Ports: []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "https", Port: 443}}}},
		&corev1.ConfigMap{TypeMeta: typeMeta("v1", "ConfigMap"), ObjectMeta: objectMeta("ingress-nginx", "ingress-nginx-controller", nginx),
			Data: map[string]string{"allow-snippet-annotations": "true", "use-forwarded-headers": "true"}})

	prometheus := map[string]string{"app": "prometheus"}
	c.statefulSet("monitoring", "prometheus", prometheus, 2, c.podSpec("prometheus", "quay.io/prometheus/prometheus:v2.54.1", 9090, true))
	c.add(&corev1.Service{TypeMeta: typeMeta("v1", "Service"), ObjectMeta: objectMeta("monitoring", "prometheus", prometheus),
		Spec: corev1.ServiceSpec{Selector: prometheus, Ports: []corev1.ServicePort{{Name: "web", Port: 9090}}}})
	grafana := map[string]string{"app": "grafana"}
	c.deployment("monitoring", "grafana", grafana, 1, c.podSpec("grafana", "grafana/grafana:9.2.1", 3000, false), true)

	dashboard := map[string]string{"k8s-app": "kubernetes-dashboard"}
	spec := c.podSpec("kubernetes-dashboard", "kubernetesui/dashboard:v2.7.0", 8443, false)
	spec.Containers[0].Args = []string{"--auto-generate-certificates", "--enable-skip-login"}
	spec.ServiceAccountName = "kubernetes-dashboard"
	c.deployment("kubernetes-dashboard", "kubernetes-dashboard", dashboard, 1, spec, true)
	c.add(&corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: objectMeta("kubernetes-dashboard", "kubernetes-dashboard", dashboard)},
		&corev1.Service{TypeMeta: typeMeta("v1", "Service"), ObjectMeta: objectMeta("kubernetes-dashboard", "kubernetes-dashboard", dashboard),
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: dashboard, Ports: []corev1.ServicePort{{Port: 443, TargetPort: intstr.FromInt32(8443)}}}})
}

// webhooks adds admission webhooks: image signature verification for the
// namespaces that opt in, a sidecar injector, and one outside the
// cluster.
func (c *cluster) webhooks() {
	fail, ignore := admissionregistrationv1.Fail, admissionregistrationv1.Ignore
	none := admissionregistrationv1.SideEffectClassNone
	podRules := []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}}
	service := func(ns, name string) admissionregistrationv1.WebhookClientConfig {
		return admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: ns, Name: name}}
	}
	url := "https://audit.example.com/admit"
	c.add(&admissionregistrationv1.ValidatingWebhookConfiguration{TypeMeta: typeMeta("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
		ObjectMeta: objectMeta("", "policy.sigstore.dev", nil),
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{Name: "policy.sigstore.dev", ClientConfig: service("cosign-system", "webhook"), Rules: podRules,
			FailurePolicy: &fail, SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "policy.sigstore.dev/include", Operator: metav1.LabelSelectorOpIn, Values: []string{"true"}}}}}}},
		&admissionregistrationv1.ValidatingWebhookConfiguration{TypeMeta: typeMeta("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
			ObjectMeta: objectMeta("", "audit-recorder", nil),
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{Name: "record.audit.example.com", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url},
				Rules: []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll},
					Rule: admissionregistrationv1.Rule{APIGroups: []string{"*"}, APIVersions: []string{"*"}, Resources: []string{"*/*"}}}},
				FailurePolicy: &ignore, SideEffects: &none, AdmissionReviewVersions: []string{"v1"}}}},
		&admissionregistrationv1.MutatingWebhookConfiguration{TypeMeta: typeMeta("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
			ObjectMeta: objectMeta("", "istio-sidecar-injector", nil),
			Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "sidecar-injector.istio.io", ClientConfig: service("istio-system", "istiod"), Rules: podRules,
				FailurePolicy: &fail, SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"istio-injection": "enabled"}}}}})
}

// clusterRBAC adds the built-in roles a snapshot holds, the roles of
// operators aggregated into view and edit, and cluster-wide bindings.
func (c *cluster) clusterRBAC(operators int) {
	clusterRole := func(name string, labels map[string]string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
		return &rbacv1.ClusterRole{TypeMeta: rbacType("ClusterRole"), ObjectMeta: objectMeta("", name, labels), Rules: rules}
	}
	aggregated := func(name string, to ...string) *rbacv1.ClusterRole {
		cr := clusterRole(name, nil)
		cr.AggregationRule = &rbacv1.AggregationRule{}
		for _, t := range to {
			cr.AggregationRule.ClusterRoleSelectors = append(cr.AggregationRule.ClusterRoleSelectors,
				metav1.LabelSelector{MatchLabels: map[string]string{"rbac.authorization.k8s.io/aggregate-to-" + t: "true"}})
		}
		return cr
	}
	c.add(clusterRole("cluster-admin", nil, rbacv1.PolicyRule{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}},
		rbacv1.PolicyRule{NonResourceURLs: []string{"*"}, Verbs: []string{"*"}}),
		aggregated("admin", "admin"), aggregated("edit", "edit"), aggregated("view", "view"),
		clusterRole("namespace-reader", nil, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}}),
		clusterRole("ci-deployer", nil,
			rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets"}, Verbs: []string{"get", "list", "create", "update", "patch"}},
			rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps", "services"}, Verbs: []string{"get", "list", "create", "update", "patch"}}),
		clusterRole("secret-reader", nil, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list"}}),
		clusterRole("kubernetes-dashboard", nil, rbacv1.PolicyRule{APIGroups: []string{"metrics.k8s.io"}, Resources: []string{"pods", "nodes"}, Verbs: []string{"get", "list", "watch"}}))
	for i := range operators {
		group := fmt.Sprintf("operator-%03d.example.com", i)
		for _, to := range []string{"view", "edit"} {
			verbs := []string{"get", "list", "watch"}
			if to == "edit" {
				verbs = append(verbs, "create", "update", "patch", "delete")
			}
			c.add(clusterRole(fmt.Sprintf("operator-%03d-%s", i, to), map[string]string{"rbac.authorization.k8s.io/aggregate-to-" + to: "true"},
				rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{"widgets", "widgets/status"}, Verbs: verbs}))
		}
	}
	binding := func(name, role string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
		return &rbacv1.ClusterRoleBinding{TypeMeta: rbacType("ClusterRoleBinding"), ObjectMeta: objectMeta("", name, nil),
			RoleRef: rbacv1.RoleRef{APIGroup: rbacGroup, Kind: "ClusterRole", Name: role}, Subjects: subjects}
	}
	group := func(name string) rbacv1.Subject {
		return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacGroup, Name: name}
	}
	c.add(binding("cluster-admin", "cluster-admin", group("system:masters")),
		binding("platform-admins", "cluster-admin", group("platform-oncall")),
		binding("namespace-readers", "namespace-reader", group("system:authenticated")),
		binding("ci-runners", "ci-deployer", group("system:serviceaccounts")),
		binding("kubernetes-dashboard", "kubernetes-dashboard", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "kubernetes-dashboard", Namespace: "kubernetes-dashboard"}),
		binding("dashboard-admin", "cluster-admin", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "kubernetes-dashboard", Namespace: "kubernetes-dashboard"}))
}

// namespace adds a tenant's namespace: its workloads with what their
// controllers made of them, Services and an Ingress in front of them,
// NetworkPolicies, budgets and autoscalers, RBAC, quotas and
// configuration. What varies, varies with i, so that every check finds
// something somewhere and not everywhere.
func (c *cluster) namespace(i int) {
	ns := fmt.Sprintf("team-%04d", i)
	team := fmt.Sprintf("team-%d", i/4)
	nsLabels := map[string]string{"tier": tiers[i%3], "team": team}
	if level := psaLevels[i%4]; level != "" {
		nsLabels["pod-security.kubernetes.io/enforce"] = level
	}
	if i%5 == 1 {
		nsLabels["pod-security.kubernetes.io/warn"] = "restricted"
	}
	if i%2 == 0 {
		nsLabels["policy.sigstore.dev/include"] = "true"
	}
	if i%3 == 0 {
		nsLabels["istio-injection"] = "enabled"
	}
	if i%9 == 4 {
		delete(nsLabels, "team")
	}
	c.add(&corev1.Namespace{TypeMeta: typeMeta("v1", "Namespace"), ObjectMeta: objectMeta("", ns, nsLabels)})

	hardened := i%2 == 0
	app := func(name string) map[string]string {
		return map[string]string{"app": name, "app.kubernetes.io/part-of": team}
	}
	web, api, worker, db := app("web"), app("api"), app("worker"), app("db")

	// Service accounts, the default one's token turned off in half the
	// namespaces.
	for _, sa := range []string{"default", "web", "api", "db", "ci"} {
		o := &corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: objectMeta(ns, sa, nil)}
		if sa == "default" && i%2 == 0 {
			o.AutomountServiceAccountToken = boolp(false)
		}
		c.add(o)
	}

	// Workloads.
	webSpec := c.podSpec("web", fmt.Sprintf("registry.example.com/%s/web:1.%d.0", team, i%5), 8080, hardened)
	webSpec.ServiceAccountName = "web"
	c.deployment(ns, "web", web, 3, webSpec, true)
	apiSpec := c.podSpec("api", fmt.Sprintf("registry.example.com/%s/api:2.%d.1", team, i%3), 8080, hardened || i%3 == 0)
	apiSpec.ServiceAccountName = "api"
	apiSpec.Containers[0].Env = []corev1.EnvVar{{Name: "DB_HOST", Value: "db"},
		{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}}}
	if i%7 == 3 {
		apiSpec.Containers[0].Env = append(apiSpec.Containers[0].Env, corev1.EnvVar{Name: "API_TOKEN", Value: "s3cr3t-t0ken-4711"})
	}
	c.deployment(ns, "api", api, 2, apiSpec, true)
	workerSpec := c.podSpec("worker", "docker.io/library/python:3.12", 0, false)
	if i%10 == 7 {
		workerSpec.Containers[0].Image = "k8s.gcr.io/pause:3.2"
	}
	c.deployment(ns, "worker", worker, 1, workerSpec, i%2 == 1)
	dbSpec := c.podSpec("postgres", "docker.io/library/postgres:16.4", 5432, hardened)
	dbSpec.ServiceAccountName = "db"
	c.statefulSet(ns, "db", db, 3, dbSpec)

	reportSpec := c.podSpec("report", fmt.Sprintf("registry.example.com/%s/report:0.%d", team, i%4), 0, hardened)
	reportSpec.RestartPolicy = corev1.RestartPolicyOnFailure
	c.cronJob(ns, "nightly-report", app("report"), reportSpec)
	if i%3 == 0 {
		migrate := c.podSpec("migrate", fmt.Sprintf("registry.example.com/%s/api:2.%d.1", team, i%3), 0, hardened)
		migrate.RestartPolicy = corev1.RestartPolicyNever
		c.job(ns, fmt.Sprintf("migrate-%d", i), app("migrate"), migrate, nil)
	}
	if i%10 == 0 {
		agent := c.podSpec("fluent-bit", "cr.fluentbit.io/fluent/fluent-bit:3.1.9", 2020, false)
		agent.Volumes = []corev1.Volume{{Name: "varlog", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"}}}}
		agent.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "varlog", MountPath: "/var/log"}}
		agent.NodeSelector = map[string]string{"pool": team}
		c.daemonSet(ns, "log-shipper", app("log-shipper"), agent)
	}
	if i%20 == 0 {
		c.replicationController(ns, "legacy", app("legacy"), c.podSpec("legacy", "nginx:1.14", 80, false))
	}
	if i%8 == 0 {
		debug := c.podSpec("debug", "docker.io/library/busybox:latest", 0, false)
		debug.RestartPolicy = corev1.RestartPolicyNever
		c.add(&corev1.Pod{TypeMeta: typeMeta("v1", "Pod"), ObjectMeta: objectMeta(ns, "debug", app("debug")), Spec: debug})
	}

	// Services of every type, and an Ingress in front of them.
	service := func(name string, selector map[string]string, port int32, mutate func(*corev1.ServiceSpec)) {
		s := &corev1.Service{TypeMeta: typeMeta("v1", "Service"), ObjectMeta: objectMeta(ns, name, selector),
			Spec: corev1.ServiceSpec{Selector: selector, Ports: []corev1.ServicePort{{Name: "http", Port: port, TargetPort: intstr.FromInt32(8080)}}}}
		if mutate != nil {
			mutate(&s.Spec)
		}
		c.add(s)
	}
	service("web", web, 80, nil)
	service("api", api, 8080, nil)
	service("db", db, 5432, func(s *corev1.ServiceSpec) {
		s.ClusterIP = corev1.ClusterIPNone
		s.Ports[0].TargetPort = intstr.FromInt32(5432)
	})
	switch i % 10 {
	case 1:
		service("web-public", web, 80, func(s *corev1.ServiceSpec) { s.Type = corev1.ServiceTypeNodePort })
	case 2:
		service("web-lb", web, 443, func(s *corev1.ServiceSpec) { s.Type = corev1.ServiceTypeLoadBalancer })
	case 4:
		service("api-lb", api, 443, func(s *corev1.ServiceSpec) {
			s.Type = corev1.ServiceTypeLoadBalancer
			s.LoadBalancerSourceRanges = []string{"10.0.0.0/8"}
		})
	case 5:
		service("payments", nil, 443, func(s *corev1.ServiceSpec) {
			s.Type = corev1.ServiceTypeExternalName
			s.ExternalName = "payments.example.net"
		})
	case 6:
		service("old-frontend", app("old-frontend"), 80, nil)
	case 8:
		service("ssh", worker, 22, func(s *corev1.ServiceSpec) { s.ExternalIPs = []string{fmt.Sprintf("203.0.113.%d", i%250)} })
	}
	c.ingress(ns, i)

	// NetworkPolicies: a default deny in half the namespaces, and rules
	// that let in the ingress controller, monitoring, the namespace's own
	// tiers and, for the API, the gateways of the frontend namespaces.
	c.networkPolicies(ns, i, web, api, db)

	// Budgets and autoscalers.
	pdb := func(name string, selector map[string]string, minAvailable, maxUnavailable *intstr.IntOrString) {
		c.add(&policyv1.PodDisruptionBudget{TypeMeta: typeMeta("policy/v1", "PodDisruptionBudget"), ObjectMeta: objectMeta(ns, name, nil),
			Spec: policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: selector}, MinAvailable: minAvailable, MaxUnavailable: maxUnavailable}})
	}
	one, two, three := intstr.FromInt32(1), intstr.FromInt32(2), intstr.FromInt32(3)
	pdb("web", map[string]string{"app": "web"}, &two, nil)
	pdb("api", map[string]string{"app": "api"}, nil, &one)
	if i%4 == 0 {
		pdb("db", map[string]string{"app": "db"}, &three, nil)
	} else {
		pdb("db", map[string]string{"app": "db"}, &two, nil)
	}
	if i%10 == 5 {
		pdb("cache", map[string]string{"app": "cache"}, &one, nil)
	}
	hpa := func(name, kind, target string, min int32) {
		c.add(&autoscalingv2.HorizontalPodAutoscaler{TypeMeta: typeMeta("autoscaling/v2", "HorizontalPodAutoscaler"), ObjectMeta: objectMeta(ns, name, nil),
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: kind, Name: target},
				MinReplicas: int32p(min), MaxReplicas: 10,
				Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
					Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: int32p(70)}}}}}})
	}
	hpa("api", "Deployment", "api", 2)
	if i%3 == 0 {
		hpa("web", "Deployment", "web", 1)
	}
	if i%15 == 0 {
		hpa("search", "Deployment", "search", 2)
	}

	// Quotas and limits, missing here and there.
	if i%5 != 4 {
		c.add(&corev1.LimitRange{TypeMeta: typeMeta("v1", "LimitRange"), ObjectMeta: objectMeta(ns, "defaults", nil),
			Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer,
				Default:        corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
				DefaultRequest: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}}}}})
	}
	if i%6 != 5 {
		c.add(&corev1.ResourceQuota{TypeMeta: typeMeta("v1", "ResourceQuota"), ObjectMeta: objectMeta(ns, "compute", nil),
			Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("20"), corev1.ResourceRequestsMemory: resource.MustParse("64Gi"), corev1.ResourcePods: resource.MustParse("100")}}})
	}

	// Configuration, with a credential left in it here and there.
	c.add(&corev1.ConfigMap{TypeMeta: typeMeta("v1", "ConfigMap"), ObjectMeta: objectMeta(ns, "kube-root-ca.crt", nil),
		Data: map[string]string{"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIC5zCCAc+gAwIBAgIBADANBgkqhkiG9w0BAQsFADAVMRMwEQYDVQQDEwprdWJl\n-----END CERTIFICATE-----\n"}})
	settings := "log.level=info\nport=8080\ndb.host=db\n"
	if i%7 == 0 {
		settings += "db.password=hunter2-" + fmt.Sprint(i) + "\n"
	}
	c.add(&corev1.ConfigMap{TypeMeta: typeMeta("v1", "ConfigMap"), ObjectMeta: objectMeta(ns, "api-config", api),
		Data: map[string]string{"application.properties": settings, "LOG_LEVEL": "info", "FEATURE_FLAGS": "search,checkout"}})

	c.namespaceRBAC(ns, i, team)
}

// ingress adds the namespace's Ingress: its web front and API, over TLS
// in most namespaces, with an NGINX snippet or a route to a Service that
// is gone here and there.
func (c *cluster) ingress(ns string, i int) {
	prefix := networkingv1.PathTypePrefix
	route := func(path, svc string, port int32) networkingv1.HTTPIngressPath {
		return networkingv1.HTTPIngressPath{Path: path, PathType: &prefix, Backend: networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: port}}}}
	}
	host := ns + ".apps.example.com"
	paths := []networkingv1.HTTPIngressPath{route("/", "web", 80), route("/api", "api", 8080)}
	if i%11 == 0 {
		paths = append(paths, route("/legacy", "legacy-web", 80))
	}
	class := "nginx"
	ing := &networkingv1.Ingress{TypeMeta: typeMeta("networking.k8s.io/v1", "Ingress"), ObjectMeta: objectMeta(ns, "web", nil),
		Spec: networkingv1.IngressSpec{IngressClassName: &class,
			Rules: []networkingv1.IngressRule{{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}}}}
	if i%4 != 3 {
		ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"*.apps.example.com"}, SecretName: "wildcard-tls"}}
	}
	if i%13 == 0 {
		ing.Annotations = map[string]string{"nginx.ingress.kubernetes.io/configuration-snippet": "more_set_headers \"X-Team: " + ns + "\";"}
	}
	c.add(ing)
}

func (c *cluster) networkPolicies(ns string, i int, web, api, db map[string]string) {
	ingress, egress := networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress
	tcp := corev1.ProtocolTCP
	port := func(p int32) []networkingv1.NetworkPolicyPort {
		v := intstr.FromInt32(p)
		return []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &v}}
	}
	selector := func(labels map[string]string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: labels}
	}
	policy := func(name string, pods map[string]string, types []networkingv1.PolicyType, in []networkingv1.NetworkPolicyIngressRule, out []networkingv1.NetworkPolicyEgressRule) {
		c.add(&networkingv1.NetworkPolicy{TypeMeta: typeMeta("networking.k8s.io/v1", "NetworkPolicy"), ObjectMeta: objectMeta(ns, name, nil),
			Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: pods}, PolicyTypes: types, Ingress: in, Egress: out}})
	}
	if i%2 == 0 {
		policy("default-deny", nil, []networkingv1.PolicyType{ingress, egress}, nil, nil)
	}
	policy("allow-ingress-controller", map[string]string{"app": web["app"]}, []networkingv1.PolicyType{ingress},
		[]networkingv1.NetworkPolicyIngressRule{{Ports: port(8080), From: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: selector(map[string]string{corev1.LabelMetadataName: "ingress-nginx"}),
			PodSelector:       selector(map[string]string{"app.kubernetes.io/name": "ingress-nginx"})}}}}, nil)
	policy("allow-monitoring", nil, []networkingv1.PolicyType{ingress},
		[]networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: selector(map[string]string{corev1.LabelMetadataName: "monitoring"}),
			PodSelector:       selector(map[string]string{"app": "prometheus"})}}}}, nil)
	policy("api", map[string]string{"app": api["app"]}, []networkingv1.PolicyType{ingress, egress},
		[]networkingv1.NetworkPolicyIngressRule{
			{Ports: port(8080), From: []networkingv1.NetworkPolicyPeer{{PodSelector: selector(map[string]string{"app": web["app"]})}}},
			// Gateways of the frontend namespaces, which run none: the
			// peer matches nothing anywhere.
			{Ports: port(8080), From: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: selector(map[string]string{"tier": "frontend"}),
				PodSelector:       selector(map[string]string{"app": "gateway"})}}}},
		[]networkingv1.NetworkPolicyEgressRule{
			{Ports: port(5432), To: []networkingv1.NetworkPolicyPeer{{PodSelector: selector(map[string]string{"app": db["app"]})}}},
			{Ports: port(53), To: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: &metav1.LabelSelector{},
				PodSelector:       selector(map[string]string{"k8s-app": "kube-dns"})}}}})
	if i%3 == 1 {
		// The namespace before this one is a partner of its API.
		policy("allow-partner", map[string]string{"app": api["app"]}, []networkingv1.PolicyType{ingress},
			[]networkingv1.NetworkPolicyIngressRule{{Ports: port(8080), From: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: selector(map[string]string{corev1.LabelMetadataName: fmt.Sprintf("team-%04d", i-1)}),
				PodSelector:       selector(map[string]string{"app": "partner-gateway"})}}}}, nil)
	}
	if i%6 == 3 {
		policy("allow-cache", map[string]string{"app": "cache"}, []networkingv1.PolicyType{ingress},
			[]networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: selector(map[string]string{"app": api["app"]})}}}}, nil)
	}
	if i%17 == 0 {
		policy("allow-all", nil, []networkingv1.PolicyType{ingress}, []networkingv1.NetworkPolicyIngressRule{{}}, nil)
	}
}

// namespaceRBAC adds the namespace's roles and bindings: developers of
// the team, its CI account (bound cluster-wide in a quarter of the
// namespaces), and here and there a grant to the default account.
func (c *cluster) namespaceRBAC(ns string, i int, team string) {
	role := func(name string, rules ...rbacv1.PolicyRule) *rbacv1.Role {
		return &rbacv1.Role{TypeMeta: rbacType("Role"), ObjectMeta: objectMeta(ns, name, nil), Rules: rules}
	}
	binding := func(name, kind, roleName string, subjects ...rbacv1.Subject) *rbacv1.RoleBinding {
		return &rbacv1.RoleBinding{TypeMeta: rbacType("RoleBinding"), ObjectMeta: objectMeta(ns, name, nil),
			RoleRef: rbacv1.RoleRef{APIGroup: rbacGroup, Kind: kind, Name: roleName}, Subjects: subjects}
	}
	sa := func(name string) rbacv1.Subject {
		return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}
	}
	developerRules := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods", "pods/log", "services", "configmaps"}, Verbs: []string{"get", "list", "watch"}}}
	if i%2 == 1 {
		developerRules = append(developerRules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods/exec", "pods/portforward"}, Verbs: []string{"create"}})
	}
	c.add(role("developer", developerRules...),
		role("config-reader", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps", "secrets"}, Verbs: []string{"get", "list"}}),
		binding("developers", "Role", "developer", rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacGroup, Name: team + "-developers"}),
		binding("ci", "ClusterRole", "edit", sa("ci")),
		binding("api-config", "Role", "config-reader", sa("api")))
	if i%6 == 0 {
		c.add(binding("default-config", "Role", "config-reader", sa("default")))
	}
	if i%4 == 0 {
		c.add(&rbacv1.ClusterRoleBinding{TypeMeta: rbacType("ClusterRoleBinding"), ObjectMeta: objectMeta("", "ci-"+ns, nil),
			RoleRef: rbacv1.RoleRef{APIGroup: rbacGroup, Kind: "ClusterRole", Name: "ci-deployer"}, Subjects: []rbacv1.Subject{sa("ci")}})
	}
}

// podSpec returns a pod spec of one container, hardened or left to
// defaults; port 0 exposes none.
func (c *cluster) podSpec(name, image string, port int32, hardened bool) corev1.PodSpec {
	ct := corev1.Container{Name: name, Image: image, ImagePullPolicy: corev1.PullIfNotPresent}
	if port != 0 {
		ct.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: port}}
	}
	if hardened {
		ct.SecurityContext = &corev1.SecurityContext{
			RunAsNonRoot: boolp(true), RunAsUser: int64p(10001), RunAsGroup: int64p(10001), AllowPrivilegeEscalation: boolp(false), ReadOnlyRootFilesystem: boolp(true),
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		}
		ct.Resources = corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
		}
		if port != 0 {
			probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(port)}}}
			ct.ReadinessProbe, ct.LivenessProbe = probe, probe
		}
	}
	return corev1.PodSpec{Containers: []corev1.Container{ct}}
}

// pods adds replicas Pods of a controller, named as it names them.
func (c *cluster) pods(ns, prefix string, labels map[string]string, spec corev1.PodSpec, replicas int, ownerKind, ownerAPI, ownerName string, ordinal bool) {
	for k := range replicas {
		name := fmt.Sprintf("%s-%05x", prefix, 0x1a2b3+k*0x1f)
		if ordinal {
			name = fmt.Sprintf("%s-%d", prefix, k)
		}
		c.add(&corev1.Pod{TypeMeta: typeMeta("v1", "Pod"),
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, OwnerReferences: owner(ownerAPI, ownerKind, ownerName)},
			Spec:       spec})
	}
}

// deployment adds a Deployment with its current ReplicaSet and its pods
// and, when rolled, the ReplicaSet of its previous revision scaled to 0.
func (c *cluster) deployment(ns, name string, labels map[string]string, replicas int32, spec corev1.PodSpec, rolled bool) {
	c.add(&appsv1.Deployment{TypeMeta: typeMeta("apps/v1", "Deployment"), ObjectMeta: objectMeta(ns, name, labels),
		Spec: appsv1.DeploymentSpec{Replicas: int32p(replicas), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}}})
	revisions := []string{"7d9f8b6c5d"}
	if rolled {
		revisions = append(revisions, "5c4b7f9d86")
	}
	for r, hash := range revisions {
		rs := name + "-" + hash
		n := replicas
		if r > 0 {
			n = 0
		}
		podLabels := map[string]string{"pod-template-hash": hash}
		for k, v := range labels {
			podLabels[k] = v
		}
		c.add(&appsv1.ReplicaSet{TypeMeta: typeMeta("apps/v1", "ReplicaSet"),
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rs, Labels: podLabels, OwnerReferences: owner("apps/v1", "Deployment", name)},
			Spec: appsv1.ReplicaSetSpec{Replicas: int32p(n), Selector: &metav1.LabelSelector{MatchLabels: podLabels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: podLabels}, Spec: spec}}})
		c.pods(ns, rs, podLabels, spec, int(n), "ReplicaSet", "apps/v1", rs, false)
	}
}

// statefulSet adds a StatefulSet with its pods and a volume claim
// template.
func (c *cluster) statefulSet(ns, name string, labels map[string]string, replicas int32, spec corev1.PodSpec) {
	spec.Containers[0].VolumeMounts = append(spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "data", MountPath: "/var/lib/data"})
	c.add(&appsv1.StatefulSet{TypeMeta: typeMeta("apps/v1", "StatefulSet"), ObjectMeta: objectMeta(ns, name, labels),
		Spec: appsv1.StatefulSetSpec{Replicas: int32p(replicas), ServiceName: name, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}}}}}}})
	c.pods(ns, name, labels, spec, int(replicas), "StatefulSet", "apps/v1", name, true)
}

// nodeAgent is the pod spec of a system DaemonSet: privileged, on the
// host's network.
func (c *cluster) nodeAgent(name, image string) corev1.PodSpec {
	s := c.podSpec(name, image, 0, false)
	s.HostNetwork = true
	s.PriorityClassName = "system-node-critical"
	s.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: boolp(true)}
	return s
}

// daemonSet adds a DaemonSet and its pods: one on every node, or on each
// node of its nodeSelector's pool.
func (c *cluster) daemonSet(ns, name string, labels map[string]string, spec corev1.PodSpec) {
	nodes := c.nodes
	if len(spec.NodeSelector) > 0 {
		nodes = poolNodes
	}
	c.add(&appsv1.DaemonSet{TypeMeta: typeMeta("apps/v1", "DaemonSet"), ObjectMeta: objectMeta(ns, name, labels),
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}}})
	c.pods(ns, name, labels, spec, nodes, "DaemonSet", "apps/v1", name, false)
}

// poolNodes is how many nodes a team's node pool has: a tenant's
// DaemonSet runs there only, so that a namespace holds as many objects in
// a large cluster as in a small one.
const poolNodes = 3

// cronJob adds a CronJob with the Job of its last run and that Job's pod.
func (c *cluster) cronJob(ns, name string, labels map[string]string, spec corev1.PodSpec) {
	c.add(&batchv1.CronJob{TypeMeta: typeMeta("batch/v1", "CronJob"), ObjectMeta: objectMeta(ns, name, labels),
		Spec: batchv1.CronJobSpec{Schedule: "0 2 * * *", JobTemplate: batchv1.JobTemplateSpec{
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}}}}})
	c.job(ns, name+"-29012345", labels, spec, owner("batch/v1", "CronJob", name))
}

// job adds a Job, owned or not, and its pod.
func (c *cluster) job(ns, name string, labels map[string]string, spec corev1.PodSpec, owners []metav1.OwnerReference) {
	c.add(&batchv1.Job{TypeMeta: typeMeta("batch/v1", "Job"),
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, OwnerReferences: owners},
		Spec:       batchv1.JobSpec{BackoffLimit: int32p(3), Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}}})
	c.pods(ns, name, labels, spec, 1, "Job", "batch/v1", name, false)
}

// replicationController adds a ReplicationController of one replica and
// its pod.
func (c *cluster) replicationController(ns, name string, labels map[string]string, spec corev1.PodSpec) {
	c.add(&corev1.ReplicationController{TypeMeta: typeMeta("v1", "ReplicationController"), ObjectMeta: objectMeta(ns, name, labels),
		Spec: corev1.ReplicationControllerSpec{Replicas: int32p(1), Selector: labels,
			Template: &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}}})
	c.pods(ns, name, labels, spec, 1, "ReplicationController", "v1", name, false)
}
