package checks

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// systemNamespace reports namespaces run by Kubernetes or the provider,
// where tenants' network rules do not apply.
func systemNamespace(ns string) bool {
	return ns == "kube-system" || ns == "kube-public" || ns == "kube-node-lease"
}

// selectsIngress reports whether a policy isolates the pods it selects for
// ingress: policyTypes names Ingress, or is empty, which means Ingress.
func selectsIngress(p *networkingv1.NetworkPolicy) bool {
	if len(p.Spec.PolicyTypes) == 0 {
		return true
	}
	return slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
}

// selectsEgress reports whether a policy isolates the pods it selects for
// egress: policyTypes names Egress or, when policyTypes is empty, the
// policy has egress rules. An empty policyTypes with no egress rules
// leaves egress open, whatever the rest of the policy says.
func selectsEgress(p *networkingv1.NetworkPolicy) bool {
	if len(p.Spec.PolicyTypes) == 0 {
		return len(p.Spec.Egress) > 0
	}
	return slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
}

// reportUnisolated reports every workload outside the system namespaces
// whose pods no policy of its namespace isolates in one direction.
func reportUnisolated(r *reporter, inv *Inventory, isolates func(*networkingv1.NetworkPolicy) bool, message string) {
	byNamespace := map[string][]*networkingv1.NetworkPolicy{}
	for i := range inv.NetworkPolicies {
		p := &inv.NetworkPolicies[i]
		if isolates(p) {
			byNamespace[p.Namespace] = append(byNamespace[p.Namespace], p)
		}
	}
	for _, w := range r.workloads(inv) {
		if systemNamespace(w.Namespace) {
			continue
		}
		if !anySelects(byNamespace[w.Namespace], w.PodLabels) {
			r.report(w.Resource, "", "%s", message)
		}
	}
}

