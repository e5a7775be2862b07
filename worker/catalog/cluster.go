package catalog

import "fmt"

// Kubernetes maintains the three newest minor releases; the newest is the
// one of the k8s.io/api that worker/checks is built with. Bump both
// together.
const (
	NewestMinor          = 37
	OldestSupportedMinor = NewestMinor - 2
)

var clusterChecks = []Meta{
	{
		ID: "ADM-001", Title: "Admission webhooks inventory", Severity: low, Category: CategoryAdmission, Party: partyPlatform,
		Description: "An admission webhook sees, and a mutating one rewrites, every object it matches: one that matches everything or Secrets, that calls an address outside the cluster, that fails open while down, or that fails closed on every pod of the cluster deserves a review.",
		Remediation: "Narrow the webhook's rules to the resources it needs, exclude kube-system with a namespaceSelector, point it at an in-cluster Service, and choose its failurePolicy deliberately: Fail for security policy, with a highly available endpoint.",
	},
	{
		ID: "ADM-002", Title: "Image provenance admission", Severity: medium, Category: CategoryAdmission, Party: partyPlatform,
		Description: "Without admission that verifies image signatures (the ImagePolicyWebhook plugin, the sigstore policy-controller, Connaisseur, Portieris), any image that can be pulled runs. A verifier whose namespaceSelector leaves a tenant namespace out does not protect it. Provider-side verification (GKE Binary Authorization) is invisible to the API; when Kyverno or Gatekeeper is installed the answer is in their policies, which the inventory does not hold.",
		Remediation: "Install a signature-verifying admission controller and select every tenant namespace with it, or enable the provider's equivalent; sign images in CI.",
		Frameworks:  []string{"CIS 5.5.1"},
	},
	{
		ID: "VER-001", Title: "Outdated Kubernetes", Severity: medium, Category: CategoryCluster, Party: partyProvider,
		Description: fmt.Sprintf("Kubernetes patches only its three newest minor releases (1.%d to 1.%d): an older API server or kubelet no longer gets security fixes. Managed offerings may extend that window for a fee.", OldestSupportedMinor, NewestMinor),
		Remediation: "Upgrade the control plane, then the nodes, one minor release at a time, to a supported release.",
	},
	{
		ID: "NODE-001", Title: "Node OS / runtime inventory", Severity: low, Category: CategoryCluster, Party: partyProvider,
		Description: fmt.Sprintf("Nodes should run an operating system, kernel and container runtime that are maintained and that current Kubernetes supports: an OS past its end of life, a kernel older than 5.8 (cgroup v2, which Kubernetes requires from 1.35), containerd 1.x (supported by Kubernetes up to 1.35) or Docker Engine (out of Kubernetes since 1.24) is flagged. Kubernetes 1.%d is the newest release.", NewestMinor),
		Remediation: "Move the node pool to a maintained node image (the provider's current one, Bottlerocket, Flatcar, a supported Ubuntu or RHEL) with containerd 2 or CRI-O.",
	},
}
