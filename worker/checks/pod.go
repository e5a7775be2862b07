package checks

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// Severities of the findings that some checks report above or below
// their catalog entry's.
const (
	critical = fleetscanv1.Severity_SEVERITY_CRITICAL
	high     = fleetscanv1.Severity_SEVERITY_HIGH
	medium   = fleetscanv1.Severity_SEVERITY_MEDIUM
)

// podChecks read one container at a time. Container-level securityContext
// fields override the pod-level ones, as the kubelet applies them.
var podChecks = []*Check{
	{
		ID: "POD-001",
		container: func(r *reporter, w *Workload, c *Container) {
			if sc := c.SecurityContext; sc != nil && isTrue(sc.Privileged) {
				r.report(w.Resource, c.Path, "container %q runs privileged", c.Name)
			}
		},
	},
	{
		ID: "POD-002",
		container: func(r *reporter, w *Workload, c *Container) {
			sc := c.SecurityContext
			if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				r.report(w.Resource, c.Path, "container %q does not set allowPrivilegeEscalation: false", c.Name)
			}
		},
	},
	{
		ID: "POD-006",
		container: func(r *reporter, w *Workload, c *Container) {
			for _, p := range c.Ports {
				if p.HostPort != 0 {
					r.report(w.Resource, fmt.Sprintf("%s.ports[%d]", c.Path, p.ContainerPort), "container %q binds host port %d", c.Name, p.HostPort)
				}
			}
		},
	},
	{
		ID: "POD-011",
		container: func(r *reporter, w *Workload, c *Container) {
			sc := c.SecurityContext
			if sc == nil || sc.Capabilities == nil {
				return
			}
			var bad []string
			for _, capability := range sc.Capabilities.Add {
				name := strings.TrimPrefix(strings.ToUpper(string(capability)), "CAP_")
				if dangerousCapabilities[name] {
					bad = append(bad, name)
				}
			}
			if len(bad) > 0 {
				r.report(w.Resource, c.Path, "container %q adds %s", c.Name, strings.Join(bad, ", "))
			}
		},
	},
	{
		ID: "POD-014",
		container: func(r *reporter, w *Workload, c *Container) {
			nonRoot := effective(w, c, func(s *corev1.SecurityContext) *bool { return s.RunAsNonRoot }, func(s *corev1.PodSecurityContext) *bool { return s.RunAsNonRoot })
			if nonRoot != nil && *nonRoot {
				return
			}
			// An explicit non-zero UID cannot be root either, whatever the image says.
			if uid := effectiveUser(w, c); uid != nil && *uid != 0 {
				return
			}
			r.report(w.Resource, c.Path, "container %q may run as root: runAsNonRoot is not true", c.Name)
		},
	},
	{
		ID: "POD-015",
		container: func(r *reporter, w *Workload, c *Container) {
			if uid := effectiveUser(w, c); uid != nil && *uid == 0 {
				r.report(w.Resource, c.Path, "container %q runs as UID 0", c.Name)
			}
		},
	},
	{
		ID: "POD-018",
		container: func(r *reporter, w *Workload, c *Container) {
			if sc := c.SecurityContext; sc == nil || !isTrue(sc.ReadOnlyRootFilesystem) {
				r.report(w.Resource, c.Path, "container %q has a writable root filesystem", c.Name)
			}
		},
	},
	{
		ID: "IMG-001",
		container: func(r *reporter, w *Workload, c *Container) {
			if tag, digest := imageRef(c.Image); digest == "" && (tag == "" || tag == "latest") {
				r.report(w.Resource, c.Path, "container %q uses image %q without a version tag or digest", c.Name, c.Image)
			}
		},
	},
	{
		ID: "IMG-002",
		container: func(r *reporter, w *Workload, c *Container) {
			tag, digest := imageRef(c.Image)
			if digest != "" || (tag != "" && tag != "latest") {
				return
			}
			// An unset policy defaults to Always for exactly these images.
			if policy := containerSpec(w, c).ImagePullPolicy; policy != "" && policy != corev1.PullAlways {
				r.report(w.Resource, c.Path, "container %q pulls mutable image %q with imagePullPolicy %s", c.Name, c.Image, policy)
			}
		},
	},
	{
		ID: "RES-001",
		container: func(r *reporter, w *Workload, c *Container) {
			if _, ok := c.Resources.Limits[corev1.ResourceCPU]; !ok && !c.Ephemeral && !podLimit(w, corev1.ResourceCPU) {
				r.report(w.Resource, c.Path, "container %q has no CPU limit", c.Name)
			}
		},
	},
	{
		ID: "RES-002",
		container: func(r *reporter, w *Workload, c *Container) {
			if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok && !c.Ephemeral && !podLimit(w, corev1.ResourceMemory) {
				r.report(w.Resource, c.Path, "container %q has no memory limit", c.Name)
			}
		},
	},
	{
		ID: "SEC-002",
		container: func(r *reporter, w *Workload, c *Container) {
			for _, e := range c.Env {
				// Name the variable, never its value.
				sub := fmt.Sprintf("%s.env[%s]", c.Path, e.Name)
				switch what := credentialValue(e.Value); {
				case what != "":
					r.report(w.Resource, sub, "container %q sets %s to a value that holds %s", c.Name, e.Name, what)
				case envLiteral(e.Value) && credentialEnvName(e.Name):
					r.report(w.Resource, sub, "container %q sets %s to a literal value", c.Name, e.Name)
				}
			}
		},
	},
}

