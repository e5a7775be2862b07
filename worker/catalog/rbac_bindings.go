package catalog

var rbacBindingChecks = []Meta{
	{
		ID: "RBAC-001", Title: "cluster-admin bound", Severity: high, Category: CategoryRBAC, Party: partyPlatform,
		Description: "cluster-admin grants every verb on every resource; each binding of it is an account that can take over the cluster. Judged by effect: a binding to any role that grants every verb on every resource is one too, whatever the role's name.",
		Remediation: "Bind a role with only the permissions the subject needs; keep cluster-admin for break-glass accounts.",
		Frameworks:  []string{"CIS 5.1.1", "MITRE Privilege escalation"},
	},
	{
		ID: "RBAC-014", Title: "Anonymous access bound", Severity: critical, Category: CategoryRBAC, Party: partyPlatform,
		Description: "A binding to system:anonymous or system:unauthenticated gives its permissions to anyone who can reach the API server.",
		Remediation: "Delete the binding, or bind the role to authenticated subjects only.",
	},
	{
		ID: "RBAC-015", Title: "system:authenticated elevated", Severity: critical, Category: CategoryRBAC, Party: partyPlatform,
		Description: "Every user and every service account of the cluster is in system:authenticated; on clusters with external identity providers, often anyone with an account at the provider. Kubernetes grants that group discovery only.",
		Remediation: "Bind the role to the groups that need it instead of system:authenticated.",
	},
	{
		ID: "RBAC-016", Title: "system:masters binding", Severity: critical, Category: CategoryRBAC, Party: partyPlatform,
		Description: "Members of system:masters bypass authorization altogether and cannot be revoked short of rotating the cluster CA; a binding naming the group shows it is in use beyond the default cluster-admin binding.",
		Remediation: "Do not issue credentials in system:masters; bind people and automation to named groups, and remove the binding.",
		Frameworks:  []string{"CIS 5.1.7"},
	},
	{
		ID: "RBAC-018", Title: "Dangling binding", Severity: low, Category: CategoryRBAC, Party: partyPlatform,
		Description: "A binding to a Role or ClusterRole that does not exist grants nothing today, and whatever a role of that name will grant tomorrow, to whoever creates it.",
		Remediation: "Delete the binding, or create the role it was meant for.",
	},
	{
		ID: "RBAC-019", Title: "Dashboard access", Severity: low, Category: CategoryRBAC, Party: partyPlatform,
		Description: "The Dashboard acts with its own service account for whoever reaches it: permissions bound to that account are open to the Dashboard's users, and subjects bound to the Dashboard's roles read what it reads.",
		Remediation: "Bind nothing beyond its own roles to the Dashboard's service accounts, let users log in with their own tokens, and bind the Dashboard's roles to the Dashboard only.",
		Frameworks:  []string{"MITRE Discovery"},
	},
	{
		ID: "SA-005", Title: "Workload SA is admin / can take over cluster", Severity: high, Category: CategoryServiceAccounts, Party: partyWorkload,
		Description: "The pods' service account token, mounted in every container, carries what the account is bound to: cluster-admin or any role that grants everything, or permissions that RBAC-002, 003, 004, 005, 007, 009, 010, 011, 012 or 013 flag (wildcards, secrets, creating pods, which runs them as any service account of the namespace, exec, escalation and writing roles or bindings, PersistentVolumes, nodes/proxy, CSR approval, webhooks, tokens). Bindings of its name, of its user name and of the groups system:serviceaccounts[:namespace] and system:authenticated count, aggregated ClusterRoles included. Cluster-wide (HIGH); only in namespaces through RoleBindings (MEDIUM). Pods that do not mount the token are left out.",
		Remediation: "Run the workload as a service account bound to only what it needs, and set automountServiceAccountToken: false when it does not call the API.",
		Frameworks:  []string{"CIS 5.1.1", "MITRE Credential access"},
	},
}
