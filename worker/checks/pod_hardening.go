package checks

import (
	"fmt"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// podHardeningChecks complete the pod checks of pod.go with the Linux and
// Windows hardening settings of the Pod Security Standards and the host
// mounts, ports and commands that weaken isolation. Container-level
// settings override the pod-level ones, as the kubelet applies them. The
// Linux-only checks skip pods that declare spec.os.name: windows, as the
// Pod Security Standards do.
var podHardeningChecks = []*Check{
	{
		Meta: Meta{
			ID: "POD-008", Title: "Writable hostPath", Severity: high, Category: CategoryPodSecurity, Party: partyWorkload,
			Description: "A container that mounts a host path without readOnly: true can change the node's files: plant binaries, rewrite configuration, persist beyond the pod.",
			Remediation: "Set readOnly: true on every volumeMount of a hostPath volume, or replace the hostPath with an emptyDir or a PersistentVolumeClaim.",
			Frameworks:  []string{"CIS 5.2.12", "PSS Baseline: HostPath Volumes", "MITRE Persistence", "MITRE Lateral movement"},
		},
		container: func(r *reporter, w *Workload, c *Container) {
			for _, m := range mountsOf(w, c, func(v *corev1.Volume, m *corev1.VolumeMount) bool { return v.HostPath != nil && !m.ReadOnly }) {
				r.report(w.Resource, fmt.Sprintf("%s.volumeMounts[%s]", c.Path, m.volume.Name), "container %q mounts host path %s writable at %s", c.Name, m.volume.HostPath.Path, m.mount.MountPath)
			}
		},
	},
	{
		Meta: Meta{
			ID: "POD-010", Title: "Sensitive host dir mounted", Severity: high, Category: CategoryPodSecurity, Party: partyWorkload,
			Description: "A hostPath volume on the node's root, system directories (/etc, /proc, /sys, /dev, /boot, /lib, /usr), the kubelet's or etcd's state, or users' home directories exposes node credentials and the means to take over the node.",
			Remediation: "Mount only the narrow path the workload needs, read-only; move node agents that need more to a reviewed, exempted namespace.",
			Frameworks:  []string{"PSS Baseline: HostPath Volumes", "MITRE Credential access"},
		},
		workload: func(r *reporter, w *Workload) {
			for i := range w.Spec.Volumes {
				v := &w.Spec.Volumes[i]
				if v.HostPath == nil {
					continue
				}
				p := path.Clean(v.HostPath.Path)
				if !sensitiveHostPath(p) || (benignHostPath(p) && mountedReadOnly(w, v.Name)) {
					continue
				}
				r.report(w.Resource, fmt.Sprintf("volumes[%s]", v.Name), "volume %q mounts the sensitive host path %s", v.Name, v.HostPath.Path)
			}
		},
	},
	{
		Meta: Meta{
			ID: "POD-012", Title: "NET_RAW not dropped / added", Severity: medium, Category: CategoryPodSecurity, Party: partyWorkload,
			Description: "NET_RAW, in the runtime's default set, lets a process forge packets and spoof addresses (ARP and DNS spoofing) on the pod network.",
			Remediation: "Add NET_RAW (or ALL) to securityContext.capabilities.drop and remove it from capabilities.add.",
			Frameworks:  []string{"CIS 5.2.8", "PSS Baseline: Capabilities", "PSS Restricted: Capabilities"},
		},
		container: func(r *reporter, w *Workload, c *Container) {
			if windowsPod(w) {
				return
			}
			add, drop := capabilitiesOf(c)
			switch {
			case c.SecurityContext != nil && isTrue(c.SecurityContext.Privileged):
				r.report(w.Resource, c.Path, "container %q runs privileged, which grants NET_RAW whatever it drops", c.Name)
			case (add["NET_RAW"] || add["ALL"]) && !drop["NET_RAW"]:
				r.report(w.Resource, c.Path, "container %q adds the NET_RAW capability", c.Name)
			case !drop["NET_RAW"] && !drop["ALL"]:
				r.report(w.Resource, c.Path, "container %q does not drop the NET_RAW capability", c.Name)
			}
		},
	},
	{
		Meta: Meta{
			ID: "POD-013", Title: "Capabilities not dropped ALL", Severity: low, Category: CategoryPodSecurity, Party: partyWorkload,
			Description: "The restricted profile requires dropping ALL capabilities and adding back at most NET_BIND_SERVICE: every other capability is kernel attack surface the process rarely needs.",
			Remediation: "Set securityContext.capabilities.drop: [ALL] and add only NET_BIND_SERVICE if the process binds a port below 1024.",
			Frameworks:  []string{"CIS 5.2.10", "PSS Restricted: Capabilities"},
		},
		container: func(r *reporter, w *Workload, c *Container) {
			if windowsPod(w) {
				return
			}
			if c.SecurityContext != nil && isTrue(c.SecurityContext.Privileged) {
				r.report(w.Resource, c.Path, "container %q runs privileged, which grants every capability", c.Name)
				return
			}
			add, drop := capabilitiesOf(c)
			var extra []string
			for name := range add {
				if name != "NET_BIND_SERVICE" {
					extra = append(extra, name)
				}
			}
			slices.Sort(extra)
			switch {
			case !drop["ALL"] && len(extra) > 0:
				r.report(w.Resource, c.Path, "container %q does not drop ALL capabilities and adds %s", c.Name, strings.Join(extra, ", "))
			case !drop["ALL"]:
				r.report(w.Resource, c.Path, "container %q does not drop ALL capabilities", c.Name)
			case len(extra) > 0:
				r.report(w.Resource, c.Path, "container %q adds %s beyond NET_BIND_SERVICE", c.Name, strings.Join(extra, ", "))
			}
		},
	},
	{
		Meta: Meta{
			ID: "POD-016", Title: "Root group", Severity: low, Category: CategoryPodSecurity, Party: partyWorkload,
			Description: "Group 0 (root) owns many files of the image and of the node; a process in it, as primary group, fsGroup or supplemental group, can read or write them.",
			Remediation: "Set runAsGroup and fsGroup to a non-zero GID and remove 0 from supplementalGroups.",
			Frameworks:  []string{"CIS 5.7.3", "NSA 1.6"},
		},
		workload: func(r *reporter, w *Workload) {
			if windowsPod(w) {
				return
			}
			for _, c := range w.Containers() {
				if gid := effectiveGroup(w, &c); gid != nil && *gid == 0 {
					r.report(w.Resource, c.Path, "container %q runs with primary group 0", c.Name)
				}
			}
			psc := w.Spec.SecurityContext
			if psc == nil {
				return
			}
			var what []string
			if psc.FSGroup != nil && *psc.FSGroup == 0 {
				what = append(what, "fsGroup 0")
			}
			if slices.Contains(psc.SupplementalGroups, 0) {
				what = append(what, "supplemental group 0")
			}
			if len(what) > 0 {
				r.report(w.Resource, "", "pods run with %s", strings.Join(what, " and "))
			}
		},
	},
	{
		Meta: Meta{
			ID: "POD-017", Title: "Low UID or GID", Severity: low, Category: CategoryPodSecurity, Party: partyWorkload,
			Description: "A UID or GID below 10000 is likely that of a user, group or service on the node: a process that escapes the container acts as that user, with that group's files.",
			Remediation: "Run as a UID and GID of 10000 or above, e.g. runAsUser: 10001 and runAsGroup: 10001, and build the image for them.",
			Frameworks:  []string{"CIS 5.7.3"},
		},
		container: func(r *reporter, w *Workload, c *Container) {
			if windowsPod(w) {
				return
			}
			var low []string
			if uid := effectiveUser(w, c); uid != nil && *uid < lowIDs {
				low = append(low, fmt.Sprintf("UID %d", *uid))
			}
			if gid := effectiveGroup(w, c); gid != nil && *gid < lowIDs {
				low = append(low, fmt.Sprintf("GID %d", *gid))
			}
			if len(low) > 0 {
				r.report(w.Resource, c.Path, "container %q runs as %s, which may be of the node's users and groups", c.Name, strings.Join(low, " and "))
			}
		},
	},
	{
		Meta: Meta{
			ID: "POD-019", Title: "Seccomp unset / Unconfined", Severity: medium, Category: CategoryPodSecurity, Party: partyWorkload,
			Description: "Without a seccomp profile (or with Unconfined) a container can make every system call, including those behind most kernel container escapes.",
			Remediation: "Set securityContext.seccompProfile.type: RuntimeDefault on the pod (or Localhost with a reviewed profile); remove Unconfined.",
			Frameworks:  []string{"CIS 5.7.2", "NSA 1.10", "PSS Baseline: Seccomp", "PSS Restricted: Seccomp"},
		},
		container: func(r *reporter, w *Workload, c *Container) {
			if windowsPod(w) {
				return
			}
			switch p := effectiveSeccomp(w, c); {
			case p == nil:
				r.report(w.Resource, c.Path, "container %q has no seccomp profile", c.Name)
			case p.Type != corev1.SeccompProfileTypeRuntimeDefault && p.Type != corev1.SeccompProfileTypeLocalhost:
				r.report(w.Resource, c.Path, "container %q runs with seccomp profile %s", c.Name, p.Type)
			}
		},
	},
	{
		Meta: Meta{
			ID: "POD-020", Title: "AppArmor unconfined / unset", Severity: low, Category: CategoryPodSecurity, Party: partyWorkload,
			Description: "An Unconfined AppArmor profile turns off the mandatory access control that limits file, mount and network access; without a profile the container is confined only where the node enables AppArmor by default.",
			Remediation: "Set securityContext.appArmorProfile.type: RuntimeDefault (or Localhost with a reviewed profile) and remove Unconfined.",
			Frameworks:  []string{"CIS 5.7.3", "NSA 1.9", "PSS Baseline: AppArmor"},
		},
		container: func(r *reporter, w *Workload, c *Container) {
			if windowsPod(w) {
				return
			}
			switch effectiveAppArmor(w, c) {
			case "":
				r.report(w.Resource, c.Path, "container %q sets no AppArmor profile", c.Name)
			case corev1.AppArmorProfileTypeUnconfined:
				r.report(w.Resource, c.Path, "container %q runs AppArmor unconfined", c.Name)
			}
		},
	},
	{
		Meta: Meta{
			ID: "POD-021", Title: "Custom SELinux options", Severity: medium, Category: CategoryPodSecurity, Party: partyWorkload,
			Description: "A custom SELinux user, role or a type other than the container types (such as spc_t) lifts the SELinux confinement of the container.",
			Remediation: "Remove seLinuxOptions.user and role, and use a container type (container_t, container_init_t, container_kvm_t, container_engine_t) or none.",
			Frameworks:  []string{"CIS 5.7.3", "NSA 1.8", "PSS Baseline: SELinux"},
		},
		container: func(r *reporter, w *Workload, c *Container) {
			if windowsPod(w) {
				return
			}
			o := effectiveSELinux(w, c)
			if o == nil {
				return
			}
			var custom []string
			if o.Type != "" && !containerSELinuxTypes[o.Type] {
				custom = append(custom, fmt.Sprintf("type %s", o.Type))
			}
			if o.User != "" {
				custom = append(custom, fmt.Sprintf("user %s", o.User))
			}
			if o.Role != "" {
				custom = append(custom, fmt.Sprintf("role %s", o.Role))
			}
			if len(custom) > 0 {
				r.report(w.Resource, c.Path, "container %q runs with custom SELinux %s", c.Name, strings.Join(custom, ", "))
			}
		},
	},
	{
		Meta: Meta{
			ID: "POD-022", Title: "Unmasked /proc", Severity: medium, Category: CategoryPodSecurity, Party: partyWorkload,
			Description: "procMount: Unmasked exposes the /proc paths the runtime masks by default, such as /proc/kcore and /proc/sysrq-trigger.",
			Remediation: "Remove securityContext.procMount or set it to Default.",
			Frameworks:  []string{"PSS Baseline: /proc Mount Type"},
		},
		container: func(r *reporter, w *Workload, c *Container) {
			if windowsPod(w) {
				return
			}
			if sc := c.SecurityContext; sc != nil && sc.ProcMount != nil && *sc.ProcMount != corev1.DefaultProcMount {
				r.report(w.Resource, c.Path, "container %q uses procMount %s", c.Name, *sc.ProcMount)
			}
		},
	},
	{
		Meta: Meta{
			ID: "POD-023", Title: "Unsafe sysctls", Severity: medium, Category: CategoryPodSecurity, Party: partyWorkload,
			Description: "Sysctls outside the safe set are not namespaced, or not isolated between pods: setting them affects the node and every pod on it.",
			Remediation: "Remove the sysctl from securityContext.sysctls; tune the node itself if the workload really needs it.",
			Frameworks:  []string{"CIS 5.7.3", "PSS Baseline: Sysctls"},
		},
		workload: func(r *reporter, w *Workload) {
			if windowsPod(w) || w.Spec.SecurityContext == nil {
				return
			}
			for _, s := range w.Spec.SecurityContext.Sysctls {
				if !safeSysctls[normalizeSysctl(s.Name)] {
					r.report(w.Resource, fmt.Sprintf("securityContext.sysctls[%s]", s.Name), "pods set the unsafe sysctl %s", s.Name)
				}
			}
		},
	},
	{
		Meta: Meta{
			ID: "POD-024", Title: "Windows HostProcess", Severity: high, Category: CategoryPodSecurity, Party: partyWorkload,
			Description: "A Windows HostProcess container runs directly on the node, with the node's network and filesystem and any account of the node.",
			Remediation: "Remove windowsOptions.hostProcess, or set it to false, at pod and container level.",
			Frameworks:  []string{"CIS 5.2.11", "PSS Baseline: HostProcess"},
		},
		container: func(r *reporter, w *Workload, c *Container) {
			if hp := effectiveHostProcess(w, c); hp != nil && *hp {
				r.report(w.Resource, c.Path, "container %q runs as a Windows HostProcess container", c.Name)
			}
		},
	},
	{
		Meta: Meta{
			ID: "POD-025", Title: "Non-core volume types", Severity: low, Category: CategoryPodSecurity, Party: partyWorkload,
			Description: "Volume types other than configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected and secret mount node paths or network storage directly, bypassing PersistentVolumes and their review.",
			Remediation: "Use a PersistentVolumeClaim backed by a PersistentVolume (or a CSI driver) instead of the volume type.",
			Frameworks:  []string{"PSS Restricted: Volume Types"},
		},
		workload: func(r *reporter, w *Workload) {
			for i := range w.Spec.Volumes {
				v := &w.Spec.Volumes[i]
				if t := volumeType(v); !coreVolumeTypes[t] {
					r.report(w.Resource, fmt.Sprintf("volumes[%s]", v.Name), "volume %q is of type %s, outside the types the restricted profile allows", v.Name, t)
				}
			}
		},
	},
	{
		Meta: Meta{
			ID: "POD-026", Title: "No Linux hardening at all", Severity: medium, Category: CategoryPodSecurity, Party: partyWorkload,
			Description: "A container with none of seccomp, AppArmor, SELinux options or dropped capabilities relies on the runtime's defaults alone.",
			Remediation: "Set at least seccompProfile.type: RuntimeDefault and capabilities.drop: [ALL]; add an AppArmor or SELinux profile where the nodes support it.",
			Frameworks:  []string{"CIS 5.7.3", "NSA"},
		},
		container: func(r *reporter, w *Workload, c *Container) {
			if windowsPod(w) {
				return
			}
			if p := effectiveSeccomp(w, c); p != nil && p.Type != corev1.SeccompProfileTypeUnconfined {
				return
			}
			if t := effectiveAppArmor(w, c); t != "" && t != corev1.AppArmorProfileTypeUnconfined {
				return
			}
			if o := effectiveSELinux(w, c); o != nil && *o != (corev1.SELinuxOptions{}) {
				return
			}
			// Drops harden only when nothing dangerous is added back: with
			// drop [ALL] and add [ALL] or SYS_ADMIN the container has more
			// than the runtime's defaults, not less.
			add, drop := capabilitiesOf(c)
			var back []string
			for name := range add {
				if dangerousCapabilities[name] {
					back = append(back, name)
				}
			}
			if len(drop) > 0 && len(back) == 0 {
				return
			}
			if len(drop) > 0 {
				slices.Sort(back)
				r.report(w.Resource, c.Path, "container %q sets none of seccomp, AppArmor or SELinux, and adds %s back after its capability drops", c.Name, strings.Join(back, ", "))
				return
			}
			r.report(w.Resource, c.Path, "container %q sets none of seccomp, AppArmor, SELinux or capability drops", c.Name)
		},
	},
	{
		Meta: Meta{
			ID: "POD-027", Title: "No securityContext", Severity: medium, Category: CategoryPodSecurity, Party: partyWorkload,
			Description: "Neither the pod nor the container sets a securityContext: every setting is the permissive default.",
			Remediation: "Set a securityContext at pod or container level: runAsNonRoot, allowPrivilegeEscalation: false, readOnlyRootFilesystem, seccompProfile and capabilities.drop: [ALL].",
			Frameworks:  []string{"CIS 5.7.3"},
		},
		container: func(r *reporter, w *Workload, c *Container) {
			if c.SecurityContext != nil && *c.SecurityContext != (corev1.SecurityContext{}) {
				return
			}
			if psc := w.Spec.SecurityContext; psc != nil && !reflect.ValueOf(*psc).IsZero() {
				return
			}
			r.report(w.Resource, c.Path, "container %q has no securityContext, and neither has the pod", c.Name)
		},
	},
	{
		Meta: Meta{
			ID: "POD-028", Title: "SSH port exposed", Severity: low, Category: CategoryPodSecurity, Party: partyWorkload,
			Description: "A container or Service listening on port 22 or 2222 usually runs an SSH server: a way in that bypasses Kubernetes' access control and audit.",
			Remediation: "Remove the SSH server and its port; use kubectl exec or debug, which RBAC controls and the audit log records.",
			Frameworks:  []string{"MITRE Execution"},
		},
		inventory: func(r *reporter, inv *Inventory) {
			for _, w := range r.workloads(inv) {
				for _, c := range w.Containers() {
					for _, p := range c.Ports {
						if !tcp(p.Protocol) {
							continue
						}
						for _, port := range []int32{p.ContainerPort, p.HostPort} {
							if sshPort(port) {
								r.report(w.Resource, fmt.Sprintf("%s.ports[%d]", c.Path, p.ContainerPort), "container %q exposes SSH port %d", c.Name, port)
								break
							}
						}
					}
				}
			}
			for i := range inv.Services {
				s := &inv.Services[i]
				for _, p := range s.Spec.Ports {
					if tcp(p.Protocol) && (sshPort(p.Port) || (p.TargetPort.StrVal == "" && sshPort(p.TargetPort.IntVal))) {
						r.report(serviceResource(s), fmt.Sprintf("ports[%d]", p.Port), "Service exposes SSH on port %d", p.Port)
					}
				}
			}
		},
	},
	{
		Meta: Meta{
			ID: "POD-029", Title: "Bidirectional mount propagation", Severity: medium, Category: CategoryPodSecurity, Party: partyWorkload,
			Description: "With Bidirectional propagation, mounts the container makes appear on the node and in every pod that shares the volume.",
			Remediation: "Remove mountPropagation or set it to None or HostToContainer.",
		},
		container: func(r *reporter, w *Workload, c *Container) {
			seen := map[string]bool{}
			for _, m := range c.VolumeMounts {
				if m.MountPropagation != nil && *m.MountPropagation == corev1.MountPropagationBidirectional && !seen[m.Name] {
					seen[m.Name] = true
					r.report(w.Resource, fmt.Sprintf("%s.volumeMounts[%s]", c.Path, m.Name), "container %q mounts volume %q with Bidirectional propagation", c.Name, m.Name)
				}
			}
		},
	},
	{
		Meta: Meta{
			ID: "POD-030", Title: "hostAliases", Severity: low, Category: CategoryPodSecurity, Party: partyWorkload,
			Description: "hostAliases write the pod's /etc/hosts: names resolve around DNS, which hides where traffic goes and can redirect it.",
			Remediation: "Remove hostAliases and publish the names in DNS, e.g. with a Service of type ExternalName.",
		},
		workload: func(r *reporter, w *Workload) {
			var names []string
			for _, a := range w.Spec.HostAliases {
				names = append(names, a.Hostnames...)
			}
			if len(w.Spec.HostAliases) > 0 {
				r.report(w.Resource, "", "pods override /etc/hosts for %s", strings.Join(names, ", "))
			}
		},
	},
	{
		Meta: Meta{
			ID: "POD-031", Title: "sudo in entrypoint", Severity: medium, Category: CategoryPodSecurity, Party: partyWorkload,
			Description: "A command that calls sudo expects to gain root inside the container: the image ships a setuid binary and the container allows privilege escalation.",
			Remediation: "Do the privileged step at image build time, or in an init container with exactly the capability it needs, and remove sudo from the image.",
		},
		container: func(r *reporter, w *Workload, c *Container) {
			spec := containerSpec(w, c)
			// Never quote the command line: it may carry credentials.
			if slices.ContainsFunc(slices.Concat(spec.Command, spec.Args), sudo.MatchString) {
				r.report(w.Resource, c.Path, "container %q runs sudo in its command", c.Name)
			}
		},
	},
}

// sudo matches a sudo invocation in a command or a shell script: the word
// sudo, or a path ending in /sudo, followed by arguments or nothing.
var sudo = regexp.MustCompile("(^|[\\s;&|(`/])sudo(\\s|$)")

// windowsPod reports pods that declare they run on Windows, where the
// Linux security settings do not apply.
func windowsPod(w *Workload) bool {
	return w.Spec.OS != nil && w.Spec.OS.Name == corev1.Windows
}

// capabilitiesOf returns the capabilities a container adds and drops,
// upper-case and without the CAP_ prefix.
func capabilitiesOf(c *Container) (add, drop map[string]bool) {
	add, drop = map[string]bool{}, map[string]bool{}
	if c.SecurityContext == nil || c.SecurityContext.Capabilities == nil {
		return add, drop
	}
	for _, capability := range c.SecurityContext.Capabilities.Add {
		add[strings.TrimPrefix(strings.ToUpper(string(capability)), "CAP_")] = true
	}
	for _, capability := range c.SecurityContext.Capabilities.Drop {
		drop[strings.TrimPrefix(strings.ToUpper(string(capability)), "CAP_")] = true
	}
	return add, drop
}

func effectiveGroup(w *Workload, c *Container) *int64 {
	return effective(w, c, func(s *corev1.SecurityContext) *int64 { return s.RunAsGroup }, func(s *corev1.PodSecurityContext) *int64 { return s.RunAsGroup })
}

func effectiveSeccomp(w *Workload, c *Container) *corev1.SeccompProfile {
	return effective(w, c, func(s *corev1.SecurityContext) *corev1.SeccompProfile { return s.SeccompProfile }, func(s *corev1.PodSecurityContext) *corev1.SeccompProfile { return s.SeccompProfile })
}

// effectiveSELinux returns the SELinux options of a container: its own
// replace the pod's as a whole.
func effectiveSELinux(w *Workload, c *Container) *corev1.SELinuxOptions {
	return effective(w, c, func(s *corev1.SecurityContext) *corev1.SELinuxOptions { return s.SELinuxOptions }, func(s *corev1.PodSecurityContext) *corev1.SELinuxOptions { return s.SELinuxOptions })
}

// containerSELinuxTypes are the SELinux types the baseline profile allows.
var containerSELinuxTypes = map[string]bool{
	"container_t": true, "container_init_t": true, "container_kvm_t": true, "container_engine_t": true,
}

func effectiveHostProcess(w *Workload, c *Container) *bool {
	if c.SecurityContext != nil && c.SecurityContext.WindowsOptions != nil && c.SecurityContext.WindowsOptions.HostProcess != nil {
		return c.SecurityContext.WindowsOptions.HostProcess
	}
	if w.Spec.SecurityContext != nil && w.Spec.SecurityContext.WindowsOptions != nil {
		return w.Spec.SecurityContext.WindowsOptions.HostProcess
	}
	return nil
}

// annotationAppArmor is the deprecated per-container AppArmor annotation
// of the pod; the API server still turns it into the container's
// appArmorProfile when that is unset.
const annotationAppArmor = "container.apparmor.security.beta.kubernetes.io/"

// effectiveAppArmor returns the AppArmor profile type a container runs
// with, "" when none is set: its own field, else the pod annotation naming
// it, else the pod's field.
func effectiveAppArmor(w *Workload, c *Container) corev1.AppArmorProfileType {
	if c.SecurityContext != nil && c.SecurityContext.AppArmorProfile != nil {
		return c.SecurityContext.AppArmorProfile.Type
	}
	if w.PodMeta != nil {
		if v, ok := w.PodMeta.Annotations[annotationAppArmor+c.Name]; ok {
			switch {
			case v == "runtime/default":
				return corev1.AppArmorProfileTypeRuntimeDefault
			case strings.HasPrefix(v, "localhost/"):
				return corev1.AppArmorProfileTypeLocalhost
			case v == "unconfined":
				return corev1.AppArmorProfileTypeUnconfined
			}
		}
	}
	if w.Spec.SecurityContext != nil && w.Spec.SecurityContext.AppArmorProfile != nil {
		return w.Spec.SecurityContext.AppArmorProfile.Type
	}
	return ""
}

// mount is a volumeMount of a container with the volume it mounts.
type mount struct {
	mount  *corev1.VolumeMount
	volume *corev1.Volume
}

// mountsOf returns the container's mounts for which match is true, one per
// volume.
func mountsOf(w *Workload, c *Container, match func(*corev1.Volume, *corev1.VolumeMount) bool) []mount {
	var out []mount
	seen := map[string]bool{}
	for i := range c.VolumeMounts {
		m := &c.VolumeMounts[i]
		v := volumeNamed(w, m.Name)
		if v == nil || seen[m.Name] || !match(v, m) {
			continue
		}
		seen[m.Name] = true
		out = append(out, mount{mount: m, volume: v})
	}
	return out
}

func volumeNamed(w *Workload, name string) *corev1.Volume {
	for i := range w.Spec.Volumes {
		if w.Spec.Volumes[i].Name == name {
			return &w.Spec.Volumes[i]
		}
	}
	return nil
}

// mountedReadOnly reports whether every mount of a volume, by any
// container, is read-only.
func mountedReadOnly(w *Workload, volume string) bool {
	for _, c := range w.Containers() {
		for _, m := range c.VolumeMounts {
			if m.Name == volume && !m.ReadOnly {
				return false
			}
		}
	}
	return true
}

// sensitiveHostDirs are the host directories whose contents, read or
// written, give a path to the node: system directories, the kubelet's and
// etcd's state with their credentials, cloud-init data and home
// directories with cloud, SSH and kubeconfig credentials.
var sensitiveHostDirs = []string{
	"/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr",
	"/var/lib/kubelet", "/var/lib/etcd", "/var/lib/cloud", "/root", "/home",
}

// sensitiveHostPath reports whether a clean host path is the root, or one
// of sensitiveHostDirs, or in one of them.
func sensitiveHostPath(p string) bool {
	if p == "/" {
		return true
	}
	for _, dir := range sensitiveHostDirs {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}

// benignHostPath reports public data under the sensitive directories that
// workloads commonly mount read-only: the time zone and the CA bundles.
func benignHostPath(p string) bool {
	for _, dir := range []string{"/etc/localtime", "/etc/timezone", "/usr/share/zoneinfo", "/etc/ssl/certs", "/etc/pki/ca-trust", "/etc/pki/tls/certs", "/etc/ca-certificates", "/usr/share/ca-certificates"} {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}

// safeSysctls are the sysctls the baseline profile allows (Kubernetes
// 1.32): namespaced, and isolated between the pods of a node.
var safeSysctls = map[string]bool{
	"kernel.shm_rmid_forced":              true,
	"net.ipv4.ip_local_port_range":        true,
	"net.ipv4.ip_unprivileged_port_start": true,
	"net.ipv4.tcp_syncookies":             true,
	"net.ipv4.ping_group_range":           true,
	"net.ipv4.ip_local_reserved_ports":    true,
	"net.ipv4.tcp_keepalive_time":         true,
	"net.ipv4.tcp_fin_timeout":            true,
	"net.ipv4.tcp_keepalive_intvl":        true,
	"net.ipv4.tcp_keepalive_probes":       true,
	"net.ipv4.tcp_rmem":                   true,
	"net.ipv4.tcp_wmem":                   true,
}

// normalizeSysctl turns the slash form of a sysctl name, which the kubelet
// accepts too, into the dotted form: in net/ipv4/conf/eth0.100/rp_filter
// the separators are the slashes and the dot is part of a name.
func normalizeSysctl(name string) string {
	if i := strings.IndexAny(name, "./"); i >= 0 && name[i] == '/' {
		return strings.Map(func(r rune) rune {
			switch r {
			case '/':
				return '.'
			case '.':
				return '/'
			}
			return r
		}, name)
	}
	return name
}

// coreVolumeTypes are the volume types the restricted profile allows
// (image volumes since Kubernetes 1.33).
var coreVolumeTypes = map[string]bool{
	"configMap": true, "csi": true, "downwardAPI": true, "emptyDir": true, "ephemeral": true,
	"image": true, "persistentVolumeClaim": true, "projected": true, "secret": true,
}

// volumeType returns the name of a volume's source, as the manifest spells
// it. A volume without a source is an emptyDir, as the API server
// defaults it.
func volumeType(v *corev1.Volume) string {
	src := reflect.ValueOf(v.VolumeSource)
	for i := 0; i < src.NumField(); i++ {
		if f := src.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(src.Type().Field(i).Tag.Get("json"), ",")
			return name
		}
	}
	return "emptyDir"
}

func tcp(p corev1.Protocol) bool { return p == "" || p == corev1.ProtocolTCP }

func sshPort(port int32) bool { return port == 22 || port == 2222 }

// lowIDs: UIDs and GIDs below it are likely the node's own; distributions
// hand out user and system ids well below it.
const lowIDs = 10000
