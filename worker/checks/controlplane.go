package checks

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// Control-plane components, as kubeadm names their static pods and their
// containers.
const (
	apiServer         = "kube-apiserver"
	controllerManager = "kube-controller-manager"
	scheduler         = "kube-scheduler"
	etcd              = "etcd"
)

// component is one control-plane process read from its static pod's
// mirror in kube-system.
type component struct {
	Resource
	container string
	flags     flagSet
}

// controlPlane finds the static pods of a component. Mirror pods of static
// pods are visible through the API only on self-managed clusters (kubeadm
// and the like); managed control planes hide them.
func (inv *Inventory) controlPlane(name string) []component {
	var out []component
	for i := range inv.Pods {
		p := &inv.Pods[i]
		if p.Namespace != "kube-system" || (p.Labels["component"] != name && !strings.HasPrefix(p.Name, name+"-")) {
			continue
		}
		for _, c := range p.Spec.Containers {
			if c.Name != name && !(len(p.Spec.Containers) == 1 && commandIs(c, name)) {
				continue
			}
			out = append(out, component{
				Resource:  resourceOf("v1", "Pod", &p.ObjectMeta),
				container: c.Name,
				flags:     parseFlags(append(slices.Clone(c.Command), c.Args...)),
			})
		}
	}
	return out
}

func commandIs(c corev1.Container, name string) bool {
	return len(c.Command) > 0 && strings.HasSuffix(c.Command[0], name)
}

// flagSet holds a command line's flags. A flag given several times keeps
// every value, in order.
type flagSet map[string][]string

// boolFlags are the boolean flags checked here. As in the components'
// own flag parsing, a boolean never takes the next argument as its value:
// "--profiling false" is --profiling=true and a stray "false".
var boolFlags = map[string]bool{
	"anonymous-auth": true, "profiling": true, "service-account-lookup": true,
	"service-account-extend-token-expiration": true, "use-service-account-credentials": true,
	"client-cert-auth": true, "peer-client-cert-auth": true, "auto-tls": true, "peer-auto-tls": true,
}

// parseFlags reads "--flag=value", "--flag value" and bare "--flag" (a
// boolean true). Anything that is not a flag is ignored.
func parseFlags(argv []string) flagSet {
	fs := flagSet{}
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name := strings.TrimLeft(a, "-")
		if k, v, ok := strings.Cut(name, "="); ok {
			fs[k] = append(fs[k], v)
			continue
		}
		if !boolFlags[name] && i+1 < len(argv) && !strings.HasPrefix(argv[i+1], "-") {
			fs[name] = append(fs[name], argv[i+1])
			i++
			continue
		}
		fs[name] = append(fs[name], "true")
	}
	return fs
}

// value is the flag's effective value: the last one given, else def.
func (fs flagSet) value(name, def string) string {
	if v := fs[name]; len(v) > 0 {
		return v[len(v)-1]
	}
	return def
}

func (fs flagSet) set(name string) bool { return fs.value(name, "") != "" }