var networkChecks = []*Check{
	{
		ID: "NET-001",
		inventory: func(r *reporter, inv *Inventory) {
			has := map[string]bool{}
			for i := range inv.NetworkPolicies {
				has[inv.NetworkPolicies[i].Namespace] = true
			}
			for i := range inv.Namespaces {
				ns := &inv.Namespaces[i]
				if systemNamespace(ns.Name) || has[ns.Name] {
					continue
				}
				r.report(resourceOf("v1", "Namespace", &ns.ObjectMeta), "", "namespace %q has no NetworkPolicy", ns.Name)
			}
		},
	},
	{
		ID: "NET-002",
		inventory: func(r *reporter, inv *Inventory) {
			reportUnisolated(r, inv, selectsIngress, "no NetworkPolicy restricts ingress to these pods")
		},
	},
	{
		ID: "NET-003",
		inventory: func(r *reporter, inv *Inventory) {
			reportUnisolated(r, inv, selectsEgress, "no NetworkPolicy restricts egress from these pods")
		},
	},
	{
		ID: "NET-004",
		inventory: func(r *reporter, inv *Inventory) {
			peers := newPeerJudge(inv)
			pods := peers.pods
			for i := range inv.NetworkPolicies {
				p := &inv.NetworkPolicies[i]
				res := resourceOf("networking.k8s.io/v1", "NetworkPolicy", &p.ObjectMeta)
				if !emptySelector(&p.Spec.PodSelector) && !anyMatches(&p.Spec.PodSelector, pods[p.Namespace]) {
					r.report(res, "spec.podSelector", "NetworkPolicy %q selects no pod: none in namespace %q has labels %s", p.Name, p.Namespace, metav1.FormatLabelSelector(&p.Spec.PodSelector))
				}
				checkPeer := func(path string, peer networkingv1.NetworkPolicyPeer) {
					if why := peers.matchesNothing(p.Namespace, peer); why != "" {
						r.report(res, path, "NetworkPolicy %q names a peer that matches nothing: %s", p.Name, why)
					}
				}
				for i, rule := range p.Spec.Ingress {
					for j, from := range rule.From {
						checkPeer(fmt.Sprintf("spec.ingress[%d].from[%d]", i, j), from)
					}
				}
				for i, rule := range p.Spec.Egress {
					for j, to := range rule.To {
						checkPeer(fmt.Sprintf("spec.egress[%d].to[%d]", i, j), to)
					}
				}
			}
		},
	},
	{
		ID: "NET-005",
		assessable: func(inv *Inventory) string {
			if len(inv.cniPlugins()) == 0 {
				return "no DaemonSet of a known network plugin (Calico, Cilium, flannel, Weave Net, Antrea, kube-router, AWS VPC CNI, Azure NPM, OVN-Kubernetes, Kube-OVN) is in the inventory: the plugin is built into the nodes or managed by the provider, so whether it enforces NetworkPolicies cannot be told from the API"
			}
			return ""
		},
		inventory: func(r *reporter, inv *Inventory) {
			found := inv.cniPlugins()
			if slices.ContainsFunc(found, func(c cniFound) bool { return c.enforces }) {
				return
			}
			var order []*appsv1.DaemonSet
			names := map[*appsv1.DaemonSet][]string{}
			for _, c := range found {
				if names[c.ds] == nil {
					order = append(order, c.ds)
				}
				if !slices.Contains(names[c.ds], c.plugin) {
					names[c.ds] = append(names[c.ds], c.plugin)
				}
			}
			for _, ds := range order {
				r.report(resourceOf("apps/v1", "DaemonSet", &ds.ObjectMeta), "", "DaemonSet %q runs %s, and no plugin of the cluster enforces NetworkPolicies", ds.Name, strings.Join(names[ds], " and "))
			}
		},
	},
	{
		ID: "NET-006",
		inventory: func(r *reporter, inv *Inventory) {
			for i := range inv.Services {
				s := &inv.Services[i]
				if len(s.Spec.ExternalIPs) > 0 {
					r.report(serviceResource(s), "", "Service sets externalIPs %s", strings.Join(s.Spec.ExternalIPs, ", "))
				}
			}
		},
	},
	{
		ID: "NET-007",
		inventory: func(r *reporter, inv *Inventory) {
			for i := range inv.Services {
				s := &inv.Services[i]
				switch s.Spec.Type {
				case corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
					if s.Spec.Type == corev1.ServiceTypeLoadBalancer && len(s.Spec.LoadBalancerSourceRanges) > 0 {
						continue
					}
					r.report(serviceResource(s), "", "Service of type %s is reachable from outside the cluster", s.Spec.Type)
				}
			}
		},
	},
	{
		ID: "NET-008",
		inventory: func(r *reporter, inv *Inventory) {
			for i := range inv.Ingresses {
				ing := &inv.Ingresses[i]
				if loadBalancerTLS(ing.Annotations) {
					continue
				}
				res := resourceOf("networking.k8s.io/v1", "Ingress", &ing.ObjectMeta)
				if len(ing.Spec.TLS) == 0 {
					r.report(res, "spec.tls", "Ingress %q serves %s over plain HTTP: spec.tls is empty", ing.Name, ingressHosts(ing))
					continue
				}
				var seen []string
				for _, rule := range ing.Spec.Rules {
					if rule.Host == "" || slices.Contains(seen, rule.Host) || tlsCovers(ing.Spec.TLS, rule.Host) {
						continue
					}
					seen = append(seen, rule.Host)
					r.report(res, fmt.Sprintf("spec.rules[%s]", rule.Host), "Ingress %q serves host %s over plain HTTP: no spec.tls entry covers it", ing.Name, rule.Host)
				}
			}
		},
	},
	{
		ID: "NET-010",
		inventory: func(r *reporter, inv *Inventory) {
			services := map[string]*corev1.Service{}
			seen := map[string]bool{}
			for i := range inv.Services {
				s := &inv.Services[i]
				services[s.Namespace+"/"+s.Name] = s
				seen[s.Namespace] = true
			}
			for i := range inv.Ingresses {
				ing := &inv.Ingresses[i]
				if !seen[ing.Namespace] {
					continue
				}
				res := resourceOf("networking.k8s.io/v1", "Ingress", &ing.ObjectMeta)
				check := func(path string, b *networkingv1.IngressBackend) {
					if b == nil || b.Service == nil {
						return // a resource backend, or none
					}
					s := services[ing.Namespace+"/"+b.Service.Name]
					switch {
					case s == nil:
						r.report(res, path, "Ingress %q sends %s to Service %q, which does not exist in namespace %q", ing.Name, path, b.Service.Name, ing.Namespace)
					case !servicePort(s, b.Service.Port):
						r.report(res, path, "Ingress %q sends %s to port %s of Service %q, which exposes no such port", ing.Name, path, backendPort(b.Service.Port), s.Name)
					}
				}
				check("spec.defaultBackend", ing.Spec.DefaultBackend)
				for _, rule := range ing.Spec.Rules {
					if rule.HTTP == nil {
						continue
					}
					for _, p := range rule.HTTP.Paths {
						check(fmt.Sprintf("spec.rules[%s].paths[%s]", cmp.Or(rule.Host, "*"), cmp.Or(p.Path, "/")), &p.Backend)
					}
				}
			}
		},
	},
	{
		ID: "NET-011",
		inventory: func(r *reporter, inv *Inventory) {
			for i := range inv.NetworkPolicies {
				p := &inv.NetworkPolicies[i]
				res := resourceOf("networking.k8s.io/v1", "NetworkPolicy", &p.ObjectMeta)
				for j, rule := range p.Spec.Ingress {
					if len(rule.Ports) == 0 && allPeers(rule.From) {
						r.report(res, fmt.Sprintf("spec.ingress[%d]", j), "NetworkPolicy %q admits traffic from everywhere on every port", p.Name)
					}
				}
				for j, rule := range p.Spec.Egress {
					if len(rule.Ports) == 0 && allPeers(rule.To) {
						r.report(res, fmt.Sprintf("spec.egress[%d]", j), "NetworkPolicy %q lets the pods reach everything on every port", p.Name)
					}
				}
			}
		},
	},
	{
		ID: "NET-009",
		inventory: func(r *reporter, inv *Inventory) {
			pods := inv.podLabels()
			for i := range inv.Services {
				s := &inv.Services[i]
				if len(s.Spec.Selector) == 0 || s.Spec.Type == corev1.ServiceTypeExternalName {
					continue // endpoints managed by hand, or a DNS alias
				}
				sel := labels.SelectorFromSet(s.Spec.Selector)
				if !slices.ContainsFunc(pods[s.Namespace], sel.Matches) {
					r.report(serviceResource(s), "spec.selector", "Service selects %s, which matches no pod in namespace %q", sel, s.Namespace)
				}
			}
		},
	},
}

