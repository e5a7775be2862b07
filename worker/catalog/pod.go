package catalog

import "fmt"

var podChecks = []Meta{
	{
		ID: "POD-001", Title: "Privileged container", Severity: critical, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "A privileged container has every capability and all host devices: a compromise of it is a compromise of the node.",
		Remediation: "Remove securityContext.privileged or set it to false.",
		Frameworks:  []string{"CIS 5.2.2", "NSA 1.2", "PSS Baseline: Privileged Containers", "MITRE Privilege escalation"},
	},
	{
		ID: "POD-002", Title: "Privilege escalation allowed", Severity: high, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "Unless allowPrivilegeEscalation is false, a process can gain more privileges than its parent, e.g. through setuid binaries.",
		Remediation: "Set securityContext.allowPrivilegeEscalation: false on the container.",
		Frameworks:  []string{"CIS 5.2.6", "NSA 1.7", "PSS Restricted: Privilege Escalation"},
	},
	{
		ID: "POD-006", Title: "Host port", Severity: medium, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "A hostPort binds the node's network interface, bypassing Services and most network policies.",
		Remediation: "Remove ports[*].hostPort and expose the container through a Service.",
		Frameworks:  []string{"CIS 5.2.13", "PSS Baseline: Host Ports"},
	},
	{
		ID: "POD-011", Title: "Dangerous capability added", Severity: high, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "Capabilities such as SYS_ADMIN, SYS_MODULE, NET_ADMIN or SYS_PTRACE let a container escape to or tamper with the node.",
		Remediation: "Remove the capability from securityContext.capabilities.add; add only what the process needs, e.g. NET_BIND_SERVICE.",
		Frameworks:  []string{"CIS 5.2.9", "PSS Baseline: Capabilities"},
	},
	{
		ID: "POD-014", Title: "May run as root", Severity: medium, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "Without runAsNonRoot: true (or a non-zero runAsUser), the container runs as whatever user its image names, often root.",
		Remediation: "Set securityContext.runAsNonRoot: true at pod or container level, and build the image with a non-root USER.",
		Frameworks:  []string{"CIS 5.2.7", "NSA 1.0", "PSS Restricted: Running as Non-root"},
	},
	{
		ID: "POD-015", Title: "Runs as UID 0", Severity: high, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "runAsUser: 0 runs the container as root explicitly.",
		Remediation: "Set runAsUser to a non-zero UID, or remove it and set runAsNonRoot: true.",
		Frameworks:  []string{"CIS 5.2.7", "PSS Restricted: Running as Non-root user"},
	},
	{
		ID: "POD-018", Title: "Writable root filesystem", Severity: medium, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "A writable root filesystem lets an intruder drop tools and persist changes inside the container.",
		Remediation: "Set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where the process must write.",
		Frameworks:  []string{"CIS 5.7.3", "NSA 1.1"},
	},
	{
		ID: "IMG-001", Title: "Mutable image tag", Severity: medium, Category: CategoryImages, Party: partyWorkload,
		Description: "An image without a tag, or tagged latest, and without a digest can change under the same name: what runs is not what was reviewed.",
		Remediation: "Pin the image to a version tag, or better to a digest (image@sha256:...).",
	},
	{
		ID: "IMG-002", Title: "Pull policy", Severity: low, Category: CategoryImages, Party: partyWorkload,
		Description: "With a mutable tag and imagePullPolicy IfNotPresent or Never, each node runs whatever image it cached under that name: replicas can run different code, and a fixed image never reaches nodes that have the old one.",
		Remediation: "Pin the image to a version tag or digest; otherwise set imagePullPolicy: Always (the default for untagged and latest images).",
	},
	{
		ID: "RES-001", Title: "No CPU limit", Severity: low, Category: CategoryResources, Party: partyWorkload,
		Description: "A container without a CPU limit can starve its neighbours on the node.",
		Remediation: "Set resources.limits.cpu.",
		Frameworks:  []string{"NSA 4.0"},
	},
	{
		ID: "RES-002", Title: "No memory limit", Severity: medium, Category: CategoryResources, Party: partyWorkload,
		Description: "A container without a memory limit can exhaust the node's memory and get other pods evicted.",
		Remediation: "Set resources.limits.memory.",
		Frameworks:  []string{"NSA 4.0"},
	},
	{
		ID: "SEC-002", Title: "Hard-coded credential in env", Severity: high, Category: CategorySecrets, Party: partyWorkload,
		Description: "An environment variable holds a credential in its literal value: one named like a credential (password, pwd, secret, token, *_KEY, credentials, in any case), or any variable whose value is a private key, a cloud access key, a known API token, a JSON Web Token or a URL with a password. It is readable by anyone who can read the workload.",
		Remediation: "Move the value into a Secret and reference it with valueFrom.secretKeyRef, or mount it as a file.",
		Frameworks:  []string{"NSA", "MITRE Credential access"},
	},
}

