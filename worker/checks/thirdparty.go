package checks

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// releaseVersion is a release number, compared numerically (1.10 comes
// after 1.9) with semver's rules for pre-releases.
type releaseVersion struct {
	major, minor, patch int
	// pre is a pre-release such as "rc.1", which comes before the release.
	pre string
}

// parseVersion reads "v1.2.3", "1.2", "1.2.3-rc.1" and the like. A suffix
// that does not name a pre-release (alpha, beta, rc, pre, dev) is a
// vendor's build or an image variant, and is ignored: "v1.30.5-gke.100",
// "v1.29.1+k3s1", "9.2.3-ubuntu", "2.2.3-debian-11-r5" are releases.
func parseVersion(s string) (releaseVersion, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	s, _, _ = strings.Cut(s, "+")
	core, suffix, _ := strings.Cut(s, "-")
	parts := strings.Split(core, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return releaseVersion{}, false
	}
	var nums [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return releaseVersion{}, false
		}
		nums[i] = n
	}
	v := releaseVersion{major: nums[0], minor: nums[1], patch: nums[2]}
	lower := strings.ToLower(suffix)
	for _, p := range []string{"alpha", "beta", "rc", "pre", "dev"} {
		if strings.HasPrefix(lower, p) {
			v.pre = lower
			break
		}
	}
	return v, true
}

