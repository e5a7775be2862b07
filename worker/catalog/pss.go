package catalog

var pssChecks = []Meta{
	{
		ID: "PSS-001", Title: "Violates the baseline Pod Security Standard", Severity: high, Category: CategoryPSS, Party: partyWorkload,
		Description: "The pods do not meet the baseline Pod Security Standard, which prevents known privilege escalations; the PodSecurity admission plugin would reject them in a namespace that enforces baseline. Evaluated with Kubernetes' own pod-security-admission library.",
		Remediation: "Remove what the message lists (host namespaces, privileged mode, hostPath volumes, added capabilities, …), then aim for restricted.",
		Frameworks:  []string{"PSS Baseline", "CIS 5.2.1", "NSA 1.0"},
	},
	{
		ID: "PSS-002", Title: "Meets baseline but not restricted", Severity: low, Category: CategoryPSS, Party: partyWorkload,
		Description: "The pods meet the baseline Pod Security Standard but not restricted, the current hardening best practice. Evaluated with Kubernetes' own pod-security-admission library.",
		Remediation: "Apply what the message lists: runAsNonRoot, allowPrivilegeEscalation: false, capabilities drop ALL, a RuntimeDefault seccomp profile, restricted volume types.",
		Frameworks:  []string{"PSS Restricted", "CIS 5.2.1"},
	},
	{
		ID: "PSS-003", Title: "Namespace enforces less than its workloads meet", Severity: low, Category: CategoryPSS, Party: partyPlatform,
		Description: "Every workload of the namespace already meets a stricter Pod Security Standard than the namespace enforces: raising pod-security.kubernetes.io/enforce costs nothing today and stops a weaker pod tomorrow.",
		Remediation: "Label the namespace pod-security.kubernetes.io/enforce with the level the message names.",
		Frameworks:  []string{"CIS 5.2.1", "PSS"},
	},
	{
		ID: "PSS-004", Title: "Workload violates its namespace's enforced level", Severity: medium, Category: CategoryPSS, Party: partyWorkload,
		Description: "The namespace enforces a Pod Security Standard the workload's pods do not meet: they predate the label or were admitted another way, and will be rejected the next time they are re-created (a rollout, a node drain).",
		Remediation: "Fix the pod spec to meet the namespace's level before the next rollout.",
		Frameworks:  []string{"CIS 5.2.1", "PSS"},
	},
}
