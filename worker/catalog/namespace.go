package catalog

var namespaceChecks = []Meta{
	{
		ID: "NS-001", Title: "Default namespace used", Severity: low, Category: CategoryNamespaces, Party: partyWorkload,
		Description: "Objects in the default namespace share it with everything deployed without a namespace: no boundary for RBAC, quotas or network policies. What Kubernetes puts there itself (the kubernetes Service, the default ServiceAccount, kube-root-ca.crt) and the policies that protect it are left out.",
		Remediation: "Move the object to a namespace of its own and set the namespace in its manifest.",
		Frameworks:  []string{"CIS 5.7.4"},
	},
	{
		ID: "NS-002", Title: "User workloads in kube-system", Severity: medium, Category: CategoryNamespaces, Party: partyPlatform,
		Description: "kube-system holds the cluster's own components and their credentials; a workload there that is not one of them shares their service accounts, secrets and exemptions. A workload counts as a component when it runs at a system priority class or carries the labels Kubernetes add-ons and managed providers use (k8s-app, tier: control-plane, addonmanager.kubernetes.io/mode, kubernetes.io/cluster-service, eks.amazonaws.com/component, kubernetes.azure.com/managedby).",
		Remediation: "Move the workload to a namespace of its own.",
		Frameworks:  []string{"NSA 1.12"},
	},
	{
		ID: "NS-003", Title: "No ResourceQuota", Severity: low, Category: CategoryNamespaces, Party: partyPlatform,
		Description: "Without a ResourceQuota one namespace can take all the cluster's CPU, memory, pods or load balancers.",
		Remediation: "Add a ResourceQuota to the namespace, sized for its tenant.",
		Frameworks:  []string{"NSA 4.0"},
	},
	{
		ID: "NS-004", Title: "No LimitRange", Severity: low, Category: CategoryNamespaces, Party: partyPlatform,
		Description: "Without a LimitRange, containers that set no requests or limits get none: the scheduler cannot place them sensibly and nothing bounds them.",
		Remediation: "Add a LimitRange with default requests and limits for containers.",
		Frameworks:  []string{"NSA 4.1"},
	},
	{
		ID: "NS-005", Title: "No Pod Security Admission", Severity: medium, Category: CategoryNamespaces, Party: partyPlatform,
		Description: "A namespace without the pod-security.kubernetes.io/enforce label admits any pod, privileged ones included, unless the API server sets a cluster-wide default (which the API does not show). Not reported when a policy engine (Gatekeeper, Kyverno, Kubewarden, jsPolicy) validates admissions.",
		Remediation: "Label the namespace pod-security.kubernetes.io/enforce=restricted, or baseline where its workloads need it.",
		Frameworks:  []string{"CIS 5.2.1"},
	},
	{
		ID: "NS-006", Title: "PSA level too weak", Severity: medium, Category: CategoryNamespaces, Party: partyPlatform,
		Description: "A tenant namespace that enforces the privileged level admits any pod, privileged containers and host namespaces included. (Enforcing less than the namespace's workloads already meet is PSS-003.)",
		Remediation: "Enforce baseline or restricted on the namespace; move workloads that need privileges to a dedicated, reviewed namespace.",
		Frameworks: []string{
			"CIS 5.2.2", "CIS 5.2.3", "CIS 5.2.4", "CIS 5.2.5", "CIS 5.2.6", "CIS 5.2.7",
			"CIS 5.2.8", "CIS 5.2.9", "CIS 5.2.10", "CIS 5.2.11", "CIS 5.2.12", "CIS 5.2.13",
			"PSS Baseline", "PSS Restricted",
		},
	},
	{
		ID: "NS-007", Title: "Ownership labels missing", Severity: low, Category: CategoryNamespaces, Party: partyPlatform,
		Description: "A namespace with no owner or team label or annotation, and no app.kubernetes.io/* label, has nobody to route its findings to. The default namespace belongs to the cluster and is left out.",
		Remediation: "Label the namespace with its owner or team, e.g. team: payments.",
	},
	{
		ID: "NS-008", Title: "Deprecated API version", Severity: low, Category: CategoryNamespaces, Party: partyWorkload,
		Description: "The API server serves every object in whichever version a client asks for, so the version a manifest uses shows only where the manifest was recorded: in the kubectl.kubernetes.io/last-applied-configuration annotation (kubectl apply) and in managedFields entries of server-side apply. An object last applied with a version Kubernetes no longer serves cannot be applied again from the same manifest. Objects created otherwise (Helm, operators, kubectl create) cannot be told. A snapshot's manifest in a removed version of a workload, policy or RBAC kind is checked as the current version, and reported here with the version it is written in.",
		Remediation: "Update the manifest to the current apiVersion (apps/v1, networking.k8s.io/v1, policy/v1, batch/v1, rbac.authorization.k8s.io/v1, admissionregistration.k8s.io/v1) and apply it again.",
	},
}