func anySelects(policies []*networkingv1.NetworkPolicy, podLabels map[string]string) bool {
	for _, p := range policies {
		sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
		if err != nil {
			continue // an invalid selector selects nothing
		}
		if sel.Matches(labels.Set(podLabels)) {
			return true
		}
	}
	return false
}

func serviceResource(s *corev1.Service) Resource {
	return resourceOf("v1", "Service", &s.ObjectMeta)
}

// podLabels lists by namespace the label sets of the pods the inventory
// knows of: those of workloads' pod templates and those of every Pod, the
// pods of operators' custom resources included, whose controllers the
// inventory does not hold.
func (inv *Inventory) podLabels() map[string][]labels.Labels {
	out := map[string][]labels.Labels{}
	for _, w := range inv.Workloads() {
		out[w.Namespace] = append(out[w.Namespace], labels.Set(w.PodLabels))
	}
	for i := range inv.Pods {
		p := &inv.Pods[i]
		out[p.Namespace] = append(out[p.Namespace], labels.Set(p.Labels))
	}
	for i := range inv.ManagedPods {
		p := &inv.ManagedPods[i]
		out[p.Namespace] = append(out[p.Namespace], labels.Set(p.Labels))
	}
	return out
}

// namespaceLabels maps the inventory's namespaces to their labels, with
// the kubernetes.io/metadata.name label the API server sets on each.
func (inv *Inventory) namespaceLabels() map[string]labels.Set {
	out := make(map[string]labels.Set, len(inv.Namespaces))
	for i := range inv.Namespaces {
		ns := &inv.Namespaces[i]
		set := labels.Set{corev1.LabelMetadataName: ns.Name}
		for k, v := range ns.Labels {
			set[k] = v
		}
		out[ns.Name] = set
	}
	return out
}

func emptySelector(s *metav1.LabelSelector) bool {
	return len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0
}

// anyMatches reports whether the selector matches one of the label sets;
// an invalid selector matches none.
func anyMatches(s *metav1.LabelSelector, sets []labels.Labels) bool {
	sel, err := metav1.LabelSelectorAsSelector(s)
	return err == nil && slices.ContainsFunc(sets, sel.Matches)
}

// peerJudge judges the peers of a scan's NetworkPolicies against its pods
// and namespaces. The same peers recur in the policies of every namespace
// (the ingress controller, monitoring, DNS, the gateways of a tier), and
// matching each against every namespace and the pods of those it selects
// grew as policies times namespaces: a peer that names a namespaceSelector
// is judged once, and the namespaces a selector may select are found by
// the labels it requires.
type peerJudge struct {
	pods       map[string][]labels.Labels
	namespaces map[string]labels.Set
	names      []string
	// byLabel lists the namespaces that carry a label, by key and value.
	byLabel map[[2]string][]string
	// verdicts holds what matchesNothing said of a peer that names a
	// namespaceSelector, by its selectors: the policy's namespace plays
	// no part in it.
	verdicts map[string]string
}

