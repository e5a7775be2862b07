package checks

import (
	"cmp"
	"slices"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// Categories of the catalog.
const (
	CategoryPodSecurity     = "pod-security"
	CategoryImages          = "images"
	CategoryResources       = "resources"
	CategoryServiceAccounts = "service-accounts"
	CategorySecrets         = "secrets"
	CategoryRBAC            = "rbac"
	CategoryNetwork         = "network"
	CategoryAdmission       = "admission"
	CategoryCluster         = "cluster"
	CategoryThirdParty      = "third-party"
)

// Meta describes a check: what the catalog lists and a finding cites.
type Meta struct {
	ID          string
	Title       string
	Description string
	Severity    fleetscanv1.Severity
	Category    string
	Party       fleetscanv1.ResponsibleParty
	Remediation string
	// Frameworks cites the controls of other frameworks that this check
	// implements, e.g. "CIS 5.2.2", "NSA 1.2", "PSS Baseline: Privileged
	// Containers", "MITRE Privilege escalation".
	Frameworks []string
	// NotAssessable is set for checks that the Kubernetes API can never
	// answer (node files, registries): why. They are listed, never passed.
	NotAssessable string
}

// Check is a built-in check. Exactly one of its functions is set, by the
// granularity at which it reads the inventory.
type Check struct {
	Meta
	// container is called for every container of every workload.
	container func(r *reporter, w *Workload, c *Container)
	// workload is called for every workload.
	workload func(r *reporter, w *Workload)
	// inventory is called once with the whole inventory.
	inventory func(r *reporter, inv *Inventory)

	// notAssessable, when set, is why the check can never be evaluated from
	// the Kubernetes API (HOST and EXT rows of the catalog).
	notAssessable string
	// assessable, when set, returns why the check cannot be evaluated on
	// this inventory, or "" when it can.
	assessable func(inv *Inventory) string
	// needs, when set, returns why the check cannot run with this
	// selection's settings (e.g. no registry allow-list), or "".
	needs func(sel Selection) string
}

func (c *Check) unassessable(inv *Inventory) string {
	if c.notAssessable != "" {
		return c.notAssessable
	}
	if c.assessable != nil {
		return c.assessable(inv)
	}
	return ""
}

var registry = func() []*Check {
	var all []*Check
	for _, group := range [][]*Check{podChecks, workloadChecks, podHardeningChecks, rbacRoleChecks, rbacBindingChecks, autoscalingChecks, networkChecks, resourceChecks, secretChecks, namespaceChecks, clusterChecks, thirdPartyChecks, controlPlaneChecks, pssChecks, registryChecks} {
		all = append(all, group...)
	}
	slices.SortFunc(all, func(a, b *Check) int { return cmp.Compare(a.ID, b.ID) })
	for _, c := range all {
		c.Meta.NotAssessable = c.notAssessable
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID == all[i-1].ID {
			panic("checks: duplicate check id " + all[i].ID)
		}
	}
	return all
}()

// All returns the catalog, ordered by id.
func All() []Meta {
	out := make([]Meta, len(registry))
	for i, c := range registry {
		out[i] = c.Meta
	}
	return out
}

// Lookup returns the catalog entry of a check id.
func Lookup(id string) (Meta, bool) {
	i, ok := slices.BinarySearchFunc(registry, id, func(c *Check, id string) int { return cmp.Compare(c.ID, id) })
	if !ok {
		return Meta{}, false
	}
	return registry[i].Meta, true
}
