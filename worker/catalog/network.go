package catalog

var networkChecks = []Meta{
	{
		ID: "NET-001", Title: "Namespace without NetworkPolicy", Severity: medium, Category: CategoryNetwork, Party: partyPlatform,
		Description: "Without any NetworkPolicy every pod of the namespace accepts traffic from every pod of the cluster.",
		Remediation: "Add a default-deny NetworkPolicy to the namespace and allow the flows it needs.",
		Frameworks:  []string{"CIS 5.3.2", "NSA 2.0"},
	},
	{
		ID: "NET-002", Title: "Pods not isolated for ingress", Severity: medium, Category: CategoryNetwork, Party: partyWorkload,
		Description: "No NetworkPolicy with an Ingress section selects the workload's pods, so anything in the cluster can connect to them.",
		Remediation: "Select the pods with a NetworkPolicy that lists the ingress they need (a namespace default-deny covers them too).",
		Frameworks:  []string{"CIS 5.3.2"},
	},
	{
		ID: "NET-003", Title: "No egress policy", Severity: low, Category: CategoryNetwork, Party: partyWorkload,
		Description: "No NetworkPolicy isolating egress selects the workload's pods, so a compromised pod can reach every pod, the cloud metadata endpoint and the internet. A policy isolates egress when its policyTypes lists Egress or, without policyTypes, when it has egress rules.",
		Remediation: "Select the pods with a NetworkPolicy that has policyTypes: [Egress] and lists the destinations they need, DNS included (a namespace default-deny covers them too).",
		Frameworks:  []string{"NSA"},
	},
	{
		ID: "NET-004", Title: "NetworkPolicy selects nothing", Severity: low, Category: CategoryNetwork, Party: partyWorkload,
		Description: "A podSelector or namespaceSelector that matches no pod or namespace is usually a typo in a label: the policy does not protect what its author meant, or does not allow the traffic it was written for. Empty selectors (every pod, every namespace) and ipBlock peers, which name addresses rather than pods, are not judged.",
		Remediation: "Fix the selector's labels so that they match the pods or namespaces intended, or delete the policy.",
	},
	{
		ID: "NET-005", Title: "CNI without NetworkPolicy support", Severity: medium, Category: CategoryNetwork, Party: partyPlatform,
		Description: "NetworkPolicies are enforced by the network plugin, not by Kubernetes: with a plugin that ignores them (flannel alone, the AWS VPC CNI with its policy agent off) every policy is accepted and none applies. The plugin is recognised by the images of its DaemonSets in any namespace; when none is recognised (a plugin built into the node image or managed by the provider) the check is not assessable.",
		Remediation: "Run a plugin that enforces NetworkPolicies (Calico, Cilium, Antrea…), add one beside the current plugin (Canal is flannel with Calico), or turn on the provider's policy enforcement.",
		Frameworks:  []string{"CIS 5.3.1", "NSA 3.0"},
	},
	{
		ID: "NET-006", Title: "Service with externalIPs", Severity: high, Category: CategoryNetwork, Party: partyWorkload,
		Description: "spec.externalIPs lets whoever can create Services intercept traffic to any IP address (CVE-2020-8554).",
		Remediation: "Remove spec.externalIPs; use a LoadBalancer Service, and enable the DenyServiceExternalIPs admission plugin.",
		Frameworks:  []string{"CIS 1.2.3"},
	},
	{
		ID: "NET-007", Title: "Externally exposed Service", Severity: medium, Category: CategoryNetwork, Party: partyWorkload,
		Description: "A NodePort or LoadBalancer Service is reachable from outside the cluster; it should be a deliberate choice.",
		Remediation: "Use a ClusterIP Service behind an Ingress or Gateway with TLS, or restrict loadBalancerSourceRanges.",
	},
	{
		ID: "NET-008", Title: "Ingress without TLS", Severity: medium, Category: CategoryNetwork, Party: partyWorkload,
		Description: "Hosts of an Ingress that spec.tls does not cover are served over plain HTTP: credentials and session cookies cross the network in clear. TLS terminated by the cloud load balancer, as its annotations configure it, counts.",
		Remediation: "Add the hosts to spec.tls with a certificate Secret (cert-manager can issue it), or terminate TLS at the load balancer.",
	},
	{
		ID: "NET-010", Title: "Ingress backend missing", Severity: low, Category: CategoryNetwork, Party: partyWorkload,
		Description: "An Ingress path, or its default backend, whose Service does not exist, or whose port the Service does not expose, answers 503: and whoever creates a Service of that name receives its traffic. Namespaces of which the inventory holds no Service are left out.",
		Remediation: "Point the backend at an existing Service and one of its ports (by number or by name), or remove the path.",
	},
	{
		ID: "NET-011", Title: "Allow-all NetworkPolicy rule", Severity: medium, Category: CategoryNetwork, Party: partyWorkload,
		Description: "An ingress rule without peers and ports admits every source, inside and outside the cluster, on every port; an egress rule without peers and ports lets the pods reach everything. A peer of every namespace (namespaceSelector: {}) or of every address (ipBlock 0.0.0.0/0 or ::/0 without exceptions) on every port is as open. Such a rule undoes the isolation the policy's pod selector promises.",
		Remediation: "List the peers (pods, namespaces, address blocks) and ports the pods need; for DNS egress, allow kube-dns on port 53 only.",
	},
	{
		ID: "NET-009", Title: "Dangling service", Severity: low, Category: CategoryNetwork, Party: partyWorkload,
		Description: "A Service whose selector matches no pod has no endpoints: clients fail, and the first pod that takes on its labels, by mistake or by design, receives its traffic. Pods of every controller count, operators' included.",
		Remediation: "Fix the selector to match the pods' labels, or delete the Service.",
	},
}