func newPeerJudge(inv *Inventory) *peerJudge {
	j := &peerJudge{pods: inv.podLabels(), namespaces: inv.namespaceLabels(), byLabel: map[[2]string][]string{}, verdicts: map[string]string{}}
	for name, set := range j.namespaces {
		j.names = append(j.names, name)
		for k, v := range set {
			j.byLabel[[2]string{k, v}] = append(j.byLabel[[2]string{k, v}], name)
		}
	}
	return j
}

// matchesNothing says why a policy peer matches no pod, or "" when it
// matches some or cannot be judged: ipBlocks, empty selectors, and
// namespaceSelectors when the inventory holds no Namespace.
func (j *peerJudge) matchesNothing(policyNamespace string, peer networkingv1.NetworkPolicyPeer) string {
	if peer.IPBlock != nil || peer.NamespaceSelector == nil {
		return j.judge(policyNamespace, peer)
	}
	key, err := json.Marshal([]*metav1.LabelSelector{peer.NamespaceSelector, peer.PodSelector})
	if err != nil {
		return j.judge(policyNamespace, peer)
	}
	why, ok := j.verdicts[string(key)]
	if !ok {
		why = j.judge(policyNamespace, peer)
		j.verdicts[string(key)] = why
	}
	return why
}

func (j *peerJudge) judge(policyNamespace string, peer networkingv1.NetworkPolicyPeer) string {
	if peer.IPBlock != nil {
		return ""
	}
	scope := []string{policyNamespace}
	if peer.NamespaceSelector != nil {
		if len(j.namespaces) == 0 {
			return ""
		}
		sel, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
		if err != nil {
			return ""
		}
		scope = j.selected(sel)
		if len(scope) == 0 {
			return fmt.Sprintf("no namespace has labels %s", metav1.FormatLabelSelector(peer.NamespaceSelector))
		}
	}
	if peer.PodSelector == nil || emptySelector(peer.PodSelector) {
		return ""
	}
	for _, ns := range scope {
		if anyMatches(peer.PodSelector, j.pods[ns]) {
			return ""
		}
	}
	where := fmt.Sprintf("namespace %q", policyNamespace)
	if peer.NamespaceSelector != nil {
		where = "the namespaces with labels " + metav1.FormatLabelSelector(peer.NamespaceSelector)
	}
	return fmt.Sprintf("no pod in %s has labels %s", where, metav1.FormatLabelSelector(peer.PodSelector))
}

// selected returns the namespaces sel selects, in no order. It tries
// only those that carry a label that one of sel's key=value or key in (…)
// requirements names, of the requirement that names the fewest; every
// namespace when sel has no such requirement.
func (j *peerJudge) selected(sel labels.Selector) []string {
	candidates := j.names
	reqs, _ := sel.Requirements()
	for _, r := range reqs {
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			var named []string
			for v := range r.Values() {
				named = append(named, j.byLabel[[2]string{r.Key(), v}]...)
			}
			if len(named) < len(candidates) {
				candidates = named
			}
		}
	}
	var out []string
	for _, name := range candidates {
		if sel.Matches(j.namespaces[name]) {
			out = append(out, name)
		}
	}
	return out
}

// cniPlugin recognises a network plugin by a part of its images' names.
type cniPlugin struct {
	name  string
	image string
	// enforces tells whether the container enforces NetworkPolicies.
	enforces func(c *corev1.Container) bool
	// off names the plugin when a container that can enforce does not.
	off string
}

func enforcesAlways(*corev1.Container) bool { return true }
func enforcesNever(*corev1.Container) bool  { return false }

// knownCNIPlugins lists the network plugins recognised, by their images as their
// projects publish them (mirrors keep the path: rancher/mirrored-flannel…).
var knownCNIPlugins = []cniPlugin{
	{name: "Calico", image: "calico/node", enforces: enforcesAlways},
	{name: "Calico", image: "tigera/cnx-node", enforces: enforcesAlways},
	{name: "Cilium", image: "cilium/cilium", enforces: enforcesAlways},
	{name: "Weave Net's policy controller", image: "weaveworks/weave-npc", enforces: enforcesAlways},
	{name: "Antrea", image: "antrea/antrea-", enforces: enforcesAlways},
	{name: "kube-router", image: "cloudnativelabs/kube-router", enforces: enforcesAlways},
	{name: "Azure NPM", image: "azure-npm", enforces: enforcesAlways},
	{name: "OVN-Kubernetes", image: "ovn-kubernetes", enforces: enforcesAlways},
	{name: "Kube-OVN", image: "kubeovn/kube-ovn", enforces: enforcesAlways},
	// The agent ships in aws-node since VPC CNI v1.14, enforcing only when
	// network policy is turned on.
	{name: "the AWS network policy agent", image: "aws-network-policy-agent", off: "the AWS network policy agent with network policy turned off",
		enforces: func(c *corev1.Container) bool {
			return slices.Contains(c.Args, "--enable-network-policy=true") || slices.Contains(c.Command, "--enable-network-policy=true")
		}},
	{name: "flannel", image: "flannel", enforces: enforcesNever},
	{name: "the AWS VPC CNI", image: "amazon-k8s-cni", enforces: enforcesNever},
	{name: "Weave Net", image: "weaveworks/weave-kube", enforces: enforcesNever},
}

