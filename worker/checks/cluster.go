package checks

import (
	"fmt"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/fleetscan/fleetscan/worker/catalog"
)

// apiServerResource stands for the API server in findings about what no
// object of the API carries: its version, its admission chain.
func apiServerResource() Resource {
	return Resource{Resource: catalog.Resource{Kind: "APIServer", Name: "kube-apiserver"}}
}

func nodeResource(n *corev1.Node) Resource {
	return resourceOf("v1", "Node", &n.ObjectMeta)
}

// webhook is one webhook of a validating or mutating webhook
// configuration, seen through what the admission checks need.
type webhook struct {
	config        Resource
	name          string
	mutating      bool
	clientConfig  admissionregistrationv1.WebhookClientConfig
	rules         []admissionregistrationv1.RuleWithOperations
	failurePolicy *admissionregistrationv1.FailurePolicyType
	// namespaceSelector and objectSelector are nil or empty for "all".
	namespaceSelector, objectSelector *metav1.LabelSelector
}

func (inv *Inventory) webhooks() []webhook {
	var out []webhook
	for i := range inv.ValidatingWebhooks {
		o := &inv.ValidatingWebhooks[i]
		res := resourceOf("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", &o.ObjectMeta)
		for _, w := range o.Webhooks {
			out = append(out, webhook{config: res, name: w.Name, clientConfig: w.ClientConfig, rules: w.Rules,
				failurePolicy: w.FailurePolicy, namespaceSelector: w.NamespaceSelector, objectSelector: w.ObjectSelector})
		}
	}
	for i := range inv.MutatingWebhooks {
		o := &inv.MutatingWebhooks[i]
		res := resourceOf("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", &o.ObjectMeta)
		for _, w := range o.Webhooks {
			out = append(out, webhook{config: res, name: w.Name, mutating: true, clientConfig: w.ClientConfig, rules: w.Rules,
				failurePolicy: w.FailurePolicy, namespaceSelector: w.NamespaceSelector, objectSelector: w.ObjectSelector})
		}
	}
	return out
}

// intercepts reports whether one of the webhook's rules matches the
// resource of the API group, wildcards included.
func (w *webhook) intercepts(group, resource string) bool {
	return slices.ContainsFunc(w.rules, func(r admissionregistrationv1.RuleWithOperations) bool {
		return len(r.Operations) > 0 && matches(r.APIGroups, group) && matchesResource(r.Resources, resource)
	})
}

// matches reports whether a webhook rule's list names want, or "*".
func matches(list []string, want string) bool {
	return slices.Contains(list, "*") || slices.Contains(list, want)
}

// matchesResource is matches for a webhook rule's resources, where
// "*/sub" also names the subresource sub of every resource.
func matchesResource(list []string, resource string) bool {
	if matches(list, resource) {
		return true
	}
	if i := strings.IndexByte(resource, '/'); i >= 0 {
		return slices.Contains(list, "*"+resource[i:])
	}
	return false
}

// everything reports whether a rule matches every resource of every group.
func (w *webhook) everything() bool {
	return slices.ContainsFunc(w.rules, func(r admissionregistrationv1.RuleWithOperations) bool {
		return slices.Contains(r.APIGroups, "*") && (slices.Contains(r.Resources, "*") || slices.Contains(r.Resources, "*/*"))
	})
}

// risks lists what makes the webhook worth a review.
func (w *webhook) risks() []string {
	var out []string
	switch {
	case w.everything():
		out = append(out, "intercepts every resource, Secrets included")
	case w.intercepts("", "secrets"):
		out = append(out, "receives Secrets")
	}
	if u := w.clientConfig.URL; u != nil {
		out = append(out, "sends requests to "+*u+" rather than to an in-cluster Service")
	}
	ignore := w.failurePolicy != nil && *w.failurePolicy == admissionregistrationv1.Ignore
	switch {
	case ignore && !w.mutating:
		out = append(out, "fails open (failurePolicy: Ignore): while it is down, what it should reject is admitted")
	case !ignore && (w.namespaceSelector == nil || emptySelector(w.namespaceSelector)) &&
		(w.objectSelector == nil || emptySelector(w.objectSelector)) && w.intercepts("", "pods"):
		out = append(out, "fails closed on the pods of every namespace, kube-system's included: while it is down, no pod starts")
	}
	return out
}