// dangerousCapabilities are those that give a path to the node or to other
// containers' processes.
var dangerousCapabilities = map[string]bool{
	"ALL": true, "SYS_ADMIN": true, "SYS_MODULE": true, "SYS_PTRACE": true, "SYS_RAWIO": true,
	"NET_ADMIN": true, "BPF": true, "PERFMON": true, "DAC_READ_SEARCH": true, "SYS_BOOT": true,
}

// credentialName matches names of credentials: passwords (pwd too),
// secrets, tokens, credentials, and keys: api keys, access keys, private
// keys, and any name that ends in "key" as a word (STRIPE_KEY, db.key).
var credentialName = regexp.MustCompile(`(?i)(passw(or)?d|(^|[^a-z])pwd([^a-z]|$)|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|(^|[_.-])key$)`)

// nonSecretKey matches names of keys that are not secrets: public keys,
// and the keys of caches, sorts, tables and maps.
var nonSecretKey = regexp.MustCompile(`(?i)(public|pub|cache|sort|primary|partition|foreign|routing|hash|idempotency|lookup|index|shard|group|kms|host|object|map|label|selector|metric|feature)[_.-]?key$`)

// credentialEnvName reports whether an environment variable is named like
// a credential, not like where one is or how it behaves.
func credentialEnvName(name string) bool {
	return mayNameCredential(name) && credentialName.MatchString(name) && !credentialMetadata.MatchString(name) && !nonSecretKey.MatchString(name)
}

// credentialStems are what every match of credentialName contains.
var credentialStems = []string{"passw", "pwd", "secret", "token", "key", "credential"}

// mayNameCredential is false for an ASCII name that contains none of
// credentialStems, in any case, so cannot match credentialName: most
// names do not, and a regular expression tried at every position of every
// environment variable and ConfigMap key was 8% of a scan's CPU. Other
// names are left to the expression, whose case folding also matches
// letters outside ASCII (the Kelvin sign for k).
func mayNameCredential(name string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			return true
		}
	}
	for _, stem := range credentialStems {
		if containsFoldASCII(name, stem) {
			return true
		}
	}
	return false
}

// containsFoldASCII reports whether s contains lower, a lower-case ASCII
// word, in any case.
func containsFoldASCII(s, lower string) bool {
	for i := 0; i+len(lower) <= len(s); i++ {
		j := 0
		for j < len(lower) && s[i+j]|0x20 == lower[j] {
			j++
		}
		if j == len(lower) {
			return true
		}
	}
	return false
}

// envLiteral reports whether an environment variable's value is a literal:
// not empty, and not only references to other variables ("$(DB_PASS)"),
// which the kubelet expands.
func envLiteral(v string) bool {
	return strings.TrimSpace(envReference.ReplaceAllString(v, "")) != ""
}

var envReference = regexp.MustCompile(`\$\([A-Za-z_][A-Za-z0-9_.-]*\)`)

// credentialMetadata matches names that say where a credential is or how it
// behaves rather than hold it: POSTGRES_PASSWORD_FILE=/run/secrets/pw,
// TOKEN_TTL=3600, SECRET_NAME=api-keys.
var credentialMetadata = regexp.MustCompile(`(?i)[_-](file|path|dir|name|ttl|timeout|expiry|length|size|type|kind|header)$`)