func (v releaseVersion) compare(w releaseVersion) int {
	if c := cmp.Compare(v.major, w.major); c != 0 {
		return c
	}
	if c := cmp.Compare(v.minor, w.minor); c != 0 {
		return c
	}
	if c := cmp.Compare(v.patch, w.patch); c != 0 {
		return c
	}
	switch {
	case v.pre == w.pre:
		return 0
	case v.pre == "":
		return 1
	case w.pre == "":
		return -1
	}
	// Dot-separated identifiers, numeric ones compared as numbers.
	a, b := strings.Split(v.pre, "."), strings.Split(w.pre, ".")
	for i := 0; i < len(a) && i < len(b); i++ {
		x, errX := strconv.Atoi(a[i])
		y, errY := strconv.Atoi(b[i])
		var c int
		switch {
		case errX == nil && errY == nil:
			c = cmp.Compare(x, y)
		case errX == nil:
			c = -1
		case errY == nil:
			c = 1
		default:
			c = strings.Compare(a[i], b[i])
		}
		if c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

func (v releaseVersion) less(w releaseVersion) bool { return v.compare(w) < 0 }

func mustVersion(s string) releaseVersion {
	v, ok := parseVersion(s)
	if !ok {
		panic("checks: bad version " + s)
	}
	return v
}

// versionRange is [introduced, fixed): introduced empty means every
// earlier release.
type versionRange struct{ introduced, fixed string }

func (r versionRange) contains(v releaseVersion) bool {
	return (r.introduced == "" || !v.less(mustVersion(r.introduced))) && v.less(mustVersion(r.fixed))
}

// advisory is a published vulnerability of a component, by the releases it
// affects, as its advisory lists the fixed ones.
type advisory struct {
	cve       string
	component string
	// images are image repositories of the component, matched at the end of
	// the image's repository so that mirrors match too.
	images   []string
	affected []versionRange
	impact   string
}

// Components read from Nodes and the API server rather than from images.
const (
	componentKubelet    = "kubelet"
	componentContainerd = "containerd"
	componentAPIServer  = "kube-apiserver"
)

// advisories are the known-vulnerable platform components TP-003 reports.
var advisories = []advisory{
	{
		cve: "CVE-2022-24348", component: "Argo CD", images: []string{"argoproj/argocd"},
		affected: []versionRange{{"", "2.1.9"}, {"2.2.0", "2.2.4"}},
		impact:   "path traversal in Helm charts reads other applications' files, secrets included (GHSA-63qx-x74g-jcr7)",
	},
	{
		cve: "CVE-2022-39328", component: "Grafana", images: []string{"grafana/grafana", "grafana/grafana-oss", "grafana/grafana-enterprise"},
		affected: []versionRange{{"9.2.0", "9.2.4"}},
		impact:   "a race condition lets unauthenticated requests reach authenticated endpoints (GHSA-vqc4-mpj8-jxch)",
	},
	{
		cve: "CVE-2022-47633", component: "Kyverno", images: []string{"kyverno/kyverno"},
		affected: []versionRange{{"1.8.3", "1.8.5"}},
		impact:   "image signature verification can be bypassed by a malicious registry (GHSA-m3cq-xcx9-3gvm)",
	},
	{
		cve: "CVE-2021-25741", component: componentKubelet,
		affected: []versionRange{{"", "1.19.15"}, {"1.20.0", "1.20.11"}, {"1.21.0", "1.21.5"}, {"1.22.0", "1.22.2"}},
		impact:   "a subPath volume mount with a symlink exposes the node's filesystem to the pod (kubernetes/kubernetes#104980)",
	},
	{
		cve: "CVE-2022-23648", component: componentContainerd,
		affected: []versionRange{{"", "1.4.13"}, {"1.5.0", "1.5.10"}, {"1.6.0", "1.6.1"}},
		impact:   "an image's volume can copy any file of the host into the container (GHSA-crp2-qrr5-8pq7)",
	},
	{
		cve: "CVE-2022-3172", component: componentAPIServer,
		affected: []versionRange{{"", "1.22.14"}, {"1.23.0", "1.23.11"}, {"1.24.0", "1.24.5"}, {"1.25.0", "1.25.1"}},
		impact:   "an aggregated API server can redirect clients' requests, with their credentials, anywhere",
	},
}

// vulnerabilities lists the advisories of a component that affect a
// release, as "CVE-…: impact".
func vulnerabilities(component string, v releaseVersion) []string {
	var out []string
	for _, a := range advisories {
		if a.component == component && slices.ContainsFunc(a.affected, func(r versionRange) bool { return r.contains(v) }) {
			out = append(out, a.cve+": "+a.impact)
		}
	}
	return out
}

// imageComponent names the advisory component an image belongs to, or "".
func imageComponent(image string) string {
	repo := imageRepository(image)
	for _, a := range advisories {
		if slices.ContainsFunc(a.images, func(suffix string) bool { return imageIs(repo, suffix) }) {
			return a.component
		}
	}
	return ""
}

// imageIs reports whether an image repository is suffix, on any registry
// or mirror: "quay.io/argoproj/argocd" is "argoproj/argocd".
func imageIs(repo, suffix string) bool {
	return repo == suffix || strings.HasSuffix(repo, "/"+suffix)
}

// imageVersion is the release an image's tag names, if it names one.
func imageVersion(image string) (releaseVersion, bool) {
	tag, _ := imageRef(image)
	if tag == "" {
		return releaseVersion{}, false
	}
	return parseVersion(tag)
}

// Images of components TP-001, TP-002 and TP-004 recognise.
var (
	tillerImages       = []string{"kubernetes-helm/tiller", "helm/tiller"}
	ingressNginxImages = []string{"ingress-nginx/controller", "ingress-nginx/controller-chroot", "kubernetes-ingress-controller/nginx-ingress-controller"}
	dashboardImages    = []string{"kubernetesui/dashboard", "kubernetesui/dashboard-api", "kubernetesui/dashboard-web", "kubernetesui/dashboard-auth", "kubernetes-dashboard-amd64"}
)

func imageOneOf(image string, repos []string) bool {
	repo := imageRepository(image)
	return slices.ContainsFunc(repos, func(suffix string) bool { return imageIs(repo, suffix) })
}

// snippetsAllowed reports whether ingress-nginx may apply snippet
// annotations: unless a controller ConfigMap is seen that sets
// allow-snippet-annotations, and none sets it to "true", they may.
func snippetsAllowed(inv *Inventory) bool {
	seen := false
	for i := range inv.ConfigMaps {
		v, ok := inv.ConfigMaps[i].Data["allow-snippet-annotations"]
		if !ok {
			continue
		}
		if v == "true" {
			return true
		}
		seen = true
	}
	return !seen
}

// exposure says how a workload's pods are reachable from outside the
// cluster: a NodePort or LoadBalancer Service selecting them, or an
// Ingress routing to a Service that does. Empty when they are not.
func exposure(inv *Inventory, w *Workload) string {
	podLabels := labels.Set(w.PodLabels)
	selecting := map[string]bool{}
	for i := range inv.Services {
		s := &inv.Services[i]
		if s.Namespace != w.Namespace || len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) {
			continue
		}
		if s.Spec.Type == corev1.ServiceTypeNodePort || s.Spec.Type == corev1.ServiceTypeLoadBalancer {
			return fmt.Sprintf("Service %q of type %s", s.Name, s.Spec.Type)
		}
		selecting[s.Name] = true
	}
	for i := range inv.Ingresses {
		ing := &inv.Ingresses[i]
		if ing.Namespace == w.Namespace && slices.ContainsFunc(ingressServices(ing), func(name string) bool { return selecting[name] }) {
			return fmt.Sprintf("Ingress %q", ing.Name)
		}
	}
	return ""
}

// ingressServices lists the Services an Ingress routes to.
func ingressServices(ing *networkingv1.Ingress) []string {
	var out []string
	add := func(b *networkingv1.IngressBackend) {
		if b != nil && b.Service != nil {
			out = append(out, b.Service.Name)
		}
	}
	add(ing.Spec.DefaultBackend)
	for _, rule := range ing.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		for i := range rule.HTTP.Paths {
			add(&rule.HTTP.Paths[i].Backend)
		}
	}
	return out
}

