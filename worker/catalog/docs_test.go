package catalog_test

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/fleetscan/fleetscan/worker/catalog"
	"github.com/fleetscan/fleetscan/worker/checks"
)

var update = flag.Bool("update", false, "rewrite generated files")

const catalogDoc = "../../docs/checks.md"

// TestCatalogDoc keeps docs/checks.md equal to the catalog; run
// `make docs` (go test -update) after changing a check.
func TestCatalogDoc(t *testing.T) {
	got := catalogMarkdown()
	if *update {
		if err := os.WriteFile(catalogDoc, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(catalogDoc)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != got {
		t.Errorf("%s is stale: run 'make docs' and commit it", catalogDoc)
	}
}

func catalogMarkdown() string {
	var b strings.Builder
	all := catalog.All()
	b.WriteString("# Check catalog\n\n")
	b.WriteString("Generated from `worker/catalog` by `make docs`; do not edit. `fleetscan checks list` prints the same catalog.\n\n")
	fmt.Fprintf(&b, "%d checks. Responsible party: PROVIDER (control plane, nodes), PLATFORM (cluster-wide RBAC, network defaults, admission), WORKLOAD (what tenants deploy). ", len(all))
	b.WriteString("A check that the Kubernetes API cannot answer is reported as *not assessable* with its reason, never as passed. ")
	b.WriteString("Any finding can be suppressed on its object with the annotations `" + checks.AnnotationExempt + ": \"ID,ID\"` and `" + checks.AnnotationExemptReason + "`; it is then reported as SUPPRESSED with the reason.\n\n")
	var categories []string
	byCategory := map[string][]catalog.Meta{}
	for _, m := range all {
		if byCategory[m.Category] == nil {
			categories = append(categories, m.Category)
		}
		byCategory[m.Category] = append(byCategory[m.Category], m)
	}
	for _, c := range categories {
		fmt.Fprintf(&b, "## %s\n\n| ID | Check | Severity | Party | Frameworks |\n| --- | --- | --- | --- | --- |\n", c)
		for _, m := range byCategory[c] {
			title := m.Title
			if m.NotAssessable != "" {
				title += " *(not assessable from the API)*"
			}
			fmt.Fprintf(&b, "| [%s](#%s) | %s | %s | %s | %s |\n", m.ID, strings.ToLower(m.ID), title,
				strings.TrimPrefix(m.Severity.String(), "SEVERITY_"), strings.TrimPrefix(m.Party.String(), "RESPONSIBLE_PARTY_"),
				strings.Join(m.Frameworks, "; "))
		}
		b.WriteString("\n")
	}
	b.WriteString("## Details\n\n")
	for _, m := range all {
		fmt.Fprintf(&b, "### %s\n\n**%s** — %s, %s.\n\n%s\n\n*Remediation:* %s\n\n", m.ID, m.Title,
			strings.ToLower(strings.TrimPrefix(m.Severity.String(), "SEVERITY_")), m.Category, m.Description, m.Remediation)
		if m.NotAssessable != "" {
			fmt.Fprintf(&b, "*Not assessable:* %s.\n\n", m.NotAssessable)
		}
	}
	// The deliberate differences from other scanners are written by hand.
	differences, err := os.ReadFile("differences.md")
	if err != nil {
		panic(err)
	}
	b.Write(differences)
	return b.String()
}
