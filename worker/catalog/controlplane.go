package catalog

var flagChecks = []Meta{
	{
		ID: "CP-001", Title: "API server allows anonymous requests", Severity: high, Category: CategoryControlPlane, Party: partyControlPlane,
		Description: "With --anonymous-auth not false, requests without credentials reach the API server as system:anonymous; any RBAC slip toward that user is then open to the network.",
		Remediation: "Start kube-apiserver with --anonymous-auth=false (or restrict anonymous access to health endpoints with an authentication config).",
		Frameworks:  []string{"CIS 1.2.1", "NSA 7.0"},
	},
	{
		ID: "CP-002", Title: "Static token file", Severity: high, Category: CategoryControlPlane, Party: partyControlPlane,
		Description: "Tokens of --token-auth-file are long-lived, stored in clear on the node and cannot be revoked without restarting the API server.",
		Remediation: "Remove --token-auth-file; use client certificates, OIDC or service account tokens.",
		Frameworks:  []string{"CIS 1.2.2"},
	},
	{
		ID: "CP-003", Title: "Weak authorization mode", Severity: critical, Category: CategoryControlPlane, Party: partyControlPlane,
		Description: "--authorization-mode must not include AlwaysAllow, and should include Node and RBAC; without them every authenticated request is allowed or kubelets are not confined to their node.",
		Remediation: "Set --authorization-mode=Node,RBAC (or an --authorization-config with the Node and RBAC authorizers).",
		Frameworks:  []string{"CIS 1.2.6", "CIS 1.2.7", "CIS 1.2.8", "NSA 7.1"},
	},
	{
		ID: "CP-004", Title: "API server does not verify kubelets", Severity: high, Category: CategoryControlPlane, Party: partyControlPlane,
		Description: "Without a client certificate for the kubelet and --kubelet-certificate-authority, the API server cannot prove itself to kubelets or verify them: exec and logs traffic can be intercepted.",
		Remediation: "Set --kubelet-client-certificate, --kubelet-client-key and --kubelet-certificate-authority.",
		Frameworks:  []string{"CIS 1.2.4", "CIS 1.2.5"},
	},
	{
		ID: "CP-005", Title: "Admission plugins", Severity: medium, Category: CategoryControlPlane, Party: partyControlPlane,
		Description: "AlwaysAdmit disables admission control; NodeRestriction, ServiceAccount and NamespaceLifecycle confine kubelets, service accounts and deleted namespaces; DenyServiceExternalIPs closes CVE-2020-8554; EventRateLimit and AlwaysPullImages harden multi-tenant clusters.",
		Remediation: "Remove AlwaysAdmit from --enable-admission-plugins; enable NodeRestriction, DenyServiceExternalIPs (and, for multi-tenant clusters, EventRateLimit and AlwaysPullImages); do not disable ServiceAccount or NamespaceLifecycle.",
		Frameworks:  []string{"CIS 1.2.3", "CIS 1.2.9", "CIS 1.2.10", "CIS 1.2.11", "CIS 1.2.12", "CIS 1.2.13", "CIS 1.2.14"},
	},
	{
		ID: "CP-006", Title: "Insecure API port", Severity: critical, Category: CategoryControlPlane, Party: partyControlPlane,
		Description: "An insecure port serves the API without authentication or authorization; --secure-port=0 turns TLS off entirely.",
		Remediation: "Remove --insecure-port (or set it to 0) and keep --secure-port non-zero.",
		Frameworks:  []string{"NSA 5.0"},
	},
	{
		ID: "CP-007", Title: "Profiling enabled", Severity: low, Category: CategoryControlPlane, Party: partyControlPlane,
		Description: "The /debug/pprof endpoints of control-plane components reveal internals and cost CPU; they are on unless --profiling=false.",
		Remediation: "Set --profiling=false on kube-apiserver, kube-controller-manager and kube-scheduler.",
		Frameworks:  []string{"CIS 1.2.15", "CIS 1.3.2", "CIS 1.4.1"},
	},
	{
		ID: "CP-008", Title: "Audit logging", Severity: high, Category: CategoryControlPlane, Party: partyControlPlane,
		Description: "Without an audit log, and one kept long enough, nobody can tell who did what to the cluster.",
		Remediation: "Set --audit-log-path and --audit-policy-file, with --audit-log-maxage ≥ 30, --audit-log-maxbackup ≥ 10 and --audit-log-maxsize ≥ 100 (or an audit webhook).",
		Frameworks:  []string{"CIS 1.2.16", "CIS 1.2.17", "CIS 1.2.18", "CIS 1.2.19", "CIS 3.2.1", "NSA 8.0"},
	},
	{
		ID: "CP-009", Title: "Service account token settings", Severity: medium, Category: CategoryControlPlane, Party: partyControlPlane,
		Description: "--service-account-lookup=false accepts tokens of deleted service accounts; without --service-account-key-file tokens cannot be verified against a rotated key; extended token expiration keeps legacy tokens alive for a year.",
		Remediation: "Keep --service-account-lookup=true, set --service-account-key-file, and set --service-account-extend-token-expiration=false once workloads use projected tokens.",
		Frameworks:  []string{"CIS 1.2.21", "CIS 1.2.22", "CIS 1.2.30"},
	},
	{
		ID: "CP-010", Title: "API server TLS", Severity: high, Category: CategoryControlPlane, Party: partyControlPlane,
		Description: "The API server needs its own serving certificate, a client CA to authenticate clients, and TLS to etcd; weak cipher suites undo all of it.",
		Remediation: "Set --tls-cert-file, --tls-private-key-file, --client-ca-file, --etcd-certfile, --etcd-keyfile and --etcd-cafile; restrict --tls-cipher-suites to ECDHE AES-GCM / ChaCha20 suites.",
		Frameworks:  []string{"CIS 1.2.23", "CIS 1.2.24", "CIS 1.2.25", "CIS 1.2.26", "CIS 1.2.29"},
	},
	{
		ID: "CP-011", Title: "No encryption at rest", Severity: high, Category: CategoryControlPlane, Party: partyControlPlane,
		Description: "Without --encryption-provider-config, Secrets are stored in etcd in clear: whoever reads etcd or its backups reads every Secret.",
		Remediation: "Configure --encryption-provider-config with a KMS v2 (or aescbc/secretbox) provider for secrets.",
		Frameworks:  []string{"CIS 1.2.27", "CIS 1.2.28", "NSA 6.0"},
	},
	{
		ID: "CP-012", Title: "Unreasonable request timeout", Severity: low, Category: CategoryControlPlane, Party: partyControlPlane,
		Description: "A very long --request-timeout lets slow clients hold API server resources; a very short one breaks large lists.",
		Remediation: "Keep --request-timeout between 1m and 5m unless there is a measured reason.",
		Frameworks:  []string{"CIS 1.2.20"},
	},
	{
		ID: "CP-013", Title: "Controller manager settings", Severity: medium, Category: CategoryControlPlane, Party: partyControlPlane,
		Description: "The controller manager should use one credential per controller, sign service account tokens with a key, publish the root CA, rotate kubelet serving certificates, garbage-collect terminated pods and listen on loopback only.",
		Remediation: "Set --use-service-account-credentials=true, --service-account-private-key-file, --root-ca-file, --terminated-pod-gc-threshold, --bind-address=127.0.0.1, and keep the RotateKubeletServerCertificate feature on.",
		Frameworks:  []string{"CIS 1.3.1", "CIS 1.3.3", "CIS 1.3.4", "CIS 1.3.5", "CIS 1.3.6", "CIS 1.3.7"},
	},
	{
		ID: "CP-014", Title: "Scheduler listens beyond loopback", Severity: medium, Category: CategoryControlPlane, Party: partyControlPlane,
		Description: "The scheduler's health and metrics endpoints need not be reachable from the network.",
		Remediation: "Set --bind-address=127.0.0.1 on kube-scheduler.",
		Frameworks:  []string{"CIS 1.4.2"},
	},
	{
		ID: "ETCD-001", Title: "etcd TLS", Severity: high, Category: CategoryControlPlane, Party: partyControlPlane,
		Description: "etcd holds every object of the cluster: its client and peer traffic must use TLS with certificates it verifies, not self-generated ones.",
		Remediation: "Set --cert-file, --key-file, --client-cert-auth=true, --peer-cert-file, --peer-key-file, --peer-client-cert-auth=true; remove --auto-tls and --peer-auto-tls.",
		Frameworks:  []string{"CIS 2.1", "CIS 2.2", "CIS 2.3", "CIS 2.4", "CIS 2.5", "CIS 2.6"},
	},
	{
		ID: "ETCD-002", Title: "etcd trusts the API server's client CA", Severity: high, Category: CategoryControlPlane, Party: partyControlPlane,
		Description: "When etcd's --trusted-client-ca-file is the CA that signs the API server's client certificates (--client-ca-file), every client certificate of the cluster, users' and kubelets' included, is also a certificate etcd accepts: whoever holds one can read and write etcd directly, past authorization and audit.",
		Remediation: "Give etcd a CA of its own (kubeadm's /etc/kubernetes/pki/etcd/ca.crt) and sign only the API server's etcd client certificate with it.",
		Frameworks:  []string{"CIS 2.7"},
	},
	{
		ID: "KP-001", Title: "kube-proxy metrics exposed", Severity: low, Category: CategoryControlPlane, Party: partyControlPlane,
		Description: "kube-proxy's metrics endpoint should listen on loopback only; on 0.0.0.0 it tells anyone on the node network about every Service.",
		Remediation: "Set metricsBindAddress: 127.0.0.1:10249 in the kube-proxy configuration.",
		Frameworks:  []string{"CIS 4.3.1"},
	},
}

