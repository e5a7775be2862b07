package checks

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
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
	for _, t := range p.Spec.PolicyTypes {
		if t == networkingv1.PolicyTypeIngress {
			return true
		}
	}
	return false
}

var networkChecks = []*Check{
	{
		Meta: Meta{
			ID: "NET-001", Title: "Namespace without NetworkPolicy", Severity: medium, Category: CategoryNetwork, Party: partyPlatform,
			Description: "Without any NetworkPolicy every pod of the namespace accepts traffic from every pod of the cluster.",
			Remediation: "Add a default-deny NetworkPolicy to the namespace and allow the flows it needs.",
			Frameworks:  []string{"CIS 5.3.2", "NSA 2.0"},
		},
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
		Meta: Meta{
			ID: "NET-002", Title: "Pods not isolated for ingress", Severity: medium, Category: CategoryNetwork, Party: partyWorkload,
			Description: "No NetworkPolicy with an Ingress section selects the workload's pods, so anything in the cluster can connect to them.",
			Remediation: "Select the pods with a NetworkPolicy that lists the ingress they need (a namespace default-deny covers them too).",
			Frameworks:  []string{"CIS 5.3.2"},
		},
		inventory: func(r *reporter, inv *Inventory) {
			byNamespace := map[string][]*networkingv1.NetworkPolicy{}
			for i := range inv.NetworkPolicies {
				p := &inv.NetworkPolicies[i]
				if selectsIngress(p) {
					byNamespace[p.Namespace] = append(byNamespace[p.Namespace], p)
				}
			}
			for _, w := range inv.Workloads() {
				if systemNamespace(w.Namespace) {
					continue
				}
				if !anySelects(byNamespace[w.Namespace], w.PodLabels) {
					r.report(w.Resource, "", "no NetworkPolicy restricts ingress to these pods")
				}
			}
		},
	},
	{
		Meta: Meta{
			ID: "NET-006", Title: "Service with externalIPs", Severity: high, Category: CategoryNetwork, Party: partyWorkload,
			Description: "spec.externalIPs lets whoever can create Services intercept traffic to any IP address (CVE-2020-8554).",
			Remediation: "Remove spec.externalIPs; use a LoadBalancer Service, and enable the DenyServiceExternalIPs admission plugin.",
			Frameworks:  []string{"CIS 1.2.3"},
		},
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
		Meta: Meta{
			ID: "NET-007", Title: "Externally exposed Service", Severity: medium, Category: CategoryNetwork, Party: partyWorkload,
			Description: "A NodePort or LoadBalancer Service is reachable from outside the cluster; it should be a deliberate choice.",
			Remediation: "Use a ClusterIP Service behind an Ingress or Gateway with TLS, or restrict loadBalancerSourceRanges.",
		},
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