func isTrue(b *bool) bool { return b != nil && *b }

// podLimit reports whether the pod-level resources (spec.resources) limit
// the resource: that limit bounds the containers that set none themselves.
func podLimit(w *Workload, name corev1.ResourceName) bool {
	if w.Spec.Resources == nil {
		return false
	}
	_, ok := w.Spec.Resources.Limits[name]
	return ok
}

// effective returns the container's setting when it has one, else the
// pod's, as the kubelet applies them.
func effective[T any](w *Workload, c *Container, fromContainer func(*corev1.SecurityContext) *T, fromPod func(*corev1.PodSecurityContext) *T) *T {
	if c.SecurityContext != nil {
		if v := fromContainer(c.SecurityContext); v != nil {
			return v
		}
	}
	if w.Spec.SecurityContext != nil {
		return fromPod(w.Spec.SecurityContext)
	}
	return nil
}

func effectiveUser(w *Workload, c *Container) *int64 {
	return effective(w, c, func(s *corev1.SecurityContext) *int64 { return s.RunAsUser }, func(s *corev1.PodSecurityContext) *int64 { return s.RunAsUser })
}

// imageRef splits an image reference into its tag and digest; either may
// be empty. A registry port ("host:5000/app") is not a tag.
func imageRef(image string) (tag, digest string) {
	if i := strings.IndexByte(image, '@'); i >= 0 {
		image, digest = image[:i], image[i+1:]
	}
	lastSlash := strings.LastIndexByte(image, '/')
	if i := strings.LastIndexByte(image, ':'); i > lastSlash {
		tag = image[i+1:]
	}
	return tag, digest
}

// workloadChecks read the pod spec as a whole.
var workloadChecks = []*Check{
	hostNamespaceCheck("POD-003", "hostPID",
		func(s *corev1.PodSpec) bool { return s.HostPID }),
	hostNamespaceCheck("POD-004", "hostIPC",
		func(s *corev1.PodSpec) bool { return s.HostIPC }),
	hostNamespaceCheck("POD-005", "hostNetwork",
		func(s *corev1.PodSpec) bool { return s.HostNetwork }),
	{
		ID: "POD-007",
		workload: func(r *reporter, w *Workload) {
			for _, v := range w.Spec.Volumes {
				if v.HostPath != nil {
					r.report(w.Resource, fmt.Sprintf("volumes[%s]", v.Name), "volume %q mounts host path %s", v.Name, v.HostPath.Path)
				}
			}
		},
	},
	{
		ID: "POD-009",
		workload: func(r *reporter, w *Workload) {
			for _, v := range w.Spec.Volumes {
				if v.HostPath == nil {
					continue
				}
				p := strings.TrimRight(v.HostPath.Path, "/")
				for _, sock := range []string{"docker.sock", "containerd.sock", "crio.sock", "dockershim.sock"} {
					if strings.HasSuffix(p, "/"+sock) {
						r.report(w.Resource, fmt.Sprintf("volumes[%s]", v.Name), "volume %q mounts the container runtime socket %s", v.Name, v.HostPath.Path)
						break
					}
				}
			}
		},
	},
	{
		ID: "SA-001",
		inventory: func(r *reporter, inv *Inventory) {
			// The pod's own setting wins; otherwise its ServiceAccount's.
			saAutomount := map[string]*bool{}
			for i := range inv.ServiceAccounts {
				sa := &inv.ServiceAccounts[i]
				saAutomount[sa.Namespace+"/"+sa.Name] = sa.AutomountServiceAccountToken
			}
			for _, w := range r.workloads(inv) {
				mount := w.Spec.AutomountServiceAccountToken
				if mount == nil {
					mount = saAutomount[w.Namespace+"/"+serviceAccountName(w.Spec)]
				}
				if mount == nil || *mount {
					r.report(w.Resource, "", "pods automount the token of service account %q", serviceAccountName(w.Spec))
				}
			}
		},
	},
	{
		ID: "SA-002",
		workload: func(r *reporter, w *Workload) {
			if serviceAccountName(w.Spec) == "default" {
				r.report(w.Resource, "", "pods run as the default service account")
			}
		},
	},
}