// provenanceVerifiers recognise admission webhooks that verify image
// signatures, by a part of the webhook's or its configuration's name.
var provenanceVerifiers = []struct{ name, match string }{
	{"the sigstore policy-controller", "policy.sigstore.dev"},
	{"cosigned", "cosigned.sigstore.dev"},
	{"Connaisseur", "connaisseur"},
	{"Portieris", "securityenforcement.admission.cloud.ibm.com"},
}

// policyEngines are general admission policy engines that can verify image
// signatures, or not, as their custom resources say.
var policyEngines = []struct{ name, match string }{
	{"Kyverno", "kyverno"},
	{"Gatekeeper", "gatekeeper"},
}

func (w *webhook) named(part string) bool {
	return strings.Contains(w.name, part) || strings.Contains(w.config.Name, part)
}

// provenanceWebhooks returns the webhooks that verify image signatures and,
// for each, the name of its verifier.
func (inv *Inventory) provenanceWebhooks() ([]webhook, []string) {
	var hooks []webhook
	var names []string
	for _, w := range inv.webhooks() {
		for _, v := range provenanceVerifiers {
			if w.named(v.match) {
				hooks, names = append(hooks, w), append(names, v.name)
				break
			}
		}
	}
	return hooks, names
}

// imagePolicyWebhook reports whether a visible kube-apiserver enables the
// ImagePolicyWebhook admission plugin.
func (inv *Inventory) imagePolicyWebhook() bool {
	for _, c := range inv.controlPlane(apiServer) {
		if slices.Contains(c.flags.list("enable-admission-plugins"), "ImagePolicyWebhook") {
			return true
		}
	}
	return false
}

// selectsNamespace reports whether a webhook's namespaceSelector matches
// the namespace.
func (w *webhook) selectsNamespace(nsLabels labels.Labels) bool {
	if w.namespaceSelector == nil {
		return true
	}
	sel, err := metav1.LabelSelectorAsSelector(w.namespaceSelector)
	return err == nil && sel.Matches(nsLabels)
}

// kubeVersion parses a Kubernetes gitVersion ("v1.37.2",
// "v1.33.4-eks-1234", "v1.30.1+k3s1").
func kubeVersion(s string) (releaseVersion, bool) {
	v, ok := parseVersion(s)
	return v, ok && v.major == 1
}

