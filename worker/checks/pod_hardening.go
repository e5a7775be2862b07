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
		ID: "POD-008",
		container: func(r *reporter, w *Workload, c *Container) {
			for _, m := range mountsOf(w, c, func(v *corev1.Volume, m *corev1.VolumeMount) bool { return v.HostPath != nil && !m.ReadOnly }) {
				r.report(w.Resource, fmt.Sprintf("%s.volumeMounts[%s]", c.Path, m.volume.Name), "container %q mounts host path %s writable at %s", c.Name, m.volume.HostPath.Path, m.mount.MountPath)
			}
		},
	},
	{
		ID: "POD-010",
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
		ID: "POD-012",
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
		ID: "POD-013",
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
		ID: "POD-016",
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
		ID: "POD-017",
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
		ID: "POD-019",
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
		ID: "POD-020",
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
		ID: "POD-021",
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
		ID: "POD-022",
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
		ID: "POD-023",
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
		ID: "POD-024",
		container: func(r *reporter, w *Workload, c *Container) {
			if hp := effectiveHostProcess(w, c); hp != nil && *hp {
				r.report(w.Resource, c.Path, "container %q runs as a Windows HostProcess container", c.Name)
			}
		},
	},
	{
		ID: "POD-025",
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
		ID: "POD-026",
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
		ID: "POD-027",
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
		ID: "POD-028",
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
		ID: "POD-029",
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
		ID: "POD-030",
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
		ID: "POD-031",
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