var thirdPartyChecks = []*Check{
	{
		ID: "TP-001",
		container: func(r *reporter, w *Workload, c *Container) {
			if imageOneOf(c.Image, tillerImages) {
				r.report(w.Resource, c.Path, "container %q runs Helm v2's Tiller (%s)", c.Name, c.Image)
			}
		},
	},
	{
		ID: "TP-002",
		inventory: func(r *reporter, inv *Inventory) {
			if snippetsAllowed(inv) {
				for i := range inv.Ingresses {
					ing := &inv.Ingresses[i]
					var keys []string
					for k := range ing.Annotations {
						if strings.HasPrefix(k, "nginx.ingress.kubernetes.io/") && strings.HasSuffix(k, "-snippet") {
							keys = append(keys, k)
						}
					}
					slices.Sort(keys)
					for _, k := range keys {
						r.report(resourceOf("networking.k8s.io/v1", "Ingress", &ing.ObjectMeta), fmt.Sprintf("metadata.annotations[%s]", k), "Ingress %q inserts raw NGINX configuration with %s", ing.Name, k)
					}
				}
			}
			for _, w := range r.workloads(inv) {
				for _, c := range w.Containers() {
					if imageOneOf(c.Image, ingressNginxImages) {
						r.report(w.Resource, c.Path, "container %q runs the ingress-nginx controller (%s), retired in March 2026 and no longer patched", c.Name, c.Image)
					}
				}
			}
		},
	},
	{
		ID: "TP-003",
		inventory: func(r *reporter, inv *Inventory) {
			for _, w := range r.workloads(inv) {
				for _, c := range w.Containers() {
					component := imageComponent(c.Image)
					if component == "" {
						continue
					}
					if v, ok := imageVersion(c.Image); ok {
						if vulns := vulnerabilities(component, v); len(vulns) > 0 {
							r.report(w.Resource, c.Path, "container %q runs %s %s, affected by %s", c.Name, component, c.Image, strings.Join(vulns, "; "))
						}
					}
				}
			}
			for i := range inv.Nodes {
				n := &inv.Nodes[i]
				info := &n.Status.NodeInfo
				if v, ok := kubeVersion(info.KubeletVersion); ok {
					if vulns := vulnerabilities(componentKubelet, v); len(vulns) > 0 {
						r.report(nodeResource(n), "status.nodeInfo.kubeletVersion", "node %q runs kubelet %s, affected by %s", n.Name, info.KubeletVersion, strings.Join(vulns, "; "))
					}
				}
				if ver, ok := strings.CutPrefix(info.ContainerRuntimeVersion, "containerd://"); ok {
					if v, ok := parseVersion(ver); ok {
						if vulns := vulnerabilities(componentContainerd, v); len(vulns) > 0 {
							r.report(nodeResource(n), "status.nodeInfo.containerRuntimeVersion", "node %q runs containerd %s, affected by %s", n.Name, ver, strings.Join(vulns, "; "))
						}
					}
				}
			}
			if v, ok := kubeVersion(inv.ServerVersion); ok {
				if vulns := vulnerabilities(componentAPIServer, v); len(vulns) > 0 {
					r.report(apiServerResource(), "", "the API server runs %s, affected by %s", inv.ServerVersion, strings.Join(vulns, "; "))
				}
			}
		},
	},
	{
		ID: "TP-004",
		inventory: func(r *reporter, inv *Inventory) {
			for _, w := range r.workloads(inv) {
				var dashboard *corev1.Container
				for i := range w.Spec.Containers {
					if imageOneOf(w.Spec.Containers[i].Image, dashboardImages) {
						dashboard = &w.Spec.Containers[i]
						break
					}
				}
				if dashboard == nil {
					continue
				}
				var risks []string
				if how := exposure(inv, &w); how != "" {
					risks = append(risks, "is exposed outside the cluster by "+how)
				}
				if slices.ContainsFunc(slices.Concat(dashboard.Command, dashboard.Args), func(a string) bool {
					return a == "--enable-skip-login" || a == "--enable-skip-login=true"
				}) {
					risks = append(risks, "lets visitors skip login")
				}
				if len(risks) == 0 {
					r.report(w.Resource, "", "the Kubernetes Dashboard runs here (%s)", dashboard.Image)
					continue
				}
				r.reportAt(high, w.Resource, "", "the Kubernetes Dashboard runs here (%s) and %s", dashboard.Image, strings.Join(risks, " and "))
			}
		},
	},
}
