package policy

import (
	"fmt"
	"slices"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/worker/catalog"
)

// Selection narrows a run: which checks, which namespaces. The zero value
// runs every check on every namespace.
type Selection struct {
	// Include lists the check ids to run; empty means all.
	Include []string
	// Exclude lists check ids to skip.
	Exclude []string
	// Namespaces limits namespaced findings to these namespaces; empty means
	// all. Findings on cluster-scoped objects are always kept.
	Namespaces []string
	// Custom checks in CEL, run next to the built-in ones.
	Custom []*fleetscanv1.CustomCheck
	// TrustedRegistries are the image registries (host, or host/path
	// prefix) workloads may pull from; IMG-003 is not assessable without.
	TrustedRegistries []string
	// DeniedRegistries are image registries (host, or host/path prefix)
	// workloads must not pull from (IMG-005), next to the frozen ones.
	DeniedRegistries []string
}

// CustomKinds returns the kinds the selection's custom checks read, which
// a collector keeps whole (checks.Inventory.WholeKinds); nil when there are none.
func (s Selection) CustomKinds() map[string]bool {
	var out map[string]bool
	for _, c := range s.Custom {
		for _, k := range c.GetMatch().GetKinds() {
			if out == nil {
				out = map[string]bool{}
			}
			out[k] = true
		}
	}
	return out
}

// Validate reports the first problem of the selection: a check id that is
// in neither the catalog nor the custom checks, or a custom check that does
// not compile.
func (s Selection) Validate() error {
	_, err := s.Compile()
	return err
}

// Compile compiles the custom checks and checks every id.
func (s Selection) Compile() ([]*Custom, error) {
	var custom []*Custom
	ids := map[string]bool{}
	for i, def := range s.Custom {
		c, err := Compile(def, fmt.Sprintf("custom check %d", i+1))
		if err != nil {
			return nil, err
		}
		if ids[def.Id] {
			return nil, fmt.Errorf("%w %s: two custom checks have this id", ErrInvalidPolicy, def.Id)
		}
		ids[def.Id] = true
		custom = append(custom, c)
	}
	for _, id := range slices.Concat(s.Include, s.Exclude) {
		if _, ok := catalog.Lookup(id); !ok && !ids[id] {
			return nil, fmt.Errorf("%w %q", catalog.ErrUnknownCheck, id)
		}
	}
	return custom, nil
}

// Selects reports whether the selection runs check id.
func (s Selection) Selects(id string) bool {
	return (len(s.Include) == 0 || slices.Contains(s.Include, id)) && !slices.Contains(s.Exclude, id)
}