var clusterChecks = []*Check{
	{
		ID: "ADM-001",
		inventory: func(r *reporter, inv *Inventory) {
			for _, w := range inv.webhooks() {
				if risks := w.risks(); len(risks) > 0 {
					r.report(w.config, fmt.Sprintf("webhooks[%s]", w.name), "webhook %q %s", w.name, strings.Join(risks, "; "))
				}
			}
		},
	},
	{
		ID: "ADM-002",
		assessable: func(inv *Inventory) string {
			if hooks, _ := inv.provenanceWebhooks(); len(hooks) > 0 || inv.imagePolicyWebhook() {
				return ""
			}
			for _, w := range inv.webhooks() {
				for _, e := range policyEngines {
					if w.named(e.match) {
						return e.name + " is installed: whether it verifies image signatures is written in its policies, custom resources the inventory does not hold"
					}
				}
			}
			return ""
		},
		inventory: func(r *reporter, inv *Inventory) {
			if inv.imagePolicyWebhook() {
				return
			}
			hooks, names := inv.provenanceWebhooks()
			if len(hooks) == 0 {
				r.report(apiServerResource(), "", "no admission verifies image provenance: no ImagePolicyWebhook plugin and no signature-verifying webhook is configured")
				return
			}
			nsLabels := inv.namespaceLabels()
			for i := range inv.Namespaces {
				ns := &inv.Namespaces[i]
				if systemNamespace(ns.Name) || slices.ContainsFunc(hooks, func(w webhook) bool { return w.selectsNamespace(nsLabels[ns.Name]) }) {
					continue
				}
				r.report(resourceOf("v1", "Namespace", &ns.ObjectMeta), "", "namespace %q admits unverified images: the namespaceSelector of %s leaves it out", ns.Name, strings.Join(slices.Compact(slices.Sorted(slices.Values(names))), " and "))
			}
		},
	},
	{
		ID: "VER-001",
		assessable: func(inv *Inventory) string {
			if _, ok := kubeVersion(inv.ServerVersion); ok {
				return ""
			}
			for i := range inv.Nodes {
				if _, ok := kubeVersion(inv.Nodes[i].Status.NodeInfo.KubeletVersion); ok {
					return ""
				}
			}
			return "neither the API server's version nor any node's kubelet version is known (a snapshot without Node status)"
		},
		inventory: func(r *reporter, inv *Inventory) {
			if v, ok := kubeVersion(inv.ServerVersion); ok && v.minor < catalog.OldestSupportedMinor {
				r.report(apiServerResource(), "", "the API server runs %s, older than 1.%d, the oldest release Kubernetes still patches", inv.ServerVersion, catalog.OldestSupportedMinor)
			}
			for i := range inv.Nodes {
				n := &inv.Nodes[i]
				kubelet := n.Status.NodeInfo.KubeletVersion
				if v, ok := kubeVersion(kubelet); ok && v.minor < catalog.OldestSupportedMinor {
					r.report(nodeResource(n), "status.nodeInfo.kubeletVersion", "node %q runs kubelet %s, older than 1.%d, the oldest release Kubernetes still patches", n.Name, kubelet, catalog.OldestSupportedMinor)
				}
			}
		},
	},
	{
		ID: "NODE-001",
		assessable: func(inv *Inventory) string {
			for i := range inv.Nodes {
				info := &inv.Nodes[i].Status.NodeInfo
				if info.OSImage != "" || info.KernelVersion != "" || info.ContainerRuntimeVersion != "" {
					return ""
				}
			}
			return "no Node with status.nodeInfo is in the inventory"
		},
		inventory: func(r *reporter, inv *Inventory) {
			now := time.Now()
			for i := range inv.Nodes {
				n := &inv.Nodes[i]
				info := &n.Status.NodeInfo
				if eol, ok := osEndOfLife(info.OSImage); ok && now.After(eol) {
					r.report(nodeResource(n), "status.nodeInfo.osImage", "node %q runs %s, past its end of life on %s", n.Name, info.OSImage, eol.Format(time.DateOnly))
				}
				if v, ok := parseVersion(info.KernelVersion); ok && v.less(releaseVersion{major: 5, minor: 8}) {
					r.report(nodeResource(n), "status.nodeInfo.kernelVersion", "node %q runs kernel %s, older than 5.8, which cgroup v2 needs", n.Name, info.KernelVersion)
				}
				runtime, ver, _ := strings.Cut(info.ContainerRuntimeVersion, "://")
				switch v, ok := parseVersion(ver); {
				case runtime == "docker":
					r.report(nodeResource(n), "status.nodeInfo.containerRuntimeVersion", "node %q runs Docker Engine %s, which Kubernetes reaches only through the cri-dockerd adapter", n.Name, ver)
				case runtime == "containerd" && ok && v.major < 2:
					r.report(nodeResource(n), "status.nodeInfo.containerRuntimeVersion", "node %q runs containerd %s, which Kubernetes releases after 1.35 do not support", n.Name, ver)
				}
			}
		},
	},
}

// osEndOfLife lists operating systems by the prefix of their osImage, with
// the day their vendor's standard support ended: CentOS (centos.org), Red
// Hat's maintenance support (access.redhat.com/support/policy/updates/errata),
// Ubuntu's standard support (ubuntu.com/about/release-cycle), Debian LTS
// (wiki.debian.org/LTS), Amazon Linux 2 (aws.amazon.com/amazon-linux-2/faqs).
var osEndOfLife = func() func(osImage string) (time.Time, bool) {
	table := []struct{ prefix, end string }{
		{"CentOS Linux 7", "2024-06-30"},
		{"CentOS Linux 8", "2021-12-31"},
		{"Red Hat Enterprise Linux Server 7", "2024-06-30"},
		{"Ubuntu 18.04", "2023-05-31"},
		{"Ubuntu 20.04", "2025-05-31"},
		{"Debian GNU/Linux 9", "2022-06-30"},
		{"Debian GNU/Linux 10", "2024-06-30"},
		{"Debian GNU/Linux 11", "2026-08-31"},
		{"Amazon Linux 2", "2026-06-30"},
	}
	return func(osImage string) (time.Time, bool) {
		for _, row := range table {
			rest, ok := strings.CutPrefix(osImage, row.prefix)
			// "Amazon Linux 2" is not "Amazon Linux 2023".
			if !ok || (rest != "" && rest[0] >= '0' && rest[0] <= '9') {
				continue
			}
			end, err := time.Parse(time.DateOnly, row.end)
			return end, err == nil
		}
		return time.Time{}, false
	}
}()
