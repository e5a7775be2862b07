package checks

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// CategoryControlPlane is the category of the control-plane flag checks.
const CategoryControlPlane = "control-plane"

// The provider runs the control plane: a managed one entirely, a
// self-managed one by its platform team, which here is the provider too.
const partyControlPlane = fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_PROVIDER

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
func flagCheck(meta Meta, components []string, inspect func(name string, fs flagSet) []flagProblem) *Check {
	meta.Category, meta.Party = CategoryControlPlane, partyControlPlane
	return &Check{
		Meta: meta,
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

// controlPlaneChecks are the control-plane flag checks and the node-level
// rows that the API cannot answer.
var controlPlaneChecks = slices.Concat(flagChecks, hostChecks)

var flagChecks = []*Check{
	flagCheck(Meta{
		ID: "CP-001", Title: "API server allows anonymous requests", Severity: high,
		Description: "With --anonymous-auth not false, requests without credentials reach the API server as system:anonymous; any RBAC slip toward that user is then open to the network.",
		Remediation: "Start kube-apiserver with --anonymous-auth=false (or restrict anonymous access to health endpoints with an authentication config).",
		Frameworks:  []string{"CIS 1.2.1", "NSA 7.0"},
	}, []string{apiServer}, func(_ string, fs flagSet) []flagProblem {
		if fs.bool("anonymous-auth", true) {
			return problem("anonymous-auth", "--anonymous-auth is %s", fs.value("anonymous-auth", "true (the default)"))
		}
		return nil
	}),
	flagCheck(Meta{
		ID: "CP-002", Title: "Static token file", Severity: high,
		Description: "Tokens of --token-auth-file are long-lived, stored in clear on the node and cannot be revoked without restarting the API server.",
		Remediation: "Remove --token-auth-file; use client certificates, OIDC or service account tokens.",
		Frameworks:  []string{"CIS 1.2.2"},
	}, []string{apiServer}, func(_ string, fs flagSet) []flagProblem {
		if fs.set("token-auth-file") {
			return problem("token-auth-file", "static tokens are read from %s", fs.value("token-auth-file", ""))
		}
		return nil
	}),
	flagCheck(Meta{
		ID: "CP-003", Title: "Weak authorization mode", Severity: critical,
		Description: "--authorization-mode must not include AlwaysAllow, and should include Node and RBAC; without them every authenticated request is allowed or kubelets are not confined to their node.",
		Remediation: "Set --authorization-mode=Node,RBAC (or an --authorization-config with the Node and RBAC authorizers).",
		Frameworks:  []string{"CIS 1.2.6", "CIS 1.2.7", "CIS 1.2.8", "NSA 7.1"},
	}, []string{apiServer}, func(_ string, fs flagSet) []flagProblem {
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
	flagCheck(Meta{
		ID: "CP-004", Title: "API server does not verify kubelets", Severity: high,
		Description: "Without a client certificate for the kubelet and --kubelet-certificate-authority, the API server cannot prove itself to kubelets or verify them: exec and logs traffic can be intercepted.",
		Remediation: "Set --kubelet-client-certificate, --kubelet-client-key and --kubelet-certificate-authority.",
		Frameworks:  []string{"CIS 1.2.4", "CIS 1.2.5"},
	}, []string{apiServer}, func(_ string, fs flagSet) []flagProblem {
		var out []flagProblem
		for _, f := range []string{"kubelet-client-certificate", "kubelet-client-key", "kubelet-certificate-authority"} {
			if !fs.set(f) {
				out = append(out, flagProblem{flag: f, message: "--" + f + " is not set"})
			}
		}
		return out
	}),
	flagCheck(Meta{
		ID: "CP-005", Title: "Admission plugins", Severity: medium,
		Description: "AlwaysAdmit disables admission control; NodeRestriction, ServiceAccount and NamespaceLifecycle confine kubelets, service accounts and deleted namespaces; DenyServiceExternalIPs closes CVE-2020-8554; EventRateLimit and AlwaysPullImages harden multi-tenant clusters.",
		Remediation: "Remove AlwaysAdmit from --enable-admission-plugins; enable NodeRestriction, DenyServiceExternalIPs (and, for multi-tenant clusters, EventRateLimit and AlwaysPullImages); do not disable ServiceAccount or NamespaceLifecycle.",
		Frameworks:  []string{"CIS 1.2.3", "CIS 1.2.9", "CIS 1.2.10", "CIS 1.2.11", "CIS 1.2.12", "CIS 1.2.13", "CIS 1.2.14"},
	}, []string{apiServer}, func(_ string, fs flagSet) []flagProblem {
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
	flagCheck(Meta{
		ID: "CP-006", Title: "Insecure API port", Severity: critical,
		Description: "An insecure port serves the API without authentication or authorization; --secure-port=0 turns TLS off entirely.",
		Remediation: "Remove --insecure-port (or set it to 0) and keep --secure-port non-zero.",
		Frameworks:  []string{"NSA 5.0"},
	}, []string{apiServer}, func(_ string, fs flagSet) []flagProblem {
		var out []flagProblem
		if p := fs.value("insecure-port", "0"); p != "0" {
			out = append(out, flagProblem{"insecure-port", "--insecure-port is " + p})
		}
		if fs.value("secure-port", "6443") == "0" {
			out = append(out, flagProblem{"secure-port", "--secure-port is 0"})
		}
		return out
	}),
	flagCheck(Meta{
		ID: "CP-007", Title: "Profiling enabled", Severity: low,
		Description: "The /debug/pprof endpoints of control-plane components reveal internals and cost CPU; they are on unless --profiling=false.",
		Remediation: "Set --profiling=false on kube-apiserver, kube-controller-manager and kube-scheduler.",
		Frameworks:  []string{"CIS 1.2.15", "CIS 1.3.2", "CIS 1.4.1"},
	}, []string{apiServer, controllerManager, scheduler}, func(_ string, fs flagSet) []flagProblem {
		if fs.bool("profiling", true) {
			return problem("profiling", "--profiling is %s", fs.value("profiling", "true (the default)"))
		}
		return nil
	}),
	flagCheck(Meta{
		ID: "CP-008", Title: "Audit logging", Severity: high,
		Description: "Without an audit log, and one kept long enough, nobody can tell who did what to the cluster.",
		Remediation: "Set --audit-log-path and --audit-policy-file, with --audit-log-maxage ≥ 30, --audit-log-maxbackup ≥ 10 and --audit-log-maxsize ≥ 100 (or an audit webhook).",
		Frameworks:  []string{"CIS 1.2.16", "CIS 1.2.17", "CIS 1.2.18", "CIS 1.2.19", "CIS 3.2.1", "NSA 8.0"},
	}, []string{apiServer}, func(_ string, fs flagSet) []flagProblem {
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
	flagCheck(Meta{
		ID: "CP-009", Title: "Service account token settings", Severity: medium,
		Description: "--service-account-lookup=false accepts tokens of deleted service accounts; without --service-account-key-file tokens cannot be verified against a rotated key; extended token expiration keeps legacy tokens alive for a year.",
		Remediation: "Keep --service-account-lookup=true, set --service-account-key-file, and set --service-account-extend-token-expiration=false once workloads use projected tokens.",
		Frameworks:  []string{"CIS 1.2.21", "CIS 1.2.22", "CIS 1.2.30"},
	}, []string{apiServer}, func(_ string, fs flagSet) []flagProblem {
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
	flagCheck(Meta{
		ID: "CP-010", Title: "API server TLS", Severity: high,
		Description: "The API server needs its own serving certificate, a client CA to authenticate clients, and TLS to etcd; weak cipher suites undo all of it.",
		Remediation: "Set --tls-cert-file, --tls-private-key-file, --client-ca-file, --etcd-certfile, --etcd-keyfile and --etcd-cafile; restrict --tls-cipher-suites to ECDHE AES-GCM / ChaCha20 suites.",
		Frameworks:  []string{"CIS 1.2.23", "CIS 1.2.24", "CIS 1.2.25", "CIS 1.2.26", "CIS 1.2.29"},
	}, []string{apiServer}, func(_ string, fs flagSet) []flagProblem {
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
	flagCheck(Meta{
		ID: "CP-011", Title: "No encryption at rest", Severity: high,
		Description: "Without --encryption-provider-config, Secrets are stored in etcd in clear: whoever reads etcd or its backups reads every Secret.",
		Remediation: "Configure --encryption-provider-config with a KMS v2 (or aescbc/secretbox) provider for secrets.",
		Frameworks:  []string{"CIS 1.2.27", "CIS 1.2.28", "NSA 6.0"},
	}, []string{apiServer}, func(_ string, fs flagSet) []flagProblem {
		if !fs.set("encryption-provider-config") {
			return problem("encryption-provider-config", "--encryption-provider-config is not set: Secrets are stored unencrypted in etcd")
		}
		return nil
	}),
	flagCheck(Meta{
		ID: "CP-012", Title: "Unreasonable request timeout", Severity: low,
		Description: "A very long --request-timeout lets slow clients hold API server resources; a very short one breaks large lists.",
		Remediation: "Keep --request-timeout between 1m and 5m unless there is a measured reason.",
		Frameworks:  []string{"CIS 1.2.20"},
	}, []string{apiServer}, func(_ string, fs flagSet) []flagProblem {
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
	flagCheck(Meta{
		ID: "CP-013", Title: "Controller manager settings", Severity: medium,
		Description: "The controller manager should use one credential per controller, sign service account tokens with a key, publish the root CA, rotate kubelet serving certificates, garbage-collect terminated pods and listen on loopback only.",
		Remediation: "Set --use-service-account-credentials=true, --service-account-private-key-file, --root-ca-file, --terminated-pod-gc-threshold, --bind-address=127.0.0.1, and keep the RotateKubeletServerCertificate feature on.",
		Frameworks:  []string{"CIS 1.3.1", "CIS 1.3.3", "CIS 1.3.4", "CIS 1.3.5", "CIS 1.3.6", "CIS 1.3.7"},
	}, []string{controllerManager}, func(_ string, fs flagSet) []flagProblem {
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
	flagCheck(Meta{
		ID: "CP-014", Title: "Scheduler listens beyond loopback", Severity: medium,
		Description: "The scheduler's health and metrics endpoints need not be reachable from the network.",
		Remediation: "Set --bind-address=127.0.0.1 on kube-scheduler.",
		Frameworks:  []string{"CIS 1.4.2"},
	}, []string{scheduler}, func(_ string, fs flagSet) []flagProblem {
		if addr := fs.value("bind-address", "0.0.0.0"); !loopbackAddress(addr) {
			return problem("bind-address", "--bind-address is %s, not loopback", addr)
		}
		return nil
	}),
	flagCheck(Meta{
		ID: "ETCD-001", Title: "etcd TLS", Severity: high,
		Description: "etcd holds every object of the cluster: its client and peer traffic must use TLS with certificates it verifies, not self-generated ones.",
		Remediation: "Set --cert-file, --key-file, --client-cert-auth=true, --peer-cert-file, --peer-key-file, --peer-client-cert-auth=true; remove --auto-tls and --peer-auto-tls.",
		Frameworks:  []string{"CIS 2.1", "CIS 2.2", "CIS 2.3", "CIS 2.4", "CIS 2.5", "CIS 2.6"},
	}, []string{etcd}, func(_ string, fs flagSet) []flagProblem {
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
		Meta: Meta{
			ID: "ETCD-002", Title: "etcd trusts the API server's client CA", Severity: high, Category: CategoryControlPlane, Party: partyControlPlane,
			Description: "When etcd's --trusted-client-ca-file is the CA that signs the API server's client certificates (--client-ca-file), every client certificate of the cluster, users' and kubelets' included, is also a certificate etcd accepts: whoever holds one can read and write etcd directly, past authorization and audit.",
			Remediation: "Give etcd a CA of its own (kubeadm's /etc/kubernetes/pki/etcd/ca.crt) and sign only the API server's etcd client certificate with it.",
			Frameworks:  []string{"CIS 2.7"},
		},
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
		Meta: Meta{
			ID: "KP-001", Title: "kube-proxy metrics exposed", Severity: low, Category: CategoryControlPlane, Party: partyControlPlane,
			Description: "kube-proxy's metrics endpoint should listen on loopback only; on 0.0.0.0 it tells anyone on the node network about every Service.",
			Remediation: "Set metricsBindAddress: 127.0.0.1:10249 in the kube-proxy configuration.",
			Frameworks:  []string{"CIS 4.3.1"},
		},
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

// hostChecks need the nodes' files and processes, or a registry: the
// Kubernetes API cannot answer them, so they are reported as not
// assessable rather than passed.
var hostChecks = []*Check{
	{
		Meta: Meta{
			ID: "HOST-001", Title: "Control-plane file permissions", Severity: high, Category: CategoryControlPlane, Party: partyControlPlane,
			Description: "Static pod manifests, kubeconfigs of the control plane, the PKI directory and the etcd data directory must be owned by root and not readable by others.",
			Remediation: "chmod 600 and chown root:root the files listed by CIS 1.1.1–1.1.21 on every control-plane node.",
			Frameworks:  []string{"CIS 1.1.1", "CIS 1.1.21"},
		},
		notAssessable: "needs the control-plane nodes' filesystem, which the Kubernetes API does not expose",
	},
	{
		Meta: Meta{
			ID: "HOST-002", Title: "Kubelet file permissions", Severity: high, Category: CategoryControlPlane, Party: partyControlPlane,
			Description: "The kubelet's service file, kubeconfig, CA and configuration must be owned by root and not writable by others.",
			Remediation: "chmod 600 and chown root:root the files listed by CIS 4.1.1–4.1.10 on every node.",
			Frameworks:  []string{"CIS 4.1.1", "CIS 4.1.10"},
		},
		notAssessable: "needs every node's filesystem, which the Kubernetes API does not expose",
	},
	{
		Meta: Meta{
			ID: "KUBELET-001", Title: "Kubelet authentication and authorization", Severity: critical, Category: CategoryControlPlane, Party: partyControlPlane,
			Description: "A kubelet that allows anonymous requests or authorizes with AlwaysAllow runs commands in any pod of its node for anyone who reaches port 10250.",
			Remediation: "In the kubelet configuration set authentication.anonymous.enabled: false, authorization.mode: Webhook and authentication.x509.clientCAFile.",
			Frameworks:  []string{"CIS 4.2.1", "CIS 4.2.2", "CIS 4.2.3"},
		},
		notAssessable: "the kubelet configuration is readable only on the node, or through nodes/proxy, which the worker is deliberately not granted",
	},
	{
		Meta: Meta{
			ID: "KUBELET-002", Title: "Kubelet hardening", Severity: medium, Category: CategoryControlPlane, Party: partyControlPlane,
			Description: "The kubelet's read-only port, streaming timeouts, certificate rotation, cipher suites and kernel protections (CIS 4.2.4–4.2.14).",
			Remediation: "Apply CIS 4.2.4–4.2.14 in the kubelet configuration of every node.",
			Frameworks:  []string{"CIS 4.2.4", "CIS 4.2.14"},
		},
		notAssessable: "the kubelet configuration is readable only on the node, or through nodes/proxy, which the worker is deliberately not granted",
	},
	{
		Meta: Meta{
			ID: "IMG-004", Title: "Image signature not verified", Severity: medium, Category: CategoryImages, Party: partyWorkload,
			Description: "Whether an image is signed by a trusted key can only be told by its registry (cosign, Notation).",
			Remediation: "Verify signatures at admission (e.g. a Sigstore policy controller) and scan with a registry-aware tool.",
			Frameworks:  []string{"CIS 5.5.1"},
		},
		notAssessable: "needs access to the image registries, which the worker does not have",
	},
}