// hostNamespaceCheck reports pods that share one of the node's
// namespaces: field is the pod spec's field that shares it, set reads it.
func hostNamespaceCheck(id, field string, set func(*corev1.PodSpec) bool) *Check {
	return &Check{
		ID: id,
		workload: func(r *reporter, w *Workload) {
			if set(w.Spec) {
				r.report(w.Resource, "", "pods share the host's namespace: %s is true", field)
			}
		},
	}
}

// containerSpec returns the spec of one of the workload's containers, for
// the fields Container leaves out (command, probes, pull policy, envFrom).
// An ephemeral container's spec has the same fields as the others'.
func containerSpec(w *Workload, c *Container) *corev1.Container {
	var list []corev1.Container
	switch {
	case c.Ephemeral:
		for i := range w.Spec.EphemeralContainers {
			if e := &w.Spec.EphemeralContainers[i]; e.Name == c.Name {
				spec := corev1.Container(e.EphemeralContainerCommon)
				return &spec
			}
		}
	case strings.HasPrefix(c.Path, "initContainers["):
		list = w.Spec.InitContainers
	default:
		list = w.Spec.Containers
	}
	for i := range list {
		if list[i].Name == c.Name {
			return &list[i]
		}
	}
	return &corev1.Container{Name: c.Name}
}

func serviceAccountName(s *corev1.PodSpec) string {
	if s.ServiceAccountName != "" {
		return s.ServiceAccountName
	}
	if s.DeprecatedServiceAccount != "" {
		return s.DeprecatedServiceAccount
	}
	return "default"
}

// registryChecks read the scan's settings as well as the workload.
var registryChecks = []*Check{
	{
		ID: "IMG-003",
		needs: func(sel policy.Selection) string {
			if len(sel.TrustedRegistries) == 0 {
				return "no registry allow-list: give the scan trusted registries (fleetscan scan start --trusted-registry, fleetscan-worker --trusted-registries)"
			}
			return ""
		},
		container: func(r *reporter, w *Workload, c *Container) {
			ref := imageName(c.Image)
			for _, allowed := range r.sel.TrustedRegistries {
				allowed = strings.TrimSuffix(allowed, "/")
				if ref == allowed || strings.HasPrefix(ref, allowed+"/") {
					return
				}
			}
			r.report(w.Resource, c.Path, "container %q pulls %q from %s, which is not a trusted registry", c.Name, c.Image, registryHost(ref))
		},
	},
	{
		ID: "IMG-005",
		container: func(r *reporter, w *Workload, c *Container) {
			ref := imageName(c.Image)
			for _, denied := range r.sel.DeniedRegistries {
				denied = strings.TrimSuffix(denied, "/")
				if ref == denied || strings.HasPrefix(ref, denied+"/") {
					r.report(w.Resource, c.Path, "container %q pulls %q from %s, which the scan's deny-list names", c.Name, c.Image, denied)
					return
				}
			}
			for _, frozen := range frozenRegistries {
				if strings.HasPrefix(ref, frozen.prefix+"/") {
					r.report(w.Resource, c.Path, "container %q pulls %q from %s, frozen since %s: use %s", c.Name, c.Image, frozen.prefix, frozen.since, frozen.successor)
					return
				}
			}
		},
	},
}

// frozenRegistries are registries that serve no new images.
var frozenRegistries = []struct{ prefix, since, successor string }{
	{"k8s.gcr.io", "3 April 2023", "registry.k8s.io"},
	{"gcr.io/google_containers", "3 April 2023", "registry.k8s.io"},
	{"gcr.io/google-containers", "3 April 2023", "registry.k8s.io"},
}

// imageName is the image reference without tag or digest, with the
// registry Docker Hub implies made explicit: "nginx" is
// "docker.io/library/nginx".
func imageName(image string) string {
	if i := strings.IndexByte(image, '@'); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndexByte(image, ':'); i > strings.LastIndexByte(image, '/') {
		image = image[:i]
	}
	first, _, found := strings.Cut(image, "/")
	if !found {
		return "docker.io/library/" + image
	}
	if !strings.ContainsAny(first, ".:") && first != "localhost" {
		return "docker.io/" + image
	}
	return image
}

func registryHost(name string) string {
	host, _, _ := strings.Cut(name, "/")
	return host
}
