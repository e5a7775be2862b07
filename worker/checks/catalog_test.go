package checks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fleetscan/fleetscan/worker/catalog"
	"github.com/fleetscan/fleetscan/worker/checks"
	"github.com/fleetscan/fleetscan/worker/internal/collect"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// TestCatalogFixtures runs every check of the catalog on its fixtures in
// testdata/<ID>/: fail.yaml must produce exactly the findings listed in
// want.txt (one "Kind namespace/name sub-path" per line), pass.yaml none.
// A check without fixtures fails the test.
func TestCatalogFixtures(t *testing.T) {
	for _, meta := range catalog.All() {
		t.Run(meta.ID, func(t *testing.T) {
			if meta.NotAssessable != "" {
				return // TestNotAssessable covers it
			}
			dir := filepath.Join("testdata", meta.ID)
			want := readWant(t, filepath.Join(dir, "want.txt"))
			if len(want) == 0 {
				t.Fatalf("%s/want.txt lists no finding: a failing fixture must fail", dir)
			}
			sel := policy.Selection{Include: []string{meta.ID}}
			// settings.json, when present, gives the check its settings.
			if b, err := os.ReadFile(filepath.Join(dir, "settings.json")); err == nil {
				if err := json.Unmarshal(b, &sel); err != nil {
					t.Fatalf("settings.json: %v", err)
				}
			}
			if got := runFixture(t, sel, filepath.Join(dir, "fail.yaml")); !slices.Equal(got, want) {
				t.Errorf("fail.yaml findings:\n got: %q\nwant: %q", got, want)
			}
			if got := runFixture(t, sel, filepath.Join(dir, "pass.yaml")); len(got) > 0 {
				t.Errorf("pass.yaml produced findings: %q", got)
			}
		})
	}
}

func runFixture(t *testing.T, sel policy.Selection, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("fixture missing: %v", err)
	}
	defer f.Close()
	inv := &checks.Inventory{}
	stats, err := collect.DecodeManifests(f, path, inv)
	if err != nil || len(stats.Problems)+len(stats.Warnings) > 0 {
		t.Fatalf("decode %s: %v %v %v", path, err, stats.Problems, stats.Warnings)
	}
	var got []string
	id := sel.Include[0]
	skipped, err := checks.Run(context.Background(), inv, sel, func(f checks.Finding) error {
		if f.CheckID != id {
			return fmt.Errorf("finding of %s while running only %s", f.CheckID, id)
		}
		if f.Message == "" || f.Severity == 0 || f.Category == "" || f.Party == 0 {
			return fmt.Errorf("incomplete finding %+v", f)
		}
		got = append(got, findingLine(f))
		return nil
	})
	if err != nil {
		t.Fatalf("run %s on %s: %v", id, path, err)
	}
	for _, na := range skipped {
		if na.CheckID == id && len(got) == 0 && strings.HasSuffix(path, "fail.yaml") {
			t.Fatalf("%s not assessable on its failing fixture: %s", id, na.Reason)
		}
	}
	slices.Sort(got)
	return got
}

func findingLine(f checks.Finding) string {
	r := f.Resource
	name := r.Name
	if r.Namespace != "" {
		name = r.Namespace + "/" + r.Name
	}
	return strings.TrimSpace(fmt.Sprintf("%s %s %s", r.Kind, name, r.SubPath))
}

func readWant(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("fixture missing: %v", err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, strings.Join(strings.Fields(line), " "))
		}
	}
	slices.Sort(out)
	return out
}

// TestNotAssessable: checks the API cannot answer are reported as not
// assessable with a reason, on any inventory; so are control-plane checks
// where no static pod is visible (a managed control plane).
func TestNotAssessable(t *testing.T) {
	skipped, err := checks.Run(context.Background(), &checks.Inventory{}, policy.Selection{}, func(f checks.Finding) error {
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, na := range skipped {
		reasons[na.CheckID] = na.Reason
	}
	for _, m := range catalog.All() {
		_, listed := reasons[m.ID]
		controlPlane := strings.HasPrefix(m.ID, "CP-") || strings.HasPrefix(m.ID, "ETCD-") || m.ID == "KP-001"
		switch {
		case (m.NotAssessable != "" || controlPlane) && !listed:
			t.Errorf("%s: not listed as not assessable on an empty inventory", m.ID)
		case listed && reasons[m.ID] == "":
			t.Errorf("%s: not assessable without a reason", m.ID)
		case m.NotAssessable != "" && reasons[m.ID] != m.NotAssessable:
			t.Errorf("%s: reason %q, catalog says %q", m.ID, reasons[m.ID], m.NotAssessable)
		}
	}
}