// cniFound is a network plugin recognised in a DaemonSet.
type cniFound struct {
	ds       *appsv1.DaemonSet
	plugin   string
	enforces bool
}

func (inv *Inventory) cniPlugins() []cniFound {
	var out []cniFound
	for i := range inv.DaemonSets {
		ds := &inv.DaemonSets[i]
		spec := &ds.Spec.Template.Spec
		for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
			repo := imageRepository(c.Image)
			for _, p := range knownCNIPlugins {
				if strings.Contains(repo, p.image) {
					found := cniFound{ds: ds, plugin: p.name, enforces: p.enforces(&c)}
					if !found.enforces && p.off != "" {
						found.plugin = p.off
					}
					out = append(out, found)
					break
				}
			}
		}
	}
	return out
}

// imageRepository is an image reference without its tag and digest.
func imageRepository(image string) string {
	if i := strings.IndexByte(image, '@'); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndexByte(image, ':'); i > strings.LastIndexByte(image, '/') {
		image = image[:i]
	}
	return image
}

// loadBalancerTLSAnnotations configure TLS termination at a cloud load
// balancer in front of the Ingress, without spec.tls.
var loadBalancerTLSAnnotations = []string{
	"alb.ingress.kubernetes.io/certificate-arn",         // AWS Load Balancer Controller
	"networking.gke.io/managed-certificates",            // GKE
	"ingress.gcp.kubernetes.io/pre-shared-cert",         // GKE
	"appgw.ingress.kubernetes.io/appgw-ssl-certificate", // Azure Application Gateway
}

func loadBalancerTLS(annotations map[string]string) bool {
	return slices.ContainsFunc(loadBalancerTLSAnnotations, func(a string) bool { return annotations[a] != "" })
}

// tlsCovers reports whether a TLS entry covers host: one without hosts
// covers every host, a wildcard "*.example.com" covers one label.
func tlsCovers(tls []networkingv1.IngressTLS, host string) bool {
	for _, t := range tls {
		if len(t.Hosts) == 0 {
			return true
		}
		for _, h := range t.Hosts {
			if h == host {
				return true
			}
			if suffix, ok := strings.CutPrefix(h, "*"); ok && strings.HasSuffix(host, suffix) && !strings.Contains(strings.TrimSuffix(host, suffix), ".") {
				return true
			}
		}
	}
	return false
}

func ingressHosts(ing *networkingv1.Ingress) string {
	var hosts []string
	for _, rule := range ing.Spec.Rules {
		if rule.Host == "" {
			return "every host"
		}
		if !slices.Contains(hosts, rule.Host) {
			hosts = append(hosts, rule.Host)
		}
	}
	if len(hosts) == 0 {
		return "every host"
	}
	return strings.Join(hosts, ", ")
}

// allPeers reports whether a rule's peers are everything: none at all, or
// one that is every namespace or every address.
func allPeers(peers []networkingv1.NetworkPolicyPeer) bool {
	if len(peers) == 0 {
		return true
	}
	for _, peer := range peers {
		switch {
		case peer.NamespaceSelector != nil && emptySelector(peer.NamespaceSelector) && (peer.PodSelector == nil || emptySelector(peer.PodSelector)):
			return true
		case peer.IPBlock != nil && len(peer.IPBlock.Except) == 0 && (peer.IPBlock.CIDR == "0.0.0.0/0" || peer.IPBlock.CIDR == "::/0"):
			return true
		}
	}
	return false
}

// servicePort reports whether a Service exposes the port an Ingress
// backend names, by number or by name.
func servicePort(s *corev1.Service, port networkingv1.ServiceBackendPort) bool {
	for _, p := range s.Spec.Ports {
		if (port.Name != "" && p.Name == port.Name) || (port.Name == "" && p.Port == port.Number) {
			return true
		}
	}
	return false
}

func backendPort(port networkingv1.ServiceBackendPort) string {
	if port.Name != "" {
		return strconv.Quote(port.Name)
	}
	return strconv.Itoa(int(port.Number))
}
