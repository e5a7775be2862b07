package catalog_test

import (
	"testing"

	"github.com/fleetscan/fleetscan/worker/catalog"
)

func TestCatalogMetadata(t *testing.T) {
	for _, m := range catalog.All() {
		if m.Title == "" || m.Description == "" || m.Remediation == "" || m.Severity == 0 || m.Category == "" || m.Party == 0 {
			t.Errorf("%s: incomplete catalog entry %+v", m.ID, m)
		}
		if got, ok := catalog.Lookup(m.ID); !ok || got.ID != m.ID {
			t.Errorf("Lookup(%s) = %v, %v", m.ID, got.ID, ok)
		}
	}
	if _, ok := catalog.Lookup("NOPE-001"); ok {
		t.Error("Lookup of an unknown id succeeded")
	}
}
