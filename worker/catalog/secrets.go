package catalog

var secretChecks = []Meta{
	{
		ID: "SEC-004", Title: "Missing Secret reference", Severity: low, Category: CategorySecrets, Party: partyWorkload,
		Description:   "A volume, env var or imagePullSecret naming a Secret that does not exist leaves the pod failing to start, or starting without what it expects.",
		Remediation:   "Create the Secret, or remove the reference.",
		NotAssessable: "needs the names of Secrets, and the worker is deliberately not allowed to list Secrets: RBAC cannot grant their names without their values",
	},
	{
		ID: "SA-003", Title: "Default SA automounts / has bindings", Severity: medium, Category: CategoryServiceAccounts, Party: partyPlatform,
		Description: "Every pod that names no service account runs as its namespace's default one: unless it turns automounting off and has no bindings of its own, each of those pods carries a token with its permissions.",
		Remediation: "Set automountServiceAccountToken: false on the default ServiceAccount of every namespace, and bind roles to dedicated service accounts instead.",
		Frameworks:  []string{"CIS 5.1.5"},
	},
	{
		ID: "SA-004", Title: "Missing SA reference", Severity: low, Category: CategoryServiceAccounts, Party: partyWorkload,
		Description: "The pods name a service account that does not exist: they cannot be created until it does, and whoever creates an account of that name decides their permissions. Namespaces of which the inventory holds no ServiceAccount at all are left out, and so is default, which Kubernetes creates in every namespace.",
		Remediation: "Create the ServiceAccount, or fix serviceAccountName.",
	},
	{
		ID: "SEC-001", Title: "Secret as env var", Severity: low, Category: CategorySecrets, Party: partyWorkload,
		Description: "A secret in an environment variable is inherited by every child process, shows in crash dumps and debug endpoints, and cannot be rotated without a restart; a mounted file has none of these problems.",
		Remediation: "Mount the Secret as a volume and have the application read the file.",
		Frameworks:  []string{"CIS 5.4.1"},
	},
	{
		ID: "SEC-003", Title: "Secret in ConfigMap", Severity: high, Category: CategorySecrets, Party: partyWorkload,
		Description: "A ConfigMap key named like a credential, or holding a private key, a cloud or API token, a password assignment or a URL with a password, is readable by everyone who can read ConfigMaps, which RBAC treats as harmless. The kubectl.kubernetes.io/last-applied-configuration annotation keeps what was last applied, so a credential removed from the data by an edit, or an embedded Secret manifest, can still be in it.",
		Remediation: "Move the value into a Secret, rotate it, and re-apply the object so that its last-applied-configuration annotation no longer holds it.",
		Frameworks:  []string{"NSA", "MITRE Credential access"},
	},
	{
		ID: "SEC-005", Title: "Credential in an annotation", Severity: high, Category: CategorySecrets, Party: partyWorkload,
		Description: "An annotation, on any object or on a workload's pod template, whose value holds a private key, a cloud access key, a known API token, a JSON Web Token, a URL with a password or a configuration that sets a password: annotations are readable by everyone who can read the object, and copied into tooling, logs and dashboards. Told by the value, not the annotation's name, which tools choose freely. The last-applied-configuration annotation is SEC-003's.",
		Remediation: "Move the value into a Secret, rotate it, and have the tool that reads the annotation take a reference to the Secret instead.",
		Frameworks:  []string{"NSA", "MITRE Credential access"},
	},
}
