package catalog

var resourceChecks = []Meta{
	{
		ID: "RES-003", Title: "No CPU request", Severity: low, Category: CategoryResources, Party: partyWorkload,
		Description: "A container without a CPU request is scheduled as if it needed no CPU and is the first to be starved under contention.",
		Remediation: "Set resources.requests.cpu to what the container uses under normal load.",
	},
	{
		ID: "RES-004", Title: "No memory request", Severity: low, Category: CategoryResources, Party: partyWorkload,
		Description: "A container without a memory request is scheduled as if it needed no memory, overcommits its node and is among the first evicted under memory pressure.",
		Remediation: "Set resources.requests.memory to what the container uses under normal load.",
	},
	{
		ID: "RES-005", Title: "No readiness probe", Severity: low, Category: CategoryResources, Party: partyWorkload,
		Description: "Without a readiness probe a long-running container receives traffic from Services as soon as it starts, and still when it can no longer serve. Jobs, run-to-completion pods and init containers are left out; sidecars (init containers with restartPolicy: Always) are not.",
		Remediation: "Add a readinessProbe that checks the container can serve.",
	},
	{
		ID: "RES-006", Title: "No liveness probe", Severity: low, Category: CategoryResources, Party: partyWorkload,
		Description: "Without a liveness probe a long-running container that hangs without exiting is never restarted. Jobs, run-to-completion pods and init containers are left out; sidecars (init containers with restartPolicy: Always) are not.",
		Remediation: "Add a livenessProbe that fails only when the process cannot recover by itself.",
	},
	{
		ID: "RES-007", Title: "Naked pod", Severity: low, Category: CategoryResources, Party: partyWorkload,
		Description: "A Pod that no controller manages is not re-created when its node fails or drains, nor rolled out, nor scaled.",
		Remediation: "Run it from a Deployment, StatefulSet, DaemonSet or Job.",
	},
	{
		ID: "RES-008", Title: "Single point of failure", Severity: low, Category: CategoryResources, Party: partyWorkload,
		Description: "A Deployment or StatefulSet with a single replica is down whenever its pod is; without a PodDisruptionBudget a node drain may evict all its replicas at once.",
		Remediation: "Run at least 2 replicas, spread over nodes, and add a PodDisruptionBudget that selects the pods.",
	},
	{
		ID: "RES-009", Title: "PodDisruptionBudget allows no eviction", Severity: medium, Category: CategoryResources, Party: partyWorkload,
		Description: "A PodDisruptionBudget with maxUnavailable 0 (or 0%), minAvailable 100%, or minAvailable at least the replicas of what it selects never lets a pod be evicted: node drains, upgrades and autoscaler scale-downs hang until someone deletes it.",
		Remediation: "Allow at least one disruption: maxUnavailable: 1, or minAvailable below the replica count.",
	},
	{
		ID: "RES-010", Title: "PodDisruptionBudget selects no pod", Severity: low, Category: CategoryResources, Party: partyWorkload,
		Description: "A PodDisruptionBudget whose selector matches no pod of its namespace protects nothing: the workload it was written for is evicted freely. A missing selector selects no pod. Pods of every controller count, operators' included.",
		Remediation: "Fix the selector to match the labels of the pods it should protect, or delete the budget.",
	},
}
