package checks

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/fleetscan/fleetscan/worker/catalog"
)

// TestCatalogImplemented: every entry of worker/catalog has a check here,
// unless the API can never answer it, and every check here has an entry.
func TestCatalogImplemented(t *testing.T) {
	all, err := attach(catalog.All(), implementations)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(catalog.All()) {
		t.Errorf("%d checks for %d catalog entries", len(all), len(catalog.All()))
	}
}

func TestAttach(t *testing.T) {
	entry := func(id, notAssessable string) catalog.Meta { return catalog.Meta{ID: id, NotAssessable: notAssessable} }
	impl := func(id string) *Check { return &Check{ID: id, workload: func(*reporter, *Workload) {}} }
	for _, tt := range []struct {
		name    string
		entries []catalog.Meta
		impls   []*Check
		want    []string // errors, by what they say
	}{
		{"each entry implemented", []catalog.Meta{entry("A-1", ""), entry("B-1", "")}, []*Check{impl("B-1"), impl("A-1")}, nil},
		{"never assessable, no implementation", []catalog.Meta{entry("A-1", "needs the nodes")}, nil, nil},
		{"entry without implementation", []catalog.Meta{entry("A-1", ""), entry("B-1", "")}, []*Check{impl("A-1")}, []string{"B-1 has no implementation"}},
		{"implementation without entry", []catalog.Meta{entry("A-1", "")}, []*Check{impl("A-1"), impl("C-1")}, []string{"C-1 has no catalog entry"}},
		{"implementation of a never assessable entry", []catalog.Meta{entry("A-1", "needs the nodes")}, []*Check{impl("A-1")}, []string{"A-1 is never assessable"}},
		{"two implementations", []catalog.Meta{entry("A-1", "")}, []*Check{impl("A-1"), impl("A-1")}, []string{"two implementations of A-1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			all, err := attach(tt.entries, tt.impls)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				for i, c := range all {
					if c.ID != tt.entries[i].ID || c.meta.ID != c.ID {
						t.Errorf("check %d is %s with the entry of %s, want %s", i, c.ID, c.meta.ID, tt.entries[i].ID)
					}
				}
				return
			}
			for _, want := range tt.want {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("got %v, want an error saying %q", err, want)
				}
			}
		})
	}
}

// TestCatalogKinds: the kinds the catalog says fleetscan reads, and in
// which version, are the Inventory's.
func TestCatalogKinds(t *testing.T) {
	got := map[string]string{}
	(&Inventory{}).walk(func(apiVersion, kind string) { got[kind] = apiVersion }, nil)
	for kind, apiVersion := range got {
		if v := catalog.CanonicalAPIVersion(kind); v != apiVersion {
			t.Errorf("catalog reads %s in %q, the Inventory holds it in %q", kind, v, apiVersion)
		}
	}
	if want := slices.Sorted(maps.Keys(got)); !slices.Equal(catalog.Kinds(), want) {
		t.Errorf("catalog kinds %q, Inventory kinds %q", catalog.Kinds(), want)
	}
}