var hostChecks = []Meta{
	{
		ID: "HOST-001", Title: "Control-plane file permissions", Severity: high, Category: CategoryControlPlane, Party: partyControlPlane,
		Description:   "Static pod manifests, kubeconfigs of the control plane, the PKI directory and the etcd data directory must be owned by root and not readable by others.",
		Remediation:   "chmod 600 and chown root:root the files listed by CIS 1.1.1–1.1.21 on every control-plane node.",
		Frameworks:    []string{"CIS 1.1.1", "CIS 1.1.21"},
		NotAssessable: "needs the control-plane nodes' filesystem, which the Kubernetes API does not expose",
	},
	{
		ID: "HOST-002", Title: "Kubelet file permissions", Severity: high, Category: CategoryControlPlane, Party: partyControlPlane,
		Description:   "The kubelet's service file, kubeconfig, CA and configuration must be owned by root and not writable by others.",
		Remediation:   "chmod 600 and chown root:root the files listed by CIS 4.1.1–4.1.10 on every node.",
		Frameworks:    []string{"CIS 4.1.1", "CIS 4.1.10"},
		NotAssessable: "needs every node's filesystem, which the Kubernetes API does not expose",
	},
	{
		ID: "KUBELET-001", Title: "Kubelet authentication and authorization", Severity: critical, Category: CategoryControlPlane, Party: partyControlPlane,
		Description:   "A kubelet that allows anonymous requests or authorizes with AlwaysAllow runs commands in any pod of its node for anyone who reaches port 10250.",
		Remediation:   "In the kubelet configuration set authentication.anonymous.enabled: false, authorization.mode: Webhook and authentication.x509.clientCAFile.",
		Frameworks:    []string{"CIS 4.2.1", "CIS 4.2.2", "CIS 4.2.3"},
		NotAssessable: "the kubelet configuration is readable only on the node, or through nodes/proxy, which the worker is deliberately not granted",
	},
	{
		ID: "KUBELET-002", Title: "Kubelet hardening", Severity: medium, Category: CategoryControlPlane, Party: partyControlPlane,
		Description:   "The kubelet's read-only port, streaming timeouts, certificate rotation, cipher suites and kernel protections (CIS 4.2.4–4.2.14).",
		Remediation:   "Apply CIS 4.2.4–4.2.14 in the kubelet configuration of every node.",
		Frameworks:    []string{"CIS 4.2.4", "CIS 4.2.14"},
		NotAssessable: "the kubelet configuration is readable only on the node, or through nodes/proxy, which the worker is deliberately not granted",
	},
	{
		ID: "IMG-004", Title: "Image signature not verified", Severity: medium, Category: CategoryImages, Party: partyWorkload,
		Description:   "Whether an image is signed by a trusted key can only be told by its registry (cosign, Notation).",
		Remediation:   "Verify signatures at admission (e.g. a Sigstore policy controller) and scan with a registry-aware tool.",
		Frameworks:    []string{"CIS 5.5.1"},
		NotAssessable: "needs access to the image registries, which the worker does not have",
	},
}
