package catalog

var thirdPartyChecks = []Meta{
	{
		ID: "TP-001", Title: "Tiller", Severity: critical, Category: CategoryThirdParty, Party: partyPlatform,
		Description: "Tiller, Helm v2's in-cluster server, answers on port 44134 without authentication by default and usually holds cluster-admin: anyone who reaches it installs anything. Helm v2 has had no release since 2020.",
		Remediation: "Migrate the releases to Helm 3 (helm-2to3), which needs no in-cluster component, and delete the Tiller Deployment and its Service.",
	},
	{
		ID: "TP-002", Title: "ingress-nginx snippets / EOL", Severity: high, Category: CategoryThirdParty, Party: partyPlatform,
		Description: "ingress-nginx's *-snippet annotations insert raw NGINX configuration: whoever can write an Ingress reads the controller's service account token and every Secret it can (CVE-2021-25742). The project was retired in March 2026 (kubernetes.io/blog/2025/11/11/ingress-nginx-retirement): no release of its controller gets security fixes any more.",
		Remediation: "Migrate to a maintained Ingress or Gateway API controller; until then keep allow-snippet-annotations false in the controller's ConfigMap and remove the snippet annotations.",
	},
	{
		ID: "TP-003", Title: "Known-vulnerable platform components", Severity: high, Category: CategoryThirdParty, Party: partyPlatform,
		Description: "Releases of platform components with published vulnerabilities, read from image tags (Argo CD CVE-2022-24348, Grafana CVE-2022-39328, Kyverno CVE-2022-47633), from Node status (kubelet CVE-2021-25741, containerd CVE-2022-23648) and from the API server's version (CVE-2022-3172). An image pinned by digest alone names no release and is not judged.",
		Remediation: "Upgrade the component to a fixed release.",
	},
	{
		ID: "TP-004", Title: "Kubernetes Dashboard deployed", Severity: medium, Category: CategoryThirdParty, Party: partyPlatform,
		Description: "The Kubernetes Dashboard is a web front-end to the API, and a target: exposed outside the cluster, or with --enable-skip-login, it lets visitors act with its service account (HIGH). The project is archived.",
		Remediation: "Remove the Dashboard, or keep it reachable only through kubectl port-forward, without --enable-skip-login, its service account bound to nothing but its own roles.",
	},
}