// list is the union of the flag's comma-separated values, else def.
func (fs flagSet) list(name string, def ...string) []string {
	vals, ok := fs[name]
	if !ok {
		return def
	}
	var out []string
	for _, v := range vals {
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

func (fs flagSet) bool(name string, def bool) bool {
	b, err := strconv.ParseBool(fs.value(name, strconv.FormatBool(def)))
	if err != nil {
		return def
	}
	return b
}

// Defaults of kube-apiserver v1.37 for the flags checked here when they
// are absent.
var defaultAdmissionPlugins = []string{
	"NamespaceLifecycle", "LimitRanger", "ServiceAccount", "TaintNodesByCondition", "PodSecurity", "Priority",
	"DefaultTolerationSeconds", "DefaultStorageClass", "StorageObjectInUseProtection", "PersistentVolumeClaimResize",
	"RuntimeClass", "CertificateApproval", "CertificateSigning", "ClusterTrustBundleAttest", "CertificateSubjectRestriction",
	"DefaultIngressClass", "MutatingAdmissionPolicy", "MutatingAdmissionWebhook", "ValidatingAdmissionPolicy",
	"ValidatingAdmissionWebhook", "ResourceQuota",
}

// flagProblem is one thing wrong with one flag of one component.
type flagProblem struct {
	flag    string
	message string
}

// flagCheck builds a check of the flags of some components: inspect
// returns the problems of one component's flags. It is not assessable when
// none of the components is visible.
func flagCheck(id string, components []string, inspect func(name string, fs flagSet) []flagProblem) *Check {
	return &Check{
		ID: id,
		assessable: func(inv *Inventory) string {
			for _, name := range components {
				if len(inv.controlPlane(name)) > 0 {
					return ""
				}
			}
			return fmt.Sprintf("no %s static pod is visible in kube-system: the control plane is managed (or hidden), so its flags cannot be read through the API", strings.Join(components, " or "))
		},
		inventory: func(r *reporter, inv *Inventory) {
			for _, name := range components {
				for _, c := range inv.controlPlane(name) {
					// One finding per flag, so that each has its own identity.
					var flags []string
					messages := map[string][]string{}
					for _, p := range inspect(name, c.flags) {
						if messages[p.flag] == nil {
							flags = append(flags, p.flag)
						}
						messages[p.flag] = append(messages[p.flag], p.message)
					}
					for _, f := range flags {
						r.report(c.Resource, fmt.Sprintf("containers[%s].flags[--%s]", c.container, f), "%s: %s", name, strings.Join(messages[f], "; "))
					}
				}
			}
		},
	}
}

func problem(flag, format string, args ...any) []flagProblem {
	return []flagProblem{{flag: flag, message: fmt.Sprintf(format, args...)}}
}

// flagChecks read the flags of the control plane's static pods. The
// node-level rows of the catalog next to them (its hostChecks) have no
// implementation: the API cannot answer them.
var flagChecks = []*Check{
	flagCheck("CP-001", []string{apiServer}, func(_ string, fs flagSet) []flagProblem {
		if fs.bool("anonymous-auth", true) {
			return problem("anonymous-auth", "--anonymous-auth is %s", fs.value("anonymous-auth", "true (the default)"))
		}
		return nil
	}),
	flagCheck("CP-002", []string{apiServer}, func(_ string, fs flagSet) []flagProblem {
		if fs.set("token-auth-file") {
			return problem("token-auth-file", "static tokens are read from %s", fs.value("token-auth-file", ""))
		}
		return nil
	}),
	flagCheck("CP-003", []string{apiServer}, func(_ string, fs flagSet) []flagProblem {
		if fs.set("authorization-config") {
			return nil // structured authorization: its file needs node access
		}
		modes := fs.list("authorization-mode", "AlwaysAllow")
		var out []flagProblem
		if slices.Contains(modes, "AlwaysAllow") {
			out = append(out, problem("authorization-mode", "authorization mode %s includes AlwaysAllow", strings.Join(modes, ","))...)
		}
		for _, want := range []string{"Node", "RBAC"} {
			if !slices.Contains(modes, want) {
				out = append(out, flagProblem{flag: "authorization-mode", message: fmt.Sprintf("authorization mode %s lacks %s", strings.Join(modes, ","), want)})
			}
		}
		return out
	}),
	flagCheck("CP-004", []string{apiServer}, func(_ string, fs flagSet) []flagProblem {
		var out []flagProblem
		for _, f := range []string{"kubelet-client-certificate", "kubelet-client-key", "kubelet-certificate-authority"} {
			if !fs.set(f) {
				out = append(out, flagProblem{flag: f, message: "--" + f + " is not set"})
			}
		}
		return out
	}),
	flagCheck("CP-005", []string{apiServer}, func(_ string, fs flagSet) []flagProblem {
		enabled := slices.Concat(defaultAdmissionPlugins, fs.list("enable-admission-plugins"))
		disabled := fs.list("disable-admission-plugins")
		on := func(p string) bool { return slices.Contains(enabled, p) && !slices.Contains(disabled, p) }
		var out []flagProblem
		if on("AlwaysAdmit") {
			out = append(out, flagProblem{"enable-admission-plugins", "the AlwaysAdmit plugin is enabled"})
		}
		for _, p := range []string{"NodeRestriction", "DenyServiceExternalIPs", "EventRateLimit", "AlwaysPullImages"} {
			if !on(p) {
				out = append(out, flagProblem{"enable-admission-plugins", "the " + p + " plugin is not enabled"})
			}
		}
		for _, p := range []string{"ServiceAccount", "NamespaceLifecycle"} {
			if !on(p) {
				out = append(out, flagProblem{"disable-admission-plugins", "the " + p + " plugin is disabled"})
			}
		}
		return out
	}),
	flagCheck("CP-006", []string{apiServer}, func(_ string, fs flagSet) []flagProblem {
		var out []flagProblem
		if p := fs.value("insecure-port", "0"); p != "0" {
			out = append(out, flagProblem{"insecure-port", "--insecure-port is " + p})
		}
		if fs.value("secure-port", "6443") == "0" {
			out = append(out, flagProblem{"secure-port", "--secure-port is 0"})
		}
		return out
	}),
	flagCheck("CP-007", []string{apiServer, controllerManager, scheduler}, func(_ string, fs flagSet) []flagProblem {
		if fs.bool("profiling", true) {
			return problem("profiling", "--profiling is %s", fs.value("profiling", "true (the default)"))
		}
		return nil
	}),
	flagCheck("CP-008", []string{apiServer}, func(_ string, fs flagSet) []flagProblem {
		if !fs.set("audit-log-path") && !fs.set("audit-webhook-config-file") {
			return problem("audit-log-path", "no audit log: neither --audit-log-path nor --audit-webhook-config-file is set")
		}
		var out []flagProblem
		if !fs.set("audit-policy-file") {
			out = append(out, flagProblem{"audit-policy-file", "--audit-policy-file is not set, so nothing is audited"})
		}
		if fs.set("audit-log-path") {
			for _, m := range []struct {
				flag string
				min  int
			}{{"audit-log-maxage", 30}, {"audit-log-maxbackup", 10}, {"audit-log-maxsize", 100}} {
				if n, err := strconv.Atoi(fs.value(m.flag, "0")); err != nil || n < m.min {
					out = append(out, flagProblem{m.flag, fmt.Sprintf("--%s is %s, below %d", m.flag, fs.value(m.flag, "unset"), m.min)})
				}
			}
		}
		return out
	}),
	flagCheck("CP-009", []string{apiServer}, func(_ string, fs flagSet) []flagProblem {
		var out []flagProblem
		if !fs.bool("service-account-lookup", true) {
			out = append(out, flagProblem{"service-account-lookup", "--service-account-lookup is false"})
		}
		if !fs.set("service-account-key-file") {
			out = append(out, flagProblem{"service-account-key-file", "--service-account-key-file is not set"})
		}
		if fs.bool("service-account-extend-token-expiration", true) {
			out = append(out, flagProblem{"service-account-extend-token-expiration", "--service-account-extend-token-expiration is " + fs.value("service-account-extend-token-expiration", "true (the default)")})
		}
		return out
	}),
	flagCheck("CP-010", []string{apiServer}, func(_ string, fs flagSet) []flagProblem {
		var out []flagProblem
		for _, f := range []string{"tls-cert-file", "tls-private-key-file", "client-ca-file", "etcd-certfile", "etcd-keyfile", "etcd-cafile"} {
			if !fs.set(f) {
				out = append(out, flagProblem{f, "--" + f + " is not set"})
			}
		}
		for _, suite := range fs.list("tls-cipher-suites") {
			if weakCipherSuite(suite) {
				out = append(out, flagProblem{"tls-cipher-suites", "weak cipher suite " + suite + " is allowed"})
			}
		}
		return out
	}),
	flagCheck("CP-011", []string{apiServer}, func(_ string, fs flagSet) []flagProblem {
		if !fs.set("encryption-provider-config") {
			return problem("encryption-provider-config", "--encryption-provider-config is not set: Secrets are stored unencrypted in etcd")
		}
		return nil
	}),
	flagCheck("CP-012", []string{apiServer}, func(_ string, fs flagSet) []flagProblem {
		v := fs.value("request-timeout", "1m0s")
		d, err := time.ParseDuration(v)
		if err != nil {
			return problem("request-timeout", "--request-timeout %q is not a duration", v)
		}
		if d < 30*time.Second || d > 5*time.Minute {
			return problem("request-timeout", "--request-timeout is %s, outside 30s–5m", v)
		}
		return nil
	}),
	flagCheck("CP-013", []string{controllerManager}, func(_ string, fs flagSet) []flagProblem {
		var out []flagProblem
		if !fs.bool("use-service-account-credentials", false) {
			out = append(out, flagProblem{"use-service-account-credentials", "--use-service-account-credentials is not true"})
		}
		for _, f := range []string{"service-account-private-key-file", "root-ca-file", "terminated-pod-gc-threshold"} {
			if !fs.set(f) {
				out = append(out, flagProblem{f, "--" + f + " is not set"})
			}
		}
		if slices.Contains(fs.list("feature-gates"), "RotateKubeletServerCertificate=false") {
			out = append(out, flagProblem{"feature-gates", "RotateKubeletServerCertificate is turned off"})
		}
		if addr := fs.value("bind-address", "0.0.0.0"); !loopbackAddress(addr) {
			out = append(out, flagProblem{"bind-address", "--bind-address is " + addr + ", not loopback"})
		}
		return out
	}),
	flagCheck("CP-014", []string{scheduler}, func(_ string, fs flagSet) []flagProblem {
		if addr := fs.value("bind-address", "0.0.0.0"); !loopbackAddress(addr) {
			return problem("bind-address", "--bind-address is %s, not loopback", addr)
		}
		return nil
	}),
	flagCheck("ETCD-001", []string{etcd}, func(_ string, fs flagSet) []flagProblem {
		var out []flagProblem
		for _, f := range []string{"cert-file", "key-file", "peer-cert-file", "peer-key-file"} {
			if !fs.set(f) {
				out = append(out, flagProblem{f, "--" + f + " is not set"})
			}
		}
		for _, f := range []string{"client-cert-auth", "peer-client-cert-auth"} {
			if !fs.bool(f, false) {
				out = append(out, flagProblem{f, "--" + f + " is not true"})
			}
		}
		for _, f := range []string{"auto-tls", "peer-auto-tls"} {
			if fs.bool(f, false) {
				out = append(out, flagProblem{f, "--" + f + " is true: etcd uses self-signed certificates nobody verifies"})
			}
		}
		return out
	}),
	{
		ID: "ETCD-002",
		assessable: func(inv *Inventory) string {
			if len(inv.controlPlane(etcd)) == 0 || len(inv.controlPlane(apiServer)) == 0 {
				return "no etcd or no kube-apiserver static pod is visible in kube-system: the control plane is managed (or hidden), so their CAs cannot be compared through the API"
			}
			return ""
		},
		inventory: func(r *reporter, inv *Inventory) {
			clientCAs := map[string]bool{}
			for _, a := range inv.controlPlane(apiServer) {
				if ca := a.flags.value("client-ca-file", ""); ca != "" {
					clientCAs[ca] = true
				}
			}
			for _, e := range inv.controlPlane(etcd) {
				if ca := e.flags.value("trusted-client-ca-file", ""); clientCAs[ca] {
					r.report(e.Resource, fmt.Sprintf("containers[%s].flags[--trusted-client-ca-file]", e.container),
						"etcd: --trusted-client-ca-file is %s, the kube-apiserver's --client-ca-file: every client certificate of the cluster is accepted by etcd", ca)
				}
			}
		},
	},
	{
		ID: "KP-001",
		assessable: func(inv *Inventory) string {
			if kubeProxyConfig(inv) == nil {
				return "no kube-proxy ConfigMap in kube-system: its configuration is only readable on the nodes"
			}
			return ""
		},
		inventory: func(r *reporter, inv *Inventory) {
			cm := kubeProxyConfig(inv)
			var cfg struct {
				MetricsBindAddress string `json:"metricsBindAddress"`
			}
			if err := yaml.Unmarshal([]byte(cm.Data["config.conf"]), &cfg); err != nil {
				return
			}
			addr := cfg.MetricsBindAddress
			if addr == "" {
				return // kube-proxy's default is 127.0.0.1:10249
			}
			host := addr
			if i := strings.LastIndexByte(addr, ':'); i >= 0 {
				host = addr[:i]
			}
			if !loopbackAddress(host) {
				r.report(resourceOf("v1", "ConfigMap", &cm.ObjectMeta), "data[config.conf].metricsBindAddress", "kube-proxy serves metrics on %s, not loopback", addr)
			}
		},
	},
}

func kubeProxyConfig(inv *Inventory) *corev1.ConfigMap {
	for i := range inv.ConfigMaps {
		cm := &inv.ConfigMaps[i]
		if cm.Namespace == "kube-system" && cm.Name == "kube-proxy" && cm.Data["config.conf"] != "" {
			return cm
		}
	}
	return nil
}

func loopbackAddress(host string) bool {
	host = strings.Trim(host, "[]")
	return host == "127.0.0.1" || host == "::1" || host == "localhost"
}

// weakCipherSuite flags suites without forward secrecy or with CBC, RC4 or
// 3DES, as Go's crypto/tls and the CIS benchmark rank them.
func weakCipherSuite(name string) bool {
	n := strings.ToUpper(name)
	return strings.Contains(n, "RC4") || strings.Contains(n, "3DES") || strings.Contains(n, "CBC") ||
		strings.HasPrefix(n, "TLS_RSA_")
}