var workloadChecks = []Meta{
	hostNamespace("POD-003", "Host PID namespace", "hostPID", "CIS 5.2.3",
		"Sharing the host's PID namespace lets the container see and signal every process on the node."),
	hostNamespace("POD-004", "Host IPC namespace", "hostIPC", "CIS 5.2.4",
		"Sharing the host's IPC namespace exposes shared memory of every process on the node."),
	hostNamespace("POD-005", "Host network namespace", "hostNetwork", "CIS 5.2.5",
		"On the host's network the pod can reach node-local services and sniff traffic, and network policies do not apply to it."),
	{
		ID: "POD-007", Title: "hostPath volume", Severity: high, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "A hostPath volume exposes the node's filesystem to the pod; it is the most common path from a container to the node.",
		Remediation: "Use an emptyDir, a ConfigMap or a PersistentVolumeClaim instead of hostPath.",
		Frameworks:  []string{"CIS 5.2.12", "PSS Baseline: HostPath Volumes", "MITRE Privilege escalation"},
	},
	{
		ID: "POD-009", Title: "Container runtime socket mounted", Severity: critical, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "Whoever reaches the container runtime's socket can start privileged containers on the node.",
		Remediation: "Do not mount docker.sock, containerd.sock or crio.sock into pods.",
		Frameworks:  []string{"PSS Baseline: HostPath Volumes"},
	},
	{
		ID: "SA-001", Title: "Service account token automounted", Severity: medium, Category: CategoryServiceAccounts, Party: partyWorkload,
		Description: "Every pod gets an API token of its service account unless automounting is turned off; most workloads never call the API.",
		Remediation: "Set automountServiceAccountToken: false on the pod spec (or on its ServiceAccount) unless it calls the Kubernetes API.",
		Frameworks:  []string{"CIS 5.1.6", "NSA 1.11"},
	},
	{
		ID: "SA-002", Title: "Default service account used", Severity: medium, Category: CategoryServiceAccounts, Party: partyWorkload,
		Description: "Workloads on the namespace's default service account share its permissions with everything else that uses it.",
		Remediation: "Create a dedicated ServiceAccount for the workload and set serviceAccountName.",
		Frameworks:  []string{"CIS 5.1.5"},
	},
}

var registryChecks = []Meta{
	{
		ID: "IMG-003", Title: "Image from an untrusted registry", Severity: medium, Category: CategoryImages, Party: partyWorkload,
		Description: "Images should come only from the registries the operator trusts (scanned, signed, mirrored); anything else is unreviewed code. The allow-list is the scan's trusted registries setting.",
		Remediation: "Mirror the image into a trusted registry and reference it from there, or add the registry to the allow-list if it is trusted.",
		Frameworks:  []string{"CIS 5.5.1"},
	},
	{
		ID: "IMG-005", Title: "Image from a denied or frozen registry", Severity: medium, Category: CategoryImages, Party: partyWorkload,
		Description: "Images must not come from the registries of the scan's deny-list, nor from registries that no longer receive images, which serve only what they held when frozen: no security fixes, and pulls that fail when they are switched off. k8s.gcr.io (and its old alias gcr.io/google_containers) was frozen on 3 April 2023; Kubernetes' images are at registry.k8s.io.",
		Remediation: "Pull the image from its current registry (registry.k8s.io for Kubernetes' own images), or from one that is not denied, at a supported version.",
	},
}

// hostNamespace is the entry of a check that pods do not share one of the
// node's namespaces: field is the pod spec's field that shares it.
func hostNamespace(id, title, field, cis, description string) Meta {
	return Meta{
		ID: id, Title: title, Severity: high, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: description,
		Remediation: fmt.Sprintf("Remove %s from the pod spec or set it to false.", field),
		Frameworks:  []string{cis, "PSS Baseline: Host Namespaces"},
	}
}
