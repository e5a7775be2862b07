package checks

import (
	"errors"
	"fmt"
	"slices"

	"github.com/fleetscan/fleetscan/worker/catalog"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// Check is the implementation of a catalog entry. Exactly one of its
// functions is set, by the granularity at which it reads the inventory.
type Check struct {
	// ID names the check's entry in worker/catalog, which holds its texts.
	ID string
	// meta is the catalog entry of ID, attached by attach.
	meta catalog.Meta

	// container is called for every container of every workload.
	container func(r *reporter, w *Workload, c *Container)
	// workload is called for every workload.
	workload func(r *reporter, w *Workload)
	// inventory is called once with the whole inventory.
	inventory func(r *reporter, inv *Inventory)

	// assessable, when set, returns why the check cannot be evaluated on
	// this inventory, or "" when it can.
	assessable func(inv *Inventory) string
	// needs, when set, returns why the check cannot run with this
	// selection's settings (e.g. no registry allow-list), or "".
	needs func(sel policy.Selection) string
}

func (c *Check) unassessable(inv *Inventory) string {
	if c.meta.NotAssessable != "" {
		return c.meta.NotAssessable
	}
	if c.assessable != nil {
		return c.assessable(inv)
	}
	return ""
}

// implementations are the checks of this package, by family.
var implementations = slices.Concat(podChecks, workloadChecks, podHardeningChecks, rbacRoleChecks, rbacBindingChecks, autoscalingChecks, networkChecks, resourceChecks, secretChecks, namespaceChecks, clusterChecks, thirdPartyChecks, flagChecks, pssChecks, registryChecks)

var registry = func() []*Check {
	all, err := attach(catalog.All(), implementations)
	if err != nil {
		panic(err)
	}
	return all
}()

// attach returns a check for every catalog entry, in the catalog's order,
// each with its implementation. Only an entry that is never assessable has
// none; an implementation without an entry would never run.
func attach(entries []catalog.Meta, impls []*Check) ([]*Check, error) {
	byID := make(map[string]*Check, len(impls))
	var errs []error
	for _, c := range impls {
		if byID[c.ID] != nil {
			errs = append(errs, fmt.Errorf("checks: two implementations of %s", c.ID))
		}
		byID[c.ID] = c
	}
	out := make([]*Check, 0, len(entries))
	for _, m := range entries {
		c := byID[m.ID]
		delete(byID, m.ID)
		switch {
		case c == nil && m.NotAssessable == "":
			errs = append(errs, fmt.Errorf("checks: catalog entry %s has no implementation", m.ID))
			continue
		case c == nil:
			c = &Check{ID: m.ID}
		case m.NotAssessable != "":
			errs = append(errs, fmt.Errorf("checks: %s is never assessable in the catalog, yet has an implementation", m.ID))
		}
		attached := *c
		attached.meta = m
		out = append(out, &attached)
	}
	for _, c := range impls {
		if byID[c.ID] == c {
			errs = append(errs, fmt.Errorf("checks: %s has no catalog entry", c.ID))
		}
	}
	return out, errors.Join(errs...)
}
