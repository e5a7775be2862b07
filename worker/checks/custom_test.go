package checks_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/worker/checks"
	"github.com/fleetscan/fleetscan/worker/internal/collect"
	"github.com/fleetscan/fleetscan/worker/policy"
)

const examplePolicies = "../../deploy/examples/policies"

// TestExamplePolicies runs every example policy on its fixtures in
// testdata/custom/<ID>/, like the built-in checks.
func TestExamplePolicies(t *testing.T) {
	defs, err := policy.LoadPolicies(examplePolicies)
	if err != nil {
		t.Fatal(err)
	}
	if len(defs) < 5 {
		t.Fatalf("%d example policies, want at least 5", len(defs))
	}
	for _, def := range defs {
		t.Run(def.Id, func(t *testing.T) {
			dir := filepath.Join("testdata", "custom", def.Id)
			sel := policy.Selection{Custom: []*fleetscanv1.CustomCheck{def}, Include: []string{def.Id}}
			want := readWant(t, filepath.Join(dir, "want.txt"))
			if got := runSelection(t, sel, filepath.Join(dir, "fail.yaml")); !slices.Equal(got, want) {
				t.Errorf("fail.yaml findings:\n got: %q\nwant: %q", got, want)
			}
			if got := runSelection(t, sel, filepath.Join(dir, "pass.yaml")); len(got) > 0 {
				t.Errorf("pass.yaml produced findings: %q", got)
			}
		})
	}
}

func runSelection(t *testing.T, sel policy.Selection, path string) []string {
	t.Helper()
	inv := loadFixture(t, path)
	var got []string
	skipped, err := checks.Run(context.Background(), inv, sel, func(f checks.Finding) error {
		if f.Message == "" || f.Severity == 0 {
			return fmt.Errorf("incomplete finding %+v", f)
		}
		got = append(got, findingLine(f))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, na := range skipped {
		if strings.HasPrefix(na.CheckID, "ORG-") {
			t.Errorf("custom check not assessed: %v", na)
		}
	}
	slices.Sort(got)
	return got
}

func loadFixture(t *testing.T, path string) *checks.Inventory {
	t.Helper()
	inv, stats, err := collect.LoadSnapshotFile(path)
	if err != nil || len(stats.Problems)+len(stats.Warnings) > 0 {
		t.Fatalf("load %s: %v %v %v", path, err, stats.Problems, stats.Warnings)
	}
	return inv
}

// TestCustomCheckCostLimit: an expression too expensive for an object is
// stopped by the cost limit and reported as not assessable, not as a pass
// and not as a finding; the scan goes on.
func TestCustomCheckCostLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big, namespace: shop}\ndata:\n")
	for i := range 2000 {
		fmt.Fprintf(&b, "  key%d: value\n", i)
	}
	inv := &checks.Inventory{}
	if _, err := collect.DecodeManifests(strings.NewReader(b.String()), "big.yaml", inv); err != nil {
		t.Fatal(err)
	}
	def := &fleetscanv1.CustomCheck{
		Id: "ORG-SLOW", Title: "quadratic", Severity: fleetscanv1.Severity_SEVERITY_LOW,
		Match:      &fleetscanv1.CustomCheckMatch{Kinds: []string{"ConfigMap"}},
		Expression: "object.data.all(a, object.data.all(b, a == b || a != b))",
	}
	findings := 0
	skipped, err := checks.Run(context.Background(), inv, policy.Selection{Custom: []*fleetscanv1.CustomCheck{def}, Include: []string{"ORG-SLOW"}}, func(checks.Finding) error {
		findings++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if findings != 0 || len(skipped) != 1 || skipped[0].CheckID != "ORG-SLOW" || !strings.Contains(skipped[0].Reason, "cost limit") {
		t.Errorf("findings %d, not assessable %v; want 0 and ORG-SLOW over the cost limit", findings, skipped)
	}
}
