package catalog

var podHardeningChecks = []Meta{
	{
		ID: "POD-008", Title: "Writable hostPath", Severity: high, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "A container that mounts a host path without readOnly: true can change the node's files: plant binaries, rewrite configuration, persist beyond the pod.",
		Remediation: "Set readOnly: true on every volumeMount of a hostPath volume, or replace the hostPath with an emptyDir or a PersistentVolumeClaim.",
		Frameworks:  []string{"CIS 5.2.12", "PSS Baseline: HostPath Volumes", "MITRE Persistence", "MITRE Lateral movement"},
	},
	{
		ID: "POD-010", Title: "Sensitive host dir mounted", Severity: high, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "A hostPath volume on the node's root, system directories (/etc, /proc, /sys, /dev, /boot, /lib, /usr), the kubelet's or etcd's state, or users' home directories exposes node credentials and the means to take over the node.",
		Remediation: "Mount only the narrow path the workload needs, read-only; move node agents that need more to a reviewed, exempted namespace.",
		Frameworks:  []string{"PSS Baseline: HostPath Volumes", "MITRE Credential access"},
	},
	{
		ID: "POD-012", Title: "NET_RAW not dropped / added", Severity: medium, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "NET_RAW, in the runtime's default set, lets a process forge packets and spoof addresses (ARP and DNS spoofing) on the pod network.",
		Remediation: "Add NET_RAW (or ALL) to securityContext.capabilities.drop and remove it from capabilities.add.",
		Frameworks:  []string{"CIS 5.2.8", "PSS Baseline: Capabilities", "PSS Restricted: Capabilities"},
	},
	{
		ID: "POD-013", Title: "Capabilities not dropped ALL", Severity: low, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "The restricted profile requires dropping ALL capabilities and adding back at most NET_BIND_SERVICE: every other capability is kernel attack surface the process rarely needs.",
		Remediation: "Set securityContext.capabilities.drop: [ALL] and add only NET_BIND_SERVICE if the process binds a port below 1024.",
		Frameworks:  []string{"CIS 5.2.10", "PSS Restricted: Capabilities"},
	},
	{
		ID: "POD-016", Title: "Root group", Severity: low, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "Group 0 (root) owns many files of the image and of the node; a process in it, as primary group, fsGroup or supplemental group, can read or write them.",
		Remediation: "Set runAsGroup and fsGroup to a non-zero GID and remove 0 from supplementalGroups.",
		Frameworks:  []string{"CIS 5.7.3", "NSA 1.6"},
	},
	{
		ID: "POD-017", Title: "Low UID or GID", Severity: low, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "A UID or GID below 10000 is likely that of a user, group or service on the node: a process that escapes the container acts as that user, with that group's files.",
		Remediation: "Run as a UID and GID of 10000 or above, e.g. runAsUser: 10001 and runAsGroup: 10001, and build the image for them.",
		Frameworks:  []string{"CIS 5.7.3"},
	},
	{
		ID: "POD-019", Title: "Seccomp unset / Unconfined", Severity: medium, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "Without a seccomp profile (or with Unconfined) a container can make every system call, including those behind most kernel container escapes.",
		Remediation: "Set securityContext.seccompProfile.type: RuntimeDefault on the pod (or Localhost with a reviewed profile); remove Unconfined.",
		Frameworks:  []string{"CIS 5.7.2", "NSA 1.10", "PSS Baseline: Seccomp", "PSS Restricted: Seccomp"},
	},
	{
		ID: "POD-020", Title: "AppArmor unconfined / unset", Severity: low, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "An Unconfined AppArmor profile turns off the mandatory access control that limits file, mount and network access; without a profile the container is confined only where the node enables AppArmor by default.",
		Remediation: "Set securityContext.appArmorProfile.type: RuntimeDefault (or Localhost with a reviewed profile) and remove Unconfined.",
		Frameworks:  []string{"CIS 5.7.3", "NSA 1.9", "PSS Baseline: AppArmor"},
	},
	{
		ID: "POD-021", Title: "Custom SELinux options", Severity: medium, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "A custom SELinux user, role or a type other than the container types (such as spc_t) lifts the SELinux confinement of the container.",
		Remediation: "Remove seLinuxOptions.user and role, and use a container type (container_t, container_init_t, container_kvm_t, container_engine_t) or none.",
		Frameworks:  []string{"CIS 5.7.3", "NSA 1.8", "PSS Baseline: SELinux"},
	},
	{
		ID: "POD-022", Title: "Unmasked /proc", Severity: medium, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "procMount: Unmasked exposes the /proc paths the runtime masks by default, such as /proc/kcore and /proc/sysrq-trigger.",
		Remediation: "Remove securityContext.procMount or set it to Default.",
		Frameworks:  []string{"PSS Baseline: /proc Mount Type"},
	},
	{
		ID: "POD-023", Title: "Unsafe sysctls", Severity: medium, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "Sysctls outside the safe set are not namespaced, or not isolated between pods: setting them affects the node and every pod on it.",
		Remediation: "Remove the sysctl from securityContext.sysctls; tune the node itself if the workload really needs it.",
		Frameworks:  []string{"CIS 5.7.3", "PSS Baseline: Sysctls"},
	},
	{
		ID: "POD-024", Title: "Windows HostProcess", Severity: high, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "A Windows HostProcess container runs directly on the node, with the node's network and filesystem and any account of the node.",
		Remediation: "Remove windowsOptions.hostProcess, or set it to false, at pod and container level.",
		Frameworks:  []string{"CIS 5.2.11", "PSS Baseline: HostProcess"},
	},
	{
		ID: "POD-025", Title: "Non-core volume types", Severity: low, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "Volume types other than configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected and secret mount node paths or network storage directly, bypassing PersistentVolumes and their review.",
		Remediation: "Use a PersistentVolumeClaim backed by a PersistentVolume (or a CSI driver) instead of the volume type.",
		Frameworks:  []string{"PSS Restricted: Volume Types"},
	},
	{
		ID: "POD-026", Title: "No Linux hardening at all", Severity: medium, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "A container with none of seccomp, AppArmor, SELinux options or dropped capabilities relies on the runtime's defaults alone.",
		Remediation: "Set at least seccompProfile.type: RuntimeDefault and capabilities.drop: [ALL]; add an AppArmor or SELinux profile where the nodes support it.",
		Frameworks:  []string{"CIS 5.7.3", "NSA"},
	},
	{
		ID: "POD-027", Title: "No securityContext", Severity: medium, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "Neither the pod nor the container sets a securityContext: every setting is the permissive default.",
		Remediation: "Set a securityContext at pod or container level: runAsNonRoot, allowPrivilegeEscalation: false, readOnlyRootFilesystem, seccompProfile and capabilities.drop: [ALL].",
		Frameworks:  []string{"CIS 5.7.3"},
	},
	{
		ID: "POD-028", Title: "SSH port exposed", Severity: low, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "A container or Service listening on port 22 or 2222 usually runs an SSH server: a way in that bypasses Kubernetes' access control and audit.",
		Remediation: "Remove the SSH server and its port; use kubectl exec or debug, which RBAC controls and the audit log records.",
		Frameworks:  []string{"MITRE Execution"},
	},
	{
		ID: "POD-029", Title: "Bidirectional mount propagation", Severity: medium, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "With Bidirectional propagation, mounts the container makes appear on the node and in every pod that shares the volume.",
		Remediation: "Remove mountPropagation or set it to None or HostToContainer.",
	},
	{
		ID: "POD-030", Title: "hostAliases", Severity: low, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "hostAliases write the pod's /etc/hosts: names resolve around DNS, which hides where traffic goes and can redirect it.",
		Remediation: "Remove hostAliases and publish the names in DNS, e.g. with a Service of type ExternalName.",
	},
	{
		ID: "POD-031", Title: "sudo in entrypoint", Severity: medium, Category: CategoryPodSecurity, Party: partyWorkload,
		Description: "A command that calls sudo expects to gain root inside the container: the image ships a setuid binary and the container allows privilege escalation.",
		Remediation: "Do the privileged step at image build time, or in an init container with exactly the capability it needs, and remove sudo from the image.",
	},
}
