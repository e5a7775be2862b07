package catalog

var autoscalingChecks = []Meta{
	{
		ID: "HPA-001", Title: "Autoscaler may scale to one replica", Severity: low, Category: CategoryResources, Party: partyWorkload,
		Description: "A HorizontalPodAutoscaler with minReplicas 1 (the default) scales its workload in to a single pod when load is low: it is then down whenever that pod is, a node drain included.",
		Remediation: "Set minReplicas to at least 2.",
	},
	{
		ID: "HPA-002", Title: "Autoscaler target missing", Severity: low, Category: CategoryResources, Party: partyWorkload,
		Description: "A HorizontalPodAutoscaler whose scaleTargetRef names a Deployment, StatefulSet, ReplicaSet or ReplicationController that does not exist scales nothing: the workload it was meant for runs at a fixed size. Namespaces of which the inventory holds none of these kinds are left out, and so are targets of other kinds.",
		Remediation: "Fix scaleTargetRef to name the workload, or delete the autoscaler.",
	},
	{
		ID: "HPA-003", Title: "Autoscaler minimum blocks evictions", Severity: medium, Category: CategoryResources, Party: partyWorkload,
		Description: "When a PodDisruptionBudget's minAvailable is at least the autoscaler's minReplicas, the workload scaled in to its minimum cannot lose a pod: node drains and upgrades hang on it.",
		Remediation: "Raise minReplicas above the budget's minAvailable, or express the budget as maxUnavailable: 1.",
	},
}
