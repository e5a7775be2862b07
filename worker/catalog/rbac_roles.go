package catalog

var rbacRoleChecks = []Meta{
	{
		ID: "RBAC-002", Title: "Wildcard in RBAC rule", Severity: high, Category: CategoryRBAC, Party: partyPlatform,
		Description: "A '*' in verbs, resources or apiGroups grants everything, including what is added to the API later.",
		Remediation: "List the verbs, resources and API groups explicitly.",
		Frameworks:  []string{"CIS 5.1.3"},
	},
	{
		ID: "RBAC-003", Title: "Secrets readable", Severity: high, Category: CategoryRBAC, Party: partyPlatform,
		Description: "get, list or watch on secrets reads every secret in scope, service account tokens included. A ClusterRole grants it cluster-wide (HIGH), a Role in one namespace (MEDIUM). A rule limited to named Secrets (resourceNames) reads those only, and is not reported.",
		Remediation: "Remove secrets from the rule; mount the one secret a workload needs instead of reading it through the API.",
		Frameworks:  []string{"CIS 5.1.2", "MITRE Credential access"},
	},
	{
		ID: "RBAC-004", Title: "Can create pods / workloads", Severity: medium, Category: CategoryRBAC, Party: partyPlatform,
		Description: "Whoever can create pods, or the controllers that create them, can run any image with any service account of the namespace, and mount its secrets: the permissions of every service account in scope are theirs.",
		Remediation: "Grant create on pods and workload controllers only to deployment pipelines and operators that need it; keep people on read access.",
		Frameworks:  []string{"CIS 5.1.4"},
	},
	{
		ID: "RBAC-005", Title: "exec or attach into pods", Severity: high, Category: CategoryRBAC, Party: partyPlatform,
		Description: "create on pods/exec or pods/attach runs commands inside any pod in scope, with that pod's identity and secrets.",
		Remediation: "Remove pods/exec and pods/attach; grant them only to break-glass roles.",
		Frameworks:  []string{"MITRE Execution"},
	},
	{
		ID: "RBAC-006", Title: "port-forward", Severity: medium, Category: CategoryRBAC, Party: partyPlatform,
		Description: "pods/portforward opens a tunnel from the caller to any port of any pod in scope, past Services, Ingresses and NetworkPolicies. Over WebSockets the request is a get, so get is flagged as well as create.",
		Remediation: "Remove pods/portforward from the role; expose what must be reached through a Service.",
	},
	{
		ID: "RBAC-007", Title: "Privilege escalation through RBAC", Severity: critical, Category: CategoryRBAC, Party: partyPlatform,
		Description: "bind and escalate on roles, or impersonate on users, groups, service accounts or UIDs, let a subject grant itself any permission (CRITICAL). Creating, updating or patching roles and bindings hands what the writer holds to anyone it chooses, and with bind or escalate anything (HIGH).",
		Remediation: "Remove bind, escalate and impersonate verbs from the role, and write access to roles and bindings; leave RBAC to the pipeline that owns it.",
		Frameworks:  []string{"CIS 5.1.8", "MITRE Privilege escalation"},
	},
	{
		ID: "RBAC-008", Title: "Destructive rights", Severity: medium, Category: CategoryRBAC, Party: partyPlatform,
		Description: "delete or deletecollection on pods and workload controllers takes applications down; on events it erases the trail of what happened.",
		Remediation: "Keep delete and deletecollection to the pipelines and operators that manage the objects; nobody needs to delete events.",
		Frameworks:  []string{"MITRE Impact", "MITRE Defense evasion"},
	},
	{
		ID: "RBAC-009", Title: "Create PersistentVolumes", Severity: medium, Category: CategoryRBAC, Party: partyPlatform,
		Description: "A PersistentVolume can be a hostPath of any node directory: whoever creates one and a claim to it mounts the node's filesystem, whatever the pod security policy of the namespace.",
		Remediation: "Leave PersistentVolumes to the storage provisioner; let users create PersistentVolumeClaims of a StorageClass.",
		Frameworks:  []string{"CIS 5.1.9"},
	},
	{
		ID: "RBAC-010", Title: "nodes/proxy", Severity: high, Category: CategoryRBAC, Party: partyPlatform,
		Description: "nodes/proxy reaches the kubelet API of every node: it runs commands in any pod of the node, bypassing admission and the audit log of the API server.",
		Remediation: "Remove nodes/proxy; read metrics through the metrics API, or give monitoring agents nodes/metrics and nodes/stats.",
		Frameworks:  []string{"CIS 5.1.10"},
	},
	{
		ID: "RBAC-011", Title: "CSR approval", Severity: high, Category: CategoryRBAC, Party: partyPlatform,
		Description: "update on certificatesigningrequests/approval approves certificate requests: with a signer's approve permission it issues client certificates for any user or group, system:masters included.",
		Remediation: "Leave CSR approval to the controller manager and to the node-bootstrap approver; grant it to no person or workload.",
		Frameworks:  []string{"CIS 5.1.11"},
	},
	{
		ID: "RBAC-012", Title: "Webhook configuration write", Severity: critical, Category: CategoryRBAC, Party: partyPlatform,
		Description: "Who writes validating or mutating webhook configurations receives every object sent to the API server, secrets included, and can rewrite or block them; deleting one switches off a security policy.",
		Remediation: "Grant write on webhook configurations only to the operators that own them; resourceNames does not make it safe, since rewriting one's own webhook is enough.",
		Frameworks:  []string{"CIS 5.1.12"},
	},
	{
		ID: "RBAC-013", Title: "Token creation", Severity: high, Category: CategoryRBAC, Party: partyPlatform,
		Description: "create on serviceaccounts/token mints a token of any service account in scope: its permissions become the caller's.",
		Remediation: "Remove serviceaccounts/token; a pod gets its own token by projection, without this permission.",
		Frameworks:  []string{"CIS 5.1.13"},
	},
	{
		ID: "RBAC-017", Title: "Manage networking / configmaps", Severity: high, Category: CategoryRBAC, Party: partyPlatform,
		Description: "Writing Services, Ingresses or NetworkPolicies redirects or opens traffic between workloads; writing ConfigMaps changes the configuration of what reads them. Writing kube-system's coredns or aws-auth ConfigMaps poisons the cluster's DNS or grants cluster-admin on EKS (CRITICAL).",
		Remediation: "Keep write access to networking objects and ConfigMaps to the pipelines that deploy them, limited with resourceNames; nobody else should write kube-system's ConfigMaps.",
		Frameworks:  []string{"MITRE Lateral movement"},
	},
}
